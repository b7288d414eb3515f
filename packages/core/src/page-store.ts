/**
 * struct page state (include/linux/mm_types.h, include/linux/page_ref.h, include/linux/mm.h folio helpers) as
 * typed arrays indexed by pfn. Arrays are kept in chunks of 32768 pages that are allocated on first write, so a
 * 64 GiB machine costs nothing until its pages are used (about 50 bytes per touched page, the kernel's struct page
 * is 64). Reads of an unallocated chunk return the defaults (0, ZONE_NONE for pfns with no struct page).
 *
 * Folio rules: refcount lives on the folio head (folio_ref_count); getPage/putPage of a tail act on its head.
 * mapcount is per page and counts PTE-level mappings (page->_mapcount + 1); PMD-level mappings of a large folio
 * are counted in the head's entireMapcount (folio->_entire_mapcount + 1). pageMapcount() is the sum.
 */
import { KernelRuleError, InvalidArgumentError } from "./errors.js";
import { PG_head, PG_tail, ZONE_NONE } from "./page-flags.js";

const CHUNK_SHIFT = 15;
const CHUNK_SIZE = 1 << CHUNK_SHIFT;
const CHUNK_MASK = CHUNK_SIZE - 1;
/** pfns are kept below 2^32 (16 TiB of physical space) so that `>>>` works on them. */
export const MAX_PFN = 2 ** 32 - 1;

class PageChunk {
  readonly flags = new Uint32Array(CHUNK_SIZE);
  readonly refcount = new Int32Array(CHUNK_SIZE);
  readonly mapcount = new Int32Array(CHUNK_SIZE);
  readonly entireMapcount = new Int32Array(CHUNK_SIZE);
  /** folio->_pincount of a large folio (FOLL_PIN pins), on the head. */
  readonly pincount = new Int32Array(CHUNK_SIZE);
  readonly zone: Uint8Array;
  readonly order = new Uint8Array(CHUNK_SIZE);
  readonly pgmapId = new Uint16Array(CHUNK_SIZE);
  readonly memcgId = new Uint16Array(CHUNK_SIZE);
  readonly mapping = new Int32Array(CHUNK_SIZE);
  readonly index = new Float64Array(CHUNK_SIZE);
  readonly tag = new Float64Array(CHUNK_SIZE);
  /** page-bytes buffer slot + 1 (0: no private buffer, the page reads as zeroes). */
  readonly bufSlot = new Int32Array(CHUNK_SIZE);
  constructor() {
    this.zone = new Uint8Array(CHUNK_SIZE).fill(ZONE_NONE);
  }
}

/** A snapshot of one struct page, for tests, debugging and the invariant checker. */
export interface PageInfo {
  pfn: number;
  flags: number;
  refcount: number;
  mapcount: number;
  entireMapcount: number;
  zone: number;
  order: number;
  pgmapId: number;
  memcgId: number;
  mapping: number;
  index: number;
  tag: number;
  hasBytes: boolean;
}

export class PageStore {
  private chunks: (PageChunk | undefined)[] = [];
  /** One past the highest pfn that has a struct page (RAM, zero page, device ranges). */
  maxPfn = 0;

  /** Zone ranges (memmap sections): chunks are filled from these when first allocated. */
  private readonly zoneRanges: { start: number; end: number; zone: number; pgmapId: number }[] = [];

  /** Give pfns [start, start+nr) struct pages in `zone` (sparse_add_section / memmap_init_range). Lazy. */
  initRange(start: number, nr: number, zone: number, pgmapId = 0): void {
    if (start + nr > MAX_PFN) throw new InvalidArgumentError("pfn", `must stay below 2^32 pages`, start + nr);
    this.zoneRanges.push({ start, end: start + nr, zone, pgmapId });
    for (let pfn = start; pfn < start + nr; ) {
      const off = pfn & CHUNK_MASK;
      const n = Math.min(CHUNK_SIZE - off, start + nr - pfn);
      const c = this.chunks[pfn >>> CHUNK_SHIFT];
      if (c !== undefined) {
        c.zone.fill(zone, off, off + n);
        c.pgmapId.fill(pgmapId, off, off + n);
      }
      pfn += n;
    }
    if (start + nr > this.maxPfn) this.maxPfn = start + nr;
  }

