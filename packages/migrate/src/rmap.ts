/**
 * The parts of mm/rmap.c migration needs: folio_maybe_dma_pinned (include/linux/mm.h),
 * folio_try_share_anon_rmap_pte (include/linux/rmap.h), rmap_walk over anon_vma / i_mmap, and try_to_migrate /
 * try_to_migrate_one. @hmmsim/core's rmapWalk allocates a closure and an array per call; this one takes a
 * static callback plus an argument so the per-page migration path allocates nothing.
 */
import {
  EBUSY,
  MMU_NOTIFY_CLEAR,
  PAGE_SIZE,
  PMD_SIZE,
  PG_anon,
  PG_anon_exclusive,
  PG_dirty,
  ZONE_DEVICE,
  invalidateEnd,
  invalidateStart,
  isDeviceExclusiveEntry,
  isDevicePrivateEntry,
  isWritableDevicePrivateEntry,
  makeMigrationEntry,
  pagePgmap,
  pageRemoveRmap,
  pteDirty,
  ptePfn,
  ptePresent,
  pteSoftDirty,
  pteSpecial,
  pteWrite,
  pteYoung,
  putPage,
  MEMORY_DEVICE_COHERENT,
  MEMORY_DEVICE_PRIVATE,
  type Kernel,
  type Mm,
  vmaAddress,
  type VmAreaStruct,
} from "@hmmsim/core";
import { pmdMapsFolio, setPmdMigrationEntry } from "./huge-memory.js";

/** GUP_PIN_COUNTING_BIAS (include/linux/mm.h): a FOLL_PIN adds this many references to a small folio. */
export const GUP_PIN_COUNTING_BIAS = 1024;
const _PAGE_SOFT_DIRTY = 1 << 6;

/**
 * folio_maybe_dma_pinned(): a small folio with refcount >= GUP_PIN_COUNTING_BIAS may be pinned; a large folio
 * counts pins in _pincount.
 */
export function folioMaybeDmaPinned(k: Kernel, pfn: number): boolean {
  const s = k.store;
  if (s.isLarge(pfn)) return s.pincount(pfn) > 0;
  return s.refcount(pfn) >= GUP_PIN_COUNTING_BIAS;
}

/**
 * folio_try_share_anon_rmap_pte() (__folio_try_share_anon_rmap): clear PageAnonExclusive of an anon page that
 * is being unmapped for migration. -EBUSY (and nothing changes) when the folio may be GUP-pinned; device-private
 * folios cannot be pinned. The caller has already cleared and flushed the PTE.
 */
export function folioTryShareAnonRmapPte(k: Kernel, pfn: number): number {
  const s = k.store;
  const devicePrivate = s.zone(pfn) === ZONE_DEVICE && pagePgmap(k, pfn)?.type === MEMORY_DEVICE_PRIVATE;
  if (!devicePrivate && folioMaybeDmaPinned(k, pfn)) return -EBUSY;
  s.clear(pfn, PG_anon_exclusive);
  return 0;
}

/** rmap_one callback: (mm, vma, address, arg) → false stops the walk. */
export type RmapOne<A> = (mm: Mm, vma: VmAreaStruct, address: number, arg: A) => boolean;

/**
 * rmap_walk(folio, rwc): call `fn` for every VMA that may map `pfn`, at vma_address(vma, page->index) =
 * vm_start + (index - vm_pgoff) << PAGE_SHIFT (mm/internal.h), for anon pages (index = linear_page_index at first
 * fault, so a COW'd page of a MAP_PRIVATE file mapping carries its file offset) and file pages alike. Anon: every
 * mm of the folio's anon_vma; while no VMA of it is non-linear (vm_pgoff = vm_start >> PAGE_SHIFT: never mremap()ed,
 * not a file mapping) the address is index << PAGE_SHIFT and one VMA lookup per mm finds it, else every VMA of
 * each mm with this anon_vma is tried (the kernel's anon_vma interval tree). File: every VMA of i_mmap covering
 * the index.
 */
