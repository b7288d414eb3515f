/**
 * A device's policies, resolved: `devices[i].policy` may be one policy name, a bundle name (a name a policy plugin
 * expands to a list of policy names, `MachinePlugin.bundles`: "uvm-default" → tree-prefetch, thrashing, evict-lru)
 * or a list of such names. Resolving expands bundles (a bundle may name bundles), in the order written, and hands
 * each policy its own policySpec:
 *
 *  - one policy name that is not a bundle: `policySpec` is that policy's fields, as before (`{ threshold: 60 }`);
 *  - a list, or a bundle: `policySpec` is keyed by member policy name (`{ thrashing: { lapseUs: 250 } }`); a key
 *    that is not one of the device's resolved policies is an issue (a bundle's spec is given per member).
 *
 * Every problem is an issue with its path relative to the device (`policy`, `policy[1]`, `policySpec.thrashing`):
 * a name nobody provides (a bundle member too), a bundle cycle, a policy given twice (directly, or once directly and
 * once by a bundle, or by two bundles). The order of the list decides nothing: every policy taps the policy hooks
 * at its own stage, and a bail hook's first answer wins by stage, then by the machine's plugin order.
 */
import type { DeviceSpec, SpecIssue } from "./machine-spec.js";

/** One policy a device runs: its name and its own policySpec (undefined: its defaults). */
export interface ResolvedPolicy {
  readonly name: string;
  readonly spec: Record<string, unknown> | undefined;
  /** Where its spec sits, relative to the device: "policySpec" (a single policy) or "policySpec.<name>". */
  readonly specPath: string;
  /** The bundles it came through, outermost first ([] when the device names it directly). */
  readonly via: readonly string[];
}

/** What the resolver needs to know about the policy names: the members of a bundle, and whether a name is provided. */
export interface PolicyNames {
  /** The members of `name` when it is a bundle, else undefined. */
  bundle(name: string): readonly string[] | undefined;
  /** Is `name` provided by a policy plugin? (default: yes, every name) */
  provided?(name: string): boolean;
  /** The message for a name nobody provides (default: `no plugin provides policy "<name>"`). */
  missing?(name: string): string;
}

export interface DevicePolicies {
  /** The device's policies, bundles expanded, in the order written, each once. */
  readonly policies: readonly ResolvedPolicy[];
  /** Is policySpec keyed by policy name (`policy` is a list or a bundle)? */
  readonly keyed: boolean;
  /** The problems, paths relative to the device. Empty for a valid device. */
  readonly issues: readonly SpecIssue[];
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Resolves `device.policy` (a name, a bundle, a list) against `names`, with each policy's own policySpec. */
export function resolveDevicePolicies(device: Pick<DeviceSpec, "policy" | "policySpec">, names: PolicyNames): DevicePolicies {
  const issues: SpecIssue[] = [];
  const list = typeof device.policy === "string" ? [device.policy] : device.policy;
  const single = typeof device.policy === "string";
  const keyed = !single || names.bundle(device.policy as string) !== undefined;
  const found: { name: string; via: readonly string[] }[] = [];
  const seen = new Map<string, readonly string[]>();
  const how = (via: readonly string[]): string => (via.length === 0 ? "directly" : `by bundle ${via.map((b) => JSON.stringify(b)).join(" → ")}`);

  const expand = (name: string, path: string, via: string[]): void => {
    if (via.includes(name)) {
      issues.push({ path, message: `bundle cycle: ${[...via, name].map((n) => JSON.stringify(n)).join(" → ")}` });
      return;
    }
    const members = names.bundle(name);
    if (members !== undefined) {
      for (const m of members) expand(m, path, [...via, name]);
      return;
    }
    if (names.provided && !names.provided(name)) {
      const why = names.missing ? names.missing(name) : `no plugin provides policy ${JSON.stringify(name)}`;
      issues.push({ path, message: via.length === 0 ? why : `bundle ${JSON.stringify(via[via.length - 1])} names policy ${JSON.stringify(name)}: ${why}` });
      return;
    }
    const before = seen.get(name);
    if (before !== undefined) {
      issues.push({ path, message: `policy ${JSON.stringify(name)} is given twice (${how(before)} and ${how(via)}); a device runs each policy once` });
      return;
    }
    seen.set(name, via);
    found.push({ name, via });
  };
  list.forEach((n, j) => expand(n, single ? "policy" : `policy[${j}]`, []));

  const raw = device.policySpec;
  const policies: ResolvedPolicy[] = [];
  if (!keyed) {
    for (const f of found) policies.push(Object.freeze({ name: f.name, spec: raw, specPath: "policySpec", via: Object.freeze([...f.via]) }));
  } else {
    const what = single ? `bundle ${JSON.stringify(device.policy)}` : "a list of policies";
    const members = found.map((f) => f.name);
    if (raw !== undefined) {
      for (const k of Object.keys(raw)) {
        if (seen.has(k)) continue;
        const b = names.bundle(k);
        issues.push({
          path: `policySpec.${k}`,
          message:
            b !== undefined
              ? `a bundle's policySpec is keyed by member policy name (${JSON.stringify(k)}: ${b.join(", ")}), not by the bundle's name`
              : `not a policy of this device: with ${what}, policySpec is keyed by policy name (${members.length ? members.join(", ") : "none"})`,
        });
      }
    }
    for (const f of found) {
      const specPath = `policySpec.${f.name}`;
      const s = raw?.[f.name];
      if (s !== undefined && !isObj(s)) {
        issues.push({ path: specPath, message: `expected a mapping of ${f.name}'s spec fields (policySpec is keyed by policy name)` });
        continue;
      }
      policies.push(Object.freeze({ name: f.name, spec: s, specPath, via: Object.freeze([...f.via]) }));
    }
  }
  return Object.freeze({ policies: Object.freeze(policies), keyed, issues: Object.freeze(issues) });
}

/** `policy` as one line: the name, or the names joined with " + " (run summaries). */
export function formatPolicy(policy: string | readonly string[]): string {
  return typeof policy === "string" ? policy : policy.join(" + ");
}
