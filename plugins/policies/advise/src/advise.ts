/**
 * Memory-advise hints as migration decisions: the "advise" policy answers `shouldMigrate` for a faulted page whose
 * range carries hints (set through the driver's advise API — `DeviceDriver.advise`, a workload's `advise` phase —
 * and reported in FaultQuery `preferredLocation`, `accessedBy`, `readMostly`), and says nothing for the others,
 * so that a policy composed with it (tree-prefetch, on-demand) decides them.
 *
 * The rules are NVIDIA UVM's residency selection for a GPU fault, kernel-open/nvidia-uvm/uvm_va_block.c
 * `block_select_processor_residency` [S6], with the page resident in system memory (under HMM a page resident on
 * another device is first faulted back to system memory by hmm_range_fault: it is another owner's device-private
 * page), in its order:
 *
 *  1. read duplication (`can_read_duplicate`: the range is read-mostly): a read fault duplicates the page on the
 *     faulting processor, a write fault gives it a local copy — see "read-mostly under HMM" below;
 *  2. the faulting device is the preferred location → migrate (true);
 *  3. (a thrashing PIN is the thrashing policy's own hook, `thrashingHint`, asked before this one);
 *  4. the faulting device is in the range's accessed-by set and can reach the page where it is → keep it there and
 *     map it remotely (false);
 *  5. a preferred location the device can reach and that is not the device → move the page there: for "host" it is
 *     already there, so map it remotely (false); another device as preferred location is not reachable from this
 *     device's fault path under HMM (its memory is another owner's device-private memory), so no answer;
 *  6. otherwise the faulting processor (no answer here: the composed policy, by default migrate).
 *
 * Read-mostly under HMM. UVM implements read duplication by keeping a second physical copy and write-protecting
 * every other mapping, which it can do for its own managed allocations because it owns their CPU page tables.
 * For HMM (process memory, the kernel's page tables) it does not: `uvm_hmm_set_read_duplication` (uvm_hmm.h)
 * accepts the hint and does nothing ("TODO: Bug 3660922: need to implement HMM read duplication support"). The
 * reason is the kernel's: a device may keep a *copy* of a process page only while it is told of every CPU write,
 * and the kernel sends no mmu_notifier event when the CPU writes a page its PTE already maps writable — the
 * notifier contract covers changes of the mapping (mm/hmm.c, include/linux/mmu_notifier.h), not stores. So hmmsim
 * gives read-mostly the one meaning HMM can keep coherent: a read fault maps the system page read-only into the
 * device (CPU and device read the same page, no migration back and forth, 0 bytes moved), and a write fault by the
 * device collapses it to the writer — the page migrates to device memory (migrate_vma_setup invalidates the CPU's
 * PTEs with MMU_NOTIFY_MIGRATE), and the CPU's next access faults it back (migrate_to_ram). A CPU write needs no
 * collapse: the device maps the very page the CPU wrote.
 */
import { packageVersion, type ComponentRef, type Machine, type MachinePlugin, type SpecIssue } from "@hmmsim/machine";
import { ACCESS_READ, HOST_LOCATION, definePolicySpec, tapPolicy, type FaultQuery } from "@hmmsim/policy";

export const PLUGIN_NAME = "AdvisePolicyPlugin";
/** The `policy` name a machine-spec device selects (alone or in a list). */
export const POLICY_NAME = "advise";

/** The advise policy has no policySpec fields: the hints come per range from the driver's advise API. */
export type AdvisePolicySpec = Record<string, never>;
export const advisePolicySpec = definePolicySpec<AdvisePolicySpec>(POLICY_NAME, {}, {});

/**
 * The decision for one faulted page (see the module comment for the rules and their source): true = migrate to
 * the faulting device, false = map the system page remotely, undefined = the range gives no hint that decides.
 */
export function adviseShouldMigrate(q: FaultQuery): boolean | undefined {
  // 1. read-mostly: a read maps the shared system page, a write collapses the page to the writer.
  if (q.readMostly) return q.access !== ACCESS_READ;
  // 2. the faulting device is the preferred location: migrate.
  if (q.preferredLocation === q.device) return true;
  // 4. accessed-by: stay where it is, map remotely.
  if (q.accessedBy) return false;
  // 5. preferred location the system memory: the page is already there; map it remotely.
  if (q.preferredLocation === HOST_LOCATION) return false;
  return undefined;
}

const VERSION = packageVersion(import.meta.url);

export class AdvisePolicyPlugin implements MachinePlugin {
  readonly name = PLUGIN_NAME;
  readonly kind = "policy";
  readonly version = VERSION;
  readonly provides = [POLICY_NAME] as const;

  componentSpecIssues(ref: ComponentRef): SpecIssue[] {
    return advisePolicySpec.issues(ref.spec);
  }

  apply(machine: Machine): void {
    tapPolicy(machine, { name: PLUGIN_NAME, policy: POLICY_NAME }, { shouldMigrate: adviseShouldMigrate });
  }
}
