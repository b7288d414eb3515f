/**
 * The driver's record of what the card may access, per 2 MiB VA block of each mirrored mm: for each 4 KiB page a
 * flag byte (FPGA_MAP_VALID, FPGA_MAP_WRITE, FPGA_MAP_HOST) and the pfn it maps — a card-memory (device) pfn, or a
 * system pfn for a host mapping the stream reads over the link. It is what TaPaSCo keeps as the interval tree of
 * pages present on the device plus its host page-table walk (`insert_vmem_interval` / `is_page_present` /
 * `svm_perform_ptw`, pcie_svm.c [S60]) and Coyote as its per-process mapping lists (`tlb_map_hmm` [S61]): the TLBs
 * (fpga-tlb.ts) cache these entries and the driver refills them from here.
 *
 * Typed arrays in slots that grow by doubling; a block keeps its slot for the life of the driver.
 */
import { CHUNK_PAGES } from "./card-memory.js";

export const BLOCK_SIZE = CHUNK_PAGES * 4096;
export const FPGA_MAP_VALID = 1;
export const FPGA_MAP_WRITE = 2;
/** A host mapping: the pfn is a system page, read over the link (not a card-memory page). */
export const FPGA_MAP_HOST = 4;

export class DeviceMappings {
  private readonly slots = new Map<number, number>();
  size = 0;
  flags = new Uint8Array(0);
  pfn = new Float64Array(0);
  space = new Int32Array(0);
  start = new Float64Array(0);
  /** The card-memory chunk backing the block (-1: none). */
  chunk = new Int32Array(0);
  /** Valid mappings, and valid card-memory (local) mappings, per block. */
  mapped = new Int32Array(0);
  localMapped = new Int32Array(0);

  static key(space: number, addr: number): number {
    return space * 2 ** 26 + Math.floor(addr / BLOCK_SIZE);
  }

  /** The slot of the block holding `addr`, or -1. */
  find(space: number, addr: number): number {
    return this.slots.get(DeviceMappings.key(space, addr)) ?? -1;
  }

  /** The slot of the block holding `addr`, created when absent. */
  get(space: number, addr: number): number {
    const k = DeviceMappings.key(space, addr);
    const have = this.slots.get(k);
    if (have !== undefined) return have;
    const s = this.size++;
    if (s >= this.space.length) this.grow(Math.max(16, this.space.length * 2));
    this.space[s] = space;
    this.start[s] = Math.floor(addr / BLOCK_SIZE) * BLOCK_SIZE;
    this.chunk[s] = -1;
    this.slots.set(k, s);
    return s;
  }

  /** Calls fn(slot) for every block of `space` overlapping [start, end). */
  forEachIn(space: number, start: number, end: number, fn: (slot: number) => void): void {
    const first = Math.floor(start / BLOCK_SIZE);
    const last = Math.ceil(end / BLOCK_SIZE);
    if (last - first <= this.slots.size) {
      for (let b = first; b < last; b++) {
        const s = this.slots.get(space * 2 ** 26 + b);
        if (s !== undefined) fn(s);
      }
      return;
    }
    for (let s = 0; s < this.size; s++) {
      if (this.space[s] !== space) continue;
      const bs = this.start[s]!;
      if (bs + BLOCK_SIZE > start && bs < end) fn(s);
    }
  }

  /** Host bytes of the table. */
  get hostBytes(): number {
    return this.flags.byteLength + this.pfn.byteLength + this.space.byteLength + this.start.byteLength + this.chunk.byteLength + this.mapped.byteLength * 2 + this.slots.size * 40;
  }

  private grow(n: number): void {
    const f = new Uint8Array(n * CHUNK_PAGES);
    f.set(this.flags);
    this.flags = f;
    const p = new Float64Array(n * CHUNK_PAGES);
    p.set(this.pfn);
    this.pfn = p;
    const sp = new Int32Array(n);
    sp.set(this.space);
    this.space = sp;
    const st = new Float64Array(n);
    st.set(this.start);
    this.start = st;
    const c = new Int32Array(n);
    c.set(this.chunk);
    this.chunk = c;
    const m = new Int32Array(n);
    m.set(this.mapped);
    this.mapped = m;
    const l = new Int32Array(n);
    l.set(this.localMapped);
    this.localMapped = l;
  }
}
