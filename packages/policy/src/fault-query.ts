/**
 * What a migration policy is asked about one faulted page (`shouldMigrate`, `prefetchRange`, `prefetchPages`),
 * driver-neutral.
 *
 * The fields are what NVIDIA UVM's perf heuristics read when a replayable fault is serviced
 * (kernel-open/nvidia-uvm, [S1–S4] in the references):
 *
 *  - uvm_perf_prefetch.c `uvm_perf_prefetch_prenotify_fault_migrations` / `init_bitmap_tree_from_region` /
 *    `compute_prefetch_region`: the bitmap tree over the 2 MiB VA block's 4 KiB pages is built from the
 *    destination's resident mask OR the batch's faulted pages (`isResident(i)`, `isFaulted(i)`), within
 *    `max_prefetch_region` (for HMM blocks `uvm_hmm_get_prefetch_region`: the block clamped to the VMA —
 *    `blockStart`, `vmaStart`, `vmaEnd`); a subregion is taken when `resident·100 > pages·threshold`;
 *    `fault_migrations_to_last_proc` counts faulted pages per block (`blockFaulted`, `batch`);
 *  - uvm_perf_thrashing.c `uvm_perf_thrashing_get_hint` / `thrashing_event_cb`: per-page event time stamps
 *    within `lapse_usec` (`timePs`; the events themselves are the machine's migrate / invalidate trace points),
 *    the page's mapping (`isMapped(i)`: a pinned page stays mapped remotely); thrashing pages are excluded from
 *    prefetch by the same policy (`update_bitmap_tree_from_va_block`);
 *  - uvm_gpu_replayable_faults.c `service_fault_batch_block`: access type and duplicate count of the page in the
 *    batch (`access`, `duplicates`, `batchPages`);
 *  - uvm_gpu_access_counters.c (a remotely mapped page is counted, then migrated past a threshold) and the
 *    advise hints (uvm_policy.c: preferred location, accessed-by) key their state by `mm` and `address`;
 *  - uvm_pmm_gpu.c memory pressure, as gpu_ext's policies [S19] read it: `deviceFreePages`, `devicePages`.
 *
 * A driver reuses one object for every call (the fault path allocates nothing): read it inside the tap, copy
 * what you keep. Page indices `i` are 0..BLOCK_PAGES-1 within the block at `blockStart`.
 */

/** The 2 MiB VA block (UVM_VA_BLOCK_SIZE, `UVM_VA_BLOCK_BITS` = 21 [S2]): the unit of the queries' block fields. */
export const BLOCK_SIZE = 2 * 1024 * 1024;
/** 4 KiB pages per block (PAGES_PER_UVM_VA_BLOCK). */
export const BLOCK_PAGES = 512;

/** Access types of a device fault (UVM_FAULT_ACCESS_TYPE_READ / WRITE / ATOMIC_*). */
export const ACCESS_READ = 0;
export const ACCESS_WRITE = 1;
export const ACCESS_ATOMIC = 2;
export type AccessType = typeof ACCESS_READ | typeof ACCESS_WRITE | typeof ACCESS_ATOMIC;

/** One distinct faulted page being serviced (a reused object: copy what you keep). */
export interface FaultQuery {
  /** The device's name in the machine spec (the hooks are per machine: taps tell devices apart by it). */
  readonly device: string;
  /** The faulting address space (an @hmmsim/core Mm): the identity to key per-mm policy state with. */
  readonly mm: object;
  /** Page-aligned faulting address. */
  readonly address: number;
  readonly access: AccessType;
  /** access !== ACCESS_READ. */
  readonly write: boolean;
  /** Fault entries for this page in the batch (≥ 1; > 1 when several warps / streams faulted it). */
  readonly duplicates: number;
  /** Sequence number of the batch (0, 1, …) and its distinct pages. Drivers that do not batch: one page each. */
  readonly batch: number;
  readonly batchPages: number;
  /** Virtual time of the service, ps (the thrashing lapse is measured against it). */
  readonly timePs: number;
  /** The 2 MiB VA block: its start address and this page's index in it (0..BLOCK_PAGES-1). */
  readonly blockStart: number;
  readonly pageIndex: number;
  /** Pages of the block resident in this device's memory (the weight of the resident mask). */
  readonly blockResident: number;
  /** Pages of the block with a valid device mapping, local or remote. */
  readonly blockMapped: number;
  /** Distinct pages of this block faulted in this batch (the weight of the faulted mask). */
  readonly blockFaulted: number;
  /** Bounds of the VMA holding the address: a prefetch range is clamped to them and to the block. */
  readonly vmaStart: number;
  readonly vmaEnd: number;
  /** Device memory: free pages and total pages. */
  readonly deviceFreePages: number;
  readonly devicePages: number;
  /** Is page `i` of the block resident in this device's memory? (the destination's resident mask) */
  isResident(i: number): boolean;
  /** Was page `i` of the block faulted in this batch? (faulted_pages) */
  isFaulted(i: number): boolean;
  /** Has page `i` of the block a valid device mapping (local or remote)? */
  isMapped(i: number): boolean;
  /**
   * Is page `i` of the block thrashing? The driver asks the `thrashingPages` hook once per block it services and
   * answers from that mask; prefetchers leave such pages out (uvm_perf_prefetch.c `uvm_perf_prefetch_get_hint_va_block`
   * reads `uvm_perf_thrashing_get_thrashing_pages`) [S2, S3]. False for every page when nobody taps the hook.
   */
  isThrashing(i: number): boolean;
  /**
   * The advise hints of the range holding the page (the driver's advise API; MemAdvice): the preferred location
   * ("host", a device name, or null), whether this device is in the range's accessed-by set, and read-mostly.
   */
  readonly preferredLocation: string | null;
  readonly accessedBy: boolean;
  readonly readMostly: boolean;
}

/**
 * A virtual address range [start, end) to migrate for a fault (a reused, mutable object: a `prefetchRange` tap may
 * change it and return it). It starts as the faulted page; the driver clamps the answer to the block and the VMA,
 * keeps the faulted page in it, and never migrates pages already resident. Pages that are not contiguous with the
 * faulted page (UVM's prefetch answer is a page mask) go through the `prefetchPages` hook (PrefetchPageMask).
 */
export interface PrefetchRange {
  start: number;
  end: number;
}
