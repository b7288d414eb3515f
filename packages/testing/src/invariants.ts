/**
 * The invariant checker: what the kernel's debug checks (CONFIG_DEBUG_VM: bad_page, page_ref/mapcount
 * sanity in mm/rmap.c __folio_rmap_sanity_checks, check_mm's "BUG: Bad rss-counter state", mem_cgroup usage,
 * mm/debug.c) would catch, run over a whole simulated Kernel. It never changes state.
 *
 * Mappings are counted by walking every live mm's page tables, as the kernel counts them: present PTEs/PMDs, device-private
 * and device-exclusive entries each hold one mapcount and one reference of their page and one rss count;
 * migration entries hold only their rss (they exist transiently, inside a migration).
 */
import {
  AddressSpace,
  HPAGE_PMD_NR,
  MEMORY_DEVICE_PRIVATE,
  MM_COUNTER_NAMES,
  NR_MM_COUNTERS,
  PAGE_SIZE,
  PG_anon,
  PG_anon_exclusive,
  PG_locked,
  PG_reserved,
  PMD_SIZE,
  PUD_SIZE,
  VM_WRITE,
  ZONE_DEVICE,
  isCowMapping,
  isDeviceExclusiveEntry,
  isDevicePrivateEntry,
  isWritableDevicePrivateEntry,
  isMigrationEntry,
  linearPageIndex,
  mmCounter,
  pmdTransHuge,
  pteKind,
  ptePfn,
  ptePresent,
  pteSpecial,
  pteWrite,
  PAGE_SLOT_MASK,
  type Kernel,
  type Mm,
  type VmAreaStruct,
} from "@hmmsim/core";

/** One broken invariant. `rule` is a stable identifier (see README), `message` says what and where. */
export interface Violation {
  rule: string;
  message: string;
  pfn?: number;
  mmId?: number;
  addr?: number;
}

export interface InvariantOptions {
  /**
   * Migration entries may exist (a check in the middle of migrate_vma_setup..finalize). Their pages' refcounts
   * are then checked as lower bounds, since the migration holds references the checker cannot see.
   */
  allowMigrationEntries?: boolean;
  /** Locked pages may exist (a check while a driver holds a page lock). Default: a locked page is a violation. */
  allowLocked?: boolean;
  /**
   * References held outside page tables and page caches — a driver's (e.g. dmirror's backing page of a
   * device-private page), a test's get_page — as pfn → count (folio heads), or a function of the head pfn.
   */
  extraRefs?: ReadonlyMap<number, number> | ((headPfn: number) => number);
  /** Stop collecting after this many violations (default 100). */
  maxViolations?: number;
}

/** Thrown by assertInvariants: every violation found, listed in the message. */
export class InvariantViolationError extends Error {
  readonly code = "INVARIANT_VIOLATION" as const;
  constructor(readonly violations: readonly Violation[]) {
    super(
      `${violations.length} invariant violation(s):\n` + violations.map((v) => `  [${v.rule}] ${v.message}`).join("\n"),
    );
    this.name = "InvariantViolationError";
  }
}

const hex = (a: number): string => `0x${a.toString(16)}`;

class Collector {
  readonly list: Violation[] = [];
  constructor(private readonly max: number) {}
  get full(): boolean {
    return this.list.length >= this.max;
  }
  add(v: Violation): void {
    if (this.list.length < this.max) this.list.push(v);
  }
}

function inc(m: Map<number, number>, key: number, n = 1): void {
  m.set(key, (m.get(key) ?? 0) + n);
}

interface Expected {
  /** pfn → PTE-level mappings (page mapcount). */
  pteMaps: Map<number, number>;
  /** folio head → PMD-level mappings (entire mapcount). */
  pmdMaps: Map<number, number>;
  /** folio head → references held by page tables and page caches. */
  refs: Map<number, number>;
  /** folio heads referenced by migration entries. */
  migrating: Set<number>;
}

/**
 * Check every invariant over the kernel's current state. Returns the violations (empty when consistent).
 * Cost: a walk of every live mm's page tables plus a scan of every RAM and device struct page.
 */
export function checkInvariants(kernel: Kernel, opts: InvariantOptions = {}): Violation[] {
  const out = new Collector(opts.maxViolations ?? 100);
  const exp: Expected = { pteMaps: new Map(), pmdMaps: new Map(), refs: new Map(), migrating: new Set() };
  for (const mm of kernel.mms.values()) {
    checkVmas(mm, out);
    walkMm(kernel, mm, exp, opts, out);
  }
  checkPageCaches(kernel, exp, out);
  checkPages(kernel, exp, opts, out);
  return out.list;
}

