/**
 * NVIDIA UVM's tree prefetcher, ported function by function from kernel-open/nvidia-uvm/uvm_perf_prefetch.c [S2]
 * (with the helpers it calls: uvm_perf_utils.h's tree iterator macros and uvm_va_block.c
 * `uvm_va_block_big_page_region_subset` [S91], uvm_hmm.c `uvm_hmm_get_prefetch_region` [S91]).
 *
 * The tree is a bitmap over the 4 KiB pages (leaves) of the 2 MiB VA block, clamped to `max_prefetch_region`; an
 * inner node covers the leaves below it, and a node's counter is the number of set leaves (resident on the
 * destination, or faulted in this batch, or grown to a 64 KiB big page around a fault). For each faulted page the
 * prefetcher walks from its leaf to the root and keeps the *highest* node whose counter exceeds the threshold
 * (`counter·100 > pages·threshold`): that node's leaves are the prefetch region of the page.
 *
 * Page indices are 0..511 within the block (`uvm_page_index_t`); a region is [first, outer) (`uvm_va_block_region_t`).
 * Everything here is a pure function of its arguments plus one reusable scratch tree (no allocation per fault).
 */
import { BLOCK_PAGES, type FaultQuery } from "@hmmsim/policy";

export const PAGE_SIZE = 4096;
/** UVM_BIG_PAGE_SIZE / PAGE_SIZE: 64 KiB big pages of 16 small pages (uvm_va_block_types.h). */
export const BIG_PAGE_PAGES = 16;
/** UVM_PREFETCH_THRESHOLD_DEFAULT; valid values 1–100 (`uvm_perf_prefetch_threshold`). */
export const UVM_PREFETCH_THRESHOLD_DEFAULT = 51;
/** UVM_PREFETCH_MIN_FAULTS_{MIN,DEFAULT,MAX} (`uvm_perf_prefetch_min_faults`). */
export const UVM_PREFETCH_MIN_FAULTS_MIN = 1;
export const UVM_PREFETCH_MIN_FAULTS_DEFAULT = 1;
export const UVM_PREFETCH_MIN_FAULTS_MAX = 20;

/** A [first, outer) page region of a VA block (uvm_va_block_region_t); empty when outer <= first. */
export interface PageRegion {
  first: number;
  outer: number;
}

/** The inputs UVM reads, as page predicates over the block (a FaultQuery provides all of them). */
export type BlockMasks = Pick<FaultQuery, "isResident" | "isFaulted" | "isThrashing">;

/** uvm_perf_prefetch_bitmap_tree_t: the leaf bitmap, its offset (big-page alignment), leaf and level counts. */
export class BitmapTree {
  /** Leaves (a 512-page block shifted by at most 15 for big-page alignment fits in 512 + 16). */
  readonly pages = new Uint8Array(BLOCK_PAGES + BIG_PAGE_PAGES);
  offset = 0;
  leafCount = 0;
  levelCount = 0;

  /** uvm_page_mask_region_weight(&pages, [first, outer)). */
  weight(first: number, outer: number): number {
    let n = 0;
    for (let i = first; i < outer; i++) n += this.pages[i]!;
    return n;
  }
}

const ilog2 = (n: number): number => 31 - Math.clz32(n);
const roundupPowOfTwo = (n: number): number => (n <= 1 ? 1 : 2 ** (32 - Math.clz32(n - 1)));
const levelCountOf = (leafCount: number): number => ilog2(roundupPowOfTwo(leafCount)) + 1;

/**
 * `max_prefetch_region` of an HMM block: uvm_hmm.c `uvm_hmm_get_prefetch_region` — the block clamped to the VMA
 * (`max(va_block->start, vma->vm_start)` … `min(va_block->end, vma->vm_end - 1)`). The further clamp to the
 * policy range (`uvm_va_policy` node) is the driver's: its advise ranges are not in the query.
 */
export function maxPrefetchRegion(q: Pick<FaultQuery, "blockStart" | "vmaStart" | "vmaEnd">): PageRegion {
  const first = Math.max(0, Math.ceil((q.vmaStart - q.blockStart) / PAGE_SIZE));
  const outer = Math.min(BLOCK_PAGES, Math.floor((q.vmaEnd - q.blockStart) / PAGE_SIZE));
  return { first, outer: Math.max(first, outer) };
}

