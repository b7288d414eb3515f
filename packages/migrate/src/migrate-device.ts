/**
 * mm/migrate_device.c: migrate_vma_setup (migrate_vma_collect, migrate_vma_collect_pmd / _hole / _huge_pmd,
 * migrate_vma_unmap → migrate_device_unmap, migrate_vma_check_page), migrate_vma_pages / migrate_device_pages
 * (__migrate_device_pages, migrate_vma_insert_page), migrate_vma_finalize / migrate_device_finalize
 * (__migrate_device_finalize), and the device-side eviction API migrate_device_range / migrate_device_pfns.
 *
 * Large pages: hmmsim models a kernel with CONFIG_ARCH_ENABLE_THP_MIGRATION (the mm-unstable / 7.x code). With
 * MIGRATE_VMA_SELECT_COMPOUND and a PMD-aligned chunk, a PMD-mapped THP (or huge device-private entry) is
 * collected as one COMPOUND entry under a PMD migration entry and a 2 MiB anonymous hole as one COMPOUND hole
 * (511 zero entries follow either); a COMPOUND dst moves the whole folio (huge device-private entry or PMD), a
 * COMPOUND src with a small dst splits the source (migrate_vma_split_unmapped_folio), a small src with a COMPOUND
 * dst is refused, and a COMPOUND dst in a hole is mapped by one PMD (migrate_vma_insert_huge_pmd_page). Without
 * SELECT_COMPOUND (or unaligned) a THP is split on collect (split_huge_pmd + split_folio) and collected page by
 * page. The huge zero PMD is collected as a hole (a COMPOUND hole under the same conditions), and a page inserted
 * there replaces it: a 2 MiB dst the whole PMD, a small dst one PTE after split_huge_pmd (zero-page PTEs).
 *
 * The hot path (one order-0 page mapped in one mm) allocates nothing per page: the page-table leaf is read and
 * written in place, the rmap walks use static callbacks, and finalize restores an entry collect made at its known
 * address (no rmap walk) unless try_to_migrate had to unmap the page from other mms too.
 */
import {
  EBUSY,
  GUP_PIN_COUNTING_BIAS,
  EINVAL,
  HPAGE_PMD_NR,
  HPAGE_PMD_ORDER,
  InvalidArgumentError,
  KernelRuleError,
  MEMORY_DEVICE_COHERENT,
  MEMORY_DEVICE_PRIVATE,
  MMU_NOTIFY_MIGRATE,
  MM_ANONPAGES,
  PAGE_SIZE,
  PAGE_SLOT_MASK,
  PGDIR_SIZE,
  PUD_SIZE,
  PG_anon,
  PG_active,
  PG_anon_exclusive,
  PG_dirty,
  PG_lru,
  PG_referenced,
  PG_swapbacked,
  PG_head,
  PG_locked,
  PG_reserved,
  PG_tail,
  PG_uptodate,
  PMD_SIZE,
  VM_SPECIAL,
  VM_WRITE,
  ZONE_DEVICE,
  addMmCounter,
  alignDown,
  folioTestLocked,
  folioTrylock,
  folioTryGet,
  folioUnlock,
  getPage,
  incMmCounter,
  invalidateEnd,
  invalidateStart,
  isDevicePrivateEntry,
  isHugeZeroPmd,
  isMigrationEntry,
  isDevicePrivatePage,
  isVmHugetlbPage,
  isWritableDevicePrivateEntry,
  makeDevicePrivateEntry,
  makeMigrationEntry,
  memcgCharge,
  mmapAssertLocked,
  pageAddNewAnonRmap,
  pagePgmap,
  pfnPmd,
  pfnPte,
  pmdMkhuge,
  pmdTransHuge,
  pteDirty,
  ptePfn,
  ptePresent,
  pteSoftDirty,
  pteSpecial,
  pteWrite,
  pteYoung,
  putPage,
  splitFolio,
  splitHugePmd,
  vmaIsAnonymous,
  type Kernel,
  type Mm,
  type MmuNotifierRange,
  type VmAreaStruct,
} from "@hmmsim/core";
import {
  folioAddLru,
  folioIsolateLru,
  folioMigrateFlags,
  folioMigrateMapping,
  folioPutbackLru,
  lruAddDrainFolio,
  removeMigrationPtes,
  removeMigrationPteAt,
  removeMigrationPtesAt,
} from "./migrate.js";
import {
  MIGRATE_PFN_COMPOUND,
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_VALID,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_ALL,
  MIGRATE_VMA_SELECT_COMPOUND,
  MIGRATE_VMA_SELECT_DEVICE_COHERENT,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM,
  migratePfn,
  migratePfnToPage,
  mpfnClear,
  mpfnFlags,
  mpfnSet,
  type MigrateVma,
  type MpfnArray,
} from "./migrate-pfn.js";
import { folioSplitUnmapped, setPmdMigrationEntry } from "./huge-memory.js";
import { rmapWalkFolio, tryToMigrate } from "./rmap.js";

const _PAGE_DIRTY = 1 << 2;
const _PAGE_ACCESSED = 1 << 3;
const _PAGE_SOFT_DIRTY = 1 << 6;

// --- order-0 paths ------------------------------------------------------------------------------------------
/**
 * unmapSmallFolio, migrateSmallFolio and finalizeSmallFolio do, for an order-0 folio, exactly the steps the
 * general per-folio code does, with each struct page read from its chunk once (PageStore.pagesOf) instead of once
 * per accessor: most migrations are of small pages, and this halves their host cost. migrate-small-folio.test.ts
 * turns them off (not exported from the package) and checks that random sequences give the same state.
 */
let smallFolioPaths = true;
export function setSmallFolioPaths(on: boolean): void {
  smallFolioPaths = on;
}

// --- the migrate_vma call sequence --------------------------------------------------------------------------
const PHASE_SETUP = 1;
const PHASE_PAGES = 2;
interface Phase {
  phase: number;
  /** Pages are locked and unmapped (cpages > 0 after setup): finalize is owed. */
  busy: boolean;
  /**
   * Entries whose folio try_to_migrate unmapped from other places too (shared after fork): finalize walks the
   * rmap for those; for the rest the only migration entry is the one collect made at start + i * PAGE_SIZE. null
   * when there are none.
   */
  shared: Uint8Array | null;
}
const phases = new WeakMap<MigrateVma, Phase>();

function faultPageOf(args: MigrateVma): number {
  const fp = args.faultPage;
  return fp === null || fp === undefined || fp < 0 ? -1 : fp;
}

function checkMpfnArray(field: string, a: unknown, n: number): void {
  if (!(a instanceof Float64Array) && !Array.isArray(a)) throw new InvalidArgumentError(field, "must be a Float64Array or number[]");
  if (a.length < n) throw new InvalidArgumentError(field, `must hold at least ${n} entries`, a.length);
}

/**
 * migrate_vma_setup(args): validate, collect the pages of [start, end) (MMU_NOTIFY_MIGRATE, owner = pgmapOwner,
 * over the whole range), lock and unmap them (migration entries), restore the pinned ones. Returns 0 (even when
 * nothing is collectable) or -EINVAL (migrate_vma_setup's checks: no VMA, hugetlb / VM_SPECIAL VMA, empty range, range
 * outside the VMA, no src/dst, a fault page that is not a locked device-private page). The caller holds the mmap
 * lock. Bad argument types throw InvalidArgumentError; calling it again before finalize throws KernelRuleError.
 */
