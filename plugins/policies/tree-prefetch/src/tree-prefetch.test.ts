import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
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
import { BLOCK_SIZE, POLICY_STAGE_POLICY, Policy, PrefetchPageMask, type FaultQuery, type PolicyHooks } from "@hmmsim/policy";
import { PLUGIN_NAME, POLICY_NAME, TreePrefetchPolicyPlugin, TreePrefetcher, treePrefetchPolicySpec, type TreePrefetchPolicySpec } from "./tree-prefetch.js";
import { blockQuery, pages } from "./testing/block-query.js";

const spec = (s: Partial<TreePrefetchPolicySpec> = {}) => treePrefetchPolicySpec.resolve(s);
const range = (p: TreePrefetcher, q: FaultQuery) => {
  const r = p.prefetchRange({ start: q.address, end: q.address + 4096 }, q);
  return [(r.start - q.blockStart) / 4096, (r.end - q.blockStart) / 4096];
};

describe("TreePrefetcher", () => {
  it("grows the waterfall's range to the page's region (the 262/512 example: the whole block)", () => {
    const p = new TreePrefetcher(spec());
    expect(range(p, blockQuery({ page: 300, resident: pages(0, 262) }))).toEqual([0, 512]);
    expect(range(p, blockQuery({ page: 37, batch: 1 }))).toEqual([32, 48]);
  });

  it("minFaults: the block's fault migrations, this batch included, must reach uvm_perf_prefetch_min_faults", () => {
    const p = new TreePrefetcher(spec({ minFaults: 3 }));
    expect(range(p, blockQuery({ page: 37, batch: 0 }))).toEqual([37, 38]); // 1 < 3
    expect(range(p, blockQuery({ page: 37, batch: 0 }))).toEqual([37, 38]); // same batch: counted once
    expect(range(p, blockQuery({ page: 37, faulted: [200], batch: 1 }))).toEqual([32, 48]); // 1 + 2 = 3
    // a CPU fault took pages of the block back: last_migration_proc_id changed, the count restarts
    p.blockMigratedAway({}, 0, 0); // another mm: nothing
    const q = blockQuery({ page: 37, batch: 2 });
    p.blockMigratedAway(q.mm, q.blockStart, q.blockStart + 4096);
    expect(range(p, q)).toEqual([37, 38]);
  });

  it("the variants answer UVMSmart's regions", () => {
    const q = () => blockQuery({ page: 0, faulted: [16, 32] });
    expect(range(new TreePrefetcher(spec({ variant: "tbn" })), q())).toEqual([0, 64]);
    expect(range(new TreePrefetcher(spec({ variant: "sequential-local" })), q())).toEqual([0, 16]);
    expect(range(new TreePrefetcher(spec({ variant: "tree" })), q())).toEqual([0, 64]); // 48/64 > 51 %
  });

  it("random answers with the page mask (faulted page + the draw, anywhere in the block), one draw per fault, none for the range", () => {
    const draws = [300, 1, 16];
    let drawn = 0;
    const p = new TreePrefetcher(spec({ variant: "random" }), { int: (n) => (expect(n).toBe(512), drawn++, draws.shift()!) });
    const q = blockQuery({ page: 0, faulted: [16, 32] });
    expect(range(p, q)).toEqual([0, 1]); // the range stays the faulted page and draws nothing
    expect(drawn).toBe(0);
    const set = () => {
      const m = new PrefetchPageMask();
      m.zero(q.blockStart);
      p.prefetchPages(q, m);
      return Array.from(m.pages.keys()).filter((i) => m.test(i));
    };
    expect(set()).toEqual([0, 300]);
    expect(set()).toEqual([0, 1]);
    expect(set()).toEqual([0]); // 16 was faulted in this batch
    expect(drawn).toBe(3);
    const off = new TreePrefetcher(spec({ variant: "random", disableOnOversubscription: true }), { int: () => (drawn++, 7) });
    off.deviceEvicted();
    const m = new PrefetchPageMask();
    m.zero(q.blockStart);
    off.prefetchPages(q, m);
    expect([m.weight, drawn]).toEqual([0, 3]); // latched off: no draw, no page
    new TreePrefetcher(spec({ variant: "tree" })).prefetchPages(q, m); // other variants: nothing
    expect(m.weight).toBe(0);
    expect(() => new TreePrefetcher(spec({ variant: "random" }))).toThrow(/random source/);
  });

  it("disableOnOversubscription: no prefetch once free memory ran out or the device evicted, for good", () => {
    const p = new TreePrefetcher(spec({ variant: "tbn", disableOnOversubscription: true }));
    expect(range(p, blockQuery({ page: 0, faulted: [16, 32] }))).toEqual([0, 64]);
    expect(range(p, blockQuery({ page: 0, faulted: [16, 32], deviceFreePages: 0 }))).toEqual([0, 1]);
    expect(range(p, blockQuery({ page: 0, faulted: [16, 32] }))).toEqual([0, 1]);
    const e = new TreePrefetcher(spec({ disableOnOversubscription: true }));
    e.deviceEvicted();
    expect(range(e, blockQuery({ page: 37 }))).toEqual([37, 38]);
    const off = new TreePrefetcher(spec());
    expect(range(off, blockQuery({ page: 37, deviceFreePages: 0 }))).toEqual([32, 48]);
  });

  it("no prefetch towards a device that is not the range's preferred location (should_apply_prefetch_logic)", () => {
    const p = new TreePrefetcher(spec());
    expect(range(p, blockQuery({ page: 37, preferredLocation: "host" }))).toEqual([37, 38]);
    expect(range(p, blockQuery({ page: 37, preferredLocation: "gpu0" }))).toEqual([32, 48]);
  });
});

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
    plugins: [...defaultPlugins(), link, nullDriver, new TreePrefetchPolicyPlugin(), other],
  });
}

