/**
 * The one call a policy plugin's `apply` needs: tap the policy hooks for exactly the devices that run the plugin's
 * policy — whose machine-spec `policy` is that name, or a list or bundle that contains it once resolved (bundles
 * expanded by the machine's PluginRegistry) — each tap handed that policy's own policySpec for the device (the
 * device's policySpec for a single policy, its `policySpec.<name>` for a list or bundle; resolved once, at setup).
 *
 *   apply(machine) {
 *     tapPolicy(machine, { name: PLUGIN_NAME, policy: "tree", spec: (raw) => TreeSpec.resolve(raw) }, {
 *       prefetchRange: (range, fault, spec) => growByTree(range, fault, spec.threshold),
 *     });
 *   }
 */
import { type DeviceSpec, type Machine, PluginRegistry, type ResolvedPolicy, resolveDevicePolicies } from "@hmmsim/machine";
import type { FaultQuery, PrefetchRange } from "./fault-query.js";
import type { PrefetchPageMask } from "./prefetch-page-mask.js";
import { POLICY_STAGE_POLICY, Policy } from "./policy-hooks.js";
import type { AccessCounterConfig, AccessCounterQuery, ThrashingHint } from "./hints.js";
import type { VictimQuery } from "./victim-query.js";

/** A machine as the policy taps need it: its spec and, on a real machine, its plugin registry (for bundles). */
export type PolicyMachine = Pick<Machine, "spec"> & { readonly plugins?: unknown };

/**
 * The policies `device` runs, bundles expanded, each with its own policySpec: through the machine's PluginRegistry
 * when it has one, else (a bare `{ spec }`, as in tests) with no bundles.
 */
export function devicePolicies(machine: PolicyMachine, device: DeviceSpec): readonly ResolvedPolicy[] {
  if (machine.plugins instanceof PluginRegistry) return machine.plugins.devicePolicies(device);
  return resolveDevicePolicies(device, { bundle: () => undefined }).policies;
}

/** The devices of `machine` that run `policy` (their resolved policy list contains it), in spec order. */
export function servedDevices(machine: PolicyMachine, policy: string): DeviceSpec[] {
  return machine.spec.devices.filter((d) => devicePolicies(machine, d).some((p) => p.name === policy));
}

/** Each device that runs `policy`, with that policy's own policySpec (undefined: its defaults), in spec order. */
export function servedPolicies(machine: PolicyMachine, policy: string): { device: DeviceSpec; policySpec: Record<string, unknown> | undefined }[] {
  const out: { device: DeviceSpec; policySpec: Record<string, unknown> | undefined }[] = [];
  for (const device of machine.spec.devices) {
    const p = devicePolicies(machine, device).find((x) => x.name === policy);
    if (p) out.push({ device, policySpec: p.spec });
  }
  return out;
}

export interface PolicyTapOptions<S> {
  /** The tap's name: the plugin's PLUGIN_NAME. */
  name: string;
  /** The policy name devices select with their spec `policy`, alone, in a list or through a bundle (what the plugin `provides`). */
  policy: string;
  /** Tap stage (default POLICY_STAGE_POLICY). */
  stage?: number;
  /**
   * Turns this policy's policySpec for a device (undefined when absent; `policySpec.<policy>` when the device runs a
   * list or a bundle) into what the taps get; called once per device. Default: as is.
   */
  spec?: (policySpec: Record<string, unknown> | undefined, device: DeviceSpec) => S;
}

