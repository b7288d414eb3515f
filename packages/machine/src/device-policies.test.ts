import { describe, expect, it } from "vitest";
import { MachineCompositionError, createMachine, defaultPlugins, validateMachineSpec } from "./create-machine.js";
import { formatPolicy, resolveDevicePolicies } from "./device-policies.js";
import { SpecError, parseMachineSpec } from "./machine-spec.js";
import type { ComponentRef, MachinePlugin } from "./plugin.js";
import { PluginRegistry } from "./plugin-registry.js";
import { buildSummary } from "./run-summary.js";
import { getMachineStats } from "./stats-plugin.js";
import { testPlugins } from "./testing/test-link.js";

/** A stand-in policy plugin: provides `names`; `fields` lists the policySpec fields it knows (any number value). */
const policy = (name: string, names: string[], fields: string[] = [], bundles?: Record<string, string[]>): MachinePlugin => ({
  name,
  kind: "policy",
  provides: names,
  ...(bundles ? { bundles } : {}),
  componentSpecIssues: (ref: ComponentRef) => {
    const s = (ref.spec ?? {}) as Record<string, unknown>;
    return Object.entries(s).flatMap(([k, v]) =>
      !fields.includes(k) ? [{ path: k, message: `unknown field of ${ref.name}` }] : typeof v === "number" ? [] : [{ path: k, message: "must be a number" }],
    );
  },
  apply() {},
});

const uvmDefault = policy("UvmDefault", ["uvm-default"], [], { "uvm-default": ["tree-prefetch", "thrashing", "evict-lru"] });
const members = () => [policy("Tree", ["tree-prefetch"], ["threshold"]), policy("Thrash", ["thrashing"], ["lapseUs"]), policy("Evict", ["evict-lru", "evict-fifo"])];
const plugins = (...more: MachinePlugin[]) => [...defaultPlugins(), ...testPlugins(), ...members(), uvmDefault, ...more];

const spec = (device: Record<string, unknown>) => ({
  cpus: { count: 1 },
  ram: { size: "16MiB" },
  links: [{ name: "l0", kind: "custom", h2dBandwidth: "1GB/s", d2hBandwidth: "1GB/s", alpha: "1us", coherent: false }],
  devices: [{ kind: "gpu", name: "gpu0", memory: "4MiB", link: "l0", ...device }],
});

