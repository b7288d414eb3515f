/**
 * The tree-prefetch policy plugin: NVIDIA UVM's tree prefetcher (uvm_perf_prefetch.c [S2], ported in
 * bitmap-tree.ts) on the `prefetchRange` hook, with UVMSmart's prefetchers as variants for cross-checks
 * (uvmsmart.ts [S90]) and UVMSmart's switch-off under oversubscription (`-hwprefetch_oversub 0`).
 *
 * policySpec (all optional):
 *  - `threshold` (51): `uvm_perf_prefetch_threshold`, an integer 0–100 (uvm_perf_prefetch_init accepts ≤ 100; its
 *    comment says 1–100). Used by variant `tree`.
 *  - `minFaults` (1): `uvm_perf_prefetch_min_faults`, an integer 1–20 (UVM_PREFETCH_MIN_FAULTS_MIN/MAX): the
 *    block's fault migrations to this device (`fault_migrations_to_last_proc`, this batch's included) before its
 *    prefetch hint is used. Used by variant `tree`.
 *  - `variant` ("tree"): "tree" (UVM), "tbn", "sequential-local", "random" (UVMSmart `-hardware_prefetch` 1, 2, 3).
 *  - `disableOnOversubscription` (false): once the device is oversubscribed, prefetch nothing more (UVMSmart's
 *    `over_sub` latch with `-hwprefetch_oversub 0`, `update_hardware_prefetcher_oversubscribed`).
 *
 * Each answer grows the waterfall's range to cover the faulted page's region; the driver clamps it to the block
 * and the VMA and skips resident pages. Variant `random` answers on the `prefetchPages` hook instead: its page may
 * lie anywhere in the block, which a range containing the faulted page cannot carry (uvmsmart.ts `randomPages`).
 */
import { MachineTrace, packageVersion, type ComponentRef, type DeviceSpec, type Machine, type MachinePlugin, type SpecIssue } from "@hmmsim/machine";
import { BLOCK_PAGES, BLOCK_SIZE, definePolicySpec, servedPolicies, specRules, tapPolicy, type FaultQuery, type PrefetchPageMask, type PrefetchRange } from "@hmmsim/policy";
import {
  BitmapTree,
  PAGE_SIZE,
  UVM_PREFETCH_MIN_FAULTS_DEFAULT,
  UVM_PREFETCH_MIN_FAULTS_MAX,
  UVM_PREFETCH_MIN_FAULTS_MIN,
  UVM_PREFETCH_THRESHOLD_DEFAULT,
  buildBitmapTree,
  clampToNonThrashingRun,
  computePrefetchRegion,
  maxPrefetchRegion,
  type PageRegion,
} from "./bitmap-tree.js";
import { BASIC_BLOCKS, randomPages, sequentialLocalRegion, tbnRegion } from "./uvmsmart.js";

export const PLUGIN_NAME = "TreePrefetchPolicyPlugin";
/** The `policy` value of a machine-spec device this plugin serves. */
export const POLICY_NAME = "tree-prefetch";

export const TREE_PREFETCH_VARIANTS = ["tree", "tbn", "sequential-local", "random"] as const;
export type TreePrefetchVariant = (typeof TREE_PREFETCH_VARIANTS)[number];

export interface TreePrefetchPolicySpec {
  threshold: number;
  minFaults: number;
  variant: TreePrefetchVariant;
  disableOnOversubscription: boolean;
}

/** The policySpec schema: UVM's module parameters and their bounds, the UVMSmart variant and switch. */
export const treePrefetchPolicySpec = definePolicySpec<TreePrefetchPolicySpec>(
  POLICY_NAME,
  { threshold: UVM_PREFETCH_THRESHOLD_DEFAULT, minFaults: UVM_PREFETCH_MIN_FAULTS_DEFAULT, variant: "tree", disableOnOversubscription: false },
  {
    threshold: specRules.integer(0, 100),
    minFaults: specRules.integer(UVM_PREFETCH_MIN_FAULTS_MIN, UVM_PREFETCH_MIN_FAULTS_MAX),
    variant: specRules.oneOf(...TREE_PREFETCH_VARIANTS),
    disableOnOversubscription: specRules.boolean(),
  },
);

