/**
 * The device page table, by 2 MiB VA block (NVIDIA uvm_va_block.c / uvm_page_tree.c): one slot per touched
 * block of a GPU VA space, holding 512 one-byte PTEs in a shared Uint8Array plus per-block counters in typed
 * arrays. No object per page or per block; an open-addressing table of typed arrays (BlockIndex) finds a block's slot
 * from (space, block number): a warp's translation looks its block up, a Map lookup there cost more than the rest.
 *
 * A PTE byte: GPU_PTE_VALID | GPU_PTE_WRITE | GPU_PTE_REMOTE (| GPU_PTE_PEER for a peer device's page). A local entry needs no pfn: page i of a block lives
 * in page i of the block's root chunk (root-chunks.ts). A remote entry (a system page mapped over the link)
 * keeps its pfn in a per-block Float64Array allocated on first use.
 */
import { CHUNK_PAGES } from "./root-chunks.js";

export const GPU_PTE_VALID = 1;
export const GPU_PTE_WRITE = 2;
export const GPU_PTE_REMOTE = 4;
/**
 * With GPU_PTE_REMOTE: the page is a peer device's memory, reached over the peer link joining the two devices
 * (peer access: NVLink / PCIe peer-to-peer), not system memory over the host link.
 */
export const GPU_PTE_PEER = 8;

/** 2 MiB. */
export const VA_BLOCK_SIZE = 2 * 1024 * 1024;
const BLOCK_KEY_MUL = 2 ** 27; // block numbers of a 48-bit VA space (2^48 / 2^21)

/**
 * Block key → slot: linear probing over power-of-two typed arrays, at most half full, no deletion (a VA block's
 * slot lives as long as the table). Keys are integers below 2^53; a stored key is key + 1 (0 = empty).
 */
export class BlockIndex {
  private keys: Float64Array;
  private vals: Int32Array;
  private mask: number;
  size = 0;

  constructor(capacity = 128) {
    let c = 16;
    while (c < capacity * 2) c *= 2;
    this.keys = new Float64Array(c);
    this.vals = new Int32Array(c);
    this.mask = c - 1;
  }

  private static hash(key: number): number {
    // ToInt32 of an integer below 2^53 is its value modulo 2^32: the low and the high words, mixed.
    let h = Math.imul((key | 0) ^ Math.imul((key / 4294967296) | 0, 0x27d4eb2d), 0x9e3779b1);
    h ^= h >>> 15;
    return h;
  }

  /** The slot stored for `key`, or -1. */
  get(key: number): number {
    const k = key + 1;
    const keys = this.keys;
    const mask = this.mask;
    for (let i = BlockIndex.hash(key) & mask; ; i = (i + 1) & mask) {
      const x = keys[i]!;
      if (x === k) return this.vals[i]!;
      if (x === 0) return -1;
    }
  }

  /** Stores `slot` for a key not yet in the table. */
  add(key: number, slot: number): void {
    if ((this.size + 1) * 2 > this.keys.length) this.grow();
    this.put(key, slot);
    this.size++;
  }

  private put(key: number, slot: number): void {
    const k = key + 1;
    const mask = this.mask;
    let i = BlockIndex.hash(key) & mask;
    while (this.keys[i] !== 0) i = (i + 1) & mask;
    this.keys[i] = k;
    this.vals[i] = slot;
  }

  private grow(): void {
    const keys = this.keys;
    const vals = this.vals;
    this.keys = new Float64Array(keys.length * 2);
    this.vals = new Int32Array(keys.length * 2);
    this.mask = keys.length * 2 - 1;
    for (let i = 0; i < keys.length; i++) if (keys[i] !== 0) this.put(keys[i]! - 1, vals[i]!);
  }

  get hostBytes(): number {
    return this.keys.byteLength + this.vals.byteLength;
  }
}