  private rangeOf(pfn: number): { zone: number; pgmapId: number } | undefined {
    for (const r of this.zoneRanges) if (pfn >= r.start && pfn < r.end) return r;
    return undefined;
  }

  /** Remove struct pages of [start, start+nr) (memunmap_pages). Every field returns to its default. */
  clearRange(start: number, nr: number): void {
    const i = this.zoneRanges.findIndex((r) => r.start === start && r.end === start + nr);
    if (i >= 0) this.zoneRanges.splice(i, 1);
    for (let pfn = start; pfn < start + nr; ) {
      const off = pfn & CHUNK_MASK;
      const n = Math.min(CHUNK_SIZE - off, start + nr - pfn);
      const c = this.chunks[pfn >>> CHUNK_SHIFT];
      if (c !== undefined) {
        c.flags.fill(0, off, off + n);
        c.refcount.fill(0, off, off + n);
        c.mapcount.fill(0, off, off + n);
        c.entireMapcount.fill(0, off, off + n);
        c.pincount.fill(0, off, off + n);
        c.zone.fill(ZONE_NONE, off, off + n);
        c.order.fill(0, off, off + n);
        c.pgmapId.fill(0, off, off + n);
        c.memcgId.fill(0, off, off + n);
        c.mapping.fill(0, off, off + n);
        c.index.fill(0, off, off + n);
        c.tag.fill(0, off, off + n);
        c.bufSlot.fill(0, off, off + n);
      }
      pfn += n;
    }
  }

  private chunk(pfn: number): PageChunk {
    const i = pfn >>> CHUNK_SHIFT;
    let c = this.chunks[i];
    if (c === undefined) {
      c = new PageChunk();
      const base = i * CHUNK_SIZE;
      for (const r of this.zoneRanges) {
        const a = Math.max(r.start, base);
        const b = Math.min(r.end, base + CHUNK_SIZE);
        if (a < b) {
          c.zone.fill(r.zone, a - base, b - base);
          c.pgmapId.fill(r.pgmapId, a - base, b - base);
        }
      }
      this.chunks[i] = c;
    }
    return c;
  }

  /** pfn_valid(): the pfn has a struct page. */
  pfnValid(pfn: number): boolean {
    return Number.isInteger(pfn) && pfn >= 0 && pfn < this.maxPfn && this.zone(pfn) !== ZONE_NONE;
  }

  /** Number of chunks allocated (memory-use introspection for benchmarks). */
  get allocatedChunks(): number {
    let n = 0;
    for (const c of this.chunks) if (c !== undefined) n++;
    return n;
  }

  // --- flags -------------------------------------------------------------------------------------------------
  flags(pfn: number): number {
    const c = this.chunks[pfn >>> CHUNK_SHIFT];
    return c === undefined ? 0 : c.flags[pfn & CHUNK_MASK]!;
  }
  setFlagsWord(pfn: number, v: number): void {
    this.chunk(pfn).flags[pfn & CHUNK_MASK] = v >>> 0;
  }
  test(pfn: number, flag: number): boolean {
    return (this.flags(pfn) & flag) !== 0;
  }
  set(pfn: number, flag: number): void {
    const c = this.chunk(pfn);
    c.flags[pfn & CHUNK_MASK] = (c.flags[pfn & CHUNK_MASK]! | flag) >>> 0;
  }
  clear(pfn: number, flag: number): void {
    const c = this.chunk(pfn);
    c.flags[pfn & CHUNK_MASK] = (c.flags[pfn & CHUNK_MASK]! & ~flag) >>> 0;
  }

  // --- folio -------------------------------------------------------------------------------------------------
  /** page_folio(): the head pfn of the folio containing pfn. */
  folioHead(pfn: number): number {
    if ((this.flags(pfn) & PG_tail) === 0) return pfn;
    const nr = 2 ** this.order(pfn);
    return pfn - (pfn % nr);
  }
  /** folio_nr_pages() of the folio containing pfn. */
  folioNr(pfn: number): number {
    return 2 ** this.order(pfn);
  }
  /** folio_test_large(). */
  isLarge(pfn: number): boolean {
    return this.order(pfn) > 0;
  }
  isHead(pfn: number): boolean {
    return (this.flags(pfn) & PG_head) !== 0;
  }
  isTail(pfn: number): boolean {
    return (this.flags(pfn) & PG_tail) !== 0;
  }