export function rmapWalk<A>(k: Kernel, pfn: number, fn: RmapOne<A>, arg: A): void {
  const s = k.store;
  const id = s.mapping(pfn);
  if (id === 0) return;
  const obj = k.objects.get(id);
  if (obj === undefined) return;
  const index = s.index(pfn);
  if (obj.kind === "anon") {
    for (const mm of obj.mms) {
      if (!obj.nonLinear) {
        const address = index * PAGE_SIZE;
        const vma = mm.vmaLookup(address);
        if (vma !== null && vma.anonVma === obj && vma.vmPgoff * PAGE_SIZE === vma.vmStart) {
          if (!fn(mm, vma, address, arg)) return;
          continue;
        }
        if (vma === null || vma.anonVma !== obj) continue;
        // A VMA of this anon_vma that is not linear although nonLinear is unset: fall back to the scan.
      }
      for (const vma of mm.vmas) {
        if (vma.anonVma !== obj) continue;
        const address = vmaAddress(vma, index);
        if (address >= 0 && !fn(mm, vma, address, arg)) return;
      }
    }
    return;
  }
  for (const vma of obj.mappers) {
    const address = vmaAddress(vma, index);
    if (address >= 0 && !fn(vma.vmMm, vma, address, arg)) return;
  }
}

/** The entry at `address` maps `pfn` (present normal PTE, device-private or device-exclusive entry). */
export function pteMapsPfn(pte: number, pfn: number): boolean {
  if (pte === 0) return false;
  if (ptePresent(pte)) return !pteSpecial(pte) && ptePfn(pte) === pfn;
  return (isDevicePrivateEntry(pte) || isDeviceExclusiveEntry(pte)) && ptePfn(pte) === pfn;
}

/**
 * rmap_walk over a large folio: call `fn(mm, vma, headAddress)` for every VMA that may map any page of the folio
 * at `head` (nr pages; page i sits at headAddress + i * PAGE_SIZE, which may lie outside the VMA for a VMA that
 * covers only part of the folio), as the kernel's anon_vma / i_mmap interval trees over [index, index + nr).
 */
export function rmapWalkFolio<A>(k: Kernel, head: number, nr: number, fn: RmapOne<A>, arg: A): void {
  const s = k.store;
  const id = s.mapping(head);
  if (id === 0) return;
  const obj = k.objects.get(id);
  if (obj === undefined) return;
  const index = s.index(head);
  const overlaps = (vma: VmAreaStruct, ha: number): boolean => ha < vma.vmEnd && ha + nr * PAGE_SIZE > vma.vmStart;
  if (obj.kind === "anon") {
    for (const mm of obj.mms) {
      for (const vma of mm.vmas) {
        if (vma.anonVma !== obj) continue;
        const ha = vma.vmStart + (index - vma.vmPgoff) * PAGE_SIZE;
        if (overlaps(vma, ha) && !fn(mm, vma, ha, arg)) return;
      }
    }
    return;
  }
  for (const vma of obj.mappers) {
    const ha = vma.vmStart + (index - vma.vmPgoff) * PAGE_SIZE;
    if (overlaps(vma, ha) && !fn(vma.vmMm, vma, ha, arg)) return;
  }
}

interface TryToMigrateArg {
  k: Kernel;
  pfn: number;
  ok: boolean;
}

/**
 * The PTE step of try_to_migrate_one(): if the entry at `address` maps `pfn` (present PTE, device-private or
 * device-exclusive entry), replace it by a migration entry: writable if the PTE was writable (or a writable
 * device-private entry), readable-exclusive if the page is anon-exclusive, readable otherwise; young/dirty/
 * soft-dirty carried; dirty moved to the folio; rmap removed; the mapping's reference put; rss unchanged (a
 * migration entry keeps the rss of its page). false (entry left as it was) when the anon-exclusive page may be
 * pinned.
 */
