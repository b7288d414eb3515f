/**
 * The service context of one VA block (NVIDIA kernel-open/nvidia-uvm/uvm_va_block_types.h
 * `uvm_service_block_context_t`, filled by uvm_gpu_replayable_faults.c `service_fault_batch_block` and consumed by
 * uvm_va_block.c `uvm_va_block_service_locked` [S1]): what the block being serviced asks for, page by page, in
 * reused typed arrays, instead of scratch fields on the driver.
 *
 *  - `req[i]`: the mapping the service wants for page i (UVM's per-processor `new_residency` / access-type masks):
 *    PAGE_REQ_READ / PAGE_REQ_WRITE (fault it in, read or write), PAGE_REQ_SNAPSHOT (prefetched or hinted: map it
 *    if it became ours, never fault it in), 0 (nothing);
 *  - `mig[i]`: migrate page i to device memory (`make_resident` region);
 *  - `faulted[i]`: the batch faulted page i (`faulted_pages`; FaultQuery.isFaulted);
 *  - `thrashing[i]`: the `thrashingPages` hook's mask for this block (FaultQuery.isThrashing);
 *  - [lo, hi]: the span of pages with a request (the service's `region`), -1/512 when none.
 *
 * The arrays are all-zero between blocks: a block sets its pages and `end()` clears the span again, so the cost of a
 * block is the span it touched, never 512 pages. The context also carries the hmmRangeFault request of its mirror
 * step (`range`, `hmmPfns`) and the page-table update callback bound to itself (`update`), so two contexts (the
 * fault service's and migrateRange's) never share scratch state.
 */
import { PAGE_SIZE, type Mm } from "@hmmsim/core";
import type { MmuIntervalNotifier } from "@hmmsim/mmu-notifier";
import { HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, type HmmRange } from "@hmmsim/range-fault";
import { CHUNK_PAGES } from "./root-chunks.js";

export const PAGE_REQ_READ = 1;
export const PAGE_REQ_WRITE = 2;
/** Prefetched or hinted: map the page if it became ours, never fault it in. */
export const PAGE_REQ_SNAPSHOT = 3;

/** A mirrored mm (uvm_va_space): its id, its interval notifier. */
export interface VaSpace {
  id: number;
  mm: Mm;
  sub: MmuIntervalNotifier;
}

export class ServiceBlockContext {
  readonly req = new Uint8Array(CHUNK_PAGES);
  readonly mig = new Uint8Array(CHUNK_PAGES);
  readonly faulted = new Uint8Array(CHUNK_PAGES);
  /** The thrashingPages hook's mask (cleared before each call; all-zero when nobody taps the hook). */
  readonly thrashing = new Uint8Array(CHUNK_PAGES);
  /** The block: its VA space, table slot, start address; the span of requested pages; whether any page migrates. */
  space: VaSpace | null = null;
  slot = -1;
  blockStart = 0;
  lo = CHUNK_PAGES;
  hi = -1;
  anyMig = false;
  /** The root chunk pinned for the block while it is serviced, or -1. */
  chunk = -1;
  /** Pages the block's migration moved (copied or populated). */
  moved = 0;
  /** The mirror step's hmmRangeFault request over [lo, hi] (one cached hmmPfns view per length). */
  readonly range: HmmRange;
  private readonly hmmPfns = new Float64Array(CHUNK_PAGES);
  private readonly hmmViews: (Float64Array | undefined)[] = new Array(CHUNK_PAGES + 1);
  /** mirrorRangeFault's counters of the last mirror. */
  readonly mirrorStats = { attempts: 0, rangeFaultBusy: 0, readRetry: 0 };
  /** The page-table update of the mirror step, bound to this context. */
  readonly update: (r: HmmRange) => number;

  constructor(devPrivateOwner: unknown, updatePageTable: (ctx: ServiceBlockContext, r: HmmRange) => number) {
    this.range = {
      notifier: null as unknown as MmuIntervalNotifier,
      notifierSeq: 0,
      start: 0,
      end: 0,
      hmmPfns: this.hmmPfns,
      defaultFlags: 0,
      pfnFlagsMask: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE,
      devPrivateOwner,
    };
    this.update = (r) => updatePageTable(this, r);
  }

  /** Starts servicing the block at `blockStart` (table slot `slot`) of `space`: no page requested yet. */
  begin(space: VaSpace, slot: number, blockStart: number): void {
    this.space = space;
    this.slot = slot;
    this.blockStart = blockStart;
    this.lo = CHUNK_PAGES;
    this.hi = -1;
    this.anyMig = false;
    this.chunk = -1;
    this.moved = 0;
  }

  /** Asks for page `j` to be mapped (`kind`: PAGE_REQ_*), growing the span. */
  request(j: number, kind: number): void {
    this.req[j] = kind;
    if (j < this.lo) this.lo = j;
    if (j > this.hi) this.hi = j;
  }

  /** Marks page `j` for migration; a page not requested yet is requested as a snapshot (map it if it becomes ours). */
  migrate(j: number): void {
    this.mig[j] = 1;
    this.anyMig = true;
    if (this.req[j] === 0) this.request(j, PAGE_REQ_SNAPSHOT);
  }

  /** Drops every migration of the span (no device memory: the pages stay where they are and map remotely). */
  dropMigrations(): void {
    if (this.hi >= this.lo) this.mig.fill(0, this.lo, this.hi + 1);
  }

  /**
   * Fills `range` for the mirror step over pages [lo, hi]: per page HMM_PFN_REQ_FAULT (| REQ_WRITE) for a read
   * (write) request, 0 for a snapshot or no request (hmm_range_fault then only reports what is there).
   */
  prepareMirror(notifier: MmuIntervalNotifier): HmmRange {
    const lo = this.lo;
    const n = this.hi + 1 - lo;
    const pf = (this.hmmViews[n] ??= this.hmmPfns.subarray(0, n));
    const req = this.req;
    for (let k = lo; k <= this.hi; k++) {
      const q = req[k]!;
      pf[k - lo] = q === PAGE_REQ_WRITE ? HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE : q === PAGE_REQ_READ ? HMM_PFN_REQ_FAULT : 0;
    }
    const r = this.range;
    r.notifier = notifier;
    r.hmmPfns = pf;
    r.start = this.blockStart + lo * PAGE_SIZE;
    r.end = this.blockStart + (this.hi + 1) * PAGE_SIZE;
    return r;
  }

  /** Ends the block: clears the span's requests and migrations (the arrays are all-zero again). */
  end(): void {
    if (this.hi >= this.lo) {
      this.req.fill(0, this.lo, this.hi + 1);
      this.mig.fill(0, this.lo, this.hi + 1);
    }
  }
}
