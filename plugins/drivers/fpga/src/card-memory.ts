/**
 * Card memory (the FPGA's DDR or HBM) as the driver allocates it: 2 MiB chunks, each backing at most one 2 MiB VA
 * block, with a per-page use bitmap and an LRU order by allocation / migration-in (the unit @hmmsim/policy's
 * `selectVictim` works over, so the same eviction policies serve the GPU and the FPGA).
 *
 * The references allocate differently and hmmsim keeps their common part: Coyote splits card memory into 4 KiB
 * and 2 MiB chunk pools (N_SMALL_CHUNKS / N_LARGE_CHUNKS, driver/include/coyote_defs.h [S61]); TaPaSCo keeps a
 * first-fit list of free device-memory blocks (`allocate_device_memory` / `free_device_memory`, pcie_svm.c [S60]).
 * Neither evicts on its own (an allocation fails with -ENOMEM); eviction here goes through the policy hooks.
 */
export const CHUNK_PAGES = 512;

export class CardMemory {
  /** VA-block slot a chunk backs (-1: free). */
  readonly block: Int32Array;
  /** Pages in use per chunk. */
  readonly used: Uint16Array;
  /** Page-use bits, CHUNK_PAGES per chunk. */
  readonly bits: Uint8Array;
  /** Pinned while a fault or a migration works on its block (not evictable). */
  readonly pinned: Uint8Array;
  /** Last allocation / migration-in (the LRU key) and allocation time, ps. */
  readonly stamp: Float64Array;
  readonly allocStamp: Float64Array;
  /** The card's last access to a page of the chunk (its allocation time until then), and its accesses since allocation. */
  readonly lastAccess: Float64Array;
  readonly accesses: Float64Array;
  /** LRU list of allocated chunks (least recent first): prev / next, -1 at the ends. */
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private head = -1;
  private tail = -1;
  private readonly free: Int32Array;
  private nFree: number;
  usedPages = 0;

  constructor(readonly count: number) {
    this.block = new Int32Array(count).fill(-1);
    this.used = new Uint16Array(count);
    this.bits = new Uint8Array(count * CHUNK_PAGES);
    this.pinned = new Uint8Array(count);
    this.stamp = new Float64Array(count);
    this.allocStamp = new Float64Array(count);
    this.lastAccess = new Float64Array(count);
    this.accesses = new Float64Array(count);
    this.prev = new Int32Array(count).fill(-1);
    this.next = new Int32Array(count).fill(-1);
    this.free = new Int32Array(count);
    for (let i = 0; i < count; i++) this.free[i] = count - 1 - i; // pop gives chunk 0 first
    this.nFree = count;
  }

  get freeChunks(): number {
    return this.nFree;
  }
  get usedChunks(): number {
    return this.count - this.nFree;
  }

  /** A free chunk for block `slot` (at the LRU tail), or -1 when none is free. */
  alloc(slot: number, now: number): number {
    if (this.nFree === 0) return -1;
    const c = this.free[--this.nFree]!;
    this.block[c] = slot;
    this.stamp[c] = now;
    this.allocStamp[c] = now;
    this.lastAccess[c] = now;
    this.accesses[c] = 0;
    this.append(c);
    return c;
  }

  /** Gives chunk `c` back (every page unused). */
  release(c: number): void {
    if (this.block[c]! < 0) return;
    if (this.used[c] !== 0) throw new Error(`card memory: chunk ${c} released with ${this.used[c]} pages in use`);
    this.unlink(c);
    this.block[c] = -1;
    this.pinned[c] = 0;
    this.free[this.nFree++] = c;
  }

  /** Pages migrated into chunk `c`: it moves to the LRU tail. */
  touch(c: number, now: number): void {
    this.stamp[c] = now;
    this.unlink(c);
    this.append(c);
  }

  /** A stream beat to a page of chunk `c` at `now`. */
  accessed(c: number, now: number): void {
    this.lastAccess[c] = now;
    this.accesses[c]!++;
  }

  isPageUsed(c: number, j: number): boolean {
    return this.bits[c * CHUNK_PAGES + j] === 1;
  }
  setPageUsed(c: number, j: number): void {
    const i = c * CHUNK_PAGES + j;
    if (this.bits[i] === 1) return;
    this.bits[i] = 1;
    this.used[c]!++;
    this.usedPages++;
  }
  /** Returns the pages still in use in chunk `c`. */
  clearPageUsed(c: number, j: number): number {
    const i = c * CHUNK_PAGES + j;
    if (this.bits[i] === 1) {
      this.bits[i] = 0;
      this.used[c]!--;
      this.usedPages--;
    }
    return this.used[c]!;
  }

  first(): number {
    return this.head;
  }
  nextOf(c: number): number {
    return this.next[c]!;
  }

  private append(c: number): void {
    this.prev[c] = this.tail;
    this.next[c] = -1;
    if (this.tail >= 0) this.next[this.tail] = c;
    else this.head = c;
    this.tail = c;
  }
  private unlink(c: number): void {
    const p = this.prev[c]!;
    const n = this.next[c]!;
    if (p >= 0) this.next[p] = n;
    else if (this.head === c) this.head = n;
    if (n >= 0) this.prev[n] = p;
    else if (this.tail === c) this.tail = p;
    this.prev[c] = -1;
    this.next[c] = -1;
  }
}