/** The answers of a policy, each given the query and the device's spec; any may be left out (not tapped). */
export interface PolicyTaps<S> {
  shouldMigrate?(fault: FaultQuery, spec: S): boolean | undefined;
  prefetchRange?(range: PrefetchRange, fault: FaultQuery, spec: S): PrefetchRange | undefined;
  /** Set the pages of the fault's block to migrate with it, anywhere in the block (`mask.setPage(addr)`, `mask.set(i)`). */
  prefetchPages?(fault: FaultQuery, mask: PrefetchPageMask, spec: S): void;
  selectVictim?(query: VictimQuery, spec: S): number | undefined;
  thrashingPages?(fault: FaultQuery, mask: Uint8Array, spec: S): void;
  thrashingHint?(fault: FaultQuery, spec: S): ThrashingHint | undefined;
  accessCounterConfig?(device: string, spec: S): AccessCounterConfig | undefined;
  accessCounterNotification?(notification: AccessCounterQuery, spec: S): boolean | undefined;
}

/**
 * Taps `Policy.getHooks(machine)` with `taps`, answering only for the devices `servedDevices(machine, policy)`
 * returns (other devices get no answer: `undefined`, the range unchanged, no page set). Taps nothing when the
 * machine has no such device. Returns the names of the devices served.
 *
 * A device may run several policies (a list or a bundle): each plugin taps for itself, and the order of the
 * device's list decides nothing. A bail hook's first answer wins in tap order: by `stage` (POLICY_STAGE_OVERRIDE <
 * POLICY_STAGE_POLICY < POLICY_STAGE_DEFAULT), then in the machine's plugin order; a policy that has nothing to say
 * about a query returns undefined so that the next one answers.
 */
export function tapPolicy<S = Record<string, unknown> | undefined>(machine: PolicyMachine, options: PolicyTapOptions<S>, taps: PolicyTaps<S>): string[] {
  const served = servedPolicies(machine, options.policy);
  if (served.length === 0) return [];
  // One boxed spec per served device: one lookup per call tells served from not and hands the spec.
  const specs = new Map<string, { readonly spec: S }>();
  for (const { device: d, policySpec } of served) specs.set(d.name, { spec: options.spec ? options.spec(policySpec, d) : (policySpec as S) });
  const hooks = Policy.getHooks(machine);
  const tap = { name: options.name, stage: options.stage ?? POLICY_STAGE_POLICY };
  const { shouldMigrate, prefetchRange, prefetchPages, selectVictim, thrashingPages, thrashingHint, accessCounterConfig, accessCounterNotification } = taps;
  if (shouldMigrate) {
    hooks.shouldMigrate.tap(tap, (f) => {
      const s = specs.get(f.device);
      return s === undefined ? undefined : shouldMigrate(f, s.spec);
    });
  }
  if (prefetchRange) {
    hooks.prefetchRange.tap(tap, (r, f) => {
      const s = specs.get(f.device);
      return s === undefined ? r : (prefetchRange(r, f, s.spec) ?? r);
    });
  }
  if (prefetchPages) {
    hooks.prefetchPages.tap(tap, (f, mask) => {
      const s = specs.get(f.device);
      if (s !== undefined) prefetchPages(f, mask, s.spec);
    });
  }
  if (selectVictim) {
    hooks.selectVictim.tap(tap, (q) => {
      const s = specs.get(q.device);
      return s === undefined ? undefined : selectVictim(q, s.spec);
    });
  }
  if (thrashingPages) {
    hooks.thrashingPages.tap(tap, (f, mask) => {
      const s = specs.get(f.device);
      if (s !== undefined) thrashingPages(f, mask, s.spec);
    });
  }
  if (thrashingHint) {
    hooks.thrashingHint.tap(tap, (f) => {
      const s = specs.get(f.device);
      return s === undefined ? undefined : thrashingHint(f, s.spec);
    });
  }
  if (accessCounterConfig) {
    hooks.accessCounterConfig.tap(tap, (device) => {
      const s = specs.get(device);
      return s === undefined ? undefined : accessCounterConfig(device, s.spec);
    });
  }
  if (accessCounterNotification) {
    hooks.accessCounterNotification.tap(tap, (n) => {
      const s = specs.get(n.device);
      return s === undefined ? undefined : accessCounterNotification(n, s.spec);
    });
  }
  return served.map((s) => s.device.name);
}
