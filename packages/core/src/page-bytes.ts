/**
 * Page contents (include/linux/highmem.h: clear_highpage, copy_highpage, memcpy_to_page/memcpy_from_page).
 * Bytes live in a sparse pool of 4 KiB buffers carved from 1 MiB slabs and allocated on a page's first
 * non-zero write; a page with no buffer reads as zeroes (the shared zero page has none, ever). Every page also
 * has a content tag (a number, 0 = zero-filled) kept in the page store, in bytes-off (timing-only) mode too:
 * copying a page copies both, clearing sets both to the zero state, so content can be traced through
 * migration, COW, fork and exit without bytes.
 *
 * copy_highpage is copy-on-write here: the destination takes a reference on the source's buffer (a per-buffer
 * count), and the 4 KiB are duplicated only when one of the pages sharing it is written while the other still
 * holds it. A migration copies the old page and then frees it, so its bytes move by reference and are never
 * duplicated; a COW fault's copy is duplicated by the write that follows it, as before. What every page reads is
 * exactly what the kernel's eager copy would give: only the host work differs. `inUse` counts pages that hold a
 * buffer (shared or not), `buffersInUse` the distinct buffers.
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
  /** Pages holding each buffer slot (0: free). */
  private refs = new Int32Array(SLAB_PAGES);
  private freeSlots: number[] = [];
  private nextSlot = 0;
  /** Pages that hold a buffer (each sharer of a shared buffer counts). */
  inUse = 0;
  /** Distinct buffers in use (shared buffers count once). */
  buffersInUse = 0;
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

  /** A slot for a new buffer, with one reference. Its contents are stale (a recycled slot) or zero (a fresh slab). */
  private allocSlot(): number {
    let slot = this.freeSlots.pop();
    if (slot === undefined) {
      slot = this.nextSlot++;
      if (slot % SLAB_PAGES === 0) {
        const slab = new Uint8Array(SLAB_PAGES * PAGE_SIZE);
        this.slabs.push(slab);
        for (let i = 0; i < SLAB_PAGES; i++) this.views.push(slab.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
        if (this.views.length > this.refs.length) {
          const grown = new Int32Array(this.refs.length * 2);
          grown.set(this.refs);
          this.refs = grown;
        }
      }
    }
    this.refs[slot] = 1;
    this.buffersInUse++;
    return slot;
  }
  /** The page's own buffer for writing: allocated (zeroed) if it has none, unshared (duplicated) if shared. */
  private bufferFor(pfn: number): Uint8Array {
    const s = this.store.bufSlot(pfn);
    if (s !== 0 && this.refs[s - 1] === 1) return this.views[s - 1]!;
    if (s !== 0) {
      // Shared by a copy_highpage: this writer gets its own duplicate now.
      const d = this.allocSlot();
      const v = this.views[d]!;
      v.set(this.views[s - 1]!);
      this.refs[s - 1]!--;
      this.store.setBufSlot(pfn, d + 1);
      return v;
    }
    const recycled = this.freeSlots.length > 0; // allocSlot reuses a freed slot first; a fresh slab is zeroed
    const v = this.views[this.newBuffer(pfn)]!;
    if (recycled) v.fill(0);
    return v;
  }
  /** Give pfn a new buffer slot without clearing it (the caller overwrites what it reads); returns the slot. */
  private newBuffer(pfn: number): number {
    const slot = this.allocSlot();
    this.store.setBufSlot(pfn, slot + 1);
    this.inUse++;
    return slot;
  }
  private dropBuffer(pfn: number): void {
    const s = this.store.bufSlot(pfn);
    if (s === 0) return;
    this.store.setBufSlot(pfn, 0);
    this.unrefSlot(s);
  }
  /** A page stopped holding buffer slot `s` - 1 (already cleared from its struct page). */
  private unrefSlot(s: number): void {
    if (--this.refs[s - 1]! === 0) {
      this.freeSlots.push(s - 1);
      this.buffersInUse--;
    }
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
   * copy_highpage(dst, src): bytes and tag. A source without bytes (zero page content) drops dst's buffer;
   * otherwise dst shares src's buffer (copy-on-write, see the file comment): no bytes move until one is written.
   */
  copy(dst: number, src: number): void {
    if (dst === src) return;
    const store = this.store;
    const s = store.bufSlot(src);
    const d = store.bufSlot(dst);
    if (s === 0 || !this.enabled) {
      if (d !== 0) this.dropBuffer(dst);
    } else if (d !== s) {
      if (d !== 0) this.dropBuffer(dst);
      this.refs[s - 1]!++;
      store.setBufSlot(dst, s);
      this.inUse++;
    }
    store.setTag(dst, store.tag(src));
  }

  /** The page is being freed: drop its buffer (the tag is reset by the caller's clear of the page). */
  release(pfn: number): void {
    const s = this.store.takeBufSlotClearTag(pfn);
    if (s !== 0) this.unrefSlot(s);
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
