import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MMU_NOTIFY_UNMAP } from "@hmmsim/core";
import {
  DeviceDrivers,
  DuplexLink,
  InterconnectFactory,
  MachineComponent,
  MachineSpec,
  MachineTrace,
  SpecError,
  createMachine,
  defaultPlugins,
  type DependencyContainer,
  type MachinePlugin,
} from "@hmmsim/machine";
import { ACCESS_READ, ACCESS_WRITE, Policy, type AccessCounterQuery, type FaultQuery } from "@hmmsim/policy";
import { AccessCounterPolicy, AccessCountersPolicyPlugin, PLUGIN_NAME, POLICY_NAME } from "./access-counters.js";
import { ACCESS_COUNTERS_DEFAULTS, accessCountersPolicySpec, resolveAccessCountersSpec } from "./access-counters-spec.js";

const KiB = 1024;
const MiB = 1024 * KiB;

const link: MachinePlugin = {
  name: "TestLink",
  kind: "interconnect",
  provides: ["custom"],
  register(c: DependencyContainer) {
    c.register(InterconnectFactory, {
      useValue: {
        name: "TestLink",
        create: (l, ctx) => new DuplexLink(l.name, l.kind, { h2dBandwidth: l.h2dBandwidth!, d2hBandwidth: l.d2hBandwidth!, alpha: l.alpha!, sharing: "fifo" }, false, ctx),
      },
    });
  },
  apply() {},
};

/** Provides driver "gpu" with a driver that runs nothing: these tests call the hooks and fire the trace points. */
const nullDriver: MachinePlugin = {
  name: "NullDriver",
  kind: "driver",
  provides: ["gpu"],
  register(c: DependencyContainer) {
    c.register(MachineComponent, {
      useFactory: (r) => {
        const drivers = r.resolve(DeviceDrivers);
        for (const d of r.resolve(MachineSpec).devices) {
          drivers.add({ device: d.name, driverName: "gpu", pgmap: null, runKernel: async () => ({ accesses: 0, faults: 0, remoteAccesses: 0, tlbHits: 0, tlbMisses: 0 }), counters: () => ({ batches: 0, faultedPages: 0, migratedPages: 0, populatedPages: 0 }) });
        }
        return {};
      },
    });
  },
  apply() {},
};
const other: MachinePlugin = { name: "Other", kind: "policy", provides: ["other"], apply() {} };

function machine(devices: Record<string, unknown>[]) {
  const plugin = new AccessCountersPolicyPlugin();
  const m = createMachine({
    spec: {
      cpus: { count: 2 },
      ram: { size: "64MiB" },
      links: [{ name: "l0", kind: "custom", h2dBandwidth: "16GB/s", d2hBandwidth: "16GB/s", alpha: "1us", coherent: false }],
      devices: devices.map((d, i) => ({ kind: "gpu", name: `gpu${i}`, memory: "4MiB", link: "l0", ...d })),
    },
    plugins: [...defaultPlugins(), link, nullDriver, plugin, other],
  });
  return { m, plugin };
}

const mm = {};
const fault = (device: string, access: number = ACCESS_READ) => ({ device, mm, access, write: access !== ACCESS_READ, address: 2 * MiB }) as unknown as FaultQuery;
/** A notification of the 64 KiB region at 2 MiB with `count` accesses, on a device with `freePages` of 1024 pages free. */
const note = (device: string, count: number, freePages = 1024, start = 2 * MiB): AccessCounterQuery => ({
  device, mm, start, end: start + 64 * KiB, count, batch: 0, batchNotifications: 1, timePs: 0, residentPages: 0, deviceFreePages: freePages, devicePages: 1024,
});

describe("policySpec (uvm_gpu_access_counters.c)", () => {
  it("UVM's defaults and bounds: granularity 64KiB / 2MiB / 16MiB, threshold 1 … 65535 (default 256)", () => {
    expect(new AccessCountersPolicyPlugin().spec).toEqual({ granularity: 2 * MiB, threshold: 256, mapRemoteOnFault: true, mode: "uvm", migrateThreshold: 8, penalty: 2 });
    expect(resolveAccessCountersSpec({ granularity: "64KiB", threshold: 65535 })).toMatchObject({ granularity: 64 * KiB, threshold: 65535 });
    expect(resolveAccessCountersSpec({ granularity: 16 * MiB })).toMatchObject({ granularity: 16 * MiB });
    expect(accessCountersPolicySpec.issues({ granularity: "16GiB", threshold: 0, mode: "smart", penalty: -1, granularityBytes: 1 }).map((i) => `${i.path}: ${i.message}`)).toEqual([
      'granularity: must be 64KiB, 2MiB or 16MiB (65536, 2097152 or 16777216; uvm_gpu_access_counters.c config_granularity_to_bytes), got "16GiB"',
      "threshold: must be an integer in [1, 65535], got 0",
      'mode: must be one of "uvm", "adaptive", got "smart"',
      "penalty: must be an integer in [0, 1000], got -1",
      "granularityBytes: unknown field (known: granularity, threshold, mapRemoteOnFault, mode, migrateThreshold, penalty)",
    ]);
    expect(accessCountersPolicySpec.issues({ threshold: 65536 })).toEqual([{ path: "threshold", message: "must be an integer in [1, 65535], got 65536" }]);
    expect(ACCESS_COUNTERS_DEFAULTS.threshold).toBe(256);
  });

  it("a bad field on a machine is a SpecError with its full path", () => {
    expect(() => machine([{ policy: ["access-counters", "other"], policySpec: { "access-counters": { threshold: 70000 } } }])).toThrow(SpecError);
  });
});

