/**
 * UVMSmart's hardware prefetchers (GPGPU-Sim fork, src/gpgpu-sim/gpu-sim.cc `gmmu_t::do_hardware_prefetch` [S90]),
 * for cross-checks against UVM's tree prefetcher:
 *
 *  - `-hardware_prefetch 1` TBN, tree-based neighbourhood: a full binary tree per 2 MiB large page
 *    (`build_lp_tree`, MAX_PREFETCH_SIZE) whose leaves are 64 KiB basic blocks (MIN_PREFETCH_SIZE); a fault makes
 *    its basic block valid (`update_basic_block`), then `traverse_and_fill_lp_tree` walks the tree bottom-up and
 *    fills every node more than half valid (`valid_size > size / 2`, and not yet full: `fill_lp_tree`), cascading
 *    upwards;
 *  - `-hardware_prefetch 2` sequential-local: the faulted page's 64 KiB basic block (`get_faulty_pages(bb, 64K)`);
 *  - `-hardware_prefetch 3` random: the faulted 4 KiB page plus one page drawn uniformly from its large page
 *    (`rand() % (root->size / page_size)`), if that page is neither valid nor already requested — a page mask, not a
 *    range (`randomPages`, on the `prefetchPages` hook).
 *
 * Pure functions over the FaultQuery's masks; the 2 MiB VA block plays the large page (UVMSmart builds one tree per
 * 2 MiB of each managed allocation from its start, `initialize_large_page`; hmmsim's blocks are 2 MiB-aligned).
 */
import { BLOCK_PAGES, type FaultQuery, type PrefetchPageMask } from "@hmmsim/policy";
import { BIG_PAGE_PAGES, type PageRegion, maxPrefetchRegion } from "./bitmap-tree.js";

/** Basic blocks (64 KiB, MIN_PREFETCH_SIZE) per large page (2 MiB, MAX_PREFETCH_SIZE): the TBN tree's leaves. */
export const BASIC_BLOCKS = BLOCK_PAGES / BIG_PAGE_PAGES;

/** The masks the variants read. */
export type VariantMasks = Pick<FaultQuery, "isResident" | "isFaulted">;

/**
 * `-hardware_prefetch 2` (SEQUENTIAL_LOCAL): the faulted page's 64 KiB basic block (`get_basic_block`), within the
 * VMA-clamped block.
 */
export function sequentialLocalRegion(q: Pick<FaultQuery, "pageIndex" | "blockStart" | "vmaStart" | "vmaEnd">): PageRegion {
  const max = maxPrefetchRegion(q);
  const first = Math.max(max.first, q.pageIndex - (q.pageIndex % BIG_PAGE_PAGES));
  const outer = Math.min(max.outer, first - (first % BIG_PAGE_PAGES) + BIG_PAGE_PAGES);
  return { first, outer };
}

/**
 * The TBN tree's leaf state: `valid[b] = 1` when basic block b holds a page resident on the device or faulted in
 * this batch (UVMSmart moves whole basic blocks, so a basic block is valid or not; `update_basic_block(…, true)`
 * for each fault of the large page in the batch, `lp_pf_groups`).
 */
export function tbnLeaves(m: VariantMasks, valid: Uint8Array): void {
  valid.fill(0);
  for (let i = 0; i < BLOCK_PAGES; i++) if (m.isResident(i) || m.isFaulted(i)) valid[(i / BIG_PAGE_PAGES) | 0] = 1;
}

/**
 * `traverse_and_fill_lp_tree` over the basic blocks [lo, hi) (a node of the tree; the root is [0, 32)): children
 * first, then, when the node is neither full nor at most half valid (`valid_size != size && valid_size > size/2`),
 * `fill_lp_tree` makes every basic block under it valid. Returns the node's valid count afterwards.
 */
export function traverseAndFillLpTree(valid: Uint8Array, lo = 0, hi = BASIC_BLOCKS): number {
  if (hi - lo === 1) return valid[lo]!;
  const mid = (lo + hi) >> 1;
  const n = traverseAndFillLpTree(valid, lo, mid) + traverseAndFillLpTree(valid, mid, hi);
  const size = hi - lo;
  if (n !== size && n * 2 > size) {
    valid.fill(1, lo, hi);
    return size;
  }
  return n;
}

/**
 * `-hardware_prefetch 1` (TBN) for one faulted page, as one range: after `traverseAndFillLpTree`, the highest node
 * of the tree above the page's basic block that is entirely valid (the page's own basic block at least, which the
 * fault made valid). The union of these ranges over a batch's faults is UVMSmart's set of scheduled basic blocks
 * (a filled node more than half valid holds a basic block faulted now, or it would have been filled by an earlier
 * batch); pages already resident in it are skipped by the driver.
 */
export function tbnRegion(q: FaultQuery, valid: Uint8Array): PageRegion {
  tbnLeaves(q, valid);
  traverseAndFillLpTree(valid);
  const b = (q.pageIndex / BIG_PAGE_PAGES) | 0;
  let lo = b;
  let hi = b + 1;
  for (let size = 2; size <= BASIC_BLOCKS; size *= 2) {
    const l = b - (b % size);
    let full = true;
    for (let k = l; k < l + size; k++) if (valid[k] === 0) full = false;
    if (!full) break;
    lo = l;
    hi = l + size;
  }
  const max = maxPrefetchRegion(q);
  return { first: Math.max(max.first, lo * BIG_PAGE_PAGES), outer: Math.min(max.outer, hi * BIG_PAGE_PAGES) };
}

/**
 * `-hardware_prefetch 3` (RANDOM) for one faulted page, as a page mask (the `prefetchPages` hook): the faulted 4 KiB
 * page, plus page `draw` of its large page (`rand() % (root->size / page_size)`; the plugin draws it from the
 * machine's seeded Rng) when that page is neither valid (resident) nor requested in this turn (faulted), within the
 * VMA-clamped block (gpu-sim.cc `gmmu_t::do_hardware_prefetch`, RANDOM [S90]). The drawn page may lie anywhere in
 * the block: UVMSmart moves it as a transfer of its own, and the driver migrates each contiguous run of the mask
 * (the faulted page's and the drawn page's) as one.
 */
export function randomPages(q: FaultQuery, draw: number, mask: PrefetchPageMask): void {
  mask.set(q.pageIndex);
  const max = maxPrefetchRegion(q);
  if (draw < max.first || draw >= max.outer || q.isResident(draw) || q.isFaulted(draw)) return;
  mask.set(draw);
}
