import { describe, expect, it } from "vitest";
import {
  DeviceDrivers,
  DuplexLink,
  InterconnectFactory,
  MachineComponent,
  SpecError,
  createMachine,
  defaultPlugins,
  type DependencyContainer,
  type DeviceDriver,
  type DeviceSpec,
  type MachinePlugin,
} from "@hmmsim/machine";
import { POLICY_STAGE_DEFAULT, POLICY_STAGE_OVERRIDE, Policy } from "./policy-hooks.js";
import { definePolicySpec, specRules } from "./policy-spec.js";
import { PrefetchPageMask } from "./prefetch-page-mask.js";
import { servedDevices, tapPolicy } from "./tap-policy.js";
import { faultQuery, victimQuery } from "./testing/test-util.js";

const dev = (name: string, policy: string | string[], policySpec?: Record<string, unknown>): DeviceSpec =>
  ({ kind: "gpu", name, memory: 1 << 22, memoryType: "private", driver: "gpu", policy, link: "l0", ...(policySpec ? { policySpec } : {}) }) as DeviceSpec;

const fakeMachine = (...devices: DeviceSpec[]) => ({ spec: { devices } }) as unknown as Parameters<typeof tapPolicy>[0];

describe("servedDevices / tapPolicy", () => {
  it("serves exactly the devices whose spec policy is the name, each with its own spec", () => {
    const m = fakeMachine(dev("a", "tree", { threshold: 60 }), dev("b", "on-demand"), dev("c", "tree"));
    expect(servedDevices(m, "tree").map((d) => d.name)).toEqual(["a", "c"]);
    const seen: unknown[] = [];
    const served = tapPolicy(m, { name: "TreePlugin", policy: "tree", spec: (raw) => ({ threshold: 51, ...raw }) }, {
      shouldMigrate: (f, s) => (seen.push([f.device, s.threshold]), false),
      prefetchRange: (r, f, s) => ({ start: f.blockStart, end: f.blockStart + s.threshold * 4096 }),
      selectVictim: (q) => q.first(),
    });
    expect(served).toEqual(["a", "c"]);
    const h = Policy.getHooks(m);
    expect(h.shouldMigrate.call(faultQuery("a"))).toBe(false);
    expect(h.shouldMigrate.call(faultQuery("b"))).toBeUndefined();
    expect(h.shouldMigrate.call(faultQuery("c"))).toBe(false);
    expect(seen).toEqual([["a", 60], ["c", 51]]);
    const r = { start: 0x20_1000, end: 0x20_2000 };
    expect(h.prefetchRange.call(r, faultQuery("b", 0x20_1000))).toBe(r); // not served: unchanged
    expect(h.prefetchRange.call(r, faultQuery("a", 0x20_1000))).toEqual({ start: 0x20_0000, end: 0x20_0000 + 60 * 4096 });
    expect(h.selectVictim.call(victimQuery([4, 2], [], "c"))).toBe(4);
    expect(h.selectVictim.call(victimQuery([4, 2], [], "b"))).toBeUndefined();
    expect(h.shouldMigrate.taps[0]).toMatchObject({ name: "TreePlugin", stage: 0 });
  });

  it("taps only the hooks given, at the stage given; nothing at all when no device is served", () => {
    const m = fakeMachine(dev("a", "x"));
    expect(tapPolicy(m, { name: "P", policy: "x", stage: POLICY_STAGE_DEFAULT }, { selectVictim: () => -1 })).toEqual(["a"]);
    const h = Policy.getHooks(m);
    expect([h.shouldMigrate.taps.length, h.prefetchRange.taps.length, h.selectVictim.taps.length]).toEqual([0, 0, 1]);
    expect(h.selectVictim.taps[0]!.stage).toBe(POLICY_STAGE_DEFAULT);
    const n = fakeMachine(dev("a", "x"));
    expect(tapPolicy(n, { name: "Q", policy: "y" }, { shouldMigrate: () => true, selectVictim: () => -1 })).toEqual([]);
    expect(Policy.getHooks(n).shouldMigrate.taps).toHaveLength(0);
  });

  it("serves a device whose policy is a list containing the name, with the policySpec keyed by that name", () => {
    const m = fakeMachine(dev("a", ["tree", "thrash"] as never, { tree: { threshold: 70 }, thrash: { lapseUs: 9 } }), dev("b", ["thrash"] as never), dev("c", "tree"));
    expect(servedDevices(m, "tree").map((d) => d.name)).toEqual(["a", "c"]);
    expect(servedDevices(m, "thrash").map((d) => d.name)).toEqual(["a", "b"]);
    const specs: unknown[] = [];
    tapPolicy(m, { name: "T", policy: "thrash", spec: (raw, d) => (specs.push([d.name, raw]), raw) }, { shouldMigrate: () => false });
    expect(specs).toEqual([["a", { lapseUs: 9 }], ["b", undefined]]);
  });

  it("prefetchPages: sets pages for the devices served only, with each device's spec", () => {
    const m = fakeMachine(dev("a", "rand", { page: 300 }), dev("b", "other"));
    tapPolicy(m, { name: "P", policy: "rand" }, { prefetchPages: (f, mask, s) => mask.set(s!.page as number) });
    const h = Policy.getHooks(m);
    expect(h.prefetchPages.taps).toHaveLength(1);
    const mask = new PrefetchPageMask();
    mask.zero(0x20_0000);
    h.prefetchPages.call(faultQuery("b", 0x20_1000), mask);
    expect(mask.weight).toBe(0); // not served: no page
    h.prefetchPages.call(faultQuery("a", 0x20_1000), mask);
    expect([mask.weight, mask.test(300)]).toEqual([1, true]);
  });

  it("a prefetchRange answer of undefined keeps the range", () => {
    const m = fakeMachine(dev("a", "x"));
    tapPolicy(m, { name: "P", policy: "x" }, { prefetchRange: () => undefined });
    const r = { start: 0, end: 4096 };
    expect(Policy.getHooks(m).prefetchRange.call(r, faultQuery("a", 0))).toBe(r);
  });
});

