import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  DeviceDrivers,
  DuplexLink,
  InterconnectFactory,
  MachineComponent,
  MachineSpec,
  SpecError,
  createMachine,
  defaultPlugins,
  type DependencyContainer,
  type MachinePlugin,
} from "@hmmsim/machine";
import { BLOCK_SIZE, Policy, tapPolicy, type FaultQuery, type VictimQuery } from "@hmmsim/policy";
import { PLUGIN_NAME, POLICY_NAME, UVM_DEFAULT_POLICIES, UvmDefaultPolicyPlugin } from "./uvm-default.js";

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

/** Provides driver "gpu" with a driver that runs nothing: these tests call the hooks directly. */
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

/**
 * Stand-ins for the members, which other plugin packages provide: each accepts one policySpec field `n` and answers
 * one hook with it, so a test sees which member served which device with which spec.
 */
const member = (policy: string, hook: "shouldMigrate" | "prefetchRange" | "thrashingHint" | "selectVictim" | "accessCounterNotification"): MachinePlugin => ({
  name: `StandIn-${policy}`,
  kind: "policy",
  provides: [policy],
  componentSpecIssues: (ref) => Object.keys((ref.spec ?? {}) as object).filter((k) => k !== "n").map((k) => ({ path: k, message: "unknown field (known: n)" })),
  apply(machine) {
    const n = (raw: Record<string, unknown> | undefined) => (raw?.n as number | undefined) ?? 1;
    tapPolicy(machine, { name: `StandIn-${policy}`, policy, spec: n }, {
      [hook]: hook === "shouldMigrate" ? (_f: FaultQuery, k: number) => k > 1
        : hook === "prefetchRange" ? (r: { start: number; end: number }, _f: FaultQuery, k: number) => ({ start: r.start, end: r.start + k * 4096 })
        : hook === "thrashingHint" ? (_f: FaultQuery, k: number) => ({ type: 1, untilPs: k })
        : hook === "selectVictim" ? (_q: VictimQuery, k: number) => k
        : (_q: unknown, k: number) => k > 1,
    });
  },
});
const members = () => [member("advise", "shouldMigrate"), member("tree-prefetch", "prefetchRange"), member("thrashing", "thrashingHint"), member("evict-lru", "selectVictim")];

function machine(devices: Record<string, unknown>[], plugins: MachinePlugin[] = [...members(), new UvmDefaultPolicyPlugin()]) {
  return createMachine({
    spec: {
      cpus: { count: 2 },
      ram: { size: "64MiB" },
      links: [{ name: "l0", kind: "custom", h2dBandwidth: "16GB/s", d2hBandwidth: "16GB/s", alpha: "1us", coherent: false }],
      devices: devices.map((d, i) => ({ kind: "gpu", name: `gpu${i}`, memory: "4MiB", link: "l0", ...d })),
    },
    plugins: [...defaultPlugins(), link, nullDriver, ...plugins],
  });
}

const fault = (device: string) => ({ device, address: BLOCK_SIZE, blockStart: BLOCK_SIZE }) as FaultQuery;
const victim = (device: string) => ({ device }) as VictimQuery;

describe("UvmDefaultPolicyPlugin", () => {
  it("is a policy plugin providing the bundle uvm-default = advise, tree-prefetch, thrashing, evict-lru, with its package's version", () => {
    const p = new UvmDefaultPolicyPlugin();
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    expect(p).toMatchObject({ name: PLUGIN_NAME, kind: "policy", provides: [POLICY_NAME], version: pkg.version, bundles: { "uvm-default": ["advise", "tree-prefetch", "thrashing", "evict-lru"] } });
    expect(UVM_DEFAULT_POLICIES).toEqual(["advise", "tree-prefetch", "thrashing", "evict-lru"]);
    // Not access-counters: UVM migrates on access counters only with ATS or the module parameter, never for HMM blocks.
    expect(UVM_DEFAULT_POLICIES).not.toContain("access-counters");
  });

  it("a device with policy uvm-default runs the four members, each with its own policySpec; other devices run none", () => {
    const m = machine([{ policy: "uvm-default", policySpec: { advise: { n: 2 }, thrashing: { n: 7 }, "evict-lru": { n: 3 } } }, { policy: "tree-prefetch" }]);
    const h = Policy.getHooks(m);
    expect(h.shouldMigrate.call(fault("gpu0"))).toBe(true);
    expect(h.shouldMigrate.call(fault("gpu1"))).toBeUndefined();
    expect(h.prefetchRange.call({ start: BLOCK_SIZE, end: BLOCK_SIZE + 4096 }, fault("gpu0"))).toEqual({ start: BLOCK_SIZE, end: BLOCK_SIZE + 4096 });
    expect(h.thrashingHint.call(fault("gpu0"))).toEqual({ type: 1, untilPs: 7 });
    expect(h.selectVictim.call(victim("gpu0"))).toBe(3);
    // gpu1 runs tree-prefetch alone (flat policySpec, defaults here)
    expect(h.thrashingHint.call(fault("gpu1"))).toBeUndefined();
    expect(h.selectVictim.call(victim("gpu1"))).toBeUndefined();
    expect(h.prefetchRange.call({ start: 0, end: 4096 }, fault("gpu1"))).toEqual({ start: 0, end: 4096 });
    void m.dispose();
  });

  it("composes with more policies in a list: [uvm-default, access-counters]", () => {
    const m = machine([{ policy: ["uvm-default", "access-counters"], policySpec: { "access-counters": { n: 2 } } }], [...members(), member("access-counters", "accessCounterNotification"), new UvmDefaultPolicyPlugin()]);
    const h = Policy.getHooks(m);
    expect(h.accessCounterNotification.call({ device: "gpu0" } as never)).toBe(true);
    expect(h.thrashingHint.call(fault("gpu0"))).toEqual({ type: 1, untilPs: 1 });
    void m.dispose();
  });

  it("a member no plugin provides, a member given twice, a spec keyed by the bundle: SpecErrors at the device's paths", () => {
    const issues = (devices: Record<string, unknown>[], plugins?: MachinePlugin[]) => {
      try {
        machine(devices, plugins);
      } catch (e) {
        if (e instanceof SpecError) return e.issues.map((i) => `${i.path}: ${i.message}`);
        throw e;
      }
      return [];
    };
    expect(issues([{ policy: "uvm-default" }], [member("advise", "shouldMigrate"), member("thrashing", "thrashingHint"), new UvmDefaultPolicyPlugin()])).toEqual([
      expect.stringMatching(/^devices\[0\]\.policy: bundle "uvm-default" names policy "tree-prefetch": no plugin provides policy "tree-prefetch"/),
      expect.stringMatching(/^devices\[0\]\.policy: bundle "uvm-default" names policy "evict-lru": no plugin provides policy "evict-lru"/),
    ]);
    expect(issues([{ policy: ["thrashing", "uvm-default"] }])).toEqual([
      'devices[0].policy[1]: policy "thrashing" is given twice (directly and by bundle "uvm-default"); a device runs each policy once',
    ]);
    expect(issues([{ policy: "uvm-default", policySpec: { "uvm-default": { n: 1 }, thrashing: { m: 1 } } }])).toEqual([
      'devices[0].policySpec.uvm-default: a bundle\'s policySpec is keyed by member policy name ("uvm-default": advise, tree-prefetch, thrashing, evict-lru), not by the bundle\'s name',
      "devices[0].policySpec.thrashing.m: unknown field (known: n)",
    ]);
  });
});