/** checkInvariants, throwing InvariantViolationError listing every violation. */
export function assertInvariants(kernel: Kernel, opts?: InvariantOptions): void {
  const v = checkInvariants(kernel, opts);
  if (v.length > 0) throw new InvariantViolationError(v);
}

function checkVmas(mm: Mm, out: Collector): void {
  let prevEnd = 0;
  for (const v of mm.vmas) {
    if (v.vmStart % PAGE_SIZE !== 0 || v.vmEnd % PAGE_SIZE !== 0 || v.vmStart >= v.vmEnd || v.vmStart < prevEnd) {
      out.add({ rule: "vma_layout", mmId: mm.id, addr: v.vmStart, message: `mm ${mm.id}: VMA [${hex(v.vmStart)}, ${hex(v.vmEnd)}) is empty, unaligned or overlaps the previous one (ends ${hex(prevEnd)})` });
    }
    if (v.vmMm !== mm) out.add({ rule: "vma_layout", mmId: mm.id, addr: v.vmStart, message: `mm ${mm.id}: VMA at ${hex(v.vmStart)} belongs to mm ${v.vmMm.id}` });
    prevEnd = v.vmEnd;
  }
}

function walkMm(k: Kernel, mm: Mm, exp: Expected, opts: InvariantOptions, out: Collector): void {
  const rss = new Array<number>(NR_MM_COUNTERS).fill(0);
  for (const [key, dir] of mm.pgtable.dirs) {
    for (let i = 0; i < 512; i++) {
      const base = key * PUD_SIZE + i * PMD_SIZE;
      const pmd = dir.pmd[i]!;
      if (pmd !== 0) checkEntry(k, mm, base, pmd, true, exp, rss, opts, out);
      const t = dir.pte[i];
      if (t === null || t === undefined) continue;
      if (pmd !== 0) out.add({ rule: "pmd_and_pte_table", mmId: mm.id, addr: base, message: `mm ${mm.id}: ${hex(base)} has both a huge PMD and a PTE table` });
      for (let j = 0; j < 512; j++) {
        const e = t[j]!;
        if (e !== 0) checkEntry(k, mm, base + j * PAGE_SIZE, e, false, exp, rss, opts, out);
      }
    }
  }
  for (let c = 0; c < NR_MM_COUNTERS; c++) {
    if (mm.rss[c] !== rss[c]) {
      out.add({ rule: "rss_mismatch", mmId: mm.id, message: `mm ${mm.id}: ${MM_COUNTER_NAMES[c]} is ${mm.rss[c]}, page tables map ${rss[c]}` });
    }
  }
}

