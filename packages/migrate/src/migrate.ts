/**
 * The parts of mm/migrate.c (and mm/swap.c, mm/vmscan.c) device migration uses: remove_migration_ptes /
 * remove_migration_pte, folio_migrate_mapping (__folio_migrate_mapping), folio_migrate_flags, and the LRU
 * isolation helpers folio_isolate_lru / folio_putback_lru / folio_add_lru / lru_add_drain_all.
 */
import {
  EAGAIN,
  KernelRuleError,
  PAGE_SLOT_MASK,
  PG_anon_exclusive,
  MEMORY_DEVICE_PRIVATE,
  PG_active,
  PG_anon,
  PG_dirty,
  PG_lru,
  PG_referenced,
  PG_swapbacked,
  PG_uptodate,
  PMD_SIZE,
  PAGE_SIZE,
  ZONE_DEVICE,
  ZONE_NONE,
  isMigrationEntry,
  isReadableExclusiveMigrationEntry,
  isWritableMigrationEntry,
  makeDevicePrivateEntry,
  memcgMigrate,
  pageAddFileRmap,
  pagePgmap,
  pfnPte,
  ptePfn,
  pteSoftDirty,
  putPage,
  vmPageProtWrite,
  type AddressSpace,
  type Kernel,
  type Mm,
  type VmAreaStruct,
} from "@hmmsim/core";
import { removeMigrationPmd } from "./huge-memory.js";
import { rmapWalk, rmapWalkFolio } from "./rmap.js";

const _PAGE_DIRTY = 1 << 2;
const _PAGE_ACCESSED = 1 << 3;
const _PAGE_SOFT_DIRTY = 1 << 6;
// Constant option objects: the per-page path allocates nothing.
const PTE_OPTS = [
  { young: false, dirty: false },
  { young: true, dirty: false },
  { young: false, dirty: true },
  { young: true, dirty: true },
] as const;

interface RemoveArg {
  k: Kernel;
  src: number;
  dst: number;
  dstDevicePrivate: boolean;
  restored: number;
}
/** remove_migration_pte() does not call out (no notifier), so one shared argument object is safe. */
const removeArg: RemoveArg = { k: null as unknown as Kernel, src: 0, dst: 0, dstDevicePrivate: false, restored: 0 };

/**
 * remove_migration_pte(): a migration entry for `src` at `address` becomes a mapping of `dst`: a device-private
 * entry (writable iff the migration entry was writable) for a device-private dst, else a present PTE, writable
 * iff the migration entry was writable (or the VMA's vm_page_prot is), old unless the entry was young, dirty iff
 * the entry and the folio are. Anon rmap is added exclusive unless the entry was a plain readable one; the
 * mapping takes a reference on dst. rss is unchanged (the migration entry kept it). No notifier.
 */
function removeMigrationPte(mm: Mm, vma: VmAreaStruct, address: number, a: RemoveArg): boolean {
  a.restored += removeMigrationPteAt(a.k, vma, address, a.src, a.dst, a.dstDevicePrivate);
  return true;
}

/**
 * remove_migration_pte() at `address` of `vma` (whose mm it is): if a migration entry for `src` is there, it
 * becomes a mapping of `dst` (restoreMigrationPte). Returns the number of entries replaced (0 or 1); charges
 * nothing.
 */
export function removeMigrationPteAt(k: Kernel, vma: VmAreaStruct, address: number, src: number, dst: number, dstDevicePrivate: boolean): number {
  const t = vma.vmMm.pgtable.pteTable(address, false);
  if (t === null) return 0;
  const idx = Math.floor(address / PAGE_SIZE) & 511;
  const pte = t[idx]!;
  if (!isMigrationEntry(pte) || ptePfn(pte) !== src) return 0;
  return restoreMigrationPte(k, vma, t, idx, pte, dst, dstDevicePrivate);
}

/**
 * The body of remove_migration_pte() for the migration entry `pte` (for some source page) in slot `idx` of PTE
 * table `t` of `vma`: the entry becomes a mapping of `dst` (see removeMigrationPte). Returns 1. The folio's flags
 * and refcount are read once from its head's struct page.
 */
