/**
 * struct page state (include/linux/mm_types.h, include/linux/page_ref.h, include/linux/mm.h folio helpers) as
 * typed arrays indexed by pfn, kept in chunks of 32768 pages.
 *
 * Memory model (the kernel's mem_map / vmemmap):
 * - RAM (and the zero page) get their struct pages per chunk on its first write (`memmap: "lazy"`, the default),
 *   or all when the kernel is created, as the kernel allocates mem_map at boot (`populate`;
 *   `createKernel({ memmap: "boot" })`). The cost is the same per page, paid on first use or up front.
 * - ZONE_DEVICE ranges stay lazy: memremap_pages does allocate their struct pages in the kernel, but a 40 GB
 *   device would cost ~0.3 GB up front here; a device chunk is allocated on its first write.
 *
 * Per page: flags (Uint32) 4 B, refcount 4, mapcount 4, mapping 4, index 5 (Uint32 low word + Uint8 high byte:
 * 40 bits, which covers every anon index below TASK_SIZE = 2^47 and file offsets below 4 PiB; larger or
 * non-integer values go to a side map), content tag 4 (Uint32; tags that are not integers below 2^32 - 1 go to a
 * side map), memcg id 2, order 1: 28 bytes (the kernel's struct page is 64). The page-bytes slot (Int32) exists
 * only in chunks that ever held a private page buffer (never in bytes-off mode). zone and pgmap id are
 * per-range properties (the kernel encodes them in page->flags / page->pgmap, set once by memmap_init): they are
 * looked up from the range table through a per-2 MiB section index. The entire mapcount and the pincount exist
 * only for large folios (the kernel keeps them in the first tail page): side maps keyed by the head pfn, holding
 * nonzero values only.
 *
 * Reads of an unallocated chunk return the defaults (0; ZONE_NONE for pfns with no struct page).
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
/** Index of pfn's struct page in the arrays `PageStore.pagesOf(pfn)` returns: `pfn & PAGE_SLOT_MASK`. */
export const PAGE_SLOT_MASK = CHUNK_MASK;
/** Range-index granularity: 2 MiB sections (device ranges start 2 MiB aligned). */
const SECTION_SHIFT = 9;
const SECTION_PAGES = 1 << SECTION_SHIFT;
/** pfns are kept below 2^32 (16 TiB of physical space) so that `>>>` works on them. */
export const MAX_PFN = 2 ** 32 - 1;
const TWO32 = 4294967296;
/** indexHi value meaning "the index is in the side map". */
const INDEX_BIG = 255;
/** tag value meaning "the tag is in the side map". */
const TAG_BIG = 0xffffffff;

/**
 * The struct pages of one chunk, a typed array per field (see the file comment). Per-page hot paths that read and
 * write several fields of one page take it once (`PageStore.pagesOf`) instead of one chunk lookup per accessor.
 * A folio's refcount, mapping and memcg id live on its head.
 */
export class PageChunk {
  readonly flags = new Uint32Array(CHUNK_SIZE);
  readonly refcount = new Int32Array(CHUNK_SIZE);
  readonly mapcount = new Int32Array(CHUNK_SIZE);
  readonly mapping = new Int32Array(CHUNK_SIZE);
  readonly indexLo = new Uint32Array(CHUNK_SIZE);
  readonly indexHi = new Uint8Array(CHUNK_SIZE);
  readonly tag = new Uint32Array(CHUNK_SIZE);
  readonly memcgId = new Uint16Array(CHUNK_SIZE);
  readonly order = new Uint8Array(CHUNK_SIZE);
  /** page-bytes buffer slot + 1 (0: no private buffer, the page reads as zeroes); allocated on first nonzero set. */
  bufSlot: Int32Array | null = null;

  /**
   * Write every struct page of the chunk with its initial state, as memmap_init_range → __init_single_page does
   * at boot (mm/mm_init.c; refcount and mapcount at their free values, which are 0 here). The host then commits
   * the chunk's memory now, in the empty machine, as the kernel's mem_map is resident after boot — a fresh typed
   * array is only reserved until written.
   */
  initAll(): this {
    this.flags.fill(0);
    this.refcount.fill(0);
    this.mapcount.fill(0);
    this.mapping.fill(0);
    this.indexLo.fill(0);
    this.indexHi.fill(0);
    this.tag.fill(0);
    this.memcgId.fill(0);
    this.order.fill(0);
    return this;
  }
}

/** Bytes of struct-page state per page in an allocated chunk (bufSlot excluded). */
export const PAGE_STORE_BYTES_PER_PAGE = 4 + 4 + 4 + 4 + 4 + 1 + 4 + 2 + 1;

