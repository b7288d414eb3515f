/**
 * NVIDIA UVM's default policies as one named bundle: a device spec with `policy: uvm-default` runs the policies
 * UVM runs when no module parameter is set, each provided by its own plugin and each with its own policySpec
 * (`policySpec: { thrashing: { lapseUs: 250 } }`, keyed by member name):
 *
 *  - `tree-prefetch`: uvm_perf_prefetch.c, `uvm_perf_prefetch_enable` = 1 and `uvm_perf_prefetch_threshold` = 51
 *    (`UVM_PREFETCH_THRESHOLD_DEFAULT`) [S2];
 *  - `thrashing`: uvm_perf_thrashing.c, `uvm_perf_thrashing_enable` = 1 (`UVM_PERF_THRASHING_ENABLE_DEFAULT`) with
 *    threshold 3, lapse 500 µs, pin threshold 10, pin 300 × lapse [S3];
 *  - `evict-lru`: uvm_pmm_gpu.c `pick_root_chunk_to_evict`, LRU over 2 MiB root chunks [S5];
 *  - `advise`: the memory-advise hints a range carries (preferred location, accessed-by, read-mostly), which UVM
 *    always honours when it picks a fault's residency (uvm_va_block.c `block_select_processor_residency`) [S6];
 *    pages without hints are left to the others.
 *
 * Not `access-counters`: counter-driven migrations are off by default for the memory HMM manages.
 * uvm_gpu_access_counters.c `is_migration_enabled` returns false unless the module parameter
 * `uvm_perf_access_counter_migration_enable` turns them on or the system has ATS ("Migrations are disabled by default
 * on all non-ATS systems"), and `service_notifications_batch` does not migrate HMM blocks at all ("TODO: Bug 4309292:
 * [UVM][HMM] Re-enable access counter HMM block migrations for virtual notifications") [S4]. A device runs them with
 * `policy: [uvm-default, access-counters]`.
 *
 * This plugin provides only the name: the members are provided by the advise, tree-prefetch, thrashing and eviction
 * policy plugins, which the machine must also load (a missing member is a SpecError at the device's `policy`).
 */
import { packageVersion, type MachinePlugin } from "@hmmsim/machine";

export const PLUGIN_NAME = "UvmDefaultPolicyPlugin";
/** The bundle's name: the `policy` value of a machine-spec device that runs UVM's defaults. */
export const POLICY_NAME = "uvm-default";
/** The bundle's members, in the order UVM's fault path consults them (the range's hints, prefetch, thrashing, then eviction on allocation). */
export const UVM_DEFAULT_POLICIES = Object.freeze(["advise", "tree-prefetch", "thrashing", "evict-lru"] as const);

const VERSION = packageVersion(import.meta.url);

export class UvmDefaultPolicyPlugin implements MachinePlugin {
  static readonly defaultSpec: Readonly<Record<string, never>> = Object.freeze({});
  readonly name = PLUGIN_NAME;
  readonly kind = "policy";
  readonly version = VERSION;
  readonly provides = [POLICY_NAME] as const;
  readonly bundles = Object.freeze({ [POLICY_NAME]: UVM_DEFAULT_POLICIES });
  readonly spec = UvmDefaultPolicyPlugin.defaultSpec;

  /** Nothing to tap: the members' plugins answer the policy hooks. */
  apply(): void {}
}