export function migrateVmaSetup(args: MigrateVma): number {
  if (args === null || typeof args !== "object") throw new InvalidArgumentError("args", "must be a MigrateVma");
  for (const f of ["start", "end"] as const) {
    if (!Number.isSafeInteger(args[f]) || args[f] < 0) throw new InvalidArgumentError(f, "must be an integer >= 0", args[f]);
  }
  if (!Number.isInteger(args.flags) || (args.flags & ~MIGRATE_VMA_SELECT_ALL) !== 0)
    throw new InvalidArgumentError("flags", "unknown MIGRATE_VMA_SELECT_* bits", args.flags);
  const fp0 = args.faultPage;
  if (fp0 !== null && fp0 !== undefined && !Number.isInteger(fp0)) throw new InvalidArgumentError("faultPage", "must be a pfn or null", fp0);

  const nrPages = Math.floor((args.end - args.start) / PAGE_SIZE);
  args.start = alignDown(args.start, PAGE_SIZE);
  args.end = alignDown(args.end, PAGE_SIZE);
  const vma = args.vma;
  if (vma === null || vma === undefined || isVmHugetlbPage(vma) || (vma.vmFlags & VM_SPECIAL) !== 0) return -EINVAL;
  if (nrPages <= 0) return -EINVAL;
  if (args.start < vma.vmStart || args.start >= vma.vmEnd) return -EINVAL;
  if (args.end <= vma.vmStart || args.end > vma.vmEnd) return -EINVAL;
  if (args.src === null || args.src === undefined || args.dst === null || args.dst === undefined) return -EINVAL;
  const mm = vma.vmMm;
  const k = mm.kernel;
  const fp = faultPageOf(args);
  if (fp >= 0 && (!k.store.pfnValid(fp) || !isDevicePrivatePage(k, fp))) return -EINVAL;
  if (fp >= 0 && !folioTestLocked(k, fp)) return -EINVAL;

  mm.assertLive("vma");
  if (mm.vmaLookup(vma.vmStart) !== vma) throw new InvalidArgumentError("vma", "is not a VMA of its mm (unmapped?)");
  const n = (args.end - args.start) / PAGE_SIZE;
  checkMpfnArray("src", args.src, n);
  checkMpfnArray("dst", args.dst, n);
  const ph = phases.get(args);
  if (ph !== undefined && ph.busy)
    throw new KernelRuleError("migrate_vma_setup_before_finalize", "the previous migration of this MigrateVma was not finalized");
  mmapAssertLocked(mm);

  args.src.fill(0, 0, nrPages);
  args.cpages = 0;
  args.npages = 0;
  migrateVmaCollect(args, k, mm, vma);
  unmapShared = null;
  if (args.cpages > 0) args.cpages = migrateDeviceUnmap(k, args.src, args.npages, fp);
  phases.set(args, { phase: PHASE_SETUP, busy: args.cpages > 0, shared: unmapShared });
  unmapShared = null;
  return 0;
}

/**
 * migrate_vma_pages(args): move struct page state from each src to its dst (folio_migrate_mapping +
 * folio_migrate_flags, memcg charge included) and insert dst pages into holes (MMU_NOTIFY_MIGRATE with owner,
 * from the first hole to end). Entries that cannot move lose MIGRATE_PFN_MIGRATE. Throws KernelRuleError without
 * a prior migrateVmaSetup or when a dst page is not an allocated, locked, unmapped page.
 */
export function migrateVmaPages(args: MigrateVma): void {
  const ph = phases.get(args);
  if (ph === undefined || ph.phase !== PHASE_SETUP) {
    throw new KernelRuleError(
      ph === undefined ? "migrate_vma_pages_without_setup" : "migrate_vma_pages_called_twice",
      "call migrateVmaSetup first, then migrateVmaPages once, then migrateVmaFinalize",
    );
  }
  const vma = args.vma!;
  mmapAssertLocked(vma.vmMm);
  migrateDevicePagesImpl(vma.vmMm.kernel, args.src!, args.dst!, args.npages, args);
  ph.phase = PHASE_PAGES;
}

/**
 * migrate_vma_finalize(args): map the dst of every migrated entry where the migration entries are (in every mm),
 * restore the src elsewhere, unlock and put everything. Straight after setup (no migrateVmaPages) it restores every
 * source page: the error path of lib/test_hmm.c's dmirror_migrate_to_system / dmirror_devmem_fault, legal as long
 * as no entry still has MIGRATE and a dst page. Such an entry the kernel's __migrate_device_finalize would hand to
 * remove_migration_ptes(src, dst) with a dst that folio_migrate_mapping never gave src's mapping: the rmap walk
 * finds nothing, the migration entries stay and src is put under them. hmmsim throws KernelRuleError
 * (migrate_vma_finalize_dst_without_pages) instead, with nothing changed: the driver frees and clears those dst
 * entries first, or calls migrateVmaPages. Without setup: migrate_vma_finalize_without_setup.
 */
export function migrateVmaFinalize(args: MigrateVma): void {
  const ph = phases.get(args);
  if (ph === undefined) {
    throw new KernelRuleError("migrate_vma_finalize_without_setup", "call migrateVmaSetup, then migrateVmaPages, then migrateVmaFinalize");
  }
  if (ph.phase !== PHASE_PAGES) {
    const src = args.src!;
    const dst = args.dst!;
    for (let i = 0; i < args.npages; i++) {
      if ((src[i]! & MIGRATE_PFN_MIGRATE) !== 0 && migratePfnToPage(dst[i]!) >= 0) {
        throw new KernelRuleError(
          "migrate_vma_finalize_dst_without_pages",
          `dst[${i}] holds pfn ${migratePfnToPage(dst[i]!)} but migrateVmaPages did not run: call it, or unlock/put that page and set dst[${i}] = 0, before migrateVmaFinalize`,
        );
      }
    }
  }
  const k = args.vma!.vmMm.kernel;
  migrateDeviceFinalizeImpl(k, args.src!, args.dst!, args.npages, faultPageOf(args), args, ph.shared);
  phases.delete(args);
}

// --- collect ------------------------------------------------------------------------------------------------
/**
 * migrate_vma_collect(): the walk (walk_page_range with migrate_vma_walk_ops), bracketed by MMU_NOTIFY_MIGRATE with
 * the owner. As walk_pgd_range / walk_pud_range / walk_pmd_range do, a missing table at any level is one pte_hole
 * (migrate_vma_collect_hole) over that table's whole extent inside the range: a PGD entry (512 GiB) or PUD entry
 * (1 GiB) with no table under it, or an empty PMD (2 MiB); present PMDs go to migrate_vma_collect_pmd.
 */
function migrateVmaCollect(args: MigrateVma, k: Kernel, mm: Mm, vma: VmAreaStruct): void {
  const range = invalidateStart(mm, MMU_NOTIFY_MIGRATE, args.start, args.end, args.pgmapOwner);
  const pt = mm.pgtable;
  let unmapped = 0;
  for (let addr = args.start; addr < args.end; ) {
    if (!pt.hasDir(addr)) {
      // pud_none (no PMD table): the hole spans to the PUD's end, or to the PGD's end when pgd_none too.
      const size = pt.hasPgdEntry(addr) ? PUD_SIZE : PGDIR_SIZE;
      const next = Math.min(args.end, Math.floor(addr / size) * size + size);
      collectHole(args, vma, addr, next);
      addr = next;
      continue;
    }
    const next = Math.min(args.end, alignDown(addr, PMD_SIZE) + PMD_SIZE);
    unmapped += migrateVmaCollectPmd(args, k, mm, vma, addr, next);
    addr = next;
  }
  if (k.charge !== null && unmapped > 0) k.charge("tlbShootdown", unmapped);
  invalidateEnd(range);
  args.end = args.start + args.npages * PAGE_SIZE;
}

/** migrate_vma_collect_skip(). */
function collectSkip(args: MigrateVma, start: number, end: number): void {
  const src = args.src!;
  const dst = args.dst!;
  for (let a = start; a < end; a += PAGE_SIZE) {
    dst[args.npages] = 0;
    src[args.npages++] = 0;
  }
}

/** Collect [start, end) as one COMPOUND (PMD-sized) entry: SELECT_COMPOUND and both ends PMD-aligned. */
function collectCompound(args: MigrateVma, start: number, end: number): boolean {
  return (args.flags & MIGRATE_VMA_SELECT_COMPOUND) !== 0 && start % PMD_SIZE === 0 && end % PMD_SIZE === 0;
}

/**
 * migrate_vma_collect_hole(): only anonymous memory may be populated. With SELECT_COMPOUND and a hole whose start
 * and end are PMD-aligned, the hole is one MIGRATE|COMPOUND entry followed by zero entries up to its end ("in case
 * we need to split later"), however long it is: the walker hands it a whole missing PUD or PGD extent, so a 4 MiB
 * aligned range with no page table under it collects one COMPOUND entry (cpages 1) and 1023 zero entries, and only
 * its first 2 MiB can be populated (migrate_vma_pages inserts HPAGE_PMD_NR pages for a COMPOUND hole). Otherwise
 * every page of the hole is a MIGRATE entry.
 */