interface ZoneRange {
  start: number;
  end: number;
  zone: number;
  pgmapId: number;
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

  /** Zone ranges (memmap sections), by id - 1; removed ranges are undefined. */
  private readonly ranges: (ZoneRange | undefined)[] = [];
  /** Per 2 MiB section: range id (index + 1) of the one range in it, 0 none, -1 several (search `ranges`). */
  private sections = new Int32Array(0);
  /**
   * Per section wholly inside its one range: zone + 1 (0: look the range up) and the range's pgmap id, so that
   * zone() and pgmapId() of most pfns are one typed-array load.
   */
  private sectionZone = new Uint8Array(0);
  private sectionPgmap = new Int32Array(0);
  /** folio->_entire_mapcount / folio->_pincount of large folios, by head pfn (nonzero values only). */
  private readonly entire = new Map<number, number>();
  private readonly pins = new Map<number, number>();
  /** Indexes and tags that do not fit the typed arrays, by pfn. */
  private readonly bigIndex = new Map<number, number>();
  private readonly bigTag = new Map<number, number>();

  /** Give pfns [start, start+nr) struct pages in `zone` (sparse_add_section / memmap_init_range). Lazy. */
  initRange(start: number, nr: number, zone: number, pgmapId = 0): void {
    if (start + nr > MAX_PFN) throw new InvalidArgumentError("pfn", `must stay below 2^32 pages`, start + nr);
    if (!Number.isInteger(start) || start < 0 || !Number.isInteger(nr) || nr <= 0)
      throw new InvalidArgumentError("nr", "initRange needs an integer start >= 0 and nr > 0", nr);
    const r: ZoneRange = { start, end: start + nr, zone, pgmapId };
    this.ranges.push(r);
    const id = this.ranges.length;
    const lastSec = (start + nr - 1) >>> SECTION_SHIFT;
    if (lastSec >= this.sections.length) {
      const len = Math.max(lastSec + 1, this.sections.length * 2);
      const grown = new Int32Array(len);
      grown.set(this.sections);
      this.sections = grown;
      const z = new Uint8Array(len);
      z.set(this.sectionZone);
      this.sectionZone = z;
      const g = new Int32Array(len);
      g.set(this.sectionPgmap);
      this.sectionPgmap = g;
    }
    for (let sec = start >>> SECTION_SHIFT; sec <= lastSec; sec++) {
      this.sections[sec] = this.sections[sec] === 0 ? id : -1;
      this.refreshSection(sec);
    }
    if (start + nr > this.maxPfn) this.maxPfn = start + nr;
  }

  /** Recompute a section's zone / pgmap shortcut from its range id. */
  private refreshSection(sec: number): void {
    const id = this.sections[sec]!;
    const r = id > 0 ? this.ranges[id - 1] : undefined;
    // (multiplications: `<<` would wrap to negative at 2^31)
    const whole = r !== undefined && r.start <= sec * SECTION_PAGES && r.end >= (sec + 1) * SECTION_PAGES;
    this.sectionZone[sec] = whole ? r.zone + 1 : 0;
    this.sectionPgmap[sec] = whole ? r.pgmapId : 0;
  }

  /** The range holding pfn, or undefined. */
  private rangeOf(pfn: number): ZoneRange | undefined {
    const sec = pfn >>> SECTION_SHIFT;
    if (sec >= this.sections.length) return undefined;
    const id = this.sections[sec]!;
    if (id > 0) {
      const r = this.ranges[id - 1]!;
      return pfn >= r.start && pfn < r.end ? r : undefined;
    }
    if (id === 0) return undefined;
    for (const r of this.ranges) if (r !== undefined && pfn >= r.start && pfn < r.end) return r;
    return undefined;
  }

  /**
   * Allocate the struct pages of [start, start+nr) now (mem_map at boot for RAM). Idempotent; pfns need not
   * have a range yet.
   */
  populate(start: number, nr: number): void {
    for (let i = start >>> CHUNK_SHIFT, last = (start + nr - 1) >>> CHUNK_SHIFT; i <= last; i++) {
      if (this.chunks[i] === undefined) this.chunks[i] = new PageChunk().initAll();
    }
  }

