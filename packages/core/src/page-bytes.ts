/**
 * Page contents (include/linux/highmem.h: clear_highpage, copy_highpage, memcpy_to_page/memcpy_from_page).
 * Bytes live in a sparse pool of 4 KiB buffers carved from 1 MiB slabs and allocated on a page's first
 * non-zero write (or copy: a copy target's buffer is not zero-filled first, the copy overwrites it); a page with no buffer reads as zeroes (the shared zero page has none, ever). Every page also
 * has a content tag (a number, 0 = zero-filled) kept in the page store, in bytes-off (timing-only) mode too:
 * copying a page copies both, clearing sets both to the zero state, so content can be traced through
 * migration, COW, fork and exit without bytes.
 */
import { KernelRuleError } from "./errors.js";
import { PAGE_SIZE } from "./page-flags.js";
import type { PageStore } from "./page-store.js";

const SLAB_PAGES = 256;

function allZero(a: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) return false;
  return true;
}

export class PageBytesPool {
  private readonly slabs: Uint8Array[] = [];
  /**
   * One 4 KiB view per slot, made once when its slab is carved: reads, writes and copies index this array instead
   * of creating a subarray per access (the per-page path allocates nothing).
   */
  private readonly views: Uint8Array[] = [];
  private freeSlots: number[] = [];
  private nextSlot = 0;
  /** Buffers currently in use. */
  inUse = 0;
  /** Tags handed out by nextTag(). */
  private tagCounter = 0;

  constructor(
    private readonly store: PageStore,
    /** false: timing-only mode; only tags are kept and reads return zeroes. */
    readonly enabled: boolean,
  ) {}

  /** A fresh, never-used content tag (deterministic: a counter). */
  nextTag(): number {
    return ++this.tagCounter;
  }

  /** A slot for a new buffer. Its contents are stale (a recycled slot) or zero (a fresh slab): callers fill it. */
  private allocSlot(): number {
    const s = this.freeSlots.pop();
    if (s !== undefined) return s;
    const slot = this.nextSlot++;
    if (slot % SLAB_PAGES === 0) {
      const slab = new Uint8Array(SLAB_PAGES * PAGE_SIZE);
      this.slabs.push(slab);
      for (let i = 0; i < SLAB_PAGES; i++) this.views.push(slab.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
    }
    return slot;
  }
  /** The page's buffer, allocating it (zeroed) if needed. */
  private bufferFor(pfn: number): Uint8Array {
    const s = this.store.bufSlot(pfn);
    if (s !== 0) return this.views[s - 1]!;
    const recycled = this.freeSlots.length > 0; // allocSlot reuses a freed slot first; a fresh slab is zeroed
    const v = this.views[this.newBuffer(pfn)]!;
    if (recycled) v.fill(0);
    return v;
  }
  /** Give pfn a buffer slot without clearing it (the caller overwrites all 4 KiB); returns the slot. */
  private newBuffer(pfn: number): number {
    const slot = this.allocSlot();
    this.store.setBufSlot(pfn, slot + 1);
    this.inUse++;
    return slot;
  }
  private dropBuffer(pfn: number): void {
    const s = this.store.bufSlot(pfn);
    if (s === 0) return;
    this.freeSlots.push(s - 1);
    this.store.setBufSlot(pfn, 0);
    this.inUse--;
  }

  /** memcpy_from_page(): copy `len` bytes at `offset` of the page into out[outOff..]. */
  read(pfn: number, offset: number, len: number, out: Uint8Array, outOff = 0): void {
    checkSpan(offset, len);
    const s = this.store.bufSlot(pfn);
    if (s === 0 || !this.enabled) {
      out.fill(0, outOff, outOff + len);
      return;
    }
    const v = this.views[s - 1]!;
    out.set(offset === 0 && len === PAGE_SIZE ? v : v.subarray(offset, offset + len), outOff);
  }

  /** memcpy_to_page(): write bytes at `offset`; sets the content tag (a fresh one unless given). */
  write(pfn: number, offset: number, src: Uint8Array, tag?: number): void {
    checkSpan(offset, src.length);
    // A page without a buffer reads as zeroes: writing zeroes to it changes no byte, so it keeps no buffer.
    if (this.enabled && (this.store.bufSlot(pfn) !== 0 || !allZero(src))) this.bufferFor(pfn).set(src, offset);
    this.store.setTag(pfn, tag ?? this.nextTag());
  }

  /** A write that only changes the content tag (bytes-off accesses, touch()). */
  setTag(pfn: number, tag: number): void {
    this.store.setTag(pfn, tag);
  }

  /** clear_highpage(): zero bytes, tag 0. */
  clear(pfn: number): void {
    this.dropBuffer(pfn);
    this.store.setTag(pfn, 0);
  }

  /**
   * copy_highpage(dst, src): bytes and tag. A source without bytes (zero page content) drops dst's buffer; a dst
   * without a buffer gets one that is not cleared first, since the copy overwrites all of it; no view is created.
   */
  copy(dst: number, src: number): void {
    if (dst === src) return;
    const store = this.store;
    const s = store.bufSlot(src);
    if (s === 0) this.dropBuffer(dst);
    else if (this.enabled) {
      const d = store.bufSlot(dst);
      const views = this.views;
      views[d !== 0 ? d - 1 : this.newBuffer(dst)]!.set(views[s - 1]!);
    }
    store.setTag(dst, store.tag(src));
  }

  /** The page is being freed: drop its buffer (the tag is reset by the caller's clear of the page). */
  release(pfn: number): void {
    this.dropBuffer(pfn);
    this.store.setTag(pfn, 0);
  }

  /** A copy of the page's 4 KiB (zeroes when no buffer or bytes off). */
  snapshot(pfn: number): Uint8Array {
    const out = new Uint8Array(PAGE_SIZE);
    this.read(pfn, 0, PAGE_SIZE, out);
    return out;
  }
}

function checkSpan(offset: number, len: number): void {
  if (!(offset >= 0 && len >= 0 && offset + len <= PAGE_SIZE))
    throw new KernelRuleError("page_access_out_of_bounds", `offset ${offset} len ${len}`);
}