export function restoreMigrationPte(
  k: Kernel,
  vma: VmAreaStruct,
  t: Float64Array,
  idx: number,
  pte: number,
  dst: number,
  dstDevicePrivate: boolean,
): number {
  const s = k.store;
  // folio_get()'s checks first (as getPage: a pfn without a struct page, then a free folio); nothing has changed yet
  if (s.zone(dst) === ZONE_NONE) throw new KernelRuleError("get_page_invalid_pfn", `pfn ${dst}`);
  const head = s.folioHead(dst);
  const hc = s.pagesIfAny(head);
  const hi = head & PAGE_SLOT_MASK;
  if (hc === undefined || hc.refcount[hi]! <= 0) throw new KernelRuleError("get_page_on_free_folio", `pfn ${dst}`);
  const headFlags = hc.flags[hi]!;
  const writable = isWritableMigrationEntry(pte);
  let e: number;
  if (dstDevicePrivate) {
    e = makeDevicePrivateEntry(dst, writable);
  } else {
    const young = (pte & _PAGE_ACCESSED) !== 0 ? 1 : 0;
    const dirty = (pte & _PAGE_DIRTY) !== 0 && (headFlags & PG_dirty) !== 0 ? 2 : 0;
    e = pfnPte(dst, writable || vmPageProtWrite(vma.vmFlags), PTE_OPTS[young + dirty]);
  }
  if (pteSoftDirty(pte)) e += _PAGE_SOFT_DIRTY;
  // folio_get(): the mapping's reference
  hc.refcount[hi] = hc.refcount[hi]! + 1;
  if ((headFlags & PG_anon) !== 0) {
    // folio_add_anon_rmap_pte(), RMAP_EXCLUSIVE unless the entry was a plain readable one
    const exclusive = writable || isReadableExclusiveMigrationEntry(pte);
    if (head === dst) {
      hc.mapcount[hi] = hc.mapcount[hi]! + 1;
      if (exclusive) hc.flags[hi] = headFlags | PG_anon_exclusive;
    } else {
      s.mapcountAdd(dst, 1);
      if (exclusive) s.set(dst, PG_anon_exclusive);
    }
  } else {
    pageAddFileRmap(k, dst); // folio_add_file_rmap_pte()
  }
  t[idx] = e;
  return 1;
}

/**
 * remove_migration_pte() over a large folio in one VMA (page i of the folio at headAddress + i * PAGE_SIZE): a PMD
 * migration entry for the source folio becomes a PMD mapping of dst (remove_migration_pmd); otherwise every PTE
 * migration entry for a page of it becomes a mapping of dst's page at the same offset.
 */
function removeMigrationFolio(mm: Mm, vma: VmAreaStruct, ha: number, a: RemoveArg): boolean {
  const k = a.k;
  const nr = k.store.folioNr(a.dst);
  const pt = mm.pgtable;
  if (ha % PMD_SIZE === 0 && ha >= vma.vmStart && ha + PMD_SIZE <= vma.vmEnd) {
    const pmd = pt.pmdGet(ha);
    if (pmd !== 0) {
      if (isMigrationEntry(pmd) && ptePfn(pmd) === a.src) {
        removeMigrationPmd(k, mm, vma, ha, pmd, a.dst);
        a.restored++;
      }
      return true;
    }
  }
  if (pt.pteTable(ha, false) === null && pt.pteTable(ha + (nr - 1) * PAGE_SIZE, false) === null) return true;
  const src = a.src;
  const dst = a.dst;
  const lo = Math.max(ha, vma.vmStart);
  const hi = Math.min(ha + nr * PAGE_SIZE, vma.vmEnd);
  for (let addr = lo; addr < hi; addr += PAGE_SIZE) {
    const i = (addr - ha) / PAGE_SIZE;
    a.src = src + i;
    a.dst = dst + i;
    removeMigrationPte(mm, vma, addr, a);
  }
  a.src = src;
  a.dst = dst;
  return true;
}

/**
 * remove_migration_ptes(src, dst, 0): every migration entry for `src` (in every mm, found through dst's rmap:
 * after folio_migrate_mapping dst has src's mapping and index) becomes a mapping of `dst`. dst === src restores
 * the original page. Large folios (src and dst the same size): PMD migration entries become PMD mappings
 * (remove_migration_pmd) and PTE migration entries of their pages PTE mappings. Returns the number of entries
 * replaced.
 */
export function removeMigrationPtes(k: Kernel, src: number, dst: number): number {
  const a = prepareRemove(k, src, dst);
  const nr = k.store.folioNr(dst);
  if (nr === 1) rmapWalk(k, dst, removeMigrationPte, a);
  else rmapWalkFolio(k, dst, nr, removeMigrationFolio, a);
  return finishRemove(k, a);
}

/**
 * remove_migration_ptes(src, dst) when the only migration entries for src are known to be at `address` of `vma`
 * (collect put them there and no other mm mapped the folio): the same result as the rmap walk without walking.
 * For a large folio `address` is where its first page is mapped.
 */
export function removeMigrationPtesAt(k: Kernel, vma: VmAreaStruct, address: number, src: number, dst: number): number {
  const a = prepareRemove(k, src, dst);
  if (k.store.folioNr(dst) === 1) removeMigrationPte(vma.vmMm, vma, address, a);
  else removeMigrationFolio(vma.vmMm, vma, address, a);
  return finishRemove(k, a);
}