function issues(device: Record<string, unknown>, more: MachinePlugin[] = []): string[] {
  try {
    validateMachineSpec(spec(device), plugins(...more));
  } catch (e) {
    if (e instanceof SpecError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
  return [];
}

describe("devices[i].policy: a name, a list, a bundle", () => {
  it("the schema takes a name or a non-empty list of names; a string stays a string", () => {
    expect(parseMachineSpec(spec({})).devices[0]!.policy).toBe("on-demand");
    expect(parseMachineSpec(spec({ policy: "thrashing" })).devices[0]!.policy).toBe("thrashing");
    const s = parseMachineSpec(spec({ policy: ["tree-prefetch", "thrashing"] }));
    expect(s.devices[0]!.policy).toEqual(["tree-prefetch", "thrashing"]);
    expect(parseMachineSpec(s)).toEqual(s); // a normalized spec parses to itself
    const bad = (policy: unknown) => {
      try {
        parseMachineSpec(spec({ policy }));
      } catch (e) {
        return (e as SpecError).issues.map((i) => `${i.path}: ${i.message}`);
      }
      return [];
    };
    expect(bad([])).toEqual(["devices[0].policy: expected at least one policy name (leave policy out for on-demand)"]);
    expect(bad(["a", "b c", 3])).toEqual([
      "devices[0].policy[1]: expected a name of letters, digits, '_', '.', '-'",
      "devices[0].policy[2]: expected a name (string)",
    ]);
    expect(bad({ a: 1 })).toEqual(["devices[0].policy: expected a policy name or a list of policy names, got an object"]);
    expect(bad(Array.from({ length: 33 }, (_, i) => `p${i}`))).toEqual(["devices[0].policy: at most 32 policies per device, got 33"]);
  });

  it("resolves a list and a bundle to member policies, each with its own policySpec (keyed by member name)", () => {
    const reg = new PluginRegistry(plugins());
    const [d] = parseMachineSpec(spec({ policy: ["uvm-default"], policySpec: { thrashing: { lapseUs: 250 }, "tree-prefetch": { threshold: 60 } } })).devices;
    expect(reg.devicePolicies(d!)).toEqual([
      { name: "tree-prefetch", spec: { threshold: 60 }, specPath: "policySpec.tree-prefetch", via: ["uvm-default"] },
      { name: "thrashing", spec: { lapseUs: 250 }, specPath: "policySpec.thrashing", via: ["uvm-default"] },
      { name: "evict-lru", spec: undefined, specPath: "policySpec.evict-lru", via: ["uvm-default"] },
    ]);
    const single = parseMachineSpec(spec({ policy: "uvm-default", policySpec: { thrashing: { lapseUs: 250 } } })).devices[0]!;
    expect(reg.resolvePolicies(single).keyed).toBe(true);
    expect(reg.devicePolicies(single).map((p) => [p.name, p.spec])).toEqual([["tree-prefetch", undefined], ["thrashing", { lapseUs: 250 }], ["evict-lru", undefined]]);
    const one = parseMachineSpec(spec({ policy: "tree-prefetch", policySpec: { threshold: 60 } })).devices[0]!;
    expect(reg.devicePolicies(one)).toEqual([{ name: "tree-prefetch", spec: { threshold: 60 }, specPath: "policySpec", via: [] }]);
    expect(reg.bundle("uvm-default")).toEqual(["tree-prefetch", "thrashing", "evict-lru"]);
    expect(reg.bundle("thrashing")).toBeUndefined();
    expect(issues({ policy: ["uvm-default"], policySpec: { thrashing: { lapseUs: 250 } } })).toEqual([]);
    expect(issues({ policy: ["thrashing", "evict-fifo"] })).toEqual([]);
  });

  it("every problem is an issue with its path: unknown names and members, twice, cycles, keyed specs, each member's own fields", () => {
    expect(issues({ policy: ["thrashing", "nope"] })).toEqual([expect.stringMatching(/^devices\[0\]\.policy\[1\]: no plugin provides policy "nope" \(available: evict-fifo, evict-lru, on-demand, thrashing, tree-prefetch, uvm-default;/)]);
    expect(issues({ policy: ["uvm-default", "thrashing"] })).toEqual([
      'devices[0].policy[1]: policy "thrashing" is given twice (by bundle "uvm-default" and directly); a device runs each policy once',
    ]);
    expect(issues({ policy: ["evict-lru", "evict-lru"] })).toEqual(['devices[0].policy[1]: policy "evict-lru" is given twice (directly and directly); a device runs each policy once']);
    const broken = policy("Broken", ["broken", "loop-a", "loop-b"], [], { broken: ["thrashing", "missing"], "loop-a": ["loop-b"], "loop-b": ["evict-lru", "loop-a"] });
    expect(issues({ policy: "broken" }, [broken])).toEqual([expect.stringMatching(/^devices\[0\]\.policy: bundle "broken" names policy "missing": no plugin provides policy "missing" \(available:/)]);
    expect(issues({ policy: ["loop-a"] }, [broken])).toEqual(['devices[0].policy[0]: bundle cycle: "loop-a" → "loop-b" → "loop-a"']);
    expect(issues({ policy: ["uvm-default"], policySpec: { "uvm-default": {}, thrashing: 3, "tree-prefetch": { threshold: "x", depth: 2 }, fifo: {} } })).toEqual([
      'devices[0].policySpec.uvm-default: a bundle\'s policySpec is keyed by member policy name ("uvm-default": tree-prefetch, thrashing, evict-lru), not by the bundle\'s name',
      "devices[0].policySpec.fifo: not a policy of this device: with a list of policies, policySpec is keyed by policy name (tree-prefetch, thrashing, evict-lru)",
      "devices[0].policySpec.thrashing: expected a mapping of thrashing's spec fields (policySpec is keyed by policy name)",
      "devices[0].policySpec.tree-prefetch.threshold: must be a number",
      "devices[0].policySpec.tree-prefetch.depth: unknown field of tree-prefetch",
    ]);
    // A single bundle name keys policySpec too; a single policy keeps the flat shape.
    expect(issues({ policy: "uvm-default", policySpec: { lapseUs: 1 } })).toEqual([
      'devices[0].policySpec.lapseUs: not a policy of this device: with bundle "uvm-default", policySpec is keyed by policy name (tree-prefetch, thrashing, evict-lru)',
    ]);
    expect(issues({ policy: "thrashing", policySpec: { lapseUs: "x" } })).toEqual(["devices[0].policySpec.lapseUs: must be a number"]);
  });

  it("listed with the schema's issues in one SpecError", () => {
    const e = (() => {
      try {
        createMachine({ spec: { ...spec({ policy: ["thrashing", "typo"], policySpec: { thrashing: { lapseUs: "x" } } }), ram: { size: "1 gig" } }, plugins: plugins(), createKernel: () => null });
      } catch (err) {
        return err as SpecError;
      }
      throw new Error("expected a SpecError");
    })();
    expect(e).toBeInstanceOf(SpecError);
    expect(e.issues.map((i) => i.path)).toEqual(["ram.size", "devices[0].policy[1]", "devices[0].policySpec.thrashing.lapseUs"]);
  });

  it("a malformed bundle declaration is a MachineCompositionError", () => {
    const bad = (bundles: unknown, kind = "policy", provides = ["b"]) => () =>
      new PluginRegistry([{ name: "B", kind, provides, bundles, apply() {} } as unknown as MachinePlugin]);
    expect(bad({ c: ["x"] })).toThrowError(/bundle "c" is not among the names the plugin provides/);
    expect(bad({ b: [] })).toThrowError(/bundle "b" must list one or more policy names/);
    expect(bad(["x"])).toThrowError(/bundles must map bundle names to lists of policy names/);
    expect(bad({ b: ["x"] }, "driver")).toThrowError(MachineCompositionError);
    expect(bad({ b: ["x"] }, "driver")).toThrowError(/only policy plugins declare bundles/);
  });

  it("the summary shows the policy as written; a list joined with +", async () => {
    expect(formatPolicy("on-demand")).toBe("on-demand");
    expect(formatPolicy(["tree-prefetch", "thrashing"])).toBe("tree-prefetch + thrashing");
    const m = createMachine({ spec: spec({ policy: ["uvm-default"] }), plugins: plugins(), createKernel: () => null });
    const result = await m.run();
    expect(buildSummary(m, getMachineStats(m), result, { preset: null, file: "x" }).machine.devices[0]!.policy).toBe("uvm-default");
    await m.dispose();
  });

  it("without bundle knowledge (a bare resolver), a list resolves to its names", () => {
    const r = resolveDevicePolicies({ policy: ["a", "b"], policySpec: { a: { x: 1 } } }, { bundle: () => undefined });
    expect(r.policies.map((p) => [p.name, p.spec])).toEqual([["a", { x: 1 }], ["b", undefined]]);
    expect(r.issues).toEqual([]);
  });
});
