/**
 * The parts of mm/huge_memory.c THP migration needs (CONFIG_ARCH_ENABLE_THP_MIGRATION): set_pmd_migration_entry,
 * remove_migration_pmd, folio_split_unmapped, and the device-private split callback zone_device_private_split_cb
 * (include/linux/memremap.h). @hmmsim/core has the PMD split (splitHugePmd) and the split of a mapped folio
 * (splitFolio); these are the pieces only migration uses.
 */
import {
  EAGAIN,
  EBUSY,
  KernelRuleError,
  MEMORY_DEVICE_PRIVATE,
  PG_anon,
  PG_anon_exclusive,
  PG_dirty,
  PG_head,
  PG_tail,
  ZONE_DEVICE,
  folioMaybeDmaPinned,
  getPage,
  isDevicePrivateEntry,
  isMigrationEntryDirty,
  isMigrationEntryYoung,
  isReadableExclusiveMigrationEntry,
  isWritableDevicePrivateEntry,
  isWritableMigrationEntry,
  makeDevicePrivateEntry,
  makeMigrationEntry,
  pageAddAnonRmap,
  pageAddFileRmap,
  pagePgmap,
  pageRemoveRmap,
  pfnPmd,
  pmdMkhuge,
  pmdTransHuge,
  ptePfn,
  pteDirty,
  ptePresent,
  pteSoftDirty,
  pteWrite,
  pteYoung,
  putPage,
  vmPageProtWrite,
  type Kernel,
  type Mm,
  type VmAreaStruct,
} from "@hmmsim/core";

const _PAGE_SOFT_DIRTY = 1 << 6;
const RMAP_PMD_EXCLUSIVE = { pmd: true, exclusive: true } as const;
const RMAP_PMD = { pmd: true, exclusive: false } as const;
const PMD_OPTS = [
  { young: false, dirty: false },
  { young: true, dirty: false },
  { young: false, dirty: true },
  { young: true, dirty: true },
] as const;

/** Device-private folio (folio_is_device_private). */
export function folioIsDevicePrivate(k: Kernel, pfn: number): boolean {
  return k.store.zone(pfn) === ZONE_DEVICE && pagePgmap(k, pfn)?.type === MEMORY_DEVICE_PRIVATE;
}

/**
 * set_pmd_migration_entry(pvmw, folio_page(folio, 0)): the huge entry `pmd` at `haddr` (a present trans-huge PMD
 * or a huge device-private entry mapping the folio at `head`) becomes a PMD migration entry: writable if the
 * entry was, readable-exclusive if the folio is anon-exclusive, readable otherwise; young/dirty carried from a
 * present PMD (dirty moves to the folio), soft-dirty kept. The folio's PMD rmap and the mapping's reference go;
 * rss stays. -EBUSY (entry restored) when the anon-exclusive folio may be pinned.
 */
export function setPmdMigrationEntry(k: Kernel, mm: Mm, haddr: number, pmd: number, head: number): number {
  const s = k.store;
  const pt = mm.pgtable;
  const present = ptePresent(pmd);
  pt.pmdSet(haddr, 0); // pmdp_invalidate / pmdp_huge_get_and_clear
  const writable = present ? pteWrite(pmd) : isWritableDevicePrivateEntry(pmd);
  const anonExclusive = s.test(head, PG_anon) && s.test(head, PG_anon_exclusive);
  if (anonExclusive) {
    // folio_try_share_anon_rmap_pmd(): device-private folios cannot be pinned.
    if (!folioIsDevicePrivate(k, head) && folioMaybeDmaPinned(k, head)) {
      pt.pmdSet(haddr, pmd);
      return -EBUSY;
    }
    for (let p = head, end = head + s.folioNr(head); p < end; p++) s.clear(p, PG_anon_exclusive);
  }
  const young = present && pteYoung(pmd);
  const dirty = present && pteDirty(pmd);
  if (dirty) s.set(head, PG_dirty);
  let e = makeMigrationEntry(head, writable ? "write" : anonExclusive ? "read-exclusive" : "read", PMD_OPTS[(young ? 1 : 0) + (dirty ? 2 : 0)]);
  if (pteSoftDirty(pmd)) e += _PAGE_SOFT_DIRTY;
  pt.pmdSet(haddr, pmdMkhuge(e));
  pageRemoveRmap(k, head, { pmd: true });
  putPage(k, head);
  if (k.charge !== null) {
    k.charge("pteUpdate", 1);
    if (present) k.charge("tlbShootdown", 1);
  }
  return 0;
}