/** A whole machine: a test link, a driver that builds nothing-doing DeviceDrivers, and a policy plugin written the documented way. */
describe("a policy plugin on a machine", () => {
  const Spec = definePolicySpec("remote-above", { limit: 4 }, { limit: specRules.integer(0, 512) });

  class RemoteAbovePlugin implements MachinePlugin {
    readonly name = "RemoteAbovePlugin";
    readonly kind = "policy";
    readonly provides = ["remote-above"];
    componentSpecIssues(ref: { spec: unknown }) {
      return Spec.issues(ref.spec);
    }
    apply(machine: Parameters<MachinePlugin["apply"]>[0]) {
      tapPolicy(machine, { name: this.name, policy: "remote-above", spec: (raw) => Spec.resolve(raw) }, {
        shouldMigrate: (f, s) => (f.blockResident >= s.limit ? false : undefined),
      });
    }
  }
  const link: MachinePlugin = {
    name: "Link",
    kind: "interconnect",
    provides: ["custom"],
    register(c: DependencyContainer) {
      c.register(InterconnectFactory, {
        useValue: {
          name: "Link",
          create: (l, ctx) => new DuplexLink(l.name, l.kind, { h2dBandwidth: l.h2dBandwidth!, d2hBandwidth: l.d2hBandwidth!, alpha: l.alpha!, sharing: "fifo" }, false, ctx),
        },
      });
    },
    apply() {},
  };
  const nullDriver = (device: string): DeviceDriver => ({
    device,
    driverName: "gpu",
    pgmap: null,
    runKernel: async () => ({ accesses: 0, faults: 0, remoteAccesses: 0, tlbHits: 0, tlbMisses: 0 }),
    counters: () => ({ batches: 0, faultedPages: 0, migratedPages: 0, populatedPages: 0 }),
  });
  const driver: MachinePlugin = {
    name: "Driver",
    kind: "driver",
    provides: ["gpu"],
    register(c: DependencyContainer) {
      c.register(MachineComponent, {
        useFactory: (r) => {
          const drivers = r.resolve(DeviceDrivers);
          drivers.add(nullDriver("g0"));
          drivers.add(nullDriver("g1"));
          return {};
        },
      });
    },
    apply() {},
  };
  const spec = (policySpec?: object) => ({
    cpus: { count: 1 },
    ram: { size: "16MiB" },
    links: [{ name: "l0", kind: "custom", h2dBandwidth: "16GB/s", d2hBandwidth: "16GB/s", alpha: "1us" }],
    devices: [
      { kind: "gpu", name: "g0", memory: "4MiB", link: "l0", policy: "remote-above", ...(policySpec ? { policySpec } : {}) },
      { kind: "gpu", name: "g1", memory: "4MiB", link: "l0", policy: "remote-above" },
    ],
  });
  const plugins = () => [...defaultPlugins(), link, driver, new RemoteAbovePlugin()];

  it("validates each device's policySpec with the plugin and answers with each device's spec", () => {
    const m = createMachine({ spec: spec({ limit: 1 }), plugins: plugins() });
    const h = Policy.getHooks(m);
    expect(h.shouldMigrate.call({ ...faultQuery("g0"), blockResident: 2 })).toBe(false);
    expect(h.shouldMigrate.call({ ...faultQuery("g1"), blockResident: 2 })).toBeUndefined(); // default limit 4
    expect(h.shouldMigrate.call({ ...faultQuery("g1"), blockResident: 4 })).toBe(false);
  });

  it("several policies on one device, one of them through a bundle: each serves with its own spec; the list's order decides nothing", () => {
    const seen: string[] = [];
    const stub = (name: string, stage: number, answer: boolean | undefined): MachinePlugin => ({
      name: `Stub-${name}`,
      kind: "policy",
      provides: [name],
      apply(machine) {
        tapPolicy(machine, { name: `Stub-${name}`, policy: name, stage }, { shouldMigrate: (f) => (seen.push(`${name}:${f.device}`), answer) });
      },
    });
    const bundle: MachinePlugin = { name: "Bundle", kind: "policy", provides: ["pair"], bundles: { pair: ["late", "early"] }, apply() {} };
    const s = spec();
    s.devices[0] = { ...s.devices[0]!, policy: ["remote-above", "pair"], policySpec: { "remote-above": { limit: 1 } } } as never;
    const m = createMachine({ spec: s, plugins: [...plugins(), bundle, stub("late", POLICY_STAGE_DEFAULT, true), stub("early", POLICY_STAGE_OVERRIDE, undefined)] });
    const h = Policy.getHooks(m);
    // early (override stage) asks first and has no answer, remote-above (policy stage) answers with its own spec.
    expect(h.shouldMigrate.call({ ...faultQuery("g0"), blockResident: 2 })).toBe(false);
    expect(seen).toEqual(["early:g0"]);
    expect(h.shouldMigrate.call({ ...faultQuery("g0"), blockResident: 0 })).toBe(true); // late, at the default stage
    expect(seen).toEqual(["early:g0", "early:g0", "late:g0"]);
    expect(h.shouldMigrate.call({ ...faultQuery("g1"), blockResident: 4 })).toBe(false); // g1: remote-above alone, default limit 4
    expect(seen).toHaveLength(3);
  });

  it("a bad policySpec is a SpecError with its full path; the machine is not built", () => {
    expect(() => createMachine({ spec: spec({ limit: -1, nope: true }), plugins: plugins() })).toThrow(SpecError);
    try {
      createMachine({ spec: spec({ limit: -1, nope: true }), plugins: plugins() });
    } catch (e) {
      expect((e as SpecError).issues).toEqual([
        { path: "devices[0].policySpec.limit", message: "must be an integer in [0, 512], got -1" },
        { path: "devices[0].policySpec.nope", message: "unknown field (known: limit)" },
      ]);
    }
  });
});