/** The random draws the `random` variant needs (the machine's seeded Rng, @hmmsim/engine, satisfies it). */
export interface RandomSource {
  int(n: number): number;
}

/** `va_block->prefetch_info`: the block's fault migrations to the device since it last migrated elsewhere. */
interface BlockPrefetchInfo {
  faultMigrations: number;
  /** The batch (and its service time) whose faulted pages were last added. */
  batch: number;
  timePs: number;
}

/**
 * One device's prefetcher: its spec, the per-block `prefetch_info`, the oversubscription latch, a scratch tree
 * and the random stream. `prefetchRange` and `prefetchPages` are the hooks' answers.
 */
export class TreePrefetcher {
  /** UVMSmart's `over_sub`: set once the device ran out of memory (never cleared during a run). */
  oversubscribed = false;
  private readonly tree = new BitmapTree();
  private readonly valid = new Uint8Array(BASIC_BLOCKS);
  private readonly info = new WeakMap<object, Map<number, BlockPrefetchInfo>>();
  // The tree of the last block built: every fault of one block in one batch reads the same masks.
  private builtMm: object | null = null;
  private builtBlock = -1;
  private builtBatch = -1;
  private builtTimePs = -1;

  constructor(
    readonly spec: Readonly<TreePrefetchPolicySpec>,
    private readonly rng: RandomSource | null = null,
  ) {
    if (spec.variant === "random" && rng === null) throw new TypeError(`${POLICY_NAME}: variant "random" needs a random source (rng)`);
  }

  /** May the prefetcher prefetch for `q` at all? (the oversubscription latch, the preferred location) */
  private applies(q: FaultQuery): boolean {
    if (this.spec.disableOnOversubscription) {
      // UVMSmart's should_evict_page (buffer 0 %): the pages about to arrive no longer fit in free memory.
      if (q.deviceFreePages <= 0) this.oversubscribed = true;
      if (this.oversubscribed) return false;
    }
    // uvm_perf_prefetch.c `should_apply_prefetch_logic`: a preferred location other than this device stops
    // prefetching towards it (confidential-computing exceptions aside).
    return q.preferredLocation === null || q.preferredLocation === q.device;
  }

  /**
   * The region (page indices of the block) to migrate with `q`'s faulted page; {0, 0} for none. Variant `random`
   * has no region (its page goes in the mask: `prefetchPages`) and draws nothing here.
   */
  region(q: FaultQuery): PageRegion {
    const none = { first: 0, outer: 0 };
    if (!this.applies(q)) return none;
    switch (this.spec.variant) {
      case "tree":
        return this.uvmRegion(q);
      case "tbn":
        return tbnRegion(q, this.valid);
      case "sequential-local":
        return sequentialLocalRegion(q);
      case "random":
        return none;
    }
  }

  /** uvm_perf_prefetch_get_hint_va_block for one faulted page. */
  private uvmRegion(q: FaultQuery): PageRegion {
    const none = { first: 0, outer: 0 };
    // prenotify: fault_migrations_to_last_proc += this batch's faulted pages of the block (once per batch)
    let byBlock = this.info.get(q.mm);
    if (byBlock === undefined) this.info.set(q.mm, (byBlock = new Map()));
    let info = byBlock.get(q.blockStart);
    if (info === undefined) byBlock.set(q.blockStart, (info = { faultMigrations: 0, batch: -1, timePs: -1 }));
    if (info.batch !== q.batch || info.timePs !== q.timePs) {
      info.batch = q.batch;
      info.timePs = q.timePs;
      info.faultMigrations += q.blockFaulted;
    }
    if (info.faultMigrations < this.spec.minFaults) return none;

    const max = maxPrefetchRegion(q);
    const p = q.pageIndex;
    if (p < max.first || p >= max.outer || q.isThrashing(p)) return none;
    if (q.mm !== this.builtMm || q.blockStart !== this.builtBlock || q.batch !== this.builtBatch || q.timePs !== this.builtTimePs) {
      buildBitmapTree(this.tree, max, q);
      this.builtMm = q.mm;
      this.builtBlock = q.blockStart;
      this.builtBatch = q.batch;
      this.builtTimePs = q.timePs;
    }
    const r = computePrefetchRegion(p, this.tree, max, this.spec.threshold);
    return r.outer === 0 ? r : clampToNonThrashingRun(r, p, q);
  }

