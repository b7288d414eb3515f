/**
 * The one call a policy plugin's `apply` needs: tap the policy hooks for exactly the devices whose machine-spec
 * `policy` is the plugin's policy name, each tap handed that device's policySpec (resolved once, at setup).
 *
 *   apply(machine) {
 *     tapPolicy(machine, { name: PLUGIN_NAME, policy: "tree", spec: (raw) => TreeSpec.resolve(raw) }, {
 *       prefetchRange: (range, fault, spec) => growByTree(range, fault, spec.threshold),
 *     });
 *   }
 */
import type { DeviceSpec, Machine } from "@hmmsim/machine";
import type { FaultQuery, PrefetchRange } from "./fault-query.js";
import { POLICY_STAGE_POLICY, Policy } from "./policy-hooks.js";
import type { AccessCounterConfig, AccessCounterQuery, ThrashingHint } from "./hints.js";
import type { VictimQuery } from "./victim-query.js";

/** The devices of `machine` whose spec `policy` is `policy`, in spec order. */
export function servedDevices(machine: Pick<Machine, "spec">, policy: string): DeviceSpec[] {
  return machine.spec.devices.filter((d) => d.policy === policy);
}

export interface PolicyTapOptions<S> {
  /** The tap's name: the plugin's PLUGIN_NAME. */
  name: string;
  /** The policy name devices select with their spec `policy` (what the plugin `provides`). */
  policy: string;
  /** Tap stage (default POLICY_STAGE_POLICY). */
  stage?: number;
  /** Turns a device's policySpec (undefined when absent) into what the taps get; called once per device. Default: as is. */
  spec?: (policySpec: Record<string, unknown> | undefined, device: DeviceSpec) => S;
}

/** The answers of a policy, each given the query and the device's spec; any may be left out (not tapped). */
export interface PolicyTaps<S> {
  shouldMigrate?(fault: FaultQuery, spec: S): boolean | undefined;
  prefetchRange?(range: PrefetchRange, fault: FaultQuery, spec: S): PrefetchRange | undefined;
  selectVictim?(query: VictimQuery, spec: S): number | undefined;
  thrashingPages?(fault: FaultQuery, mask: Uint8Array, spec: S): void;
  thrashingHint?(fault: FaultQuery, spec: S): ThrashingHint | undefined;
  accessCounterConfig?(device: string, spec: S): AccessCounterConfig | undefined;
  accessCounterNotification?(notification: AccessCounterQuery, spec: S): boolean | undefined;
}

/**
 * Taps `Policy.getHooks(machine)` with `taps`, answering only for the devices `servedDevices(machine, policy)`
 * returns (other devices get no answer: `undefined`, or the range unchanged). Taps nothing when the machine has no
 * such device. Returns the names of the devices served.
 */
export function tapPolicy<S = Record<string, unknown> | undefined>(
  machine: Pick<Machine, "spec">,
  options: PolicyTapOptions<S>,
  taps: PolicyTaps<S>,
): string[] {
  const devices = servedDevices(machine, options.policy);
  if (devices.length === 0) return [];
  // One boxed spec per served device: one lookup per call tells served from not and hands the spec.
  const specs = new Map<string, { readonly spec: S }>();
  for (const d of devices) specs.set(d.name, { spec: options.spec ? options.spec(d.policySpec, d) : (d.policySpec as S) });
  const hooks = Policy.getHooks(machine);
  const tap = { name: options.name, stage: options.stage ?? POLICY_STAGE_POLICY };
  const { shouldMigrate, prefetchRange, selectVictim, thrashingPages, thrashingHint, accessCounterConfig, accessCounterNotification } = taps;
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
  return devices.map((d) => d.name);
}
