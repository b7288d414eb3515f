/**
 * The RAM page allocator (mm/page_alloc.c: alloc_pages / __free_pages), reduced to the two orders hmmsim needs:
 * order 0 (4 KiB) and order 9 (2 MiB, a PMD-sized THP). RAM is cut in 2 MiB blocks; a free bitmap (1 bit per
 * page), a free count per block, a stack of wholly free blocks and a list of partly free blocks make both
 * allocations O(1)-ish with no per-page object: 16 M pages cost 2 MiB of bitmap and 256 KiB of block state.
 * Order-0 allocations take from partly used blocks first, so order-9 blocks survive (anti-fragmentation).
 * Lowest pfns are handed out first, which keeps runs deterministic.
 */
import { KernelRuleError } from "./errors.js";
import { HPAGE_PMD_NR, HPAGE_PMD_ORDER } from "./page-flags.js";

export class PageAllocator {
  readonly nrPages: number;
  readonly nrBlocks: number;
  /** 1 bit per page: 1 = free. */
  private readonly freeBits: Uint32Array;
  private readonly blockFree: Uint16Array;
  /** Stack of wholly free blocks; `fullPos[b]` is b's index in it + 1 (0: not in the stack). */
  private readonly fullStack: Int32Array;
  private readonly fullPos: Int32Array;
  private fullTop = 0;
  /** Set of partly free blocks (0 < free < 512), with positions for O(1) removal. */
  private readonly partial: Int32Array;
  private readonly partialPos: Int32Array;
  private partialTop = 0;
  /** Free pages (all orders). */
  nrFree: number;

  constructor(nrPages: number) {
    this.nrPages = nrPages;
    this.nrBlocks = nrPages / HPAGE_PMD_NR;
    this.freeBits = new Uint32Array(nrPages / 32).fill(0xffffffff);
    this.blockFree = new Uint16Array(this.nrBlocks).fill(HPAGE_PMD_NR);
    this.fullStack = new Int32Array(this.nrBlocks);
    this.fullPos = new Int32Array(this.nrBlocks);
    this.partial = new Int32Array(this.nrBlocks);
    this.partialPos = new Int32Array(this.nrBlocks);
    // Highest block at the bottom so block 0 is popped first.
    for (let b = this.nrBlocks - 1; b >= 0; b--) this.pushFull(b);
    this.nrFree = nrPages;
  }

  private pushFull(b: number): void {
    this.fullStack[this.fullTop] = b;
    this.fullPos[b] = ++this.fullTop;
  }
  private removeFull(b: number): void {
    const i = this.fullPos[b]! - 1;
    const last = this.fullStack[--this.fullTop]!;
    this.fullStack[i] = last;
    this.fullPos[last] = i + 1;
    this.fullPos[b] = 0;
  }
  private addPartial(b: number): void {
    this.partial[this.partialTop] = b;
    this.partialPos[b] = ++this.partialTop;
  }
  private removePartial(b: number): void {
    const i = this.partialPos[b]! - 1;
    const last = this.partial[--this.partialTop]!;
    this.partial[i] = last;
    this.partialPos[last] = i + 1;
    this.partialPos[b] = 0;
  }

  /** Is the page free in the allocator (PageBuddy)? */
  isFree(pfn: number): boolean {
    return (this.freeBits[pfn >>> 5]! & (1 << (pfn & 31))) !== 0;
  }

  /** Allocate 2^order contiguous, naturally aligned pages; returns the first pfn or -1 when none (-ENOMEM). */
  alloc(order: number): number {
    if (order === 0) return this.alloc0();
    if (order === HPAGE_PMD_ORDER) return this.alloc9();
    throw new KernelRuleError("alloc_pages_order", `hmmsim allocates order 0 or ${HPAGE_PMD_ORDER}, not ${order}`);
  }

  private alloc9(): number {
    if (this.fullTop === 0) return -1;
    const b = this.fullStack[this.fullTop - 1]!;
    this.removeFull(b);
    this.blockFree[b] = 0;
    this.freeBits.fill(0, b * 16, b * 16 + 16);
    this.nrFree -= HPAGE_PMD_NR;
    return b * HPAGE_PMD_NR;
  }

  private alloc0(): number {
    let b: number;
    if (this.partialTop > 0) {
      b = this.partial[this.partialTop - 1]!;
    } else if (this.fullTop > 0) {
      b = this.fullStack[this.fullTop - 1]!;
      this.removeFull(b);
      this.addPartial(b);
    } else {
      return -1;
    }
    const w0 = b * 16;
    for (let w = w0; w < w0 + 16; w++) {
      const word = this.freeBits[w]!;
      if (word !== 0) {
        const bit = 31 - Math.clz32(word & -word);
        this.freeBits[w] = word & ~(1 << bit);
        const left = --this.blockFree[b]!;
        if (left === 0) this.removePartial(b);
        this.nrFree--;
        return w * 32 + bit;
      }
    }
    throw new KernelRuleError("page_alloc_block_accounting", `block ${b} counted free pages but has none`);
  }

  /** Return 2^order pages starting at pfn (__free_pages). Freeing a free page is a kernel bug (bad_page). */
  free(pfn: number, order: number): void {
    const nr = 1 << order;
    for (let p = pfn; p < pfn + nr; p++) {
      if (p < 0 || p >= this.nrPages) throw new KernelRuleError("free_pages_not_ram", `pfn ${p}`);
      if (this.isFree(p)) throw new KernelRuleError("bad_page_double_free", `pfn ${p}`);
    }
    for (let p = pfn; p < pfn + nr; p++) {
      this.freeBits[p >>> 5] = this.freeBits[p >>> 5]! | (1 << (p & 31));
      const b = Math.floor(p / HPAGE_PMD_NR);
      const n = ++this.blockFree[b]!;
      if (n === 1) this.addPartial(b);
      if (n === HPAGE_PMD_NR) {
        if (this.partialPos[b] !== 0) this.removePartial(b);
        this.pushFull(b);
      }
    }
    this.nrFree += nr;
  }

  /** Number of wholly free 2 MiB blocks (what an order-9 allocation can get). */
  get freeHugeBlocks(): number {
    return this.fullTop;
  }
}