function collectHole(args: MigrateVma, vma: VmAreaStruct, start: number, end: number): void {
  if (!vmaIsAnonymous(vma)) {
    collectSkip(args, start, end);
    return;
  }
  const src = args.src!;
  const dst = args.dst!;
  if (collectCompound(args, start, end)) {
    dst[args.npages] = 0;
    src[args.npages++] = MIGRATE_PFN_MIGRATE + MIGRATE_PFN_COMPOUND;
    args.cpages++;
    collectSkip(args, start + PAGE_SIZE, end);
    return;
  }
  for (let a = start; a < end; a += PAGE_SIZE) {
    dst[args.npages] = 0;
    src[args.npages++] = MIGRATE_PFN_MIGRATE;
    args.cpages++;
  }
}

/** Pfn of a large folio collectPte wants split (a return of NEED_SPLIT). */
let splitPfn = -1;
const NEED_SPLIT = -1;

/**
 * migrate_vma_collect_pmd() for one PMD's worth [start, end). Returns the number of present PTEs unmapped (TLB
 * flush count).
 */
function migrateVmaCollectPmd(args: MigrateVma, k: Kernel, mm: Mm, vma: VmAreaStruct, start: number, end: number): number {
  const pt = mm.pgtable;
  let addr = start;
  let unmapped = 0;
  for (let tries = 0; tries <= 512; tries++) {
    const pmd = pt.pmdGet(addr);
    if (pmd !== 0) {
      if (migrateVmaCollectHugePmd(args, k, mm, vma, pmd, start, end) === 0) return unmapped;
    }
    const t = pt.pteTable(addr, false);
    if (t === null) {
      collectHole(args, vma, addr, end);
      return unmapped;
    }
    let needSplit = false;
    let idx = (Math.floor(addr / PAGE_SIZE) & 511);
    for (; addr < end; addr += PAGE_SIZE, idx++) {
      const pte = t[idx]!;
      const mpfn = collectPte(args, k, vma, t, idx, pte);
      if (mpfn === NEED_SPLIT) {
        needSplit = true;
        break;
      }
      if (mpfn !== 0 && (mpfn & MIGRATE_PFN_VALID) !== 0 && ptePresent(pte)) unmapped++;
      args.dst![args.npages] = 0;
      args.src![args.npages++] = mpfn;
    }
    if (!needSplit) return unmapped;
    if (migrateVmaSplitFolio(k, splitPfn, faultPageOf(args)) !== 0) {
      // migrate_vma_collect_pmd(): `return migrate_vma_collect_skip(addr, end, walk)`: a PTE-mapped large folio that
      // cannot be split (pinned, referenced, locked) ends this PMD's chunk: it and every entry after it in the chunk
      // (holes and other folios included) are skipped; the entries before it stay collected. (An early version of
      // the THP-migration series did `goto next` for that page only; the merged code skips the rest.)
      collectSkip(args, addr, end);
      return unmapped;
    }
    // goto again: re-read the PTE table from addr.
  }
  throw new KernelRuleError("migrate_vma_collect_pmd_no_progress", `0x${addr.toString(16)}`);
}

/**
 * One PTE of migrate_vma_collect_pmd(): returns the src mpfn (0 = skipped), or NEED_SPLIT with splitPfn set.
 * A collected page is referenced, locked, and its PTE replaced by a migration entry (rmap removed, mapping ref
 * put; rss unchanged).
 */
function collectPte(args: MigrateVma, k: Kernel, vma: VmAreaStruct, t: Float64Array, idx: number, pte: number): number {
  const s = k.store;
  const flags = args.flags;
  if (pte === 0) {
    if (vmaIsAnonymous(vma)) {
      args.cpages++;
      return MIGRATE_PFN_MIGRATE;
    }
    return 0;
  }
  const present = ptePresent(pte);
  const pfn = ptePfn(pte);
  // The page's struct page (undefined: never written, all fields 0), read from one chunk below.
  const c = s.pagesIfAny(pfn);
  const ci = pfn & PAGE_SLOT_MASK;
  let mpfn: number;
  /** is_device_private_page(): folio_try_share_anon_rmap_pte skips its pin check for one. */
  let devicePrivate = false;
  if (!present) {
    // Only device-private entries are migratable; swap, migration, exclusive and other entries are skipped.
    if (!isDevicePrivateEntry(pte)) return 0;
    if ((flags & MIGRATE_VMA_SELECT_DEVICE_PRIVATE) === 0) return 0;
    const pgmap = pagePgmap(k, pfn);
    if (pgmap?.owner !== args.pgmapOwner) return 0;
    devicePrivate = pgmap !== null && pgmap.type === MEMORY_DEVICE_PRIVATE && s.zone(pfn) === ZONE_DEVICE;
    if (c !== undefined && c.order[ci] !== 0) {
      splitPfn = pfn;
      return NEED_SPLIT;
    }
    mpfn = migratePfn(pfn) + MIGRATE_PFN_MIGRATE + (isWritableDevicePrivateEntry(pte) ? MIGRATE_PFN_WRITE : 0);
  } else {
    if (pfn === k.zeroPfn && (flags & MIGRATE_VMA_SELECT_SYSTEM) !== 0) {
      args.cpages++;
      return MIGRATE_PFN_MIGRATE;
    }
    // vm_normal_page(): NULL for the zero page and special PTEs.
    if (pteSpecial(pte) || pfn === k.zeroPfn) return 0;
    if (s.zone(pfn) !== ZONE_DEVICE) {
      if ((flags & MIGRATE_VMA_SELECT_SYSTEM) === 0) return 0;
    } else {
      const pgmap = pagePgmap(k, pfn);
      if (pgmap !== null && pgmap.type === MEMORY_DEVICE_COHERENT) {
        if ((flags & MIGRATE_VMA_SELECT_DEVICE_COHERENT) === 0 || pgmap.owner !== args.pgmapOwner) return 0;
      }
      devicePrivate = pgmap !== null && pgmap.type === MEMORY_DEVICE_PRIVATE;
    }
    if (c !== undefined && c.order[ci] !== 0) {
      splitPfn = pfn;
      return NEED_SPLIT;
    }
    mpfn = migratePfn(pfn) + MIGRATE_PFN_MIGRATE + (pteWrite(pte) ? MIGRATE_PFN_WRITE : 0);
  }
  // An order-0 folio from here on: its struct page is its folio's.
  if (c === undefined || c.mapping[ci] === 0) return 0;

  c.refcount[ci]++; // folio_get
  const fault = pfn === faultPageOf(args);
  let f = c.flags[ci]!;
  if (!fault) {
    // folio_trylock
    if ((f & PG_locked) !== 0) {
      putPage(k, pfn);
      return 0;
    }
    f |= PG_locked;
    c.flags[ci] = f;
  }
  const anonExclusive = (f & (PG_anon | PG_anon_exclusive)) === (PG_anon | PG_anon_exclusive);
  t[idx] = 0; // ptep_clear_flush / ptep_get_and_clear
  // folio_try_share_anon_rmap_pte() on an order-0 folio: -EBUSY if it may be pinned (folio_maybe_dma_pinned: refcount
  // >= GUP_PIN_COUNTING_BIAS; not checked for a device-private page), else PageAnonExclusive is cleared.
  if (anonExclusive && !devicePrivate && c.refcount[ci]! >= GUP_PIN_COUNTING_BIAS) {
    t[idx] = pte;
    if (!fault) folioUnlock(k, pfn);
    putPage(k, pfn);
    return 0;
  }
  if (anonExclusive) c.flags[ci] = c.flags[ci]! & ~PG_anon_exclusive;
  args.cpages++;
  let e: number;
  if (present) {
    if (pteDirty(pte)) c.flags[ci] = c.flags[ci]! | PG_dirty; // folio_mark_dirty
    e = makeMigrationEntry(pfn, (mpfn & MIGRATE_PFN_WRITE) !== 0 ? "write" : anonExclusive ? "read-exclusive" : "read");
    if (pteYoung(pte)) e += _PAGE_ACCESSED;
    if (pteDirty(pte)) e += _PAGE_DIRTY;
  } else {
    e = makeMigrationEntry(pfn, (mpfn & MIGRATE_PFN_WRITE) !== 0 ? "write" : anonExclusive ? "read-exclusive" : "read");
  }
  if (pteSoftDirty(pte)) e += _PAGE_SOFT_DIRTY;
  t[idx] = e;
  // folio_remove_rmap_pte
  const mc = c.mapcount[ci]!;
  if (mc <= 0) throw new KernelRuleError("page_mapcount_underflow", `pfn ${pfn}`);
  c.mapcount[ci] = mc - 1;
  c.refcount[ci]--; // folio_put: the collector's reference keeps it alive
  if (k.charge !== null) k.charge("pteUpdate", 1);
  return mpfn;
}