  /** Remove struct pages of [start, start+nr) (memunmap_pages). Every field returns to its default. */
  clearRange(start: number, nr: number): void {
    const i = this.ranges.findIndex((r) => r !== undefined && r.start === start && r.end === start + nr);
    if (i >= 0) {
      this.ranges[i] = undefined;
      const id = i + 1;
      for (let sec = start >>> SECTION_SHIFT, last = (start + nr - 1) >>> SECTION_SHIFT; sec <= last; sec++) {
        if (this.sections[sec] === id) this.sections[sec] = 0;
        else if (this.sections[sec] === -1) this.sections[sec] = this.sectionId(sec);
        this.refreshSection(sec);
      }
    }
    for (let pfn = start; pfn < start + nr; ) {
      const off = pfn & CHUNK_MASK;
      const n = Math.min(CHUNK_SIZE - off, start + nr - pfn);
      const c = this.chunks[pfn >>> CHUNK_SHIFT];
      if (c !== undefined) {
        c.flags.fill(0, off, off + n);
        c.refcount.fill(0, off, off + n);
        c.mapcount.fill(0, off, off + n);
        c.mapping.fill(0, off, off + n);
        c.indexLo.fill(0, off, off + n);
        c.indexHi.fill(0, off, off + n);
        c.tag.fill(0, off, off + n);
        c.memcgId.fill(0, off, off + n);
        c.order.fill(0, off, off + n);
        c.bufSlot?.fill(0, off, off + n);
      }
      pfn += n;
    }
    for (const m of [this.entire, this.pins, this.bigIndex, this.bigTag]) {
      if (m.size === 0) continue;
      for (const k of [...m.keys()]) if (k >= start && k < start + nr) m.delete(k);
    }
  }

  /** The section's range id recomputed from the live ranges (after one was removed). */
  private sectionId(sec: number): number {
    const a = sec << SECTION_SHIFT;
    const b = a + (1 << SECTION_SHIFT);
    let id = 0;
    for (let i = 0; i < this.ranges.length; i++) {
      const r = this.ranges[i];
      if (r === undefined || r.end <= a || r.start >= b) continue;
      if (id !== 0) return -1;
      id = i + 1;
    }
    return id;
  }

  private chunk(pfn: number): PageChunk {
    const i = pfn >>> CHUNK_SHIFT;
    let c = this.chunks[i];
    if (c === undefined) {
      c = new PageChunk();
      this.chunks[i] = c;
    }
    return c;
  }

  /**
   * The typed arrays holding pfn's struct page (its chunk, allocated on first use), indexed by
   * `pfn & PAGE_SLOT_MASK`: for per-page hot paths. index and tag must still go through index()/setIndex() and
   * tag()/setTag() (values that do not fit live in side maps).
   */
  pagesOf(pfn: number): PageChunk {
    return this.chunk(pfn);
  }

  /** As pagesOf, without allocating: undefined when no struct page of the chunk was ever written (all at defaults). */
  pagesIfAny(pfn: number): PageChunk | undefined {
    return this.chunks[pfn >>> CHUNK_SHIFT];
  }

  /** setIndex(dst, index(src)) in one lookup per page (folio_migrate_mapping's index move). */
  copyIndex(dst: number, src: number): void {
    const sc = this.chunks[src >>> CHUNK_SHIFT];
    const si = src & CHUNK_MASK;
    if (sc === undefined || sc.indexHi[si] === INDEX_BIG) {
      this.setIndex(dst, this.index(src));
      return;
    }
    const dc = this.chunk(dst);
    const di = dst & CHUNK_MASK;
    if (dc.indexHi[di] === INDEX_BIG) this.bigIndex.delete(dst);
    dc.indexLo[di] = sc.indexLo[si]!;
    dc.indexHi[di] = sc.indexHi[si]!;
  }

