/**
 * A prefetcher's answer as a set of pages: which pages of the faulted page's 2 MiB VA block migrate with it, the
 * way NVIDIA UVM's prefetcher answers (kernel-open/nvidia-uvm [S2, S91]):
 *
 *  - uvm_perf_prefetch.c `uvm_perf_prefetch_get_hint_va_block` fills `uvm_perf_prefetch_hint_t.prefetch_pages_mask`,
 *    a `uvm_page_mask_t` over the block's pages, zeroed first (`uvm_page_mask_zero(prefetch_pages)`);
 *  - uvm_va_block.c `uvm_va_block_get_prefetch_hint` adds every page of that mask to the pages the block service
 *    migrates (`new_residency_mask`), wherever it lies in the block: the mask need not be contiguous.
 *
 * The `prefetchPages` hook hands its taps one `PrefetchPageMask`, reused for every call (nothing is allocated per
 * fault): the driver zeroes it over the fault's block (`zero(blockStart)`) before each call, the taps set pages, and
 * the driver migrates the union of the `prefetchRange` answer and the mask — each page clamped to the fault's VMA,
 * pages already resident skipped, as for the range. Page indices are 0..BLOCK_PAGES-1 within the block at
 * `blockStart` (UVM's `uvm_page_index_t`).
 *
 * Write through `set`, `setPage`, `setRegion` and `clear` (UVM's `uvm_page_mask_set`, `uvm_page_mask_region_fill`,
 * `uvm_page_mask_clear`): they keep `weight` and the span [`first`, `outer`) a driver scans; `pages` is for reading.
 */
import { BLOCK_PAGES, BLOCK_SIZE } from "./fault-query.js";

const PAGE_SIZE = BLOCK_SIZE / BLOCK_PAGES;

/** A `prefetchPages` tap set a page the mask cannot hold (names the field and the rule broken). */
export class PrefetchMaskError extends RangeError {
  override readonly name = "PrefetchMaskError";
  constructor(
    readonly field: string,
    readonly rule: string,
    readonly value: unknown,
  ) {
    super(`prefetchPages: ${field} ${rule} (got ${field === "address" && typeof value === "number" && Number.isInteger(value) ? `0x${value.toString(16)}` : String(value)})`);
  }
}

export class PrefetchPageMask {
  /** `pages[i] === 1`: page i of the block migrates with the fault (read it; write through the methods). */
  readonly pages = new Uint8Array(BLOCK_PAGES);
  /** Start of the 2 MiB VA block the mask covers (the fault's `blockStart`). */
  blockStart = 0;
  /** Pages set (`uvm_page_mask_weight`). */
  weight = 0;
  /**
   * The span a driver scans: every set page lies in [first, outer) (BLOCK_PAGES and 0 when nothing was set since the
   * last `zero`; `clear` does not shrink it).
   */
  first = BLOCK_PAGES;
  outer = 0;

  /**
   * Empties the mask and moves it to the block at `blockStart` (`uvm_page_mask_zero`): what a driver does before
   * each `prefetchPages` call. Costs the span set since the last zero, never the whole block.
   */
  zero(blockStart: number): void {
    if (this.outer > this.first) this.pages.fill(0, this.first, this.outer);
    this.blockStart = blockStart;
    this.weight = 0;
    this.first = BLOCK_PAGES;
    this.outer = 0;
  }

  /** Sets page `i` of the block (`uvm_page_mask_set`): an integer 0..BLOCK_PAGES-1. */
  set(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= BLOCK_PAGES) throw new PrefetchMaskError("pageIndex", `must be an integer 0..${BLOCK_PAGES - 1} (a page of the 2 MiB VA block)`, i);
    this.mark(i);
  }

  /** Sets the page holding `address`, which must lie in the block [blockStart, blockStart + BLOCK_SIZE). */
  setPage(address: number): void {
    const off = address - this.blockStart;
    if (!Number.isFinite(address) || off < 0 || off >= BLOCK_SIZE) {
      throw new PrefetchMaskError("address", `must lie in the fault's 2 MiB VA block [0x${this.blockStart.toString(16)}, 0x${(this.blockStart + BLOCK_SIZE).toString(16)})`, address);
    }
    this.mark(Math.floor(off / PAGE_SIZE));
  }

  /** Sets pages [first, outer) of the block (`uvm_page_mask_region_fill`): integers, 0 ≤ first ≤ outer ≤ BLOCK_PAGES. */
  setRegion(first: number, outer: number): void {
    if (!Number.isInteger(first) || first < 0 || first > BLOCK_PAGES) throw new PrefetchMaskError("first", `must be an integer 0..${BLOCK_PAGES}`, first);
    if (!Number.isInteger(outer) || outer < first || outer > BLOCK_PAGES) throw new PrefetchMaskError("outer", `must be an integer first..${BLOCK_PAGES} (first = ${first})`, outer);
    for (let i = first; i < outer; i++) this.mark(i);
  }

  /** Clears page `i` (`uvm_page_mask_clear`): a later tap may take a page back (a thrashing one, say). */
  clear(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= BLOCK_PAGES) throw new PrefetchMaskError("pageIndex", `must be an integer 0..${BLOCK_PAGES - 1} (a page of the 2 MiB VA block)`, i);
    if (this.pages[i] === 0) return;
    this.pages[i] = 0;
    this.weight--;
  }

  /** Is page `i` set? (`uvm_page_mask_test`; false outside 0..BLOCK_PAGES-1) */
  test(i: number): boolean {
    return this.pages[i] === 1;
  }

  private mark(i: number): void {
    if (this.pages[i] === 1) return;
    this.pages[i] = 1;
    this.weight++;
    if (i < this.first) this.first = i;
    if (i >= this.outer) this.outer = i + 1;
  }
}