/**
 * migrate_vma_collect_huge_pmd(): the huge zero PMD (SELECT_SYSTEM) is collected as a hole (is_huge_zero_folio →
 * migrate_vma_collect_hole). A present THP (SELECT_SYSTEM) or a huge device-private entry
 * (SELECT_DEVICE_PRIVATE + owner) is referenced and locked (else skipped). With SELECT_COMPOUND and a PMD-aligned
 * chunk it becomes one entry migrate_pfn(head) | MIGRATE | COMPOUND [| WRITE] under a PMD migration entry
 * (set_pmd_migration_entry), 511 zero entries after it (returns 0). Otherwise, or when the folio may be pinned,
 * it is split (split_huge_pmd + split_folio) and the caller collects it PTE by PTE (returns -1), or the chunk is
 * skipped when the split fails. Other huge entries (PMD migration entries) are skipped.
 */
function migrateVmaCollectHugePmd(
  args: MigrateVma,
  k: Kernel,
  mm: Mm,
  vma: VmAreaStruct,
  pmd: number,
  start: number,
  end: number,
): number {
  const s = k.store;
  const head = ptePfn(pmd);
  let write = 0;
  if (pmdTransHuge(pmd)) {
    if ((args.flags & MIGRATE_VMA_SELECT_SYSTEM) === 0) {
      collectSkip(args, start, end);
      return 0;
    }
    // is_huge_zero_folio(): the huge zero PMD is a hole (one COMPOUND entry with SELECT_COMPOUND and a PMD-aligned
    // chunk, else a MIGRATE hole per page); nothing is locked or unmapped, the insert replaces it.
    if (k.isHugeZeroPfn(head)) {
      collectHole(args, vma, start, end);
      return 0;
    }
    if (pteWrite(pmd)) write = MIGRATE_PFN_WRITE;
  } else {
    if (
      !isDevicePrivateEntry(pmd) ||
      (args.flags & MIGRATE_VMA_SELECT_DEVICE_PRIVATE) === 0 ||
      pagePgmap(k, head)?.owner !== args.pgmapOwner
    ) {
      collectSkip(args, start, end);
      return 0;
    }
    if (isWritableDevicePrivateEntry(pmd)) write = MIGRATE_PFN_WRITE;
  }
  const fp = faultPageOf(args);
  const faultFolio = fp >= 0 && s.folioHead(fp) === head;
  getPage(k, head);
  if (!faultFolio && !folioTrylock(k, head)) {
    putPage(k, head);
    collectSkip(args, start, end);
    return 0;
  }
  if (collectCompound(args, start, end)) {
    const haddr = alignDown(start, PMD_SIZE);
    if (setPmdMigrationEntry(k, mm, haddr, pmd, head) === 0) {
      args.dst![args.npages] = 0;
      args.src![args.npages++] = migratePfn(head) + write + MIGRATE_PFN_MIGRATE + MIGRATE_PFN_COMPOUND;
      args.cpages++;
      collectSkip(args, start + PAGE_SIZE, end);
      return 0;
    }
    // fallback (a maybe-pinned folio): the split below fails on its references and the chunk is skipped
  }
  // fallback: split_folio(), the fault folio included (the current migrate_vma_collect_huge_pmd splits whatever it
  // holds; an older one did WARN_ON_ONCE(fault_folio == folio) and skipped the chunk): can_split_folio first (a
  // folio with references beyond its mappings and the caller's one stays as it is and the chunk is skipped — for
  // the fault folio that is do_huge_pmd_device_private's reference besides ours), then every PMD mapping of it (this
  // mm's and, after fork, others') is split and the folio becomes order-0 folios; the split unlocks all but the
  // head, which keeps the lock (ours, or the fault path's) and the reference.
  const ret = splitFolio(k, head, 1);
  if (!faultFolio) folioUnlock(k, head);
  putPage(k, head);
  if (ret !== 0) {
    collectSkip(args, start, end);
    return 0;
  }
  if (mm.pgtable.pmdGet(start) === 0 && mm.pgtable.pteTable(start, false) === null) {
    collectHole(args, vma, start, end);
    return 0;
  }
  return -1; // -ENOENT: collect the PTEs
}

/**
 * migrate_vma_split_folio(): split a PTE-mapped large folio met by collect (split_folio, device-private folios
 * through the pgmap's folio_split op). 0, or -EBUSY when the folio is locked by someone else (folio_lock would
 * sleep) or holds extra references. The fault page's folio is already locked and referenced by the fault path:
 * after the split that lock and reference move to the fault page's new folio.
 */
function migrateVmaSplitFolio(k: Kernel, pfn: number, faultPage: number): number {
  const s = k.store;
  const head = s.folioHead(pfn);
  const faultFolio = faultPage >= 0 ? s.folioHead(faultPage) : -1;
  if (head !== faultFolio) {
    getPage(k, head);
    if (!folioTrylock(k, head)) {
      putPage(k, head);
      return -EBUSY;
    }
  }
  const ret = splitFolio(k, head, 1);
  if (ret !== 0) {
    if (head !== faultFolio) {
      folioUnlock(k, head);
      putPage(k, head);
    }
    return ret;
  }
  const newFaultFolio = faultPage >= 0 ? s.folioHead(faultPage) : -1;
  if (newFaultFolio !== head) {
    if (newFaultFolio >= 0 && newFaultFolio !== faultFolio) {
      getPage(k, newFaultFolio);
      folioTrylock(k, newFaultFolio);
    }
    folioUnlock(k, head);
    putPage(k, head);
  }
  return 0;
}

// --- unmap ---------------------------------------------------------------------------------------------------
/**
 * migrate_vma_check_page(): false when the page is pinned: refcount - extra > folio_mapcount, with extra = 1 (the
 * collector's or isolation reference) + 1 for the fault page + 1 for ZONE_DEVICE + 1 for a page-cache folio.
 */
export function migrateVmaCheckPage(k: Kernel, pfn: number, faultPage: number): boolean {
  const s = k.store;
  let extra = 1 + (pfn === faultPage ? 1 : 0);
  if (s.zone(pfn) === ZONE_DEVICE) extra++;
  if (!s.test(pfn, PG_anon) && s.mapping(pfn) !== 0) extra += 1;
  return s.refcount(pfn) - extra <= s.folioMapcount(pfn);
}

/** Set by migrateDeviceUnmap: entries whose folio try_to_migrate had to unmap elsewhere too (see Phase.shared). */
let unmapShared: Uint8Array | null = null;

/**
 * migrate_device_unmap(): isolate system pages from the LRU, replace remaining mappings (other mms after fork)
 * by migration entries (try_to_migrate, MMU_NOTIFY_CLEAR per mapping), and restore every page that is still
 * mapped or pinned: its migration entries become its PTEs again, it is unlocked and put, src[i] = 0. Returns the
 * number of entries still migrating (holes included).
 */