function migratePte(k: Kernel, mm: Mm, address: number, pfn: number): boolean {
  const s = k.store;
  const pt = mm.pgtable;
  const pte = pt.pteGet(address);
  if (!pteMapsPfn(pte, pfn)) return true;
  const head = s.folioHead(pfn);
  const anonExclusive = s.test(head, PG_anon) && s.test(pfn, PG_anon_exclusive);
  const present = ptePresent(pte);
  pt.pteSet(address, 0);
  let writable: boolean;
  if (present) {
    if (pteDirty(pte)) s.set(head, PG_dirty);
    writable = pteWrite(pte);
  } else {
    writable = isWritableDevicePrivateEntry(pte);
  }
  if (anonExclusive && folioTryShareAnonRmapPte(k, pfn) !== 0) {
    pt.pteSet(address, pte);
    return false;
  }
  let e = makeMigrationEntry(pfn, writable ? "write" : anonExclusive ? "read-exclusive" : "read", {
    young: present && pteYoung(pte),
    dirty: present && pteDirty(pte),
  });
  if (pteSoftDirty(pte)) e += _PAGE_SOFT_DIRTY;
  pt.pteSet(address, e);
  pageRemoveRmap(k, pfn);
  putPage(k, pfn);
  if (k.charge !== null) {
    k.charge("pteUpdate", 1);
    if (present) k.charge("tlbShootdown", 1);
  }
  return true;
}

/**
 * try_to_migrate_one() for an order-0 folio: MMU_NOTIFY_CLEAR over [address, address + PAGE_SIZE) of this mm and
 * the PTE step (migratePte). An anon-exclusive page that may be pinned is left mapped and the walk stops.
 */
function tryToMigrateOne(mm: Mm, _vma: VmAreaStruct, address: number, a: TryToMigrateArg): boolean {
  const range = invalidateStart(mm, MMU_NOTIFY_CLEAR, address, address + PAGE_SIZE);
  const ok = migratePte(a.k, mm, address, a.pfn);
  invalidateEnd(range);
  if (!ok) {
    a.ok = false;
    return false;
  }
  // rwc.done = folio_not_mapped
  return a.k.store.folioMapped(a.pfn);
}

/**
 * try_to_migrate_one() for a large folio in one VMA: MMU_NOTIFY_CLEAR over the folio's extent in the VMA, then a
 * PMD mapping of the folio becomes a PMD migration entry (set_pmd_migration_entry), and each PTE mapping a page of
 * it becomes a PTE migration entry.
 */
function tryToMigrateFolioOne(mm: Mm, vma: VmAreaStruct, ha: number, a: TryToMigrateArg): boolean {
  const k = a.k;
  const s = k.store;
  const head = a.pfn;
  const nr = s.folioNr(head);
  const lo = Math.max(ha, vma.vmStart);
  const hi = Math.min(ha + nr * PAGE_SIZE, vma.vmEnd);
  const range = invalidateStart(mm, MMU_NOTIFY_CLEAR, lo, hi);
  const pt = mm.pgtable;
  let ok = true;
  const pmd = ha % PMD_SIZE === 0 && lo === ha && hi === ha + PMD_SIZE ? pt.pmdGet(ha) : 0;
  if (pmdMapsFolio(pmd, head)) {
    ok = setPmdMigrationEntry(k, mm, ha, pmd, head) === 0;
  } else {
    for (let addr = lo; addr < hi && ok; addr += PAGE_SIZE) ok = migratePte(k, mm, addr, head + (addr - ha) / PAGE_SIZE);
  }
  invalidateEnd(range);
  if (!ok) {
    a.ok = false;
    return false;
  }
  return s.folioMapped(head);
}

/**
 * try_to_migrate(folio, 0): replace every remaining mapping of the folio at `pfn` in every mm by a migration
 * entry (PTE or, for a PMD-mapped THP, PMD level). Returns false if a mapping could not be converted (pinned
 * anon-exclusive page). ZONE_DEVICE folios other than private/coherent are left alone.
 */
export function tryToMigrate(k: Kernel, pfn: number): boolean {
  const s = k.store;
  if (s.zone(pfn) === ZONE_DEVICE) {
    const t = pagePgmap(k, pfn)?.type;
    if (t !== MEMORY_DEVICE_PRIVATE && t !== MEMORY_DEVICE_COHERENT) return true;
  }
  // Only pages still mapped after collect (shared after fork) get here: the per-call object is off the hot path.
  const head = s.folioHead(pfn);
  const arg: TryToMigrateArg = { k, pfn: head, ok: true };
  const nr = s.folioNr(head);
  if (nr === 1) rmapWalk(k, head, tryToMigrateOne, arg);
  else rmapWalkFolio(k, head, nr, tryToMigrateFolioOne, arg);
  return arg.ok;
}
