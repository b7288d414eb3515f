import { describe, expect, it } from "vitest";
import { SpecError } from "@hmmsim/machine";
import { definePolicySpec, specRules } from "./policy-spec.js";

const Tree = definePolicySpec("tree", { threshold: 51, minFaults: 1, mode: "tree" as string, enable: true }, {
  threshold: specRules.integer(1, 100),
  minFaults: specRules.integer(1, 20),
  mode: specRules.oneOf("tree", "block"),
  enable: specRules.boolean(),
});

describe("definePolicySpec", () => {
  it("absent = the defaults; a valid spec is laid over them, frozen", () => {
    expect(Tree.issues(undefined)).toEqual([]);
    expect(Tree.resolve(undefined)).toEqual({ threshold: 51, minFaults: 1, mode: "tree", enable: true });
    const s = Tree.resolve({ threshold: 75 });
    expect(s).toEqual({ threshold: 75, minFaults: 1, mode: "tree", enable: true });
    expect(Object.isFrozen(s)).toBe(true);
    expect(Object.isFrozen(Tree.defaults)).toBe(true);
  });

  it("lists every bad and unknown field with its path relative to the policySpec", () => {
    expect(Tree.issues({ threshold: 0, minFaults: 2.5, mode: "x", enable: "yes", bogus: 1 })).toEqual([
      { path: "threshold", message: "must be an integer in [1, 100], got 0" },
      { path: "minFaults", message: "must be an integer in [1, 20], got 2.5" },
      { path: "mode", message: 'must be one of "tree", "block", got "x"' },
      { path: "enable", message: 'must be true or false, got "yes"' },
      { path: "bogus", message: "unknown field (known: threshold, minFaults, mode, enable)" },
    ]);
    expect(Tree.issues([1])).toEqual([{ path: "", message: "must be a mapping of tree's policy fields, got an array" }]);
    expect(Tree.issues(null)[0]!.path).toBe("");
  });

  it("resolve throws one SpecError naming policySpec.<field>", () => {
    let err: unknown;
    try {
      Tree.resolve({ threshold: 101, x: 1 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).issues.map((i) => i.path)).toEqual(["policySpec.threshold", "policySpec.x"]);
  });

  it("a policy without fields says so for each unknown field", () => {
    const None = definePolicySpec("on-demand", {}, {});
    expect(None.issues({})).toEqual([]);
    expect(None.issues({ a: 1, b: 2 })).toEqual([
      { path: "a", message: "unknown field (on-demand has no policySpec fields)" },
      { path: "b", message: "unknown field (on-demand has no policySpec fields)" },
    ]);
  });

  it("number rule: finite, in range", () => {
    const r = specRules.number(0, 1);
    expect(r(0.5)).toBeUndefined();
    expect(r(Number.NaN)).toMatch(/number in \[0, 1\]/);
    expect(r(2)).toMatch(/got 2/);
  });
});
