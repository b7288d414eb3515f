import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MMU_NOTIFY_CLEAR, MMU_NOTIFY_MIGRATE, MMU_NOTIFY_UNMAP } from "@hmmsim/core";
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
  type MigrateEvent,
} from "@hmmsim/machine";
import { BLOCK_SIZE, Policy, THRASHING_HINT_PIN, THRASHING_HINT_THROTTLE, type FaultQuery } from "@hmmsim/policy";
import { PLUGIN_NAME, POLICY_NAME, ThrashingPolicyPlugin } from "./thrashing.js";
import { THRASHING_DEFAULTS, thrashingPolicySpec } from "./thrashing-spec.js";

const US = 1_000_000;
const A = 3 * BLOCK_SIZE + 9 * 4096;

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

/** Provides driver "gpu" with a driver that runs nothing: these tests fire the trace points and call the hooks. */
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
/** A stand-in for another policy a device runs in a list. */
const other: MachinePlugin = { name: "Other", kind: "policy", provides: ["other"], apply() {} };

function machine(devices: Record<string, unknown>[]) {
  const plugin = new ThrashingPolicyPlugin();
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
const migrate = (m: object, device: string, dir: "h2d" | "d2h", t: number, reason = dir === "h2d" ? "fault" : "cpu-fault"): void =>
  MachineTrace.getHooks(m).migrateEnd.call({ device, mm, dir, start: A, end: A + 4096, npages: 1, bytes: 4096, reason, timePs: t } satisfies MigrateEvent);
const fault = (device: string, t: number) => ({ device, mm, address: A, blockStart: 3 * BLOCK_SIZE, pageIndex: 9, timePs: t, preferredLocation: null }) as unknown as FaultQuery;

/** A GPU↔CPU ping-pong of page A through the trace points: h2d by gpu0, d2h (the CPU's fault), one every 100 µs. */
function pingPong(m: object, n: number, device = "gpu0"): number {
  for (let k = 0; k < n; k++) migrate(m, device, k % 2 === 0 ? "h2d" : "d2h", k * 100 * US);
  return n * 100 * US;
}

describe("ThrashingPolicyPlugin", () => {
  it("is a policy plugin providing thrashing, with its package's version and UVM's defaults as its spec", () => {
    const p = new ThrashingPolicyPlugin();
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    expect(p).toMatchObject({ name: PLUGIN_NAME, kind: "policy", provides: [POLICY_NAME], version: pkg.version });
    expect(p.spec).toEqual({ enable: true, threshold: 3, pinThreshold: 10, lapseUs: 500, nap: 1, epoch: 2000, pin: 300, maxResets: 4, lapseVoteThreshold: 32 });
    expect(THRASHING_DEFAULTS).toBe(p.spec);
  });

  it("policySpec: UVM's bounds (uvm_perf_thrashing_init), every bad or unknown field an issue with its path", () => {
    expect(thrashingPolicySpec.issues({ threshold: 8, pinThreshold: 256, nap: 101, lapseUs: 0, epoch: 0, pin: -1, maxResets: 1.5, enable: 1, lapse: 3 }).map((i) => `${i.path}: ${i.message}`)).toEqual([
      "threshold: must be an integer in [1, 7], got 8",
      "pinThreshold: must be an integer in [1, 255], got 256",
      "nap: must be an integer in [1, 100], got 101",
      "lapseUs: must be an integer in [1, 4294967295], got 0",
      "epoch: must be an integer in [1, 4294967295], got 0",
      "pin: must be an integer in [0, 4294967295], got -1",
      "maxResets: must be an integer in [0, 4294967295], got 1.5",
      "enable: must be true or false, got 1",
      "lapse: unknown field (known: enable, threshold, pinThreshold, lapseUs, nap, epoch, pin, maxResets, lapseVoteThreshold)",
    ]);
    let err: unknown;
    try {
      machine([{ policy: ["thrashing", "other"], policySpec: { thrashing: { threshold: 9 } } }]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).issues).toEqual([{ path: "devices[0].policySpec.thrashing.threshold", message: "must be an integer in [1, 7], got 9" }]);
  });

  it("a CPU↔GPU ping-pong seen on the trace points: thrashing pages, then THROTTLE for one lapse, for the served devices only", () => {
    const { m, plugin } = machine([{ policy: ["other", "thrashing"] }, { policy: "other" }]);
    const h = Policy.getHooks(m);
    expect(h.thrashingHint.taps.map((t) => t.name)).toEqual([PLUGIN_NAME]);
    const t = pingPong(m, 5);
    const mask = new Uint8Array(512);
    h.thrashingPages.call(fault("gpu0", t), mask);
    expect([...mask.keys()].filter((i) => mask[i])).toEqual([9]);
    expect(h.thrashingHint.call(fault("gpu0", t))).toBeUndefined(); // the exempt processor of the first period
    migrate(m, "gpu0", "h2d", t + 200 * US);
    migrate(m, "gpu0", "d2h", t + 400 * US);
    expect(h.thrashingHint.call(fault("gpu0", t + 600 * US))).toMatchObject({ type: THRASHING_HINT_THROTTLE, untilPs: t + 1100 * US });
    // gpu1 does not run the policy: no answer
    expect(h.thrashingHint.call(fault("gpu1", t + 600 * US))).toBeUndefined();
    const mask1 = new Uint8Array(512);
    h.thrashingPages.call(fault("gpu1", t), mask1);
    expect(mask1.every((b) => b === 0)).toBe(true);
    expect(plugin.detector(m, "gpu0")!.pageState(mm, A)).toMatchObject({ thrashing: true, throttleCount: 1 });
    expect(plugin.detector(m, "gpu1")).toBeUndefined();
    void m.dispose();
  });

  it("each served device has its own spec: pinThreshold 1 pins after one throttle", () => {
    const { m } = machine([{ policy: "thrashing", policySpec: { pinThreshold: 1 } }]);
    const h = Policy.getHooks(m);
    let t = pingPong(m, 5);
    const answers: unknown[] = [];
    for (let k = 0; k < 3; k++) {
      migrate(m, "gpu0", "h2d", t + 200 * US);
      migrate(m, "gpu0", "d2h", t + 400 * US);
      t += 600 * US;
      answers.push(h.thrashingHint.call(fault("gpu0", t))?.type);
    }
    expect(answers).toEqual([undefined, THRASHING_HINT_THROTTLE, THRASHING_HINT_PIN]);
    void m.dispose();
  });

  it("munmap and zap invalidations reset the range; migrate invalidations are not events; evictions are skipped", () => {
    const { m, plugin } = machine([{ policy: "thrashing" }]);
    const trace = MachineTrace.getHooks(m);
    const d = plugin.detector(m, "gpu0")!;
    let t = pingPong(m, 5);
    trace.invalidate.call({ mm, start: A, end: A + 4096, event: MMU_NOTIFY_MIGRATE, owner: null, timePs: t });
    migrate(m, "gpu0", "d2h", t, "eviction");
    expect(d.pageState(mm, A)).toMatchObject({ thrashing: true, events: 3 });
    trace.invalidate.call({ mm, start: A, end: A + 4096, event: MMU_NOTIFY_CLEAR, owner: null, timePs: t });
    expect(d.pageState(mm, A)).toMatchObject({ thrashing: false, events: 0 });
    t = pingPong(m, 12);
    trace.invalidate.call({ mm, start: 0, end: 2 ** 47, event: MMU_NOTIFY_UNMAP, owner: null, timePs: t });
    expect(d.blocks(mm)).toEqual({ blocks: 0, tracked: 0 });
    void m.dispose();
  });

  it("taps nothing on a machine where no device runs thrashing", () => {
    const { m } = machine([{ policy: "other" }]);
    expect(Policy.getHooks(m).thrashingHint.taps).toHaveLength(0);
    expect(MachineTrace.getHooks(m).migrateEnd.taps.filter((t) => t.name === PLUGIN_NAME)).toHaveLength(0);
    void m.dispose();
  });
});