export class VaBlocks {
  private readonly index = new BlockIndex();
  private cap: number;
  size = 0;
  /** VA space id and block start address per slot. */
  space: Uint16Array;
  start: Float64Array;
  /** Root chunk backing the block, -1 when none. */
  chunk: Int32Array;
  /** Valid entries, and valid local entries. */
  mapped: Uint16Array;
  localMapped: Uint16Array;
  /** 512 PTE bytes per slot. */
  pte: Uint8Array;
  /** Pfns of remote entries, per slot (allocated on first remote mapping). */
  readonly remotePfn = new Map<number, Float64Array>();

  constructor(initial = 64) {
    this.cap = initial;
    this.space = new Uint16Array(initial);
    this.start = new Float64Array(initial);
    this.chunk = new Int32Array(initial).fill(-1);
    this.mapped = new Uint16Array(initial);
    this.localMapped = new Uint16Array(initial);
    this.pte = new Uint8Array(initial * CHUNK_PAGES);
  }

  static key(space: number, addr: number): number {
    return space * BLOCK_KEY_MUL + Math.floor(addr / VA_BLOCK_SIZE);
  }

  /** Slot of the block holding `addr` in `space`, or -1. */
  find(space: number, addr: number): number {
    return this.index.get(VaBlocks.key(space, addr));
  }

  findKey(key: number): number {
    return this.index.get(key);
  }

  /** Slot of the block holding `addr`, created when missing. */
  get(space: number, addr: number): number {
    const key = VaBlocks.key(space, addr);
    const s = this.index.get(key);
    if (s >= 0) return s;
    if (this.size === this.cap) this.grow();
    const slot = this.size++;
    this.index.add(key, slot);
    this.space[slot] = space;
    this.start[slot] = Math.floor(addr / VA_BLOCK_SIZE) * VA_BLOCK_SIZE;
    return slot;
  }

  /** Slots of a space overlapping [start, end) (for invalidations of large ranges: iterates the table). */
  forEachIn(space: number, start: number, end: number, fn: (slot: number) => void): void {
    const first = Math.floor(start / VA_BLOCK_SIZE);
    const last = Math.floor((end - 1) / VA_BLOCK_SIZE);
    if (last - first + 1 <= this.size) {
      for (let b = first; b <= last; b++) {
        const s = this.index.get(space * BLOCK_KEY_MUL + b);
        if (s >= 0) fn(s);
      }
      return;
    }
    for (let s = 0; s < this.size; s++) {
      if (this.space[s] !== space) continue;
      const bs = this.start[s]!;
      if (bs + VA_BLOCK_SIZE > start && bs < end) fn(s);
    }
  }

  remotePfns(slot: number): Float64Array {
    let a = this.remotePfn.get(slot);
    if (a === undefined) {
      a = new Float64Array(CHUNK_PAGES);
      this.remotePfn.set(slot, a);
    }
    return a;
  }

  /** Bytes of host memory the table holds (typed arrays, its index and the remote pfn arrays; the remotePfn Map's entries are not counted). */
  get hostBytes(): number {
    return (
      this.index.hostBytes +
      this.space.byteLength +
      this.start.byteLength +
      this.chunk.byteLength +
      this.mapped.byteLength +
      this.localMapped.byteLength +
      this.pte.byteLength +
      this.remotePfn.size * CHUNK_PAGES * 8
    );
  }

  private grow(): void {
    const cap = this.cap * 2;
    const g = <T extends Uint16Array | Float64Array | Int32Array | Uint8Array>(a: T, n: number, fill?: number): T => {
      const b = new (a.constructor as new (n: number) => T)(n);
      if (fill !== undefined) b.fill(fill);
      b.set(a);
      return b;
    };
    this.space = g(this.space, cap);
    this.start = g(this.start, cap);
    this.chunk = g(this.chunk, cap, -1);
    this.mapped = g(this.mapped, cap);
    this.localMapped = g(this.localMapped, cap);
    this.pte = g(this.pte, cap * CHUNK_PAGES);
    this.cap = cap;
  }
}
