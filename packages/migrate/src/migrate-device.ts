/**
 * mm/migrate_device.c: migrate_vma_setup (migrate_vma_collect, migrate_vma_collect_pmd / _hole / _huge_pmd,
 * migrate_vma_unmap → migrate_device_unmap, migrate_vma_check_page), migrate_vma_pages / migrate_device_pages
 * (__migrate_device_pages, migrate_vma_insert_page), migrate_vma_finalize / migrate_device_finalize
 * (__migrate_device_finalize), and the device-side eviction API migrate_device_range / migrate_device_pfns.
 *
 * Large pages: hmmsim models a kernel without CONFIG_ARCH_ENABLE_THP_MIGRATION (thp_migration_supported() is
 * false). A PMD-mapped THP met by collect is split (split_huge_pmd + split_folio) and collected page by page, as
 * the kernel's fallback does; MIGRATE_VMA_SELECT_COMPOUND is accepted and has no effect; a COMPOUND dst is
 * declined (MIGRATE cleared) and a large source folio reached through migrate_device_* is not migrated.
 *
 * The hot path (one order-0 page mapped in one mm) allocates nothing per page: the page-table leaf is read and
 * written in place and the rmap walks use static callbacks.
 */
import {
  EBUSY,
  EINVAL,
  InvalidArgumentError,
  KernelRuleError,
  MEMORY_DEVICE_COHERENT,
  MEMORY_DEVICE_PRIVATE,
  MMU_NOTIFY_MIGRATE,
  MM_ANONPAGES,
  PAGE_SIZE,
  PG_anon,
  PG_anon_exclusive,
  PG_dirty,
  PG_locked,
  PG_lru,
  PG_reserved,
  PG_uptodate,
  PMD_SIZE,
  VM_SPECIAL,
  VM_WRITE,
  ZONE_DEVICE,
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
  isDevicePrivatePage,
  isVmHugetlbPage,
  isWritableDevicePrivateEntry,
  makeDevicePrivateEntry,
  makeMigrationEntry,
  memcgCharge,
  mmapAssertLocked,
  pageAddNewAnonRmap,
  pageRemoveRmap,
  pagePgmap,
  pfnPte,
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
} from "./migrate.js";
import {
  MIGRATE_PFN_COMPOUND,
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_VALID,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_ALL,
  MIGRATE_VMA_SELECT_DEVICE_COHERENT,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM,
  migratePfn,
  migratePfnToPage,
  mpfnClear,
  mpfnSet,
  type MigrateVma,
  type MpfnArray,
} from "./migrate-pfn.js";
import { folioTryShareAnonRmapPte, tryToMigrate } from "./rmap.js";

const _PAGE_DIRTY = 1 << 2;
const _PAGE_ACCESSED = 1 << 3;
const _PAGE_SOFT_DIRTY = 1 << 6;