function migrateDeviceUnmap(k: Kernel, src: MpfnArray, npages: number, faultPage: number): number {
  const s = k.store;
  let restore = 0;
  let unmapped = 0;
  for (let i = 0; i < npages; ) {
    const m = src[i]!;
    const pfn = migratePfnToPage(m);
    if (pfn < 0) {
      if ((m & MIGRATE_PFN_MIGRATE) !== 0) unmapped++;
      i++;
      continue;
    }
    const nr = s.folioNr(pfn);
    const zoneDevice = s.zone(pfn) === ZONE_DEVICE;
    const small = nr === 1 && smallFolioPaths;
    if (small) {
      const r = unmapSmallFolio(k, pfn, zoneDevice, faultPage);
      if (r === UNMAP_OK) {
        unmapped++;
        i++;
        continue;
      }
      if (r === UNMAP_RESTORE) {
        src[i] = mpfnClear(m, MIGRATE_PFN_MIGRATE);
        restore++;
        i++;
        continue;
      }
      // UNMAP_MAPPED: isolated, still mapped elsewhere (after fork): the general steps below from try_to_migrate
    }
    if (nr > 1 && (m & MIGRATE_PFN_COMPOUND) === 0) src[i] = mpfnSet(m, MIGRATE_PFN_COMPOUND);
    if (!zoneDevice && !small) {
      if (!s.test(pfn, PG_lru)) lruAddDrainFolio(k, pfn);
      if (!folioIsolateLru(k, pfn)) {
        src[i] = mpfnClear(src[i]!, MIGRATE_PFN_MIGRATE);
        restore++;
        i += nr;
        continue;
      }
      putPage(k, pfn); // drop the reference taken in collect
    }
    if (s.folioMapped(pfn)) {
      if (unmapShared === null) unmapShared = new Uint8Array(npages);
      unmapShared[i] = 1;
      tryToMigrate(k, pfn);
    }
    if (s.folioMapped(pfn) || !migrateVmaCheckPage(k, pfn, faultPage)) {
      if (!zoneDevice) {
        getPage(k, pfn);
        folioPutbackLru(k, pfn);
      }
      src[i] = mpfnClear(src[i]!, MIGRATE_PFN_MIGRATE);
      restore++;
      i += nr;
      continue;
    }
    unmapped++;
    i += nr;
  }
  for (let i = 0; i < npages && restore > 0; i++) {
    const m = src[i]!;
    const pfn = migratePfnToPage(m);
    if (pfn < 0 || (m & MIGRATE_PFN_MIGRATE) !== 0) continue;
    removeMigrationPtes(k, pfn, pfn);
    src[i] = 0;
    if (pfn !== faultPage) folioUnlock(k, pfn);
    putPage(k, pfn);
    restore--;
  }
  return unmapped;
}

const UNMAP_OK = 0;
const UNMAP_RESTORE = 1;
const UNMAP_MAPPED = 2;

/**
 * The first steps of migrate_device_unmap() for an order-0 folio, its struct page read from one chunk: a system
 * page is isolated from the LRU (after the drain) and collect's reference dropped (folio_isolate_lru takes one, so
 * the count is unchanged and cannot reach 0); if no mapping is left, migrate_vma_check_page decides. UNMAP_OK: it
 * migrates; UNMAP_RESTORE: not on the LRU, or pinned (a system page back on the LRU with its reference, as the
 * general path's folio_putback_lru leaves it); UNMAP_MAPPED: isolated and still mapped elsewhere: the caller goes
 * on with try_to_migrate.
 */
function unmapSmallFolio(k: Kernel, pfn: number, zoneDevice: boolean, faultPage: number): number {
  const s = k.store;
  const c = s.pagesOf(pfn);
  const ci = pfn & PAGE_SLOT_MASK;
  if (!zoneDevice) {
    if ((c.flags[ci]! & PG_lru) === 0) lruAddDrainFolio(k, pfn);
    const f = c.flags[ci]!;
    if ((f & PG_lru) === 0) return UNMAP_RESTORE; // folio_isolate_lru failed
    c.flags[ci] = f & ~PG_lru; // folio_isolate_lru (+1) and folio_put of collect's reference (-1)
  }
  if (c.mapcount[ci]! > 0) return UNMAP_MAPPED;
  // migrate_vma_check_page()
  const f = c.flags[ci]!;
  const extra = 1 + (pfn === faultPage ? 1 : 0) + (zoneDevice ? 1 : 0) + ((f & PG_anon) === 0 && c.mapping[ci] !== 0 ? 1 : 0);
  if (c.refcount[ci]! - extra <= 0) return UNMAP_OK;
  if (!zoneDevice) c.flags[ci] = f | PG_lru; // getPage + folio_putback_lru: back on the LRU, count unchanged
  return UNMAP_RESTORE;
}

// --- pages ---------------------------------------------------------------------------------------------------
/** Checks every dst before anything changes, so a broken rule leaves state as it was. */
function checkDstPages(k: Kernel, src: MpfnArray, dst: MpfnArray, npages: number, migrate: MigrateVma | null): void {
  const s = k.store;
  for (let i = 0; i < npages; i++) {
    const d = dst[i]!;
    if (d === 0) continue;
    if (!Number.isSafeInteger(d) || d < 0) throw new InvalidArgumentError(`dst[${i}]`, "must be 0 or a migrate_pfn word", d);
    const np = migratePfnToPage(d);
    if (np < 0) continue;
    if (!s.pfnValid(np)) throw new InvalidArgumentError(`dst[${i}]`, "pfn has no struct page", np);
    const c = s.pagesIfAny(np);
    const ci = np & PAGE_SLOT_MASK;
    if (c === undefined) throw new KernelRuleError("migrate_pages_dst_not_allocated", `dst[${i}] pfn ${np} is a free page`);
    const f = c.flags[ci]!;
    if ((d & MIGRATE_PFN_COMPOUND) === 0 && (f & (PG_head | PG_tail)) === 0 && c.order[ci] === 0) {
      // An order-0 page is its own folio: the checks below, each read once from the page itself.
      if (c.refcount[ci]! <= 0) throw new KernelRuleError("migrate_pages_dst_not_allocated", `dst[${i}] pfn ${np} is a free page`);
      if ((f & PG_locked) === 0) throw new KernelRuleError("migrate_pages_dst_not_locked", `dst[${i}] pfn ${np}: lock the page (lock_page / zone_device_page_init) before migrate_vma_pages`);
      if ((f & PG_reserved) !== 0 || c.mapcount[ci]! > 0 || c.mapping[ci] !== 0)
        throw new KernelRuleError("migrate_pages_dst_in_use", `dst[${i}] pfn ${np} is mapped or belongs to a mapping`);
      const sp0 = migratePfnToPage(src[i]!);
      if (sp0 === np) throw new KernelRuleError("migrate_pages_dst_is_src", `dst[${i}] pfn ${np}`);
      if (sp0 < 0 && migrate === null && (src[i]! & MIGRATE_PFN_MIGRATE) !== 0)
        throw new KernelRuleError("migrate_device_pages_hole_without_vma", `src[${i}] has MIGRATE and no page`);
      continue;
    }
    if (s.refcount(np) <= 0) throw new KernelRuleError("migrate_pages_dst_not_allocated", `dst[${i}] pfn ${np} is a free page`);
    if (!folioTestLocked(k, np)) throw new KernelRuleError("migrate_pages_dst_not_locked", `dst[${i}] pfn ${np}: lock the page (lock_page / zone_device_page_init) before migrate_vma_pages`);
    if (s.test(np, PG_reserved) || s.folioMapped(np) || s.mapping(np) !== 0)
      throw new KernelRuleError("migrate_pages_dst_in_use", `dst[${i}] pfn ${np} is mapped or belongs to a mapping`);
    const compound = (d & MIGRATE_PFN_COMPOUND) !== 0;
    if (compound ? s.isTail(np) || s.folioNr(np) !== HPAGE_PMD_NR : s.isLarge(np))
      throw new KernelRuleError(
        "migrate_pages_dst_compound_mismatch",
        `dst[${i}] pfn ${np}: MIGRATE_PFN_COMPOUND goes with (and only with) the head of an order-${HPAGE_PMD_ORDER} folio (order ${s.order(np)})`,
      );
    const sp = migratePfnToPage(src[i]!);
    if (sp === np) throw new KernelRuleError("migrate_pages_dst_is_src", `dst[${i}] pfn ${np}`);
    if (sp < 0 && migrate === null && (src[i]! & MIGRATE_PFN_MIGRATE) !== 0)
      throw new KernelRuleError("migrate_device_pages_hole_without_vma", `src[${i}] has MIGRATE and no page`);
  }
}

/**
 * __migrate_device_pages(). Entries advance by the folio size: a COMPOUND src split for small dst pages
 * (migrate_vma_split_unmapped_folio) is then handled as HPAGE_PMD_NR order-0 entries.
 */
