/**
 * Device memory as 2 MiB root chunks (NVIDIA kernel-open/nvidia-uvm/uvm_pmm_gpu.c [S5]): a free stack, a used
 * list in LRU order and a per-page in-use bitmap, all typed arrays indexed by chunk number.
 *
 * hmmsim gives each 2 MiB VA block (uvm_va_block) at most one root chunk, page i of the block living in page i
 * of the chunk, so a chunk's pfns are contiguous for its block and a fully resident block can be mapped with one
 * 2 MiB device PTE. UVM splits root chunks between blocks; the 1:1 pairing keeps eviction at the same
 * granularity (a root chunk = one VA block's resident pages) at a fraction of the bookkeeping.
 *
 * Recency (chunk_update_lists_locked): a chunk moves to the tail of the used list when it is allocated and
 * whenever pages are migrated into it, never on GPU access [S5]. pick_root_chunk_to_evict takes the head.
 */

export const CHUNK_PAGES = 512;

export class RootChunks {
  readonly count: number;
  /** VA-block slot the chunk backs, -1 when free. */
  readonly block: Int32Array;
  /** Pages of the chunk in use (allocated device pages). */
  readonly used: Uint16Array;
  /** In-use bitmap, 16 words of 32 bits per chunk. */
  readonly bits: Uint32Array;
  /** Virtual time of the last allocation / migration-in, ps (the LRU key). */
  readonly stamp: Float64Array;
  /** Virtual time the chunk was allocated to its current block, ps (FIFO policies). */
  readonly allocStamp: Float64Array;
  /** Pinned while its block is being serviced (not evictable). */
  readonly pinned: Uint8Array;
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private head = -1;
  private tail = -1;
  private readonly free: Int32Array;
  private nfree: number;
  private usedPagesTotal = 0;

  constructor(count: number) {
    this.count = count;
    this.block = new Int32Array(count).fill(-1);
    this.used = new Uint16Array(count);
    this.bits = new Uint32Array(count * 16);
    this.stamp = new Float64Array(count);
    this.allocStamp = new Float64Array(count);
    this.pinned = new Uint8Array(count);
    this.prev = new Int32Array(count).fill(-1);
    this.next = new Int32Array(count).fill(-1);
    this.free = new Int32Array(count);
    // pop order 0, 1, 2, …
    for (let i = 0; i < count; i++) this.free[i] = count - 1 - i;
    this.nfree = count;
  }

  get freeChunks(): number {
    return this.nfree;
  }
  get usedChunks(): number {
    return this.count - this.nfree;
  }
  /** Device pages in use. */
  get usedPages(): number {
    return this.usedPagesTotal;
  }

  /** Takes a free chunk for `slot` (at the LRU tail), or -1 when none is free. */
  alloc(slot: number, now: number): number {
    if (this.nfree === 0) return -1;
    const c = this.free[--this.nfree]!;
    this.block[c] = slot;
    this.stamp[c] = now;
    this.allocStamp[c] = now;
    this.linkTail(c);
    return c;
  }

  /** Returns an allocated chunk with no page in use to the free stack. */
  release(c: number): void {
    this.unlink(c);
    this.block[c] = -1;
    this.pinned[c] = 0;
    this.free[this.nfree++] = c;
  }

  /** chunk_update_lists_locked(): move to the LRU tail (most recent). */
  touch(c: number, now: number): void {
    this.stamp[c] = now;
    this.unlink(c);
    this.linkTail(c);
  }

  first(): number {
    return this.head;
  }
  nextOf(c: number): number {
    return this.next[c]!;
  }

  isPageUsed(c: number, i: number): boolean {
    return (this.bits[c * 16 + (i >>> 5)]! & (1 << (i & 31))) !== 0;
  }

  /** Marks page i of chunk c in use; false if it already was. */
  setPageUsed(c: number, i: number): boolean {
    const w = c * 16 + (i >>> 5);
    const m = 1 << (i & 31);
    if ((this.bits[w]! & m) !== 0) return false;
    this.bits[w] = this.bits[w]! | m;
    this.used[c]!++;
    this.usedPagesTotal++;
    return true;
  }

  /** Marks page i of chunk c free; returns the chunk's remaining used pages (-1 if it was not in use). */
  clearPageUsed(c: number, i: number): number {
    const w = c * 16 + (i >>> 5);
    const m = 1 << (i & 31);
    if ((this.bits[w]! & m) === 0) return -1;
    this.bits[w] = this.bits[w]! & ~m;
    this.usedPagesTotal--;
    return --this.used[c]!;
  }

  private linkTail(c: number): void {
    this.prev[c] = this.tail;
    this.next[c] = -1;
    if (this.tail !== -1) this.next[this.tail] = c;
    else this.head = c;
    this.tail = c;
  }

  private unlink(c: number): void {
    const p = this.prev[c]!;
    const n = this.next[c]!;
    if (p !== -1) this.next[p] = n;
    else if (this.head === c) this.head = n;
    if (n !== -1) this.prev[n] = p;
    else if (this.tail === c) this.tail = p;
    this.prev[c] = -1;
    this.next[c] = -1;
  }
}