/**
 * remove_migration_pmd(pvmw, folio): the PMD migration entry `pmd` at `haddr` becomes a mapping of the folio at
 * `dst`: a huge device-private entry for a device-private folio, else a trans-huge PMD; writable iff the migration
 * entry was writable (or vm_page_prot is), old unless it was young, dirty iff it and the folio are. Anon rmap
 * (PMD level) exclusive unless the entry was a plain readable one; a reference for the mapping. No notifier (the
 * entry was not present).
 */
export function removeMigrationPmd(k: Kernel, mm: Mm, vma: VmAreaStruct, haddr: number, pmd: number, dst: number): void {
  const s = k.store;
  const writable = isWritableMigrationEntry(pmd) || vmPageProtWrite(vma.vmFlags);
  let e: number;
  if (folioIsDevicePrivate(k, dst)) {
    e = pmdMkhuge(makeDevicePrivateEntry(dst, writable));
  } else {
    const young = isMigrationEntryYoung(pmd) ? 1 : 0;
    const dirty = isMigrationEntryDirty(pmd) && s.test(dst, PG_dirty) ? 2 : 0;
    e = pfnPmd(dst, writable, PMD_OPTS[young + dirty]);
  }
  if (pteSoftDirty(pmd)) e += _PAGE_SOFT_DIRTY;
  getPage(k, dst);
  if (s.test(dst, PG_anon)) {
    const exclusive = isWritableMigrationEntry(pmd) || isReadableExclusiveMigrationEntry(pmd);
    pageAddAnonRmap(k, dst, exclusive ? RMAP_PMD_EXCLUSIVE : RMAP_PMD);
    // As @hmmsim/core's folio_add_new_anon_rmap(PMD): every page carries PageAnonExclusive, so a later PMD split
    // gives exclusive PTEs.
    if (exclusive) for (let p = dst + 1, end = dst + s.folioNr(dst); p < end; p++) s.set(p, PG_anon_exclusive);
  } else {
    pageAddFileRmap(k, dst, RMAP_PMD);
  }
  mm.pgtable.pmdSet(haddr, e);
  if (k.charge !== null) k.charge("pteUpdate", 1);
}

/** The huge entry maps the folio at `head` (a present trans-huge PMD or a huge device-private entry). */
export function pmdMapsFolio(pmd: number, head: number): boolean {
  if (pmd === 0) return false;
  if (ptePresent(pmd)) return pmdTransHuge(pmd) && ptePfn(pmd) === head;
  return isDevicePrivateEntry(pmd) && ptePfn(pmd) === head;
}

/**
 * zone_device_private_split_cb(original, new) for every new folio of a split device-private folio, then
 * (original, NULL): the pgmap's folio_split op (tail = -1 for the final call). Other folios: nothing.
 */
export function zoneDevicePrivateSplitCb(k: Kernel, head: number, nr: number): void {
  if (!folioIsDevicePrivate(k, head)) return;
  const op = pagePgmap(k, head)?.ops.folioSplit;
  if (op === undefined) return;
  for (let p = head + 1; p < head + nr; p++) op(head, p);
  op(head, -1);
}

/**
 * folio_split_unmapped(folio, 0): split a locked, unmapped (migration entries only) large anon folio into order-0
 * folios, none unlocked: each keeps the folio's flags (PG_locked included) and its own PageAnonExclusive, mapping,
 * index and memcg (the charge of nr pages becomes nr charges of one page), and one reference, the migrator's
 * (can_split_folio(folio, 1): the folio's refcount must be exactly that one, else -EAGAIN). Device-private folios
 * run the pgmap's folio_split op.
 */
export function folioSplitUnmapped(k: Kernel, head: number): number {
  const s = k.store;
  const nr = s.folioNr(head);
  if (nr === 1 || s.isTail(head)) throw new KernelRuleError("folio_split_unmapped_not_large_head", `pfn ${head}`);
  if (s.folioMapped(head)) throw new KernelRuleError("folio_split_unmapped_mapped", `pfn ${head} is still mapped`);
  if (s.refcount(head) !== 1) return -EAGAIN;
  const flags = s.flags(head) & ~(PG_head | PG_tail | PG_anon_exclusive);
  const mapping = s.mapping(head);
  const memcg = s.memcgId(head);
  for (let i = nr - 1; i >= 0; i--) {
    const p = head + i;
    s.setFlagsWord(p, flags | (s.flags(p) & PG_anon_exclusive));
    s.setOrder(p, 0);
    s.setMapping(p, mapping);
    s.setRefcount(p, 1);
    s.setMemcgId(p, memcg);
  }
  zoneDevicePrivateSplitCb(k, head, nr);
  return 0;
}