/**
 * uvm_va_block.c `uvm_va_block_big_page_region_subset` (`range_big_page_region_all`): the whole 64 KiB big pages
 * inside `region` — [align_up(first, 16), align_down(outer, 16)), or {0, 0} when there is none. The block start is
 * 2 MiB-aligned, so page-index alignment is address alignment.
 */
export function bigPageRegionSubset(region: PageRegion): PageRegion {
  const first = Math.ceil(region.first / BIG_PAGE_PAGES) * BIG_PAGE_PAGES;
  const outer = Math.floor(region.outer / BIG_PAGE_PAGES) * BIG_PAGE_PAGES;
  return outer <= first ? { first: 0, outer: 0 } : { first, outer };
}

/** uvm_perf_prefetch.c `init_bitmap_tree_from_region`: leaves = (resident | faulted) >> max.first. */
export function initBitmapTreeFromRegion(tree: BitmapTree, max: PageRegion, m: BlockMasks): void {
  tree.pages.fill(0);
  const n = max.outer - max.first;
  for (let j = 0; j < n; j++) {
    const i = max.first + j;
    if (m.isResident(i) || m.isFaulted(i)) tree.pages[j] = 1;
  }
  tree.offset = 0;
  tree.leafCount = n;
  tree.levelCount = levelCountOf(n);
}

/**
 * uvm_perf_prefetch.c `grow_fault_granularity_if_no_thrashing`: fill `region` (block page indices) in the tree
 * when it holds a faulted page and no thrashing page.
 */
function growIfNoThrashing(tree: BitmapTree, region: PageRegion, first: number, m: BlockMasks): void {
  let faulted = false;
  for (let i = region.first; i < region.outer; i++) {
    if (m.isThrashing(i)) return;
    if (m.isFaulted(i)) faulted = true;
  }
  if (!faulted) return;
  tree.pages.fill(1, region.first - first + tree.offset, region.outer - first + tree.offset);
}

/**
 * uvm_perf_prefetch.c `grow_fault_granularity`: "assume big pages by default" — every 64 KiB big page (and the
 * partial prefix / suffix outside whole big pages, or the whole region when it has no big page) holding a faulted
 * page and no thrashing page is filled in the tree.
 */
export function growFaultGranularity(tree: BitmapTree, big: PageRegion, max: PageRegion, m: BlockMasks): void {
  if (big.outer === 0) {
    growIfNoThrashing(tree, max, max.first, m);
    return;
  }
  if (big.first > max.first) growIfNoThrashing(tree, { first: max.first, outer: big.first }, max.first, m);
  for (let p = big.first; p < big.outer; p += BIG_PAGE_PAGES) growIfNoThrashing(tree, { first: p, outer: p + BIG_PAGE_PAGES }, max.first, m);
  if (big.outer < max.outer) growIfNoThrashing(tree, { first: big.outer, outer: max.outer }, max.first, m);
}

/**
 * uvm_perf_prefetch.c `update_bitmap_tree_from_va_block`: align the tree to big pages (shift the leaves left by
 * `offset` = 16 − (big.first − max.first) when the region starts inside a big page), then grow the faults to
 * their big pages unless thrashing (`uvm_perf_thrashing_get_thrashing_pages` → `isThrashing`).
 */
export function updateBitmapTreeFromVaBlock(tree: BitmapTree, max: PageRegion, m: BlockMasks): void {
  const big = bigPageRegionSubset(max);
  // uvm_page_index_t is NvU16 for 4 KiB pages: the difference is computed in int, so an empty big region ({0, 0})
  // gives a negative difference and no shift, as here.
  if (big.first - max.first > 0) {
    tree.offset = BIG_PAGE_PAGES - (big.first - max.first);
    tree.leafCount = max.outer - max.first + tree.offset;
    tree.pages.copyWithin(tree.offset, 0, tree.pages.length - tree.offset);
    tree.pages.fill(0, 0, tree.offset);
    tree.levelCount = levelCountOf(tree.leafCount);
  }
  growFaultGranularity(tree, big, max, m);
}

/**
 * uvm_perf_prefetch.c `compute_prefetch_region` with the `uvm_perf_prefetch_bitmap_tree_traverse_counters`
 * iterator (uvm_perf_prefetch.h, uvm_perf_utils.h `uvm_perf_tree_iter_leaf_range{,_start}` [S91]): from the
 * page's leaf up to the root, the last (highest) node with `counter·100 > pages·threshold` wins; its leaf range is
 * clamped back to block pages within `max`. Returns {0, 0} when no node qualifies.
 */