function checkEntry(
  k: Kernel,
  mm: Mm,
  addr: number,
  e: number,
  huge: boolean,
  exp: Expected,
  rss: number[],
  opts: InvariantOptions,
  out: Collector,
): void {
  const s = k.store;
  const where = `mm ${mm.id} ${huge ? "PMD" : "PTE"} ${hex(addr)} (${pteKind(e)})`;
  const vma = mm.vmaLookup(addr);
  if (vma === null || (huge && addr + PMD_SIZE > vma.vmEnd)) {
    out.add({ rule: "entry_outside_vma", mmId: mm.id, addr, message: `${where}: not inside a VMA` });
    return;
  }
  const nr = huge ? HPAGE_PMD_NR : 1;
  if (ptePresent(e)) {
    if (huge && !pmdTransHuge(e)) {
      out.add({ rule: "entry_kind", mmId: mm.id, addr, message: `${where}: present PMD without the huge bit` });
      return;
    }
    const pfn = ptePfn(e);
    if (pfn === k.zeroPfn) {
      if (pteWrite(e)) out.add({ rule: "zero_page_writable", mmId: mm.id, addr, pfn, message: `${where}: the zero page is mapped writable` });
      if (huge) out.add({ rule: "entry_kind", mmId: mm.id, addr, pfn, message: `${where}: a PMD maps the (small) zero page` });
      return;
    }
    // The huge zero folio: one read-only PMD per mapping, no reference, mapcount or rss (set_huge_zero_folio);
    // never mapped by PTEs (__split_huge_zero_page_pmd maps the small zero page).
    if (pfn >= k.hugeZeroPfn && pfn < k.hugeZeroPfn + HPAGE_PMD_NR) {
      if (!huge || pfn !== k.hugeZeroPfn) {
        out.add({ rule: "huge_zero_page_mapping", mmId: mm.id, addr, pfn, message: `${where}: huge zero folio page ${pfn} mapped other than by a PMD at its head` });
      }
      if (pteWrite(e)) out.add({ rule: "zero_page_writable", mmId: mm.id, addr, pfn, message: `${where}: the huge zero folio is mapped writable` });
      return;
    }
    if (pteSpecial(e)) {
      // VM_PFNMAP / VM_IO: no struct page to account, but never device-private memory (not CPU-addressable).
      if (validPfn(k, pfn, 1) && s.zone(pfn) === ZONE_DEVICE && k.pgmaps.pgmapOf(pfn)?.type === MEMORY_DEVICE_PRIVATE) {
        out.add({ rule: "device_private_cpu_mapped", mmId: mm.id, addr, pfn, message: `${where}: device-private pfn ${pfn} mapped by a special (pfnmap) CPU entry` });
      }
      return;
    }
    if (!validPfn(k, pfn, nr)) {
      out.add({ rule: "entry_invalid_pfn", mmId: mm.id, addr, pfn, message: `${where}: pfn ${pfn} has no struct page` });
      return;
    }
    if (s.zone(pfn) === ZONE_DEVICE && k.pgmaps.pgmapOf(pfn)?.type === MEMORY_DEVICE_PRIVATE) {
      out.add({ rule: "device_private_cpu_mapped", mmId: mm.id, addr, pfn, message: `${where}: device-private pfn ${pfn} mapped by a present CPU entry` });
    }
    if (pteWrite(e)) {
      if ((vma.vmFlags & VM_WRITE) === 0) {
        out.add({ rule: "pte_write_without_vm_write", mmId: mm.id, addr, pfn, message: `${where}: writable entry in a VMA without VM_WRITE` });
      }
      if (isCowMapping(vma.vmFlags)) {
        const head = s.folioHead(pfn);
        if (!s.test(head, PG_anon) || !s.test(pfn, PG_anon_exclusive)) {
          out.add({ rule: "cow_writable_not_exclusive", mmId: mm.id, addr, pfn, message: `${where}: writable in a COW mapping but pfn ${pfn} is ${s.test(head, PG_anon) ? "not AnonExclusive" : "not anon (page cache)"}` });
        }
      }
    }
    countMapping(k, mm, vma, addr, pfn, huge, exp, rss, out, where);
    return;
  }
  if (isDevicePrivateEntry(e) || isDeviceExclusiveEntry(e)) {
    const pfn = ptePfn(e);
    if (!validPfn(k, pfn, nr)) {
      out.add({ rule: "entry_invalid_pfn", mmId: mm.id, addr, pfn, message: `${where}: pfn ${pfn} has no struct page` });
      return;
    }
    const isPriv = s.zone(pfn) === ZONE_DEVICE && k.pgmaps.pgmapOf(pfn)?.type === MEMORY_DEVICE_PRIVATE;
    if (isDevicePrivateEntry(e) && !isPriv) {
      out.add({ rule: "device_private_entry_not_private", mmId: mm.id, addr, pfn, message: `${where}: pfn ${pfn} is not a device-private page` });
    }
    if (isDeviceExclusiveEntry(e) && isPriv) {
      out.add({ rule: "device_exclusive_of_private", mmId: mm.id, addr, pfn, message: `${where}: device-exclusive entry to device-private pfn ${pfn}` });
    }
    if (isWritableDevicePrivateEntry(e) && (vma.vmFlags & VM_WRITE) === 0) {
      out.add({ rule: "pte_write_without_vm_write", mmId: mm.id, addr, pfn, message: `${where}: writable device-private entry in a VMA without VM_WRITE` });
    }
    countMapping(k, mm, vma, addr, pfn, huge, exp, rss, out, where);
    return;
  }
  if (isMigrationEntry(e)) {
    const pfn = ptePfn(e);
    if (!opts.allowMigrationEntries) {
      out.add({ rule: "migration_entry", mmId: mm.id, addr, pfn, message: `${where}: a migration entry outside a migration` });
    }
    if (validPfn(k, pfn, nr)) {
      rss[mmCounter(k, pfn)]! += nr;
      exp.migrating.add(s.folioHead(pfn));
    }
    return;
  }
  // hwpoison, swap and marker entries hold no page.
}

