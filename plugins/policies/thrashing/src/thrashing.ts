/**
 * The thrashing policy plugin: NVIDIA UVM's thrashing detection and mitigation (uvm_perf_thrashing.c [S3]) for the
 * devices that run the policy `thrashing` (alone, in a list, or through a bundle such as `uvm-default`). Each such
 * device gets its own ThrashingDetector with its policySpec (UVM's module parameters, thrashing-spec.ts), fed by the
 * machine's trace points as UVM's perf events feed `thrashing_event_cb`:
 *
 *  - `migrateEnd` (pages actually moved): an `h2d` migration is an event of the device that migrated, a `d2h` one an
 *    event of the CPU; the reason gives UVM's cause ("fault", "cpu-fault", "prefetch", "access-counter" count;
 *    "eviction" is skipped; any other reason resets the pages' tracking);
 *  - `invalidate` with MMU_NOTIFY_UNMAP or MMU_NOTIFY_CLEAR: `hmm_invalidate` → `uvm_va_block_munmap_region` resets the
 *    range's tracking (a whole block unmapped is dropped);
 *  - `eviction` is not an event (thrashing_event_cb returns early on UVM_MAKE_RESIDENT_CAUSE_EVICTION).
 *
 * It answers `thrashingHint` (uvm_perf_thrashing_get_hint: THROTTLE until `untilPs`, or PIN: map remotely, no
 * migration) and `thrashingPages` (uvm_perf_thrashing_get_thrashing_pages: the prefetcher leaves those pages out)
 * through `tapPolicy`, and nothing else: it composes with a prefetcher and an eviction policy.
 */
import { MMU_NOTIFY_CLEAR, MMU_NOTIFY_UNMAP } from "@hmmsim/core";
import { MachineTrace, packageVersion, type ComponentRef, type Machine, type MachinePlugin, type SpecIssue } from "@hmmsim/machine";
import { tapPolicy } from "@hmmsim/policy";
import { CPU, ThrashingDetector, migrationCause } from "./thrashing-detector.js";
import { THRASHING_DEFAULTS, type ThrashingPolicySpec, thrashingPolicySpec } from "./thrashing-spec.js";

export const PLUGIN_NAME = "ThrashingPolicyPlugin";
/** The policy name devices select (`policy: thrashing`, or in a list / bundle). */
export const POLICY_NAME = "thrashing";

const VERSION = packageVersion(import.meta.url);

export class ThrashingPolicyPlugin implements MachinePlugin {
  static readonly defaultSpec: Readonly<ThrashingPolicySpec> = THRASHING_DEFAULTS;
  readonly name = PLUGIN_NAME;
  readonly kind = "policy";
  readonly version = VERSION;
  readonly provides = [POLICY_NAME] as const;
  readonly spec = ThrashingPolicyPlugin.defaultSpec;
  readonly #detectors = new WeakMap<object, Map<string, ThrashingDetector>>();

  componentSpecIssues(ref: ComponentRef): SpecIssue[] {
    return thrashingPolicySpec.issues(ref.spec);
  }

  /** The detector of `device` on `machine` (for reports and tests), or undefined when the device does not run the policy. */
  detector(machine: Machine, device: string): ThrashingDetector | undefined {
    return this.#detectors.get(machine)?.get(device);
  }

  apply(machine: Machine): void {
    const detectors = new Map<string, ThrashingDetector>();
    const served = tapPolicy(machine, { name: PLUGIN_NAME, policy: POLICY_NAME, spec: (raw, device) => {
      const d = new ThrashingDetector(thrashingPolicySpec.resolve(raw));
      detectors.set(device.name, d);
      return d;
    } }, {
      thrashingHint: (f, d) => d.getHint(f.mm, f.address, f.device, f.timePs, f.preferredLocation) ?? undefined,
      thrashingPages: (f, mask, d) => d.thrashingPages(f.mm, f.blockStart, mask),
    });
    if (served.length === 0) return;
    this.#detectors.set(machine, detectors);
    const all = [...detectors.values()];
    const trace = MachineTrace.getHooks(machine);
    trace.migrateEnd.tap(PLUGIN_NAME, (e) => {
      if (e.npages <= 0 || typeof e.mm !== "object" || e.mm === null) return;
      const dst = e.dir === "h2d" ? e.device : CPU;
      const cause = migrationCause(e.reason);
      for (const d of all) d.migration(e.mm, e.start, e.end, dst, cause, e.timePs);
    });
    trace.invalidate.tap(PLUGIN_NAME, (e) => {
      if ((e.event !== MMU_NOTIFY_UNMAP && e.event !== MMU_NOTIFY_CLEAR) || typeof e.mm !== "object" || e.mm === null) return;
      for (const d of all) d.munmap(e.mm, e.start, e.end, e.event === MMU_NOTIFY_UNMAP);
    });
  }
}