function prepareRemove(k: Kernel, src: number, dst: number): RemoveArg {
  const a = removeArg;
  a.k = k;
  a.src = src;
  a.dst = dst;
  a.dstDevicePrivate = k.store.zone(dst) === ZONE_DEVICE && pagePgmap(k, dst)?.type === MEMORY_DEVICE_PRIVATE;
  a.restored = 0;
  return a;
}
function finishRemove(k: Kernel, a: RemoveArg): number {
  const n = a.restored;
  a.k = null as unknown as Kernel;
  if (k.charge !== null && n > 0) k.charge("pteUpdate", n);
  return n;
}

/**
 * folio_migrate_mapping(mapping, newfolio, folio, extra_count): move the folio's identity (mapping, index,
 * anon/swapbacked) to newfolio if no one else holds a reference: the folio's refcount must be exactly
 * folio_expected_ref_count (its mapcount, plus the page cache's reference for a file folio) + extra_count + 1
 * (the migrator's). Returns 0 or -EAGAIN (an extra reference appeared: e.g. a GUP pin taken after setup).
 * A page-cache folio's slot and cache reference move to newfolio, and so does its dirty bit.
 */
export function folioMigrateMapping(k: Kernel, newPfn: number, pfn: number, extraCount: number): number {
  const s = k.store;
  const flags = s.flags(pfn);
  const id = s.mapping(pfn);
  const anon = (flags & PG_anon) !== 0;
  if (anon || id === 0) {
    const expected = s.folioMapcount(pfn) + extraCount + 1;
    if (s.refcount(pfn) !== expected) return -EAGAIN;
    s.setIndex(newPfn, s.index(pfn));
    for (let i = 1, nr = s.folioNr(pfn); i < nr; i++) s.setIndex(newPfn + i, s.index(pfn + i));
    s.setMapping(newPfn, id);
    const carry = flags & (PG_anon | PG_swapbacked);
    if (carry !== 0) s.set(newPfn, carry);
    return 0;
  }
  const file = k.objects.get(id) as AddressSpace | undefined;
  const expected = s.folioMapcount(pfn) + extraCount + 1 + 1;
  if (file === undefined || s.refcount(pfn) !== expected) return -EAGAIN;
  const index = s.index(pfn);
  s.refAdd(newPfn, 1);
  file.pages.set(index, newPfn);
  s.setIndex(newPfn, index);
  s.setMapping(newPfn, id);
  if (s.test(pfn, PG_swapbacked)) s.set(newPfn, PG_swapbacked);
  if (s.test(pfn, PG_dirty)) {
    s.clear(pfn, PG_dirty);
    s.set(newPfn, PG_dirty);
  }
  s.refAdd(pfn, -1);
  return 0;
}

/** folio_migrate_flags(newfolio, folio): uptodate, dirty, referenced, active carried; memcg charge moved. */
export function folioMigrateFlags(k: Kernel, newPfn: number, pfn: number): void {
  const s = k.store;
  const carry = s.flags(pfn) & (PG_uptodate | PG_dirty | PG_referenced | (s.zone(newPfn) === ZONE_DEVICE ? 0 : PG_active));
  if (carry !== 0) s.set(newPfn, carry);
  memcgMigrate(s, k.memcgs, pfn, newPfn);
}

/** folio_isolate_lru(): take the folio off the LRU with a reference; false if it is not on the LRU. */
export function folioIsolateLru(k: Kernel, pfn: number): boolean {
  const s = k.store;
  if (!s.test(pfn, PG_lru)) return false;
  s.clear(pfn, PG_lru);
  s.refAdd(pfn, 1);
  return true;
}
/** folio_putback_lru(): back on the LRU, dropping the isolation reference. */
export function folioPutbackLru(k: Kernel, pfn: number): void {
  k.store.set(pfn, PG_lru);
  putPage(k, pfn);
}
/** folio_add_lru(). */
export function folioAddLru(k: Kernel, pfn: number): void {
  k.store.set(pfn, PG_lru);
}

/**
 * lru_add_drain_all() as seen by one folio: hmmsim has no per-CPU lru_add batches, so a user folio (anon or
 * page cache) that is not on the LRU and that the migrator holds locked (so nobody else has it isolated) is
 * treated as sitting in such a batch, and the drain puts it on the LRU. (@hmmsim/core maps THPs without
 * PG_lru; the kernel's map_anon_folio_pmd adds them with folio_add_lru_vma.)
 */
export function lruAddDrainFolio(k: Kernel, pfn: number): void {
  const s = k.store;
  if (s.zone(pfn) === ZONE_DEVICE || s.test(pfn, PG_lru)) return;
  if (s.test(pfn, PG_anon) || s.mapping(pfn) !== 0) s.set(pfn, PG_lru);
}