describe("AccessCountersPolicyPlugin on a machine", () => {
  it("is a policy plugin providing access-counters, with its package's version", () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    expect(new AccessCountersPolicyPlugin()).toMatchObject({ name: PLUGIN_NAME, kind: "policy", provides: [POLICY_NAME], version: pkg.version });
  });

  it("accessCounterConfig: the served devices' granularity and threshold; the others count nothing", () => {
    const { m } = machine([{ policy: "access-counters" }, { policy: ["other", "access-counters"], policySpec: { "access-counters": { granularity: "64KiB", threshold: 4 } } }, { policy: "other" }]);
    const h = Policy.getHooks(m);
    expect(h.accessCounterConfig.call("gpu0")).toEqual({ granularity: 2 * MiB, threshold: 256 });
    expect(h.accessCounterConfig.call("gpu1")).toEqual({ granularity: 64 * KiB, threshold: 4 });
    expect(h.accessCounterConfig.call("gpu2")).toBeUndefined();
    void m.dispose();
  });

  it("migrate on the N-th access: faults map remotely (shouldMigrate false), the notification at the threshold migrates", () => {
    const { m } = machine([{ policy: "access-counters", policySpec: { threshold: 3 } }, { policy: "access-counters", policySpec: { mapRemoteOnFault: false } }, { policy: "other" }]);
    const h = Policy.getHooks(m);
    expect(h.shouldMigrate.call(fault("gpu0"))).toBe(false);
    expect(h.shouldMigrate.call(fault("gpu0", ACCESS_WRITE))).toBe(false);
    expect(h.shouldMigrate.call(fault("gpu1"))).toBeUndefined(); // leaves faults to the other policies
    expect(h.shouldMigrate.call(fault("gpu2"))).toBeUndefined();
    // service_va_block_locked: the notified region migrates to the accessing device
    expect(h.accessCounterNotification.call(note("gpu0", 3))).toBe(true);
    expect(h.accessCounterNotification.call(note("gpu2", 3))).toBeUndefined();
    void m.dispose();
  });
});

describe("adaptive (IPDPS'20, UVMSmart gmmu_t::should_cause_page_migration, dma_type::ADAPTIVE)", () => {
  const adaptive = (over: Record<string, unknown> = {}) => new AccessCounterPolicy(resolveAccessCountersSpec({ mode: "adaptive", granularity: "64KiB", threshold: 1, ...over }));

  it("a write fault migrates at once; a read is mapped remotely", () => {
    const p = adaptive();
    expect(p.shouldMigrate({ access: ACCESS_WRITE })).toBe(true);
    expect(p.shouldMigrate({ access: ACCESS_READ })).toBe(false);
  });

  it("before over-subscription t_d = ⌊1 + t_s × occupancy⌋: 1 on an empty device, 5 at half full (t_s = 8)", () => {
    const p = adaptive();
    expect(p.derivedThreshold(mm, 0, 0)).toBe(1);
    expect(p.derivedThreshold(mm, 0, 0.5)).toBe(5);
    expect(p.derivedThreshold(mm, 0, 1)).toBe(9);
    expect(p.notification(note("gpu0", 1, 1024))).toBe(true); // empty: the first access migrates
    // half full: counts accumulate across notifications until they reach 5, then the region migrates and starts over
    expect([1, 1, 1, 1, 1, 1].map(() => p.notification(note("gpu0", 1, 512)))).toEqual([false, false, false, false, true, false]);
    expect(p.region(mm, 2 * MiB)).toEqual({ count: 1, roundTrips: 0 });
  });

  it("once the device evicted, t_d = t_s × p × (r + 1): 16 for a region never evicted, 32 after one round trip", () => {
    const p = adaptive();
    p.evicted(mm, 2 * MiB, 2 * MiB); // a 2 MiB block: every 64 KiB region in it made a round trip
    expect(p.overSubscribed).toBe(true);
    expect(p.region(mm, 2 * MiB + 64 * KiB).roundTrips).toBe(1);
    expect(p.derivedThreshold(mm, 0, 0.5)).toBe(16);
    expect(p.derivedThreshold(mm, 2 * MiB, 0.5)).toBe(32);
    expect([8, 8].map(() => p.notification(note("gpu0", 8, 0, 0)))).toEqual([false, true]);
    expect([8, 8, 8, 8].map(() => p.notification(note("gpu0", 8, 0)))).toEqual([false, false, false, true]);
    expect(adaptive({ penalty: 0 }).derivedThreshold(mm, 0, 1)).toBe(9); // not over-subscribed yet
    const zero = adaptive({ penalty: 0 });
    zero.evicted(mm, 0, 4096);
    expect(zero.notification(note("gpu0", 1, 0))).toBe(true); // penalty 0: t_d = 0
  });

  it("on a machine: the device's evictions make it over-subscribed; munmap forgets the regions", () => {
    const { m, plugin } = machine([{ policy: "access-counters", policySpec: { mode: "adaptive", granularity: 65536, threshold: 2 } }]);
    const h = Policy.getHooks(m);
    const p = plugin.policy(m, "gpu0")!;
    expect(h.accessCounterNotification.call(note("gpu0", 2, 512))).toBe(false); // t_d = 5
    const trace = MachineTrace.getHooks(m);
    trace.eviction.call({ device: "gpu0", mm, start: 2 * MiB, npages: 512, bytes: 2 * MiB, timePs: 0 });
    expect(p.overSubscribed).toBe(true);
    expect(p.region(mm, 2 * MiB)).toEqual({ count: 2, roundTrips: 1 });
    trace.invalidate.call({ mm, start: 0, end: 4 * MiB, event: MMU_NOTIFY_UNMAP, owner: null, timePs: 0 });
    expect(p.region(mm, 2 * MiB)).toEqual({ count: 0, roundTrips: 0 });
    void m.dispose();
  });
});
