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
import { POLICY_STAGE_POLICY, Policy } from "@hmmsim/policy";
import { EVICTION_POLICIES, EvictionPolicyPlugin, PLUGIN_NAME } from "./eviction.js";
import { chunksQuery } from "./testing/chunks-query.js";

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
const other: MachinePlugin = { name: "OtherPolicy", kind: "policy", provides: ["other"], apply() {} };
/** Driver "gpu" that runs nothing: the tests call the hooks directly. */
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

function machine(policies: string[], policySpec?: object, seed = 1) {
  return createMachine({
    spec: {
      seed,
      cpus: { count: 2 },
      ram: { size: "64MiB" },
      links: [{ name: "l0", kind: "custom", h2dBandwidth: "16GB/s", d2hBandwidth: "16GB/s", alpha: "1us", coherent: false }],
      devices: policies.map((policy, i) => ({ kind: "gpu", name: `gpu${i}`, memory: "4MiB", link: "l0", policy, ...(i === 0 && policySpec ? { policySpec } : {}) })),
    },
    plugins: [...defaultPlugins(), link, nullDriver, new EvictionPolicyPlugin(), other],
  });
}

const reuse = (device: string) =>
  chunksQuery(
    [
      { chunk: 5, lastAccessPs: 900, accesses: 40, resident: 100 },
      { chunk: 2, lastAccessPs: 300, accesses: 10, resident: 100 },
      { chunk: 7, lastAccessPs: 600, accesses: 4, resident: 100 },
    ],
    device,
  );

describe("EvictionPolicyPlugin", () => {
  it("is one policy plugin providing the five eviction policies, with its package's version", () => {
    const p = new EvictionPolicyPlugin();
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    expect(p).toMatchObject({ name: PLUGIN_NAME, kind: "policy", version: pkg.version });
    expect([...p.provides]).toEqual(["evict-lru", "evict-lru-access", "evict-lfu", "evict-random", "evict-tree"]);
  });

  it("each name answers selectVictim for its own devices only, at POLICY_STAGE_POLICY", () => {
    const m = machine([...EVICTION_POLICIES, "other"]);
    const h = Policy.getHooks(m);
    expect(h.selectVictim.taps.map((t) => [t.name, t.stage])).toEqual(EVICTION_POLICIES.map(() => [PLUGIN_NAME, POLICY_STAGE_POLICY]));
    expect([h.shouldMigrate.taps.length, h.prefetchRange.taps.length]).toEqual([0, 0]);
    const answers = EVICTION_POLICIES.map((_, i) => h.selectVictim.call(reuse(`gpu${i}`)));
    expect(answers.slice(0, 3)).toEqual([5, 2, 7]); // LRU head, least recently accessed, least frequently accessed
    expect([5, 2, 7]).toContain(answers[3]);
    expect(answers[4]).toBe(2);
    expect(h.selectVictim.call(reuse("gpu5"))).toBeUndefined();
  });

  it("evict-random draws from the machine's seeded Rng: the same seed gives the same victims", () => {
    const victims = (seed: number) => {
      const h = Policy.getHooks(machine(["evict-random"], undefined, seed));
      return Array.from({ length: 40 }, () => h.selectVictim.call(reuse("gpu0")));
    };
    const a = victims(3);
    expect(victims(3)).toEqual(a);
    expect(new Set(a)).toEqual(new Set([5, 2, 7]));
  });

  it("no policySpec fields: each field given is an issue with its path", () => {
    let err: unknown;
    try {
      machine(["evict-lfu"], { decay: 0.5 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).issues).toEqual([{ path: "devices[0].policySpec.decay", message: "unknown field (evict-lfu has no policySpec fields)" }]);
    expect(() => machine(["evict-lru"], {})).not.toThrow();
  });
});