  // --- counters ----------------------------------------------------------------------------------------------
  /** folio_ref_count() of the folio containing pfn. */
  refcount(pfn: number): number {
    const h = this.folioHead(pfn);
    const c = this.chunks[h >>> CHUNK_SHIFT];
    return c === undefined ? 0 : c.refcount[h & CHUNK_MASK]!;
  }
  /** Raw set of the folio's refcount (set_page_count); callers normally use getPage/putPage. */
  setRefcount(pfn: number, v: number): void {
    const h = this.folioHead(pfn);
    this.chunk(h).refcount[h & CHUNK_MASK] = v;
  }
  /** folio_ref_add(); returns the new count. */
  refAdd(pfn: number, n: number): number {
    const h = this.folioHead(pfn);
    const c = this.chunk(h);
    const v = c.refcount[h & CHUNK_MASK]! + n;
    c.refcount[h & CHUNK_MASK] = v;
    return v;
  }
  /** PTE-level mappings of this page (page_mapcount without the entire mapcount). */
  mapcount(pfn: number): number {
    const c = this.chunks[pfn >>> CHUNK_SHIFT];
    return c === undefined ? 0 : c.mapcount[pfn & CHUNK_MASK]!;
  }
  setMapcount(pfn: number, v: number): void {
    this.chunk(pfn).mapcount[pfn & CHUNK_MASK] = v;
  }
  mapcountAdd(pfn: number, n: number): number {
    const c = this.chunk(pfn);
    const v = c.mapcount[pfn & CHUNK_MASK]! + n;
    if (v < 0) throw new KernelRuleError("page_mapcount_underflow", `pfn ${pfn}`);
    c.mapcount[pfn & CHUNK_MASK] = v;
    return v;
  }
  /** PMD-level mappings of the folio containing pfn (folio_entire_mapcount). */
  entireMapcount(pfn: number): number {
    const h = this.folioHead(pfn);
    const c = this.chunks[h >>> CHUNK_SHIFT];
    return c === undefined ? 0 : c.entireMapcount[h & CHUNK_MASK]!;
  }
  entireMapcountAdd(pfn: number, n: number): number {
    const h = this.folioHead(pfn);
    const c = this.chunk(h);
    const v = c.entireMapcount[h & CHUNK_MASK]! + n;
    if (v < 0) throw new KernelRuleError("folio_entire_mapcount_underflow", `pfn ${h}`);
    c.entireMapcount[h & CHUNK_MASK] = v;
    return v;
  }
  /** folio->_pincount of the (large) folio containing pfn: FOLL_PIN pins. Small folios count pins in refcount. */
  pincount(pfn: number): number {
    const h = this.folioHead(pfn);
    const c = this.chunks[h >>> CHUNK_SHIFT];
    return c === undefined ? 0 : c.pincount[h & CHUNK_MASK]!;
  }
  pincountAdd(pfn: number, n: number): number {
    const h = this.folioHead(pfn);
    const c = this.chunk(h);
    const v = c.pincount[h & CHUNK_MASK]! + n;
    if (v < 0) throw new KernelRuleError("folio_pincount_underflow", `pfn ${h}`);
    c.pincount[h & CHUNK_MASK] = v;
    return v;
  }
  /** page_mapcount(): PTE mappings of the page plus PMD mappings of its folio. */
  pageMapcount(pfn: number): number {
    return this.mapcount(pfn) + (this.isLarge(pfn) ? this.entireMapcount(pfn) : 0);
  }
  /** folio_mapcount(): all mappings of every page of the folio. */
  folioMapcount(pfn: number): number {
    const h = this.folioHead(pfn);
    const nr = this.folioNr(h);
    if (nr === 1) return this.mapcount(h);
    let n = this.entireMapcount(h) * nr;
    for (let i = 0; i < nr; i++) n += this.mapcount(h + i);
    return n;
  }
  /** folio_mapped(). */
  folioMapped(pfn: number): boolean {
    const h = this.folioHead(pfn);
    if (this.entireMapcount(h) > 0) return true;
    const nr = this.folioNr(h);
    for (let i = 0; i < nr; i++) if (this.mapcount(h + i) > 0) return true;
    return false;
  }

