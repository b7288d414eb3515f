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
import { POLICY_STAGE_DEFAULT, Policy, type FaultQuery, type VictimQuery } from "@hmmsim/policy";
import { OnDemandPolicyPlugin, PLUGIN_NAME, POLICY_NAME } from "./on-demand.js";

const BLOCK = 2 * 1024 * 1024;

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

/** Another policy name, served by nobody's taps (so on-demand must stay silent for its devices). */
const other: MachinePlugin = { name: "OtherPolicy", kind: "policy", provides: ["other"], apply() {} };

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

function machine(policies: string[], policySpec?: object) {
  const m = createMachine({
    spec: {
      cpus: { count: 2 },
      ram: { size: "64MiB" },
      links: [{ name: "l0", kind: "custom", h2dBandwidth: "16GB/s", d2hBandwidth: "16GB/s", alpha: "1us", coherent: false }],
      devices: policies.map((policy, i) => ({ kind: "gpu", name: `gpu${i}`, memory: "4MiB", link: "l0", policy, ...(i === 0 && policySpec ? { policySpec } : {}) })),
    },
    plugins: [...defaultPlugins(), link, nullDriver, new OnDemandPolicyPlugin(), other],
  });
  return { m };
}

describe("OnDemandPolicyPlugin", () => {
  it("is a policy plugin providing on-demand, with its package's version", () => {
    const p = new OnDemandPolicyPlugin();
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    expect(p).toMatchObject({ name: PLUGIN_NAME, kind: "policy", provides: [POLICY_NAME], version: pkg.version, spec: {} });
    expect(POLICY_NAME).toBe("on-demand");
  });

  it("taps every hook at POLICY_STAGE_DEFAULT and answers with the defaults for on-demand devices only", () => {
    const { m } = machine(["on-demand", "other"]);
    const h = Policy.getHooks(m);
    for (const hook of [h.shouldMigrate, h.prefetchRange, h.selectVictim]) expect(hook.taps.map((t) => [t.name, t.stage])).toEqual([[PLUGIN_NAME, POLICY_STAGE_DEFAULT]]);
    expect(h.shouldMigrate.call({ device: "gpu0" } as FaultQuery)).toBe(true);
    expect(h.shouldMigrate.call({ device: "gpu1" } as FaultQuery)).toBeUndefined();
    const r = { start: 4096, end: 8192 };
    expect(h.prefetchRange.call(r, { device: "gpu0" } as FaultQuery)).toEqual({ start: 4096, end: 8192 });
    const q = { device: "gpu0", first: () => 3, next: () => -1, isEvictable: () => true } as unknown as VictimQuery;
    expect(h.selectVictim.call(q)).toBe(3);
    expect(h.selectVictim.call({ ...q, device: "gpu1" })).toBeUndefined();
  });

  it("taps nothing when no device uses on-demand", () => {
    const h = Policy.getHooks(machine(["other"]).m);
    expect([h.shouldMigrate.taps.length, h.prefetchRange.taps.length, h.selectVictim.taps.length]).toEqual([0, 0, 0]);
  });

  it("a policySpec must be absent or empty: each field is an issue with its path", () => {
    expect(() => machine(["on-demand"], {})).not.toThrow();
    let err: unknown;
    try {
      machine(["on-demand"], { threshold: 51, devices: ["gpu0"] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).issues).toEqual([
      { path: "devices[0].policySpec.threshold", message: "unknown field (on-demand has no policySpec fields)" },
      { path: "devices[0].policySpec.devices", message: "unknown field (on-demand has no policySpec fields)" },
    ]);
    const p = new OnDemandPolicyPlugin();
    const device = { kind: "gpu", name: "g", memory: BLOCK, memoryType: "private", driver: "gpu", policy: "on-demand", link: "l0" } as const;
    expect(p.componentSpecIssues({ kind: "policy", name: "on-demand", spec: undefined, device })).toEqual([]);
  });

});