function migrateDevicePagesImpl(k: Kernel, src: MpfnArray, dst: MpfnArray, npages: number, migrate: MigrateVma | null): void {
  checkDstPages(k, src, dst, npages, migrate);
  const s = k.store;
  const extraPfn = migrate !== null ? faultPageOf(migrate) : -1;
  let range: MmuNotifierRange<Mm> | null = null;
  for (let i = 0; i < npages; ) {
    const d = dst[i]!;
    const m = src[i]!;
    const newPfn = migratePfnToPage(d);
    const pfn = migratePfnToPage(m);
    if (newPfn < 0) {
      if ((m & MIGRATE_PFN_MIGRATE) !== 0) src[i] = mpfnClear(m, MIGRATE_PFN_MIGRATE);
      i++;
      continue;
    }
    if (pfn < 0) {
      if ((m & MIGRATE_PFN_MIGRATE) === 0) {
        i++;
        continue;
      }
      const mig = migrate!;
      const addr = mig.start + i * PAGE_SIZE;
      if (range === null) range = invalidateStart(mig.vma!.vmMm, MMU_NOTIFY_MIGRATE, addr, mig.end, mig.pgmapOwner);
      let nr = 1;
      if ((m & MIGRATE_PFN_COMPOUND) !== 0 && (d & MIGRATE_PFN_COMPOUND) === 0) {
        nr = HPAGE_PMD_NR;
        src[i] = mpfnClear(m, MIGRATE_PFN_COMPOUND);
      }
      for (let j = 0; j < nr && i + j < npages; j++) {
        src[i + j] = mpfnSet(src[i + j]!, MIGRATE_PFN_MIGRATE);
        migrateVmaInsertPage(k, mig, addr + j * PAGE_SIZE, i + j);
      }
      i += nr;
      continue;
    }
    if ((m & MIGRATE_PFN_MIGRATE) === 0) {
      i++;
      continue;
    }
    let nr = 1;
    const srcCompound = (m & MIGRATE_PFN_COMPOUND) !== 0;
    const dstCompound = (d & MIGRATE_PFN_COMPOUND) !== 0;
    if (smallFolioPaths && !srcCompound && !dstCompound) {
      const r = migrateSmallFolio(k, newPfn, pfn, extraPfn);
      if (r !== MOVE_GENERAL) {
        if (r === MOVE_FAILED) src[i] = mpfnClear(m, MIGRATE_PFN_MIGRATE);
        i++;
        continue;
      }
    }
    if (srcCompound && !dstCompound) {
      if (migrate === null) {
        src[i] = mpfnClear(m, MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND);
        i++;
        continue;
      }
      nr = s.folioNr(pfn);
      if (migrateVmaSplitUnmappedFolio(k, migrate, i, npages, pfn) !== 0) {
        src[i] = mpfnClear(src[i]!, MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND);
        i++;
        continue;
      }
    } else if (dstCompound && !srcCompound) {
      // The kernel clears MIGRATE here and still runs folio_migrate_mapping below, which would move the page's
      // identity and memcg charge to a dst that finalize then frees: hmmsim stops at the cleared entry.
      src[i] = mpfnClear(m, MIGRATE_PFN_MIGRATE);
      i++;
      continue;
    }
    if (s.zone(newPfn) === ZONE_DEVICE) {
      const type = pagePgmap(k, newPfn)?.type;
      // Only anonymous memory can move to device memory: a page-cache folio has a mapping. Other ZONE_DEVICE
      // types are not supported.
      if ((type !== MEMORY_DEVICE_PRIVATE && type !== MEMORY_DEVICE_COHERENT) || (!s.test(pfn, PG_anon) && s.mapping(pfn) !== 0)) {
        src[i] = mpfnClear(src[i]!, MIGRATE_PFN_MIGRATE);
        i += nr;
        continue;
      }
    }
    const extra = extraPfn === pfn ? 1 : 0;
    for (let j = 0; j < nr && i + j < npages; j++) {
      const sp = nr === 1 ? pfn : migratePfnToPage(src[i + j]!);
      const np = nr === 1 ? newPfn : migratePfnToPage(dst[i + j]!);
      if (np < 0 || sp < 0) {
        // split for small dst pages, but the driver gave none for this one
        src[i + j] = mpfnClear(src[i + j]!, MIGRATE_PFN_MIGRATE);
        continue;
      }
      if (folioMigrateMapping(k, np, sp, extra) !== 0) src[i + j] = mpfnClear(src[i + j]!, MIGRATE_PFN_MIGRATE);
      else folioMigrateFlags(k, np, sp);
    }
    i += nr;
  }
  if (range !== null) invalidateEnd(range);
}

const MOVE_OK = 0;
const MOVE_FAILED = 1;
const MOVE_GENERAL = 2;

/**
 * __migrate_device_pages() for an order-0 anonymous (or mapping-less) src and an order-0 dst, each struct page
 * read from its chunk once: the destination-type check, folio_migrate_mapping (refcount must be mapcount + extra
 * + 1; index, mapping, PG_anon / PG_swapbacked move) and folio_migrate_flags (uptodate, dirty, referenced, active
 * for a RAM dst; the memcg charge). MOVE_FAILED: the entry loses MIGRATE; MOVE_GENERAL: a page-cache src, which
 * the general path handles.
 */
function migrateSmallFolio(k: Kernel, newPfn: number, pfn: number, extraPfn: number): number {
  const s = k.store;
  const sc = s.pagesIfAny(pfn);
  const si = pfn & PAGE_SLOT_MASK;
  const nc = s.pagesIfAny(newPfn);
  const ni = newPfn & PAGE_SLOT_MASK;
  // large folios (and pages never written, which the general path's checks handle) take the general path
  if (sc === undefined || nc === undefined || sc.order[si] !== 0 || nc.order[ni] !== 0) return MOVE_GENERAL;
  const sf = sc.flags[si]!;
  const id = sc.mapping[si]!;
  if ((sf & PG_anon) === 0 && id !== 0) return MOVE_GENERAL;
  const dstDevice = s.zone(newPfn) === ZONE_DEVICE;
  if (dstDevice) {
    const type = pagePgmap(k, newPfn)?.type;
    if (type !== MEMORY_DEVICE_PRIVATE && type !== MEMORY_DEVICE_COHERENT) return MOVE_FAILED;
  }
  // folio_migrate_mapping: -EAGAIN on a reference beyond the mappings, the migrator's and the fault path's
  if (sc.refcount[si] !== sc.mapcount[si]! + (extraPfn === pfn ? 1 : 0) + 1) return MOVE_FAILED;
  s.copyIndex(newPfn, pfn);
  nc.mapping[ni] = id;
  // + folio_migrate_flags
  const carry = (PG_anon | PG_swapbacked | PG_uptodate | PG_dirty | PG_referenced | (dstDevice ? 0 : PG_active)) & sf;
  nc.flags[ni] = nc.flags[ni]! | carry;
  // mem_cgroup_migrate between two order-0 folios: the charge moves, usage is unchanged
  const memcg = sc.memcgId[si]!;
  if (memcg !== 0 && nc.memcgId[ni] === 0) {
    nc.memcgId[ni] = memcg;
    sc.memcgId[si] = 0;
  }
  return MOVE_OK;
}

/**
 * migrate_vma_split_unmapped_folio(): a COMPOUND src whose driver gave small dst pages: the PMD migration entry
 * becomes 512 PTE migration entries (split_huge_pmd_address(freeze), in every mm that has one for the folio),
 * the folio is split with every page locked and referenced (folio_split_unmapped), and src[idx + i] =
 * migrate_pfn(head + i) with src[idx]'s flags, COMPOUND cleared. 0 or -EAGAIN (extra references: nothing split
 * but the PMD entries).
 */
function migrateVmaSplitUnmappedFolio(k: Kernel, migrate: MigrateVma, idx: number, npages: number, head: number): number {
  const s = k.store;
  const nr = s.folioNr(head);
  rmapWalkFolio(k, head, nr, splitMigrationPmd, head);
  const ret = folioSplitUnmapped(k, head);
  if (ret !== 0) return ret;
  const src = migrate.src!;
  src[idx] = mpfnClear(src[idx]!, MIGRATE_PFN_COMPOUND);
  const flags = mpfnFlags(src[idx]!);
  for (let i = 1; i < nr && idx + i < npages; i++) src[idx + i] = migratePfn(head + i) + (flags & ~MIGRATE_PFN_VALID);
  // A folio try_to_migrate also unmapped elsewhere (shared after fork) has migration entries in other mms for every
  // page now: finalize must find each new entry through the rmap, as the kernel always does.
  const shared = phases.get(migrate)?.shared;
  if (shared !== null && shared !== undefined && shared[idx] === 1) shared.fill(1, idx, Math.min(npages, idx + nr));
  return 0;
}

