/**
 * A policy's per-device spec (a device's `policySpec` in the machine spec), in one declaration: its fields'
 * defaults and one rule per field. `issues` is what a policy plugin's `componentSpecIssues` returns (paths relative
 * to the policySpec, every unknown field an issue); `resolve` lays a valid policySpec over the defaults.
 *
 *   const TreeSpec = definePolicySpec("tree", { threshold: 51, minFaults: 1 }, {
 *     threshold: specRules.integer(1, 100),   // uvm_perf_prefetch_threshold
 *     minFaults: specRules.integer(1, 20),    // uvm_perf_prefetch_min_faults
 *   });
 *   componentSpecIssues: (ref) => TreeSpec.issues(ref.spec),
 */
import { SpecError, type SpecIssue } from "@hmmsim/machine";

/** A field's rule: the rule broken, phrased for "<path>: <rule>", or undefined when `value` is valid. */
export type SpecRule = (value: unknown) => string | undefined;

export interface PolicySpecSchema<S extends object> {
  /** The policy name (for messages). */
  readonly policy: string;
  readonly defaults: Readonly<S>;
  /** The problems of a raw policySpec (undefined = absent = the defaults), each with its path relative to it. */
  issues(policySpec: unknown): SpecIssue[];
  /** The defaults with `policySpec` laid over them; throws SpecError (paths `policySpec.<field>`) when invalid. */
  resolve(policySpec: unknown): Readonly<S>;
}

const show = (v: unknown): string => (typeof v === "string" ? JSON.stringify(v) : Array.isArray(v) ? "an array" : String(v));

/** Declares a policy's spec: `defaults` gives its fields, `rules` one rule per field. */
export function definePolicySpec<S extends object>(policy: string, defaults: S, rules: { readonly [K in keyof S]: SpecRule }): PolicySpecSchema<S> {
  const known = Object.keys(defaults);
  const frozen = Object.freeze({ ...defaults });
  const unknownField = known.length === 0 ? `unknown field (${policy} has no policySpec fields)` : `unknown field (known: ${known.join(", ")})`;
  const issues = (raw: unknown): SpecIssue[] => {
    if (raw === undefined) return [];
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      return [{ path: "", message: `must be a mapping of ${policy}'s policy fields, got ${show(raw)}` }];
    }
    const out: SpecIssue[] = [];
    for (const [k, v] of Object.entries(raw)) {
      if (!Object.hasOwn(defaults, k)) {
        out.push({ path: k, message: unknownField });
        continue;
      }
      const broken = (rules as Record<string, SpecRule>)[k]!(v);
      if (broken !== undefined) out.push({ path: k, message: broken });
    }
    return out;
  };
  return Object.freeze({
    policy,
    defaults: frozen,
    issues,
    resolve(raw: unknown): Readonly<S> {
      const found = issues(raw);
      if (found.length > 0) throw new SpecError(found.map((i) => ({ path: i.path ? `policySpec.${i.path}` : "policySpec", message: i.message })));
      return raw === undefined ? frozen : Object.freeze({ ...defaults, ...(raw as Partial<S>) });
    },
  });
}

/** Rules for the common field types. */
export const specRules = Object.freeze({
  /** An integer in [min, max]. */
  integer(min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): SpecRule {
    return (v) => (Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max ? undefined : `must be an integer in [${min}, ${max}], got ${show(v)}`);
  },
  /** A finite number in [min, max]. */
  number(min = -Infinity, max = Infinity): SpecRule {
    return (v) => (typeof v === "number" && Number.isFinite(v) && v >= min && v <= max ? undefined : `must be a number in [${min}, ${max}], got ${show(v)}`);
  },
  boolean(): SpecRule {
    return (v) => (typeof v === "boolean" ? undefined : `must be true or false, got ${show(v)}`);
  },
  /** One of the given strings. */
  oneOf(...values: readonly string[]): SpecRule {
    return (v) => (typeof v === "string" && values.includes(v) ? undefined : `must be one of ${values.map((x) => JSON.stringify(x)).join(", ")}, got ${show(v)}`);
  },
});
