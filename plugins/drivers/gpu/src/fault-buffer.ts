/**
 * The replayable fault buffer and the batch context (NVIDIA kernel-open/nvidia-uvm/uvm_gpu_replayable_faults.c:
 * fetch_fault_buffer_entries, preprocess_fault_batch; [S1]). The GPU writes one entry per faulting warp access;
 * the fault-service task fetches up to `batchSize` entries, sorts them by (VA space, page) and folds duplicates
 * (several warps faulting the same page) into one distinct page, the write access winning, as UVM's coalescing
 * does. Struct-of-typed-arrays throughout: no object per fault.
 */

/** An entry: page-aligned address, access (0 read / 1 write), VA space, warp, kernel-run generation. */
import { modPow2 } from "./fast-math.js";
export class FaultBuffer {
  readonly capacity: number;
  private readonly addr: Float64Array;
  private readonly access: Uint8Array;
  private readonly space: Uint16Array;
  private readonly warp: Int32Array;
  private readonly gen: Int32Array;
  private head = 0;
  private n = 0;
  private writes = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.addr = new Float64Array(capacity);
    this.access = new Uint8Array(capacity);
    this.space = new Uint16Array(capacity);
    this.warp = new Int32Array(capacity);
    this.gen = new Int32Array(capacity);
  }

  get count(): number {
    return this.n;
  }

  /** The GPU writes an entry; false when the buffer is full (never, with one outstanding fault per warp). */
  push(addr: number, access: number, space: number, warp: number, gen: number): boolean {
    if (this.n === this.capacity) return false;
    let i = this.head + this.n;
    if (i >= this.capacity) i -= this.capacity;
    this.addr[i] = addr;
    this.access[i] = access;
    this.space[i] = space;
    this.warp[i] = warp;
    this.gen[i] = gen;
    this.n++;
    this.writes++;
    return true;
  }

  /** Entries written so far. */
  get pushes(): number {
    return this.writes;
  }

  /** Where the oldest entry is (a ring index). */
  get headIndex(): number {
    return this.head;
  }

  /**
   * Puts back the `k` entries the last `flush` dropped, as they were: only while the buffer is empty and nothing
   * was written or read since (the caller checks headIndex and pushes), so their slots still hold them.
   */
  unflush(k: number): void {
    if (this.n !== 0 || k > this.capacity) throw new RangeError(`unflush(${k}) with ${this.n} entries in the buffer`);
    this.head = (this.head - k + this.capacity) % this.capacity;
    this.n = k;
  }

  /** fetch_fault_buffer_entries(): moves up to `max` entries (arrival order) into `b`; returns how many. */
  fetch(b: FaultBatch, max: number): number {
    const k = Math.min(max, this.n, b.capacity);
    const cap = this.capacity;
    for (let j = 0, i = this.head; j < k; j++, i = i + 1 === cap ? 0 : i + 1) {
      b.addr[j] = this.addr[i]!;
      b.access[j] = this.access[i]!;
      b.space[j] = this.space[i]!;
      b.warp[j] = this.warp[i]!;
      b.gen[j] = this.gen[i]!;
    }
    this.head = (this.head + k) % this.capacity;
    this.n -= k;
    b.n = k;
    return k;
  }

  /**
   * fault_buffer_flush_locked(): drops up to `max` of the oldest entries unserviced (fault_buffer_skip_replayable_entry,
   * then write_get), writing each one's warp and kernel-run generation to `warps` / `gens`; returns how many.
   */
  flush(max: number, warps: Int32Array, gens: Int32Array): number {
    const k = Math.min(max, this.n, warps.length);
    const cap = this.capacity;
    for (let j = 0, i = this.head; j < k; j++, i = i + 1 === cap ? 0 : i + 1) {
      warps[j] = this.warp[i]!;
      gens[j] = this.gen[i]!;
    }
    this.head = (this.head + k) % this.capacity;
    this.n -= k;
    return k;
  }
}

const VPN_MUL = 2 ** 35; // pages of a 47-bit VA space (TASK_SIZE)

/** One fetched batch and its distinct pages (uvm_fault_service_batch_context_t). */
export class FaultBatch {
  readonly capacity: number;
  /** Entries in arrival order. */
  n = 0;
  readonly addr: Float64Array;
  readonly access: Uint8Array;
  readonly space: Uint16Array;
  readonly warp: Int32Array;
  readonly gen: Int32Array;
  /** Entry indices sorted by (space, page, arrival). */
  readonly order: Int32Array;
  /** Distinct pages: count, then per page its address, space, access (max of its entries), entries, first index in `order`, result. */
  npages = 0;
  readonly pageAddr: Float64Array;
  readonly pageSpace: Uint16Array;
  readonly pageAccess: Uint8Array;
  readonly pageDup: Uint16Array;
  readonly pageFirst: Int32Array;
  /** 0, or the negative errno the page could not be serviced with. */
  readonly pageErr: Int32Array;
  private readonly keys: Float64Array;
  private readonly shift: number;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.addr = new Float64Array(capacity);
    this.access = new Uint8Array(capacity);
    this.space = new Uint16Array(capacity);
    this.warp = new Int32Array(capacity);
    this.gen = new Int32Array(capacity);
    this.order = new Int32Array(capacity);
    this.pageAddr = new Float64Array(capacity);
    this.pageSpace = new Uint16Array(capacity);
    this.pageAccess = new Uint8Array(capacity);
    this.pageDup = new Uint16Array(capacity);
    this.pageFirst = new Int32Array(capacity);
    this.pageErr = new Int32Array(capacity);
    this.keys = new Float64Array(capacity);
    this.shift = 2 ** Math.ceil(Math.log2(capacity + 1));
  }

  /**
   * preprocess_fault_batch(): sort by (space, page) and fold duplicates. Key = (space·2^35 + vpn)·2^k + index,
   * exact below 2^53 for space < 2^(18-k) (k = ⌈log2(capacity+1)⌉; the driver bounds both).
   */
  preprocess(): number {
    const n = this.n;
    const keys = this.keys;
    const shift = this.shift;
    for (let i = 0; i < n; i++) keys[i] = (this.space[i]! * VPN_MUL + this.addr[i]! / 4096) * shift + i;
    const view = n === this.capacity ? keys : keys.subarray(0, n);
    view.sort();
    let np = -1;
    let prevPage = -1;
    for (let j = 0; j < n; j++) {
      const key = keys[j]!;
      const i = modPow2(key, shift);
      const page = (key - i) / shift;
      this.order[j] = i;
      if (page !== prevPage) {
        np++;
        prevPage = page;
        this.pageAddr[np] = this.addr[i]!;
        this.pageSpace[np] = this.space[i]!;
        this.pageAccess[np] = this.access[i]!;
        this.pageDup[np] = 1;
        this.pageFirst[np] = j;
        this.pageErr[np] = 0;
      } else {
        this.pageDup[np]!++;
        if (this.access[i]! > this.pageAccess[np]!) this.pageAccess[np] = this.access[i]!;
      }
    }
    this.npages = np + 1;
    return this.npages;
  }
}