// --- the migrate_vma call sequence --------------------------------------------------------------------------
const PHASE_SETUP = 1;
const PHASE_PAGES = 2;
interface Phase {
  phase: number;
  /** Pages are locked and unmapped (cpages > 0 after setup): finalize is owed. */
  busy: boolean;
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
 * nothing is collectable) or -EINVAL (hmm-spec §4.2: no VMA, hugetlb / VM_SPECIAL VMA, empty range, range
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
  if (args.cpages > 0) args.cpages = migrateDeviceUnmap(k, args.src, args.npages, fp);
  phases.set(args, { phase: PHASE_SETUP, busy: args.cpages > 0 });
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
 * restore the src elsewhere, unlock and put everything. Throws KernelRuleError unless migrateVmaPages ran.
 */
export function migrateVmaFinalize(args: MigrateVma): void {
  const ph = phases.get(args);
  if (ph === undefined || ph.phase !== PHASE_PAGES) {
    throw new KernelRuleError(
      ph === undefined ? "migrate_vma_finalize_without_setup" : "migrate_vma_finalize_without_pages",
      "call migrateVmaSetup, then migrateVmaPages, then migrateVmaFinalize",
    );
  }
  const k = args.vma!.vmMm.kernel;
  migrateDeviceFinalizeImpl(k, args.src!, args.dst!, args.npages, faultPageOf(args));
  phases.delete(args);
}

// --- collect ------------------------------------------------------------------------------------------------
/** migrate_vma_collect(): the walk, bracketed by MMU_NOTIFY_MIGRATE with the owner. */
function migrateVmaCollect(args: MigrateVma, k: Kernel, mm: Mm, vma: VmAreaStruct): void {
  const range = invalidateStart(mm, MMU_NOTIFY_MIGRATE, args.start, args.end, args.pgmapOwner);
  let unmapped = 0;
  for (let addr = args.start; addr < args.end; ) {
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

/** migrate_vma_collect_hole(): only anonymous memory may be populated. */
function collectHole(args: MigrateVma, vma: VmAreaStruct, start: number, end: number): void {
  if (!vmaIsAnonymous(vma)) {
    collectSkip(args, start, end);
    return;
  }
  const src = args.src!;
  const dst = args.dst!;
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
    let idx = Math.floor(addr / PAGE_SIZE) % 512;
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
  let mpfn: number;
  if (!present) {
    // Only device-private entries are migratable; swap, migration, exclusive and other entries are skipped.
    if (!isDevicePrivateEntry(pte)) return 0;
    if ((flags & MIGRATE_VMA_SELECT_DEVICE_PRIVATE) === 0 || pagePgmap(k, pfn)?.owner !== args.pgmapOwner) return 0;
    if (s.isLarge(pfn)) {
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
    }
    if (s.isLarge(pfn)) {
      splitPfn = pfn;
      return NEED_SPLIT;
    }
    mpfn = migratePfn(pfn) + MIGRATE_PFN_MIGRATE + (pteWrite(pte) ? MIGRATE_PFN_WRITE : 0);
  }
  if (s.mapping(pfn) === 0) return 0;

  s.refAdd(pfn, 1); // folio_get
  const fault = pfn === faultPageOf(args);
  if (!fault && !folioTrylock(k, pfn)) {
    putPage(k, pfn);
    return 0;
  }
  const anonExclusive = s.test(pfn, PG_anon) && s.test(pfn, PG_anon_exclusive);
  t[idx] = 0; // ptep_clear_flush / ptep_get_and_clear
  if (anonExclusive && folioTryShareAnonRmapPte(k, pfn) !== 0) {
    t[idx] = pte;
    if (!fault) folioUnlock(k, pfn);
    putPage(k, pfn);
    return 0;
  }
  args.cpages++;
  let e: number;
  if (present) {
    if (pteDirty(pte)) s.set(pfn, PG_dirty);
    e = makeMigrationEntry(pfn, (mpfn & MIGRATE_PFN_WRITE) !== 0 ? "write" : anonExclusive ? "read-exclusive" : "read");
    if (pteYoung(pte)) e += _PAGE_ACCESSED;
    if (pteDirty(pte)) e += _PAGE_DIRTY;
  } else {
    e = makeMigrationEntry(pfn, (mpfn & MIGRATE_PFN_WRITE) !== 0 ? "write" : anonExclusive ? "read-exclusive" : "read");
  }
  if (pteSoftDirty(pte)) e += _PAGE_SOFT_DIRTY;
  t[idx] = e;
  pageRemoveRmap(k, pfn);
  s.refAdd(pfn, -1); // folio_put: the collector's reference keeps it alive
  if (k.charge !== null) k.charge("pteUpdate", 1);
  return mpfn;
}

/**
 * migrate_vma_collect_huge_pmd() without THP migration: a present THP (SELECT_SYSTEM) or a huge device-private
 * entry (SELECT_DEVICE_PRIVATE + owner) is referenced, locked, and split (split_huge_pmd + split_folio) so the
 * caller collects it PTE by PTE (returns -1). Anything else is skipped, or collected as a hole once gone
 * (returns 0: entries appended).
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
  let head: number;
  if (pmdTransHuge(pmd)) {
    if ((args.flags & MIGRATE_VMA_SELECT_SYSTEM) === 0) {
      collectSkip(args, start, end);
      return 0;
    }
    head = ptePfn(pmd);
  } else {
    head = ptePfn(pmd);
    if (
      !isDevicePrivateEntry(pmd) ||
      (args.flags & MIGRATE_VMA_SELECT_DEVICE_PRIVATE) === 0 ||
      pagePgmap(k, head)?.owner !== args.pgmapOwner
    ) {
      collectSkip(args, start, end);
      return 0;
    }
  }
  const fp = faultPageOf(args);
  const faultFolio = fp >= 0 && s.folioHead(fp) === head;
  getPage(k, head);
  if (!faultFolio && !folioTrylock(k, head)) {
    putPage(k, head);
    collectSkip(args, start, end);
    return 0;
  }
  // fallback: split_folio() of a PMD-mapped folio = split the PMD mapping, then the folio.
  splitHugePmd(mm, vma, alignDown(start, PMD_SIZE));
  const nr = s.folioNr(head);
  const ret = faultFolio ? -EBUSY : splitFolio(k, head, 1);
  if (ret === 0) unlockSplitTails(k, head, nr);
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
 * __split_huge_page leaves the tails unlocked (only the page the caller locked stays locked); @hmmsim/core's
 * splitFolio copies the head's PG_locked to every page, so clear it on the tails here.
 */
function unlockSplitTails(k: Kernel, head: number, nr: number): void {
  const s = k.store;
  for (let p = head + 1; p < head + nr; p++) if (s.test(p, PG_locked)) s.clear(p, PG_locked);
}

/**
 * migrate_vma_split_folio(): split a PTE-mapped large folio met by collect. 0, or -EBUSY when the folio is locked
 * by someone else (folio_lock would sleep), holds extra references, or contains the fault page (hmmsim does not
 * move the fault page's lock across a split).
 */
function migrateVmaSplitFolio(k: Kernel, pfn: number, faultPage: number): number {
  const s = k.store;
  const head = s.folioHead(pfn);
  const nr = s.folioNr(head);
  if (faultPage >= 0 && s.folioHead(faultPage) === head) return -EBUSY;
  getPage(k, head);
  if (!folioTrylock(k, head)) {
    putPage(k, head);
    return -EBUSY;
  }
  const ret = splitFolio(k, head, 1);
  if (ret === 0) unlockSplitTails(k, head, nr);
  folioUnlock(k, head);
  putPage(k, head);
  return ret;
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
    if (nr > 1) src[i] = mpfnSet(m, MIGRATE_PFN_COMPOUND);
    const zoneDevice = s.zone(pfn) === ZONE_DEVICE;
    if (!zoneDevice) {
      if (!s.test(pfn, PG_lru)) lruAddDrainFolio(k, pfn);
      if (!folioIsolateLru(k, pfn)) {
        src[i] = mpfnClear(src[i]!, MIGRATE_PFN_MIGRATE);
        restore++;
        i += nr;
        continue;
      }
      putPage(k, pfn); // drop the reference taken in collect
    }
    if (s.folioMapped(pfn)) tryToMigrate(k, pfn);
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

// --- pages ---------------------------------------------------------------------------------------------------
/** Checks every dst before anything changes, so a broken rule leaves state as it was. */
function checkDstPages(k: Kernel, src: MpfnArray, dst: MpfnArray, npages: number, migrate: MigrateVma | null): void {
  const s = k.store;
  for (let i = 0; i < npages; i++) {
    const d = dst[i]!;
    if (!Number.isSafeInteger(d) || d < 0) throw new InvalidArgumentError(`dst[${i}]`, "must be 0 or a migrate_pfn word", d);
    const np = migratePfnToPage(d);
    if (np < 0) continue;
    if (!s.pfnValid(np)) throw new InvalidArgumentError(`dst[${i}]`, "pfn has no struct page", np);
    if (s.refcount(np) <= 0) throw new KernelRuleError("migrate_pages_dst_not_allocated", `dst[${i}] pfn ${np} is a free page`);
    if (!folioTestLocked(k, np)) throw new KernelRuleError("migrate_pages_dst_not_locked", `dst[${i}] pfn ${np}: lock the page (lock_page / zone_device_page_init) before migrate_vma_pages`);
    if (s.test(np, PG_reserved) || s.folioMapped(np) || s.mapping(np) !== 0)
      throw new KernelRuleError("migrate_pages_dst_in_use", `dst[${i}] pfn ${np} is mapped or belongs to a mapping`);
    const sp = migratePfnToPage(src[i]!);
    if (sp === np) throw new KernelRuleError("migrate_pages_dst_is_src", `dst[${i}] pfn ${np}`);
    if (sp < 0 && migrate === null && (src[i]! & MIGRATE_PFN_MIGRATE) !== 0)
      throw new KernelRuleError("migrate_device_pages_hole_without_vma", `src[${i}] has MIGRATE and no page`);
  }
}

/** __migrate_device_pages(). */
function migrateDevicePagesImpl(k: Kernel, src: MpfnArray, dst: MpfnArray, npages: number, migrate: MigrateVma | null): void {
  checkDstPages(k, src, dst, npages, migrate);
  const s = k.store;
  let range: MmuNotifierRange<Mm> | null = null;
  for (let i = 0; i < npages; i++) {
    const d = dst[i]!;
    const m = src[i]!;
    const newPfn = migratePfnToPage(d);
    const pfn = migratePfnToPage(m);
    if (newPfn < 0) {
      src[i] = mpfnClear(m, MIGRATE_PFN_MIGRATE);
      continue;
    }
    if (pfn < 0) {
      if ((m & MIGRATE_PFN_MIGRATE) === 0) continue;
      const mig = migrate!;
      const addr = mig.start + i * PAGE_SIZE;
      if (range === null) range = invalidateStart(mig.vma!.vmMm, MMU_NOTIFY_MIGRATE, addr, mig.end, mig.pgmapOwner);
      src[i] = mpfnClear(m, MIGRATE_PFN_COMPOUND);
      migrateVmaInsertPage(k, mig, addr, i, newPfn, d);
      continue;
    }
    if ((m & MIGRATE_PFN_MIGRATE) === 0) continue;
    const srcCompound = (m & MIGRATE_PFN_COMPOUND) !== 0;
    const dstCompound = (d & MIGRATE_PFN_COMPOUND) !== 0;
    if (srcCompound || dstCompound) {
      // No THP migration in hmmsim: a compound source cannot be split here, a compound destination is refused.
      src[i] = mpfnClear(m, MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND);
      continue;
    }
    if (s.zone(newPfn) === ZONE_DEVICE) {
      const type = pagePgmap(k, newPfn)?.type;
      if (type === MEMORY_DEVICE_PRIVATE || type === MEMORY_DEVICE_COHERENT) {
        // Only anonymous memory can move to device memory: a page-cache folio has a mapping.
        if (!s.test(pfn, PG_anon) && s.mapping(pfn) !== 0) {
          src[i] = mpfnClear(m, MIGRATE_PFN_MIGRATE);
          continue;
        }
      } else {
        src[i] = mpfnClear(m, MIGRATE_PFN_MIGRATE);
        continue;
      }
    }
    const extra = migrate !== null && faultPageOf(migrate) === pfn ? 1 : 0;
    if (folioMigrateMapping(k, newPfn, pfn, extra) !== 0) src[i] = mpfnClear(m, MIGRATE_PFN_MIGRATE);
    else folioMigrateFlags(k, newPfn, pfn);
  }
  if (range !== null) invalidateEnd(range);
}

/**
 * migrate_vma_insert_page(): map a new page into a hole (or over a zero-page PTE) of an anonymous VMA: memcg
 * charge, MM_ANONPAGES++, new exclusive anon rmap, a reference for the mapping; a device-private entry (writable
 * iff VM_WRITE) for a private page, else a present PTE (writable+dirty iff VM_WRITE). Clears MIGRATE when the
 * VMA is not anonymous, the PTE is no longer none/zero, a huge PMD is there, the charge fails, or the page is
 * an unsupported ZONE_DEVICE type. No notifier (the caller's MIGRATE range covers it).
 */
function migrateVmaInsertPage(k: Kernel, migrate: MigrateVma, addr: number, i: number, page: number, d: number): void {
  const src = migrate.src!;
  const vma = migrate.vma!;
  const mm = vma.vmMm;
  const s = k.store;
  const pt = mm.pgtable;
  const abort = (): void => {
    src[i] = mpfnClear(src[i]!, MIGRATE_PFN_MIGRATE);
  };
  if (!vmaIsAnonymous(vma)) return abort();
  if ((d & MIGRATE_PFN_COMPOUND) !== 0 || pt.pmdGet(addr) !== 0) return abort();
  if (memcgCharge(s, page, mm.memcg) !== 0) return abort();
  s.set(page, PG_uptodate);
  const write = (vma.vmFlags & VM_WRITE) !== 0;
  const zoneDevice = s.zone(page) === ZONE_DEVICE;
  let entry: number;
  if (zoneDevice && pagePgmap(k, page)?.type === MEMORY_DEVICE_PRIVATE) {
    entry = makeDevicePrivateEntry(page, write);
  } else {
    if (zoneDevice && pagePgmap(k, page)?.type !== MEMORY_DEVICE_COHERENT) return abort();
    entry = pfnPte(page, write, { dirty: write });
  }
  const orig = pt.pteGet(addr);
  if (ptePresent(orig)) {
    if (ptePfn(orig) !== k.zeroPfn) return abort();
  } else if (orig !== 0) {
    return abort();
  }
  incMmCounter(mm, MM_ANONPAGES);
  pageAddNewAnonRmap(k, page, vma, addr);
  if (!zoneDevice) folioAddLru(k, page);
  getPage(k, page);
  pt.pteSet(addr, entry);
  if (k.charge !== null) k.charge("pteUpdate", 1);
  src[i] = MIGRATE_PFN_MIGRATE;
}

// --- finalize ------------------------------------------------------------------------------------------------
/** __migrate_device_finalize(). */
function migrateDeviceFinalizeImpl(k: Kernel, src: MpfnArray, dst: MpfnArray, npages: number, faultPage: number): void {
  const s = k.store;
  for (let i = 0; i < npages; i++) {
    const newPfn = migratePfnToPage(dst[i]!);
    const m = src[i]!;
    const pfn = migratePfnToPage(m);
    if (pfn < 0) {
      if (newPfn >= 0) {
        if (newPfn === faultPage) throw new KernelRuleError("migrate_finalize_dst_is_fault_page", `pfn ${newPfn}`);
        folioUnlock(k, newPfn);
        putPage(k, newPfn);
      }
      continue;
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
    removeMigrationPtes(k, pfn, d);
    if (pfn !== faultPage) folioUnlock(k, pfn);
    putPage(k, pfn);
    if (d !== pfn) {
      folioUnlock(k, d);
      putPage(k, d);
    }
  }
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
  migrateDeviceFinalizeImpl(k, src, dst, npages, -1);
}