function validPfn(k: Kernel, pfn: number, nr: number): boolean {
  return k.store.pfnValid(pfn) && k.store.pfnValid(pfn + nr - 1);
}

function countMapping(
  k: Kernel,
  mm: Mm,
  vma: VmAreaStruct,
  addr: number,
  pfn: number,
  huge: boolean,
  exp: Expected,
  rss: number[],
  out: Collector,
  where: string,
): void {
  const s = k.store;
  const head = s.folioHead(pfn);
  if (huge) {
    if (head !== pfn || s.folioNr(head) !== HPAGE_PMD_NR) {
      out.add({ rule: "pmd_maps_non_thp", mmId: mm.id, addr, pfn, message: `${where}: pfn ${pfn} is not the head of an order-9 folio` });
    }
    inc(exp.pmdMaps, head);
    inc(exp.refs, head);
    rss[mmCounter(k, pfn)]! += HPAGE_PMD_NR;
  } else {
    inc(exp.pteMaps, pfn);
    inc(exp.refs, head);
    rss[mmCounter(k, pfn)]! += 1;
  }
  // The reverse map must find this mapping again (rmap_walk → vma_address): page->index is
  // linear_page_index(vma, address) for anon and file pages alike; anon pages via the VMA's anon_vma (which
  // must list this mm), file pages via the VMA's file.
  const mapping = s.mapping(head);
  const idx = linearPageIndex(vma, addr);
  if (s.test(head, PG_anon)) {
    const av = vma.anonVma;
    if (av === null || mapping !== av.id || !av.mms.has(mm) || s.index(pfn) !== idx) {
      out.add({ rule: "rmap_mismatch", mmId: mm.id, addr, pfn, message: `${where}: anon pfn ${pfn} has mapping ${mapping} index ${s.index(pfn)}; the VMA's anon_vma is ${av?.id ?? "none"}${av !== null && !av.mms.has(mm) ? " (not listing this mm)" : ""}, linear_page_index ${idx}` });
    }
  } else {
    const f = vma.vmFile;
    if (f !== null && (mapping !== f.id || s.index(pfn) !== idx)) {
      out.add({ rule: "rmap_mismatch", mmId: mm.id, addr, pfn, message: `${where}: file pfn ${pfn} has mapping ${mapping} index ${s.index(pfn)}, expected file ${f.id} index ${idx}` });
    }
  }
}

function checkPageCaches(k: Kernel, exp: Expected, out: Collector): void {
  const s = k.store;
  for (const obj of k.objects.values()) {
    if (!(obj instanceof AddressSpace)) continue;
    for (const [index, pfn] of obj.pages) {
      if (!s.pfnValid(pfn) || s.refcount(pfn) <= 0 || s.mapping(pfn) !== obj.id || s.index(pfn) !== index) {
        out.add({ rule: "page_cache_mismatch", pfn, message: `file ${obj.name} index ${index}: pfn ${pfn} has refcount ${s.refcount(pfn)}, mapping ${s.mapping(pfn)}, index ${s.index(pfn)}` });
      }
      inc(exp.refs, s.folioHead(pfn));
    }
  }
}

function extraRefs(opts: InvariantOptions, head: number): number {
  const x = opts.extraRefs;
  if (x === undefined) return 0;
  return typeof x === "function" ? x(head) : (x.get(head) ?? 0);
}