export function computePrefetchRegion(pageIndex: number, tree: BitmapTree, max: PageRegion, threshold: number): PageRegion {
  const leaf = pageIndex - max.first + tree.offset;
  const r: PageRegion = { first: 0, outer: 0 };
  for (let level = tree.levelCount - 1; level >= 0; level--) {
    const maxLeaves = 2 ** (tree.levelCount - 1 - level); // uvm_perf_tree_iter_max_leaves
    const start = leaf - (leaf % maxLeaves); // UVM_ALIGN_DOWN(node_idx, max_leaves)
    const end = Math.min(start + maxLeaves, tree.leafCount);
    const counter = tree.weight(start, end);
    if (counter * 100 > (end - start) * threshold) {
      r.first = start;
      r.outer = end;
    }
  }
  // "Clamp prefetch region to actual pages"
  if (r.outer !== 0) {
    r.first += max.first;
    if (r.first < tree.offset) r.first = tree.offset;
    else {
      r.first -= tree.offset;
      if (r.first < max.first) r.first = max.first;
    }
    r.outer += max.first;
    if (r.outer < tree.offset) r.outer = tree.offset;
    else {
      r.outer -= tree.offset;
      if (r.outer > max.outer) r.outer = max.outer;
    }
  }
  return r;
}

/**
 * uvm_perf_prefetch.c `compute_prefetch_mask`: the union of `computePrefetchRegion` over the faulted pages that are
 * not thrashing (the `scratch_page_mask` of `uvm_perf_prefetch_prenotify_fault_migrations`), with its early out
 * once a region reaches the end of `max`; then `prefetch_pages &= ~faulted` and `&= ~thrashing` as the caller does.
 * Writes `out[i] = 1` for each page to prefetch. Used by the tests to check that the per-page ranges the plugin
 * answers add up to UVM's mask.
 */
export function computePrefetchMask(tree: BitmapTree, max: PageRegion, m: BlockMasks, threshold: number, out: Uint8Array): void {
  out.fill(0);
  for (let i = 0; i < BLOCK_PAGES; i++) {
    if (!m.isFaulted(i) || m.isThrashing(i)) continue;
    const r = computePrefetchRegion(i, tree, max, threshold);
    out.fill(1, r.first, r.outer);
    if (r.outer === max.outer) break;
  }
  for (let i = 0; i < BLOCK_PAGES; i++) if (m.isFaulted(i) || m.isThrashing(i)) out[i] = 0;
}

/**
 * The tree of `uvm_perf_prefetch_prenotify_fault_migrations` for one block's batch: `init_bitmap_tree_from_region`
 * then `update_bitmap_tree_from_va_block`.
 */
export function buildBitmapTree(tree: BitmapTree, max: PageRegion, m: BlockMasks): void {
  initBitmapTreeFromRegion(tree, max, m);
  updateBitmapTreeFromVaBlock(tree, max, m);
}

/**
 * The prefetch region of one faulted page, as a single range: `computePrefetchRegion` over the tree built for its
 * block (the region UVM fills into the mask for that page), shrunk to the run of non-thrashing pages around the
 * faulted page (UVM clears thrashing pages from the mask; a single range cannot have holes). {0, 0} when the page
 * itself is thrashing (UVM leaves it out of the pages regions are computed for) or no node qualifies.
 */
export function uvmPrefetchRegion(tree: BitmapTree, q: FaultQuery, threshold: number): PageRegion {
  const max = maxPrefetchRegion(q);
  const p = q.pageIndex;
  if (p < max.first || p >= max.outer || q.isThrashing(p)) return { first: 0, outer: 0 };
  buildBitmapTree(tree, max, q);
  const r = computePrefetchRegion(p, tree, max, threshold);
  if (r.outer === 0) return r;
  return clampToNonThrashingRun(r, p, q);
}

/** The largest sub-range of `r` around page `p` holding no thrashing page. */
export function clampToNonThrashingRun(r: PageRegion, p: number, m: Pick<FaultQuery, "isThrashing">): PageRegion {
  let first = p;
  while (first > r.first && !m.isThrashing(first - 1)) first--;
  let outer = p + 1;
  while (outer < r.outer && !m.isThrashing(outer)) outer++;
  return { first, outer };
}