describe("TreePrefetchPolicyPlugin", () => {
  it("is a policy plugin providing tree-prefetch, with its package's version and UVM's defaults", () => {
    const p = new TreePrefetchPolicyPlugin();
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    expect(p).toMatchObject({ name: PLUGIN_NAME, kind: "policy", provides: [POLICY_NAME], version: pkg.version });
    expect(TreePrefetchPolicyPlugin.defaultSpec).toEqual({ threshold: 51, minFaults: 1, variant: "tree", disableOnOversubscription: false });
  });

  it("taps prefetchRange at POLICY_STAGE_POLICY for its devices only", () => {
    const m = machine([POLICY_NAME, "other"]);
    const h = Policy.getHooks(m);
    expect(h.prefetchRange.taps.map((t) => [t.name, t.stage])).toEqual([[PLUGIN_NAME, POLICY_STAGE_POLICY]]);
    expect([h.shouldMigrate.taps.length, h.selectVictim.taps.length, h.prefetchPages.taps.length]).toEqual([0, 0, 0]); // no random variant: no mask tap
    const q = blockQuery({ page: 37 });
    expect(h.prefetchRange.call({ start: q.address, end: q.address + 4096 }, q)).toEqual({ start: q.blockStart + 32 * 4096, end: q.blockStart + 48 * 4096 });
    const q1 = blockQuery({ page: 37, device: "gpu1" });
    expect(h.prefetchRange.call({ start: q1.address, end: q1.address + 4096 }, q1)).toEqual({ start: q1.address, end: q1.address + 4096 });
    expect(Policy.getHooks(machine(["other"])).prefetchRange.taps.length).toBe(0);
  });

  it("an eviction on the device latches oversubscription (disableOnOversubscription)", () => {
    const m = machine([POLICY_NAME], { disableOnOversubscription: true });
    const h = Policy.getHooks(m);
    const q = blockQuery({ page: 37 });
    expect(h.prefetchRange.call({ start: q.address, end: q.address + 4096 }, q).end).toBe(q.blockStart + 48 * 4096);
    MachineTrace.getHooks(m).eviction.call({ device: "gpu0", mm: {}, start: 0, npages: 512, bytes: BLOCK_SIZE, timePs: 0 });
    expect(h.prefetchRange.call({ start: q.address, end: q.address + 4096 }, q).end).toBe(q.address + 4096);
  });

  it("the random variant answers on prefetchPages, drawing from the machine's seeded Rng: same seed, same pages", () => {
    /** What a driver does per faulted page it migrates: the range, then the mask zeroed over the block; the union. */
    const serve = (h: PolicyHooks, mask: PrefetchPageMask, q: FaultQuery) => {
      const r = h.prefetchRange.call({ start: q.address, end: q.address + 4096 }, q);
      mask.zero(q.blockStart);
      h.prefetchPages.call(q, mask);
      const out = new Set<number>();
      for (let a = r.start; a < r.end; a += 4096) out.add((a - q.blockStart) / 4096);
      for (let i = mask.first; i < mask.outer; i++) if (mask.test(i)) out.add(i);
      return [...out].sort((a, b) => a - b);
    };
    const answers = (seed: number) => {
      const m = machine([POLICY_NAME, POLICY_NAME], { variant: "random" }, seed);
      const h = Policy.getHooks(m);
      expect([h.prefetchRange.taps.length, h.prefetchPages.taps.length]).toEqual([1, 1]);
      const mask = new PrefetchPageMask();
      const out: number[][] = [];
      for (let p = 1; p < 511; p += 2) out.push(serve(h, mask, blockQuery({ page: p })));
      // gpu1 runs the tree variant: the mask tap answers nothing for it
      expect(serve(h, mask, blockQuery({ page: 37, device: "gpu1" }))).toEqual(pages(32, 48));
      return out;
    };
    const a = answers(7);
    expect(answers(7)).toEqual(a);
    expect(answers(8)).not.toEqual(a);
    const faulted = a.map((_, k) => 1 + 2 * k);
    expect(a.every((s, k) => s.includes(faulted[k]!) && s.length <= 2)).toBe(true);
    // The drawn page joins wherever it lies: far from the fault, not only as a neighbour (the old range answer).
    const far = a.filter((s, k) => s.length === 2 && s.some((i) => Math.abs(i - faulted[k]!) > 1));
    expect(far.length).toBeGreaterThan(a.length * 0.9);
  });

  it("policySpec: each field checked against UVM's bounds, every unknown field an issue", () => {
    let err: unknown;
    try {
      machine([POLICY_NAME], { threshold: 101, minFaults: 0, variant: "lru", disableOnOversubscription: 1, depth: 3 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).issues.map((i) => i.path)).toEqual([
      "devices[0].policySpec.threshold",
      "devices[0].policySpec.minFaults",
      "devices[0].policySpec.variant",
      "devices[0].policySpec.disableOnOversubscription",
      "devices[0].policySpec.depth",
    ]);
    expect(() => machine([POLICY_NAME], { threshold: 0, minFaults: 20, variant: "tbn" })).not.toThrow();
  });
});
