/**
 * What an eviction policy is asked when a device needs memory and none is free (`selectVictim`), driver-neutral.
 *
 * It works over **root chunks**: the device's 2 MiB allocation units (BLOCK_SIZE), numbered 0..chunks-1, each
 * backing at most one VA block. This is NVIDIA UVM's eviction unit (kernel-open/nvidia-uvm/uvm_pmm_gpu.c [S5]):
 *
 *  - `pick_root_chunk_to_evict`: the head of `va_block_unused`, else the head of `va_block_used` — `first()` /
 *    `next(c)` walk the allocated chunks in LRU order, least recent first; a chunk with `chunkResidentPages(c)`
 *    = 0 is an "unused" one;
 *  - `chunk_update_lists_locked` / `root_chunk_update_eviction_list`: a chunk moves to the tail when a VA block
 *    allocates it or migrates pages into it, never on a device access — `chunkLastUsePs(c)` is that time;
 *    `chunkAllocPs(c)` the allocation alone (FIFO, as UVMSmart's and gpu_ext's FIFO policies [S14, S19]);
 *  - `chunk_is_root_chunk_pinned` / `chunk_is_in_eviction`: a temporarily pinned chunk (its block is being
 *    serviced) or one already being evicted is not a candidate — `isEvictable(c)`;
 *  - gpu_ext's `uvm_lru_select_victim` policies (LFU, MRU, frequency decay) key their own counts by the VA block a
 *    chunk backs (`chunkMm(c)`, `chunkBlockStart(c)`), fed by the machine's migrate / eviction trace points.
 *
 * A driver reuses one object for every call: read it inside the tap. The answer is a chunk number for which
 * `isEvictable` is true, or -1 for "evict nothing" (the allocation then fails: the driver maps remotely or returns
 * -ENOMEM); anything else is a policy error the driver reports.
 */
export interface VictimQuery {
  /** The device's name in the machine spec. */
  readonly device: string;
  /** The VA block that needs memory (its own chunk, if it has one, is pinned and never a candidate). */
  readonly forBlockStart: number;
  /** Virtual time, ps. */
  readonly timePs: number;
  /** Root chunks of the device and how many are allocated. */
  readonly chunks: number;
  readonly usedChunks: number;
  /** The least recently allocated / migrated-into allocated chunk, or -1 when none. */
  first(): number;
  /** The chunk after `chunk` in LRU order (more recent), or -1 at the end. */
  next(chunk: number): number;
  /** May `chunk` be evicted now (allocated, not pinned, not being evicted)? */
  isEvictable(chunk: number): boolean;
  /** VA start of the block `chunk` backs (-1 when free). */
  chunkBlockStart(chunk: number): number;
  /** The address space (@hmmsim/core Mm) of that block, or null when free. */
  chunkMm(chunk: number): object | null;
  /** Pages of `chunk` in use (resident). */
  chunkResidentPages(chunk: number): number;
  /** Virtual time `chunk` was last allocated or migrated into (the LRU key), ps. */
  chunkLastUsePs(chunk: number): number;
  /** Virtual time `chunk` was allocated to its current block, ps. */
  chunkAllocPs(chunk: number): number;
  /**
   * Virtual time of the device's last access to a page of `chunk` (ps; its allocation time until then): the key of
   * an LRU that moves on access, as UVMSmart's LRU does [S14] — UVM's own list moves on allocation/migration only.
   */
  chunkLastAccessPs(chunk: number): number;
  /** Device accesses to `chunk`'s pages since it was allocated to its current block (an LFU's count). */
  chunkAccesses(chunk: number): number;
}