/** split_huge_pmd_address(vma, address, freeze = true) for a PMD migration entry of the folio at `head`. */
function splitMigrationPmd(mm: Mm, vma: VmAreaStruct, ha: number, head: number): boolean {
  if (ha % PMD_SIZE !== 0 || ha < vma.vmStart || ha + PMD_SIZE > vma.vmEnd) return true;
  const pmd = mm.pgtable.pmdGet(ha);
  if (isMigrationEntry(pmd) && ptePfn(pmd) === head) splitHugePmd(mm, vma, ha);
  return true;
}

/**
 * migrate_vma_insert_page(): map a new page into a hole (or over a zero-page PTE) of an anonymous VMA: memcg
 * charge, MM_ANONPAGES++, new exclusive anon rmap, a reference for the mapping; a device-private entry (writable
 * iff VM_WRITE) for a private page, else a present PTE (writable+dirty iff VM_WRITE). A COMPOUND dst goes through
 * migrate_vma_insert_huge_pmd_page. Clears MIGRATE when the VMA is not anonymous, the PTE is no longer none/zero,
 * a huge PMD other than the huge zero PMD is there (that one is split first: MMU_NOTIFY_CLEAR over its 2 MiB), the
 * charge fails, or the page is an unsupported ZONE_DEVICE type. No notifier of its own (the caller's MIGRATE range
 * covers it).
 */
/** migrate_vma_insert_page's abort: the entry is not migrated (no closure per call: this runs per hole page). */
function insertAbort(src: MpfnArray, i: number): void {
  src[i] = mpfnClear(src[i]!, MIGRATE_PFN_MIGRATE);
}

function migrateVmaInsertPage(k: Kernel, migrate: MigrateVma, addr: number, i: number): void {
  const src = migrate.src!;
  const d = migrate.dst![i]!;
  const page = migratePfnToPage(d);
  const vma = migrate.vma!;
  const mm = vma.vmMm;
  const s = k.store;
  const pt = mm.pgtable;
  if (page < 0 || !vmaIsAnonymous(vma)) return insertAbort(src, i);
  if ((d & MIGRATE_PFN_COMPOUND) !== 0) {
    if (migrateVmaInsertHugePmdPage(k, migrate, addr, i, page) !== 0) insertAbort(src, i);
    return;
  }
  const pmd = pt.pmdGet(addr);
  if (pmd !== 0) {
    // A huge PMD: abort, unless it maps the huge zero folio, which split_huge_pmd turns into zero-page PTEs (one of
    // which this insert replaces).
    if (!isHugeZeroPmd(k, pmd)) return insertAbort(src, i);
    splitHugePmd(mm, vma, addr);
  }
  const zoneDevice = s.zone(page) === ZONE_DEVICE;
  const type = zoneDevice ? pagePgmap(k, page)?.type : 0;
  if (zoneDevice && type !== MEMORY_DEVICE_PRIVATE && type !== MEMORY_DEVICE_COHERENT) return insertAbort(src, i);
  const orig = pt.pteGet(addr);
  if (ptePresent(orig)) {
    if (ptePfn(orig) !== k.zeroPfn) return insertAbort(src, i);
  } else if (orig !== 0) {
    return insertAbort(src, i);
  }
  if (memcgCharge(s, page, mm.memcg) !== 0) return insertAbort(src, i);
  s.set(page, PG_uptodate);
  const write = (vma.vmFlags & VM_WRITE) !== 0;
  const entry = type === MEMORY_DEVICE_PRIVATE ? makeDevicePrivateEntry(page, write) : pfnPte(page, write, write ? PTE_DIRTY : PTE_CLEAN);
  incMmCounter(mm, MM_ANONPAGES);
  pageAddNewAnonRmap(k, page, vma, addr);
  if (!zoneDevice) folioAddLru(k, page);
  getPage(k, page);
  pt.pteSet(addr, entry);
  if (k.charge !== null) k.charge("pteUpdate", 1);
  src[i] = MIGRATE_PFN_MIGRATE;
}
const PTE_DIRTY = { dirty: true } as const;
const PTE_CLEAN = { dirty: false } as const;

/**
 * migrate_vma_insert_huge_pmd_page(): map the order-9 dst folio at `page` into a 2 MiB hole with one PMD entry
 * (as __do_huge_pmd_anonymous_page): memcg charge, MM_ANONPAGES += HPAGE_PMD_NR, new exclusive anon rmap (PMD),
 * LRU for a RAM folio, a reference for the mapping; a huge device-private entry (writable iff VM_WRITE) for a
 * private folio, else a trans-huge PMD (writable+dirty iff VM_WRITE), replacing the huge zero PMD if that is
 * there. -EINVAL when the VMA cannot hold a PMD at `addr` (the caller clears MIGRATE on this entry); another PMD or
 * a PTE table already there, a failed charge or an
 * unsupported ZONE_DEVICE type clear MIGRATE on all HPAGE_PMD_NR entries (and return 0), as the kernel's abort.
 */
function migrateVmaInsertHugePmdPage(k: Kernel, migrate: MigrateVma, addr: number, i: number, page: number): number {
  const vma = migrate.vma!;
  const mm = vma.vmMm;
  const s = k.store;
  const pt = mm.pgtable;
  const src = migrate.src!;
  // thp_vma_suitable_order(vma, addr, HPAGE_PMD_ORDER)
  if (addr % PMD_SIZE !== 0 || addr < vma.vmStart || addr + PMD_SIZE > vma.vmEnd) return -EINVAL;
  const abortAll = (): number => {
    for (let j = 0; j < HPAGE_PMD_NR && i + j < migrate.npages; j++) src[i + j] = mpfnClear(src[i + j]!, MIGRATE_PFN_MIGRATE);
    return 0;
  };
  const zoneDevice = s.zone(page) === ZONE_DEVICE;
  const type = zoneDevice ? pagePgmap(k, page)?.type : 0;
  if (zoneDevice && type !== MEMORY_DEVICE_PRIVATE && type !== MEMORY_DEVICE_COHERENT) return abortAll();
  // pmd_none, or the huge zero PMD (which the new entry replaces: `flush = true`); a PTE table is not pmd_none.
  const old = pt.pmdGet(addr);
  if (old !== 0 ? !isHugeZeroPmd(k, old) : pt.pteTable(addr, false) !== null) return abortAll();
  if (memcgCharge(s, page, mm.memcg) !== 0) return abortAll();
  s.set(page, PG_uptodate);
  const write = (vma.vmFlags & VM_WRITE) !== 0;
  const entry = type === MEMORY_DEVICE_PRIVATE ? pmdMkhuge(makeDevicePrivateEntry(page, write)) : pfnPmd(page, write, write ? PTE_DIRTY : PTE_CLEAN);
  addMmCounter(mm, MM_ANONPAGES, HPAGE_PMD_NR);
  pageAddNewAnonRmap(k, page, vma, addr, RMAP_NEW_PMD);
  if (!zoneDevice) folioAddLru(k, page);
  getPage(k, page);
  pt.pmdSet(addr, entry);
  if (k.charge !== null) k.charge("pteUpdate", 1);
  return 0;
}
const RMAP_NEW_PMD = { pmd: true } as const;

// --- finalize ------------------------------------------------------------------------------------------------
/**
 * __migrate_device_finalize(). With a migrate_vma (`migrate`), an entry not marked in `shared` has its only
 * migration entry where collect put it (start + i * PAGE_SIZE), so remove_migration_ptes goes straight there.
 */