function checkPages(k: Kernel, exp: Expected, opts: InvariantOptions, out: Collector): void {
  const s = k.store;
  const memcgUsage = new Map<number, number>();
  let bufPages = 0;

  // The zero page.
  const z = k.zeroPfn;
  if (s.refcount(z) !== 1 || !s.test(z, PG_reserved) || s.bufSlot(z) !== 0 || s.tag(z) !== 0 || s.mapcount(z) !== 0) {
    out.add({ rule: "zero_page", pfn: z, message: `zero page ${z}: refcount ${s.refcount(z)}, reserved ${s.test(z, PG_reserved)}, bytes ${s.bufSlot(z) !== 0}, tag ${s.tag(z)}, mapcount ${s.mapcount(z)}` });
  }

  // The huge zero folio: reserved, order 9, one reference of its own (plus any a test declares, e.g. a GUP pin),
  // never written, never counted as mapped.
  const hz = k.hugeZeroPfn;
  for (let p = hz; p < hz + HPAGE_PMD_NR; p++) {
    const bad =
      !s.test(p, PG_reserved) || s.folioHead(p) !== hz || s.bufSlot(p) !== 0 || s.tag(p) !== 0 || s.mapcount(p) !== 0 || (p === hz && s.entireMapcount(p) !== 0);
    if (bad) {
      out.add({ rule: "huge_zero_page", pfn: p, message: `huge zero folio page ${p}: reserved ${s.test(p, PG_reserved)}, head ${s.folioHead(p)}, bytes ${s.bufSlot(p) !== 0}, tag ${s.tag(p)}, mapcount ${s.mapcount(p)}, entire ${s.entireMapcount(p)}` });
      break;
    }
  }
  if (s.refcount(hz) !== 1 + extraRefs(opts, hz)) {
    out.add({ rule: "huge_zero_page", pfn: hz, message: `huge zero folio ${hz}: refcount ${s.refcount(hz)}, expected ${1 + extraRefs(opts, hz)} (its own + declared extra refs)` });
  }

  const noMms = k.mms.size === 0;
  const scan = (pfn: number, device: boolean): void => {
    if (s.bufSlot(pfn) !== 0) bufPages++;
    const isTail = s.isTail(pfn);
    const ref = s.refcount(pfn);
    const map = s.mapcount(pfn);
    const wantMap = exp.pteMaps.get(pfn) ?? 0;
    if (map !== wantMap && !out.full) {
      out.add({ rule: "mapcount_mismatch", pfn, message: `pfn ${pfn}: mapcount ${map}, page tables map it ${wantMap} time(s)` });
    }
    // PageAnonExclusive: "the page is mapped by a single process (one PTE or PMD) and may be written without COW"
    // (include/linux/page-flags.h). Two mappings of such a page let one mm's write reach the other's memory.
    if (wantMap + (exp.pmdMaps.get(s.folioHead(pfn)) ?? 0) > 1 && s.test(pfn, PG_anon_exclusive) && s.test(s.folioHead(pfn), PG_anon)) {
      out.add({ rule: "anon_exclusive_shared", pfn, message: `pfn ${pfn} is PageAnonExclusive but mapped ${wantMap + (exp.pmdMaps.get(s.folioHead(pfn)) ?? 0)} times` });
    }
    if (isTail) return;
    const nr = s.folioNr(pfn);
    if (!device) {
      const free = k.allocator.isFree(pfn);
      if (free !== (ref === 0)) {
        out.add({ rule: "allocator_mismatch", pfn, message: `pfn ${pfn}: refcount ${ref} but the allocator has it ${free ? "free" : "in use"}` });
      }
    }
    if (ref === 0) {
      const dirty = map !== 0 || s.memcgId(pfn) !== 0 || s.mapping(pfn) !== 0 || s.test(pfn, PG_locked) || s.entireMapcount(pfn) !== 0;
      if (dirty) {
        out.add({ rule: device ? "device_page_free_state" : "free_page_state", pfn, message: `free pfn ${pfn}: mapcount ${map}, entire ${s.entireMapcount(pfn)}, memcg ${s.memcgId(pfn)}, mapping ${s.mapping(pfn)}, locked ${s.test(pfn, PG_locked)}` });
      }
      if (!device && s.bufSlot(pfn) !== 0) out.add({ rule: "free_page_state", pfn, message: `free pfn ${pfn} still has a bytes buffer` });
      if (exp.refs.has(pfn)) out.add({ rule: "refcount_mismatch", pfn, message: `pfn ${pfn} is free but mapped or cached ${exp.refs.get(pfn)} time(s)` });
      return;
    }
    const memcg = s.memcgId(pfn);
    if (memcg !== 0) inc(memcgUsage, memcg, nr);
    const wantPmd = exp.pmdMaps.get(pfn) ?? 0;
    if (s.entireMapcount(pfn) !== wantPmd) {
      out.add({ rule: "entire_mapcount_mismatch", pfn, message: `folio ${pfn}: entire mapcount ${s.entireMapcount(pfn)}, PMD mappings ${wantPmd}` });
    }
    const want = (exp.refs.get(pfn) ?? 0) + extraRefs(opts, pfn);
    const lowerBound = opts.allowMigrationEntries === true && exp.migrating.has(pfn);
    if (lowerBound ? ref < want : ref !== want) {
      out.add({ rule: "refcount_mismatch", pfn, message: `folio ${pfn}: refcount ${ref}, expected ${lowerBound ? ">= " : ""}${want} (mappings + page cache + declared extra refs)` });
    }
    if (!opts.allowLocked && s.test(pfn, PG_locked)) out.add({ rule: "page_locked", pfn, message: `folio ${pfn} is locked` });
    if (noMms && !device && !exp.refs.has(pfn) && extraRefs(opts, pfn) === 0) {
      out.add({ rule: "leaked_page", pfn, message: `pfn ${pfn} (refcount ${ref}) is still allocated after every mm exited and no file caches it` });
    }
  };

  // A free page at its boot state (every struct-page field 0, no bytes, nothing maps or caches it, free in the
  // allocator) passes every check of scan(): test that in one read of its chunk, and scan the rest. The free pages
  // of RAM are most pages, and the property tests check after every step.
  // The RAM pfns the walk found mapped or cached, and the folio heads with an entire mapcount, are marked first (a
  // boot-state page is its own head, so its entire mapcount is nonzero only if it is such a head): one byte read
  // per page instead of four map lookups.
  const nrRam = k.nrRamPages;
  const forced = forcedScratch(k, nrRam);
  const marked: number[] = [];
  const mark = (pfn: number): void => {
    if (pfn >= 0 && pfn < nrRam && forced[pfn] === 0) {
      forced[pfn] = 1;
      marked.push(pfn);
    }
  };
  for (const pfn of exp.pteMaps.keys()) mark(pfn);
  for (const pfn of exp.pmdMaps.keys()) mark(pfn);
  for (const pfn of exp.refs.keys()) mark(pfn);
  for (const head of s.entireHeads()) mark(head);
  try {
    // Chunk by chunk (a chunk's struct-page arrays read directly).
    const alloc = k.allocator;
    for (let base = 0; base < nrRam; base += PAGE_SLOT_MASK + 1) {
      const c = s.pagesIfAny(base);
      const end = Math.min(base + PAGE_SLOT_MASK + 1, nrRam);
      if (c === undefined) {
        for (let pfn = base; pfn < end; pfn++) if (forced[pfn] === 1 || !alloc.isFree(pfn)) scan(pfn, false);
        continue;
      }
      const { flags, refcount, mapcount, mapping, memcgId, bufSlot } = c;
      for (let pfn = base, i = 0; pfn < end; pfn++, i++) {
        const atBoot = flags[i] === 0 && refcount[i] === 0 && mapcount[i] === 0 && mapping[i] === 0 && memcgId[i] === 0 && (bufSlot === null || bufSlot[i] === 0);
        if (!atBoot || forced[pfn] === 1 || !alloc.isFree(pfn)) scan(pfn, false);
      }
    }
  } finally {
    for (const pfn of marked) forced[pfn] = 0;
  }
  for (const rec of k.pgmaps.all()) {
    let inUse = 0;
    for (let pfn = rec.startPfn; pfn < rec.startPfn + rec.nrPages; pfn++) {
      scan(pfn, true);
      if (!s.isTail(pfn) && s.refcount(pfn) > 0) inUse += s.folioNr(pfn);
    }
    if (inUse !== rec.refs) {
      out.add({ rule: "pgmap_ref_mismatch", message: `pgmap ${rec.id}: pgmap->ref counts ${rec.refs} pages in use, ${inUse} have a refcount` });
    }
  }
  // Mapped pfns outside RAM and device ranges were reported by the walk (entry_invalid_pfn).

  for (const m of k.memcgs.all()) {
    const want = memcgUsage.get(m.id) ?? 0;
    if (m.usage !== want) out.add({ rule: "memcg_usage_mismatch", message: `memcg ${m.name}: usage ${m.usage} pages, ${want} pages charged to it` });
  }
  if (k.pageBytes.inUse !== bufPages) {
    out.add({ rule: "page_bytes_leak", message: `page-bytes pool has ${k.pageBytes.inUse} buffers in use, ${bufPages} pages own one` });
  }
}

/** One zeroed byte per RAM page, kept per kernel between checks (checkPages clears what it marked). */
const forcedByKernel = new WeakMap<Kernel, Uint8Array>();
function forcedScratch(k: Kernel, nrRam: number): Uint8Array {
  let a = forcedByKernel.get(k);
  if (a === undefined || a.length < nrRam) {
    a = new Uint8Array(nrRam);
    forcedByKernel.set(k, a);
  }
  return a;
}