  // --- plain fields ------------------------------------------------------------------------------------------
  zone(pfn: number): number {
    const c = this.chunks[pfn >>> CHUNK_SHIFT];
    return c === undefined ? (this.rangeOf(pfn)?.zone ?? ZONE_NONE) : c.zone[pfn & CHUNK_MASK]!;
  }
  order(pfn: number): number {
    const c = this.chunks[pfn >>> CHUNK_SHIFT];
    return c === undefined ? 0 : c.order[pfn & CHUNK_MASK]!;
  }
  setOrder(pfn: number, v: number): void {
    this.chunk(pfn).order[pfn & CHUNK_MASK] = v;
  }
  pgmapId(pfn: number): number {
    const c = this.chunks[pfn >>> CHUNK_SHIFT];
    return c === undefined ? (this.rangeOf(pfn)?.pgmapId ?? 0) : c.pgmapId[pfn & CHUNK_MASK]!;
  }
  setPgmapId(pfn: number, v: number): void {
    this.chunk(pfn).pgmapId[pfn & CHUNK_MASK] = v;
  }
  /** memcg id of the folio (folio_memcg); 0 when uncharged. Kept on the head. */
  memcgId(pfn: number): number {
    const h = this.folioHead(pfn);
    const c = this.chunks[h >>> CHUNK_SHIFT];
    return c === undefined ? 0 : c.memcgId[h & CHUNK_MASK]!;
  }
  setMemcgId(pfn: number, v: number): void {
    const h = this.folioHead(pfn);
    this.chunk(h).memcgId[h & CHUNK_MASK] = v;
  }
  /** folio->mapping: an id in Kernel.objects (an AnonVma when PG_anon, else an AddressSpace); 0 = NULL. Head. */
  mapping(pfn: number): number {
    const h = this.folioHead(pfn);
    const c = this.chunks[h >>> CHUNK_SHIFT];
    return c === undefined ? 0 : c.mapping[h & CHUNK_MASK]!;
  }
  setMapping(pfn: number, v: number): void {
    const h = this.folioHead(pfn);
    this.chunk(h).mapping[h & CHUNK_MASK] = v;
  }
  /** page->index: the page offset in its mapping (file pgoff, or address >> PAGE_SHIFT for anon). */
  index(pfn: number): number {
    const c = this.chunks[pfn >>> CHUNK_SHIFT];
    return c === undefined ? 0 : c.index[pfn & CHUNK_MASK]!;
  }
  setIndex(pfn: number, v: number): void {
    this.chunk(pfn).index[pfn & CHUNK_MASK] = v;
  }
  /** Content tag (see page-bytes.ts): 0 = zero-filled. */
  tag(pfn: number): number {
    const c = this.chunks[pfn >>> CHUNK_SHIFT];
    return c === undefined ? 0 : c.tag[pfn & CHUNK_MASK]!;
  }
  setTag(pfn: number, v: number): void {
    this.chunk(pfn).tag[pfn & CHUNK_MASK] = v;
  }
  /** Page-bytes slot + 1, 0 for none (page-bytes.ts owns it). */
  bufSlot(pfn: number): number {
    const c = this.chunks[pfn >>> CHUNK_SHIFT];
    return c === undefined ? 0 : c.bufSlot[pfn & CHUNK_MASK]!;
  }
  setBufSlot(pfn: number, v: number): void {
    this.chunk(pfn).bufSlot[pfn & CHUNK_MASK] = v;
  }

  /** Snapshot of one page. */
  info(pfn: number): PageInfo {
    return {
      pfn,
      flags: this.flags(pfn),
      refcount: this.refcount(pfn),
      mapcount: this.mapcount(pfn),
      entireMapcount: this.entireMapcount(pfn),
      zone: this.zone(pfn),
      order: this.order(pfn),
      pgmapId: this.pgmapId(pfn),
      memcgId: this.memcgId(pfn),
      mapping: this.mapping(pfn),
      index: this.index(pfn),
      tag: this.tag(pfn),
      hasBytes: this.bufSlot(pfn) !== 0,
    };
  }
}