  /**
   * The fields free_unref_folios resets on a freed RAM page (flags, mapping, index, order: 0), in one chunk
   * lookup. refcount and mapcount are already 0 there; memcg and bytes are the caller's.
   */
  resetFreedPage(pfn: number): void {
    const c = this.chunk(pfn);
    const i = pfn & CHUNK_MASK;
    c.flags[i] = 0;
    c.mapping[i] = 0;
    if (c.indexHi[i] === INDEX_BIG) this.bigIndex.delete(pfn);
    c.indexLo[i] = 0;
    c.indexHi[i] = 0;
    c.order[i] = 0;
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

  /** Host bytes of the typed arrays behind the store (chunks, bufSlot arrays, section index). */
  get hostBytes(): number {
    let n = this.sections.byteLength + this.sectionZone.byteLength + this.sectionPgmap.byteLength;
    for (const c of this.chunks) {
      if (c === undefined) continue;
      n += CHUNK_SIZE * PAGE_STORE_BYTES_PER_PAGE;
      if (c.bufSlot !== null) n += c.bufSlot.byteLength;
    }
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
    const c = this.chunks[pfn >>> CHUNK_SHIFT];
    if (c === undefined) return pfn;
    const i = pfn & CHUNK_MASK;
    // pfn < 2^32, so `&` keeps its low bits exactly (ToInt32 of a pfn >= 2^31 only flips the sign bit).
    return (c.flags[i]! & PG_tail) === 0 ? pfn : pfn - (pfn & ((1 << c.order[i]!) - 1));
  }
  /** folio_nr_pages() of the folio containing pfn (order < 31). */
  folioNr(pfn: number): number {
    return 1 << this.order(pfn);
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
    const c = this.chunks[pfn >>> CHUNK_SHIFT];
    if (c === undefined) return 0;
    const i = pfn & CHUNK_MASK;
    if ((c.flags[i]! & PG_tail) === 0) return c.refcount[i]!;
    const h = this.folioHead(pfn);
    const hc = this.chunks[h >>> CHUNK_SHIFT];
    return hc === undefined ? 0 : hc.refcount[h & CHUNK_MASK]!;
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
    const i = h & CHUNK_MASK;
    const v = c.refcount[i]! + n;
    c.refcount[i] = v;
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
  /** The folio heads whose entire (PMD) mapcount is kept (for checkers: a read-only view). */
  entireHeads(): IterableIterator<number> {
    return this.entire.keys();
  }
  entireMapcount(pfn: number): number {
    if (this.entire.size === 0) return 0;
    return this.entire.get(this.folioHead(pfn)) ?? 0;
  }
  entireMapcountAdd(pfn: number, n: number): number {
    const h = this.folioHead(pfn);
    const v = (this.entire.get(h) ?? 0) + n;
    if (v < 0) throw new KernelRuleError("folio_entire_mapcount_underflow", `pfn ${h}`);
    if (v === 0) this.entire.delete(h);
    else this.entire.set(h, v);
    return v;
  }
  /** folio->_pincount of the (large) folio containing pfn: FOLL_PIN pins. Small folios count pins in refcount. */
  pincount(pfn: number): number {
    if (this.pins.size === 0) return 0;
    return this.pins.get(this.folioHead(pfn)) ?? 0;
  }
  pincountAdd(pfn: number, n: number): number {
    const h = this.folioHead(pfn);
    const v = (this.pins.get(h) ?? 0) + n;
    if (v < 0) throw new KernelRuleError("folio_pincount_underflow", `pfn ${h}`);
    if (v === 0) this.pins.delete(h);
    else this.pins.set(h, v);
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
    if (nr === 1) return this.mapcount(h) > 0;
    for (let i = 0; i < nr; i++) if (this.mapcount(h + i) > 0) return true;
    return false;
  }

  // --- plain fields ------------------------------------------------------------------------------------------
  /** page_zonenum(): from the pfn's range (ZONE_NONE when it has no struct page). */
  zone(pfn: number): number {
    const z = this.sectionZone[pfn >>> SECTION_SHIFT];
    if (z !== undefined && z !== 0) return z - 1;
    return this.rangeOf(pfn)?.zone ?? ZONE_NONE;
  }
  order(pfn: number): number {
    const c = this.chunks[pfn >>> CHUNK_SHIFT];
    return c === undefined ? 0 : c.order[pfn & CHUNK_MASK]!;
  }
  setOrder(pfn: number, v: number): void {
    // folio sizes are 2^order pages with `1 << order` arithmetic (and a Uint8 field)
    if (!(v >= 0 && v <= 30 && Number.isInteger(v))) throw new InvalidArgumentError("order", "must be an integer in [0, 30]", v);
    this.chunk(pfn).order[pfn & CHUNK_MASK] = v;
  }
  /** The id of the pfn's pgmap (page->pgmap), 0 for non-device pfns: from the pfn's range. */
  pgmapId(pfn: number): number {
    const sec = pfn >>> SECTION_SHIFT;
    const z = this.sectionZone[sec];
    if (z !== undefined && z !== 0) return this.sectionPgmap[sec]!;
    return this.rangeOf(pfn)?.pgmapId ?? 0;
  }
  /** memcg id of the folio (folio_memcg); 0 when uncharged. Kept on the head. */
  memcgId(pfn: number): number {
    const c = this.chunks[pfn >>> CHUNK_SHIFT];
    if (c === undefined) return 0;
    const i = pfn & CHUNK_MASK;
    if ((c.flags[i]! & PG_tail) === 0) return c.memcgId[i]!;
    const h = this.folioHead(pfn);
    const hc = this.chunks[h >>> CHUNK_SHIFT];
    return hc === undefined ? 0 : hc.memcgId[h & CHUNK_MASK]!;
  }
  setMemcgId(pfn: number, v: number): void {
    const h = this.folioHead(pfn);
    this.chunk(h).memcgId[h & CHUNK_MASK] = v;
  }
  /** folio->mapping: an id in Kernel.objects (an AnonVma when PG_anon, else an AddressSpace); 0 = NULL. Head. */
  mapping(pfn: number): number {
    const c = this.chunks[pfn >>> CHUNK_SHIFT];
    if (c === undefined) return 0;
    const i = pfn & CHUNK_MASK;
    if ((c.flags[i]! & PG_tail) === 0) return c.mapping[i]!;
    const h = this.folioHead(pfn);
    const hc = this.chunks[h >>> CHUNK_SHIFT];
    return hc === undefined ? 0 : hc.mapping[h & CHUNK_MASK]!;
  }
  setMapping(pfn: number, v: number): void {
    const h = this.folioHead(pfn);
    this.chunk(h).mapping[h & CHUNK_MASK] = v;
  }
  /** page->index: the page offset in its mapping (file pgoff, or address >> PAGE_SHIFT for anon). */
  index(pfn: number): number {
    const c = this.chunks[pfn >>> CHUNK_SHIFT];
    if (c === undefined) return 0;
    const hi = c.indexHi[pfn & CHUNK_MASK]!;
    if (hi === 0) return c.indexLo[pfn & CHUNK_MASK]!;
    if (hi !== INDEX_BIG) return hi * TWO32 + c.indexLo[pfn & CHUNK_MASK]!;
    return this.bigIndex.get(pfn) ?? 0;
  }
  setIndex(pfn: number, v: number): void {
    const c = this.chunk(pfn);
    const i = pfn & CHUNK_MASK;
    if (c.indexHi[i] === INDEX_BIG) this.bigIndex.delete(pfn);
    if (v >= 0 && v < INDEX_BIG * TWO32 && Number.isInteger(v)) {
      c.indexLo[i] = v >>> 0;
      c.indexHi[i] = (v / TWO32) | 0;
    } else {
      c.indexLo[i] = 0;
      c.indexHi[i] = INDEX_BIG;
      this.bigIndex.set(pfn, v);
    }
  }
  /** Content tag (see page-bytes.ts): 0 = zero-filled. */
  tag(pfn: number): number {
    const c = this.chunks[pfn >>> CHUNK_SHIFT];
    if (c === undefined) return 0;
    const t = c.tag[pfn & CHUNK_MASK]!;
    return t !== TAG_BIG ? t : (this.bigTag.get(pfn) ?? 0);
  }
  setTag(pfn: number, v: number): void {
    const c = this.chunk(pfn);
    const i = pfn & CHUNK_MASK;
    if (c.tag[i] === TAG_BIG) this.bigTag.delete(pfn);
    if (v >>> 0 === v && v !== TAG_BIG) {
      c.tag[i] = v;
    } else {
      c.tag[i] = TAG_BIG;
      this.bigTag.set(pfn, v);
    }
  }
  /**
   * A freed page's content state reset in one lookup (page-bytes.ts's release): its tag becomes 0 and its
   * page-bytes slot is cleared; returns the old slot + 1 (0: none), whose buffer the caller drops.
   */
  takeBufSlotClearTag(pfn: number): number {
    const c = this.chunks[pfn >>> CHUNK_SHIFT];
    if (c === undefined) return 0; // never written: tag 0, no slot
    const i = pfn & CHUNK_MASK;
    if (c.tag[i] === TAG_BIG) this.bigTag.delete(pfn);
    c.tag[i] = 0;
    const b = c.bufSlot;
    if (b === null) return 0;
    const slot = b[i]!;
    b[i] = 0;
    return slot;
  }

  /** Page-bytes slot + 1, 0 for none (page-bytes.ts owns it). */
  bufSlot(pfn: number): number {
    const c = this.chunks[pfn >>> CHUNK_SHIFT];
    if (c === undefined) return 0;
    const b = c.bufSlot;
    return b === null ? 0 : b[pfn & CHUNK_MASK]!;
  }
  setBufSlot(pfn: number, v: number): void {
    const c = this.chunk(pfn);
    if (c.bufSlot === null) {
      if (v === 0) return;
      c.bufSlot = new Int32Array(CHUNK_SIZE);
    }
    c.bufSlot[pfn & CHUNK_MASK] = v;
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