function migrateDeviceFinalizeImpl(
  k: Kernel,
  src: MpfnArray,
  dst: MpfnArray,
  npages: number,
  faultPage: number,
  migrate: MigrateVma | null,
  shared: Uint8Array | null,
): void {
  const s = k.store;
  // The loop is kept small (the order-0 test and step) so that V8 inlines finalizeSmallFolio's helpers into it;
  // everything else is finalizeEntry.
  for (let i = 0; i < npages; i++) {
    const m = src[i]!;
    const d = dst[i]!;
    if (
      smallFolioPaths &&
      migrate !== null &&
      (m & (MIGRATE_PFN_VALID | MIGRATE_PFN_MIGRATE)) === (MIGRATE_PFN_VALID | MIGRATE_PFN_MIGRATE) &&
      (d & MIGRATE_PFN_VALID) !== 0 &&
      (shared === null || shared[i] === 0)
    ) {
      const pfn = migratePfnToPage(m);
      const newPfn = migratePfnToPage(d);
      // (a dst the driver set to src after migrate_vma_pages is the general path's d === pfn case)
      if (pfn !== newPfn && s.order(pfn) === 0 && s.order(newPfn) === 0) {
        finalizeSmallFolio(k, migrate.vma!, migrate.start + i * PAGE_SIZE, pfn, newPfn, faultPage);
        continue;
      }
    }
    finalizeEntry(k, src, dst, i, faultPage, migrate, shared);
  }
}

/** One entry of __migrate_device_finalize(), any folio size. */
function finalizeEntry(
  k: Kernel,
  src: MpfnArray,
  dst: MpfnArray,
  i: number,
  faultPage: number,
  migrate: MigrateVma | null,
  shared: Uint8Array | null,
): void {
  const s = k.store;
  const newPfn = migratePfnToPage(dst[i]!);
  const m = src[i]!;
  const pfn = migratePfnToPage(m);
  if (pfn < 0) {
    if (newPfn >= 0) {
      if (newPfn === faultPage) throw new KernelRuleError("migrate_finalize_dst_is_fault_page", `pfn ${newPfn}`);
      folioUnlock(k, newPfn);
      putPage(k, newPfn);
    }
    return;
  }
  let d = newPfn;
  if ((m & MIGRATE_PFN_MIGRATE) === 0 || newPfn < 0) {
    if (newPfn >= 0) {
      folioUnlock(k, newPfn);
      putPage(k, newPfn);
    }
    d = pfn;
  }
  if (s.zone(d) !== ZONE_DEVICE) folioAddLru(k, d);
  if (migrate !== null && (shared === null || shared[i] === 0)) removeMigrationPtesAt(k, migrate.vma!, migrate.start + i * PAGE_SIZE, pfn, d);
  else removeMigrationPtes(k, pfn, d);
  if (pfn !== faultPage) folioUnlock(k, pfn);
  putPage(k, pfn);
  if (d !== pfn) {
    folioUnlock(k, d);
    putPage(k, d);
  }
}

/**
 * One entry of __migrate_device_finalize() for an order-0 src migrated to an order-0 dst whose only migration
 * entry is where collect put it (at `addr`): the general loop's steps for it — dst on the LRU (a RAM page), the
 * migration entry becomes a mapping of dst (remove_migration_pte), src unlocked (unless it is the fault page) and
 * put, dst unlocked and put — with the PTE slot and dst's struct page looked up once.
 */
function finalizeSmallFolio(k: Kernel, vma: VmAreaStruct, addr: number, pfn: number, d: number, faultPage: number): void {
  const s = k.store;
  const dDevice = s.zone(d) === ZONE_DEVICE;
  const dc = s.pagesOf(d);
  const di = d & PAGE_SLOT_MASK;
  if (!dDevice) dc.flags[di] = dc.flags[di]! | PG_lru; // folio_add_lru
  if (removeMigrationPteAt(k, vma, addr, pfn, d, dDevice && pagePgmap(k, d)?.type === MEMORY_DEVICE_PRIVATE) !== 0 && k.charge !== null)
    k.charge("pteUpdate", 1);
  if (pfn !== faultPage) folioUnlock(k, pfn);
  putPage(k, pfn);
  const f = dc.flags[di]!;
  if ((f & PG_locked) === 0) throw new KernelRuleError("folio_unlock_not_locked", `pfn ${d}`);
  dc.flags[di] = f & ~PG_locked; // folio_unlock (dst is its own head)
  putPage(k, d);
}

// --- device-side eviction ------------------------------------------------------------------------------------
/** migrate_device_pfn_lock(): a reference and the lock on a non-tail, in-use page, else 0. */
function migrateDevicePfnLock(k: Kernel, pfn: number): number {
  const s = k.store;
  if (s.isTail(pfn)) return 0; // folio_get_nontail_page
  if (!folioTryGet(k, pfn)) return 0;
  if (!folioTrylock(k, pfn)) {
    putPage(k, pfn);
    return 0;
  }
  return migratePfn(pfn) + MIGRATE_PFN_MIGRATE;
}

function checkKernel(k: Kernel): void {
  if (k === null || typeof k !== "object" || !("store" in k) || !("pgmaps" in k)) throw new InvalidArgumentError("k", "must be a Kernel");
}
function checkNpages(npages: number): void {
  if (!Number.isInteger(npages) || npages < 0) throw new InvalidArgumentError("npages", "must be an integer >= 0", npages);
}

/**
 * migrate_device_range(src, start, npages): take a reference on and lock every in-use page of device pfns
 * [start, start + npages) (free pages and pages someone else holds locked give src[i] = 0), then unmap them from
 * every mm that maps them (migration entries, MMU_NOTIFY_CLEAR per mapping) and restore the pinned ones. Returns
 * 0. For a driver evicting its memory without knowing the VMAs. `k` is the kernel (the kernel's is global).
 */
export function migrateDeviceRange(k: Kernel, src: MpfnArray, start: number, npages: number): number {
  checkKernel(k);
  checkNpages(npages);
  checkMpfnArray("src", src, npages);
  if (!Number.isInteger(start) || start < 0) throw new InvalidArgumentError("start", "must be a pfn", start);
  for (let p = start; p < start + npages; p++) {
    if (!k.store.pfnValid(p)) throw new InvalidArgumentError("start", `pfn ${p} has no struct page`, start);
  }
  for (let pfn = start, i = 0; i < npages; pfn++, i++) {
    src[i] = migrateDevicePfnLock(k, pfn);
    const nr = k.store.folioNr(pfn);
    if (nr > 1) {
      src[i] = mpfnSet(src[i]!, MIGRATE_PFN_COMPOUND);
      for (let j = 1; j < nr && i + j < npages; j++) src[i + j] = 0;
      i += nr - 1;
      pfn += nr - 1;
    }
  }
  migrateDeviceUnmap(k, src, npages, -1);
  return 0;
}

/** migrate_device_pfns(src, npages): as migrateDeviceRange for a pre-populated array of (raw) pfns. Returns 0. */
export function migrateDevicePfns(k: Kernel, src: MpfnArray, npages: number): number {
  checkKernel(k);
  checkNpages(npages);
  checkMpfnArray("src", src, npages);
  for (let i = 0; i < npages; i++) {
    const p = src[i]!;
    if (!Number.isInteger(p) || !k.store.pfnValid(p)) throw new InvalidArgumentError(`src[${i}]`, "must be a pfn with a struct page", p);
  }
  for (let i = 0; i < npages; i++) {
    const pfn = src[i]!;
    src[i] = migrateDevicePfnLock(k, pfn);
    const nr = k.store.folioNr(pfn);
    if (nr > 1) {
      src[i] = mpfnSet(src[i]!, MIGRATE_PFN_COMPOUND);
      for (let j = 1; j < nr && i + j < npages; j++) src[i + j] = 0;
      i += nr - 1;
    }
  }
  migrateDeviceUnmap(k, src, npages, -1);
  return 0;
}

/** migrate_device_pages(src, dst, npages): migrate_vma_pages without a VMA (no holes). */
export function migrateDevicePages(k: Kernel, src: MpfnArray, dst: MpfnArray, npages: number): void {
  checkKernel(k);
  checkNpages(npages);
  checkMpfnArray("src", src, npages);
  checkMpfnArray("dst", dst, npages);
  migrateDevicePagesImpl(k, src, dst, npages, null);
}

/** migrate_device_finalize(src, dst, npages): migrate_vma_finalize without a fault page. */
export function migrateDeviceFinalize(k: Kernel, src: MpfnArray, dst: MpfnArray, npages: number): void {
  checkKernel(k);
  checkNpages(npages);
  checkMpfnArray("src", src, npages);
  checkMpfnArray("dst", dst, npages);
  migrateDeviceFinalizeImpl(k, src, dst, npages, -1, null, null);
}