  /** The waterfall tap: grow `range` to the faulted page's region. */
  prefetchRange(range: PrefetchRange, q: FaultQuery): PrefetchRange {
    const r = this.region(q);
    if (r.outer > r.first) {
      range.start = Math.min(range.start, q.blockStart + r.first * PAGE_SIZE);
      range.end = Math.max(range.end, q.blockStart + r.outer * PAGE_SIZE);
    }
    return range;
  }

  /**
   * The page-mask tap (variant `random` only; the others answer with the range): one draw from the random stream
   * per fault the prefetcher applies to, then the faulted page and the drawn one in `mask` (`randomPages`).
   */
  prefetchPages(q: FaultQuery, mask: PrefetchPageMask): void {
    if (this.spec.variant !== "random" || !this.applies(q)) return;
    randomPages(q, this.rng!.int(BLOCK_PAGES), mask);
  }

  /**
   * `last_migration_proc_id` changed: the block migrated to another processor (a CPU fault took pages back), so
   * `fault_migrations_to_last_proc` restarts from 0.
   */
  blockMigratedAway(mm: object, start: number, end: number): void {
    const byBlock = this.info.get(mm);
    if (byBlock === undefined) return;
    for (let b = Math.floor(start / BLOCK_SIZE) * BLOCK_SIZE; b < end; b += BLOCK_SIZE) byBlock.delete(b);
  }

  /** The device evicted memory: it is oversubscribed (UVMSmart's `over_sub`). */
  deviceEvicted(): void {
    this.oversubscribed = true;
  }
}

const VERSION = packageVersion(import.meta.url);

export class TreePrefetchPolicyPlugin implements MachinePlugin {
  static readonly defaultSpec: Readonly<TreePrefetchPolicySpec> = treePrefetchPolicySpec.defaults;
  readonly name = PLUGIN_NAME;
  readonly kind = "policy";
  readonly version = VERSION;
  readonly provides = [POLICY_NAME] as const;
  readonly spec = TreePrefetchPolicyPlugin.defaultSpec;

  componentSpecIssues(ref: ComponentRef): SpecIssue[] {
    return treePrefetchPolicySpec.issues(ref.spec);
  }

  apply(machine: Machine): void {
    const byDevice = new Map<string, TreePrefetcher>();
    const make = (raw: Record<string, unknown> | undefined, device: DeviceSpec): TreePrefetcher => {
      const spec = treePrefetchPolicySpec.resolve(raw);
      const p = new TreePrefetcher(spec, spec.variant === "random" ? machine.engine.rng.derive(`${device.name}.${POLICY_NAME}`) : null);
      byDevice.set(device.name, p);
      return p;
    };
    // The page-mask hook only when a device runs variant `random` (a tap costs every fault a call).
    const random = servedPolicies(machine, POLICY_NAME).some((s) => treePrefetchPolicySpec.resolve(s.policySpec).variant === "random");
    const served = tapPolicy(machine, { name: PLUGIN_NAME, policy: POLICY_NAME, spec: make }, {
      prefetchRange: (range, fault, p) => p.prefetchRange(range, fault),
      ...(random ? { prefetchPages: (fault: FaultQuery, mask: PrefetchPageMask, p: TreePrefetcher) => p.prefetchPages(fault, mask) } : {}),
    });
    if (served.length === 0) return;
    const trace = MachineTrace.getHooks(machine);
    trace.eviction.tap(PLUGIN_NAME, (e) => byDevice.get(e.device)?.deviceEvicted());
    trace.migrateEnd.tap(PLUGIN_NAME, (e) => {
      if (e.dir !== "d2h" || e.reason !== "cpu-fault" || e.npages === 0 || e.mm === null || typeof e.mm !== "object") return;
      byDevice.get(e.device)?.blockMigratedAway(e.mm, e.start, e.end);
    });
  }
}
