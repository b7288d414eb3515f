/**
 * Reverse mapping (mm/rmap.c). An anon folio's mapping is an AnonVma; hmmsim keeps one AnonVma per anonymous
 * VMA lineage and records every mm that may map its pages (the parent and, after fork, its children), in place of
 * the kernel's anon_vma_chain. As in the kernel, a page's address in a VMA is vma_address(): vma.vmStart +
 * (index - vma.vmPgoff) << PAGE_SHIFT, for anon pages (index = linear_page_index at first fault; an anonymous
 * VMA's vmPgoff is its first address >> PAGE_SHIFT and mremap keeps it) and file pages alike. Never compute an anon
 * page's address as index << PAGE_SHIFT: after mremap it is wrong — use rmapWalk or vmaAddress.
 */
import { EBUSY } from "./errno.js";
import { KernelRuleError } from "./errors.js";
import type { Kernel } from "./kernel.js";
import { folioMaybeDmaPinned } from "./page-ref.js";
import { PAGE_SIZE, PG_anon, PG_anon_exclusive, PG_swapbacked } from "./page-flags.js";
import { linearPageIndex, type VmAreaStruct } from "./vma.js";
import type { Mm } from "./mm.js";

export class AnonVma {
  readonly kind = "anon" as const;
  /** Mms that may map pages of this anon_vma. */
  readonly mms = new Set<Mm>();
  /**
   * Some VMA of this anon_vma has vmPgoff !== vmStart >> PAGE_SHIFT (it was mremap()ed, or is a private file
   * mapping): rmapWalk then scans each mm's VMAs instead of looking up index << PAGE_SHIFT (a fast path only).
   */
  nonLinear = false;
  constructor(
    /** Id in Kernel.objects, stored in page->mapping. */
    readonly id: number,
  ) {}
}

/** anon_vma_prepare(): give an anonymous (or private file) VMA its anon_vma on first anon page. */
export function anonVmaPrepare(vma: VmAreaStruct): AnonVma {
  if (vma.anonVma === null) {
    vma.anonVma = vma.vmMm.kernel.createAnonVma();
    vma.anonVma.mms.add(vma.vmMm);
  }
  if (vma.vmPgoff !== vma.vmStart / PAGE_SIZE) vma.anonVma.nonLinear = true;
  return vma.anonVma;
}

/**
 * folio_add_new_anon_rmap(folio, vma, address, RMAP_EXCLUSIVE?): a freshly allocated folio becomes anon, mapped
 * once (PTE: page mapcount 1; `pmd`: entire mapcount 1), mapping = the VMA's anon_vma, index =
 * linear_page_index(vma, address) (address >> 12 in a VMA that was never mremap()ed).
 * Exclusive (the default) marks every page PageAnonExclusive. The caller holds the folio's reference for the map.
 */
export function pageAddNewAnonRmap(
  k: Kernel,
  pfn: number,
  vma: VmAreaStruct,
  address: number,
  opts?: { pmd?: boolean; exclusive?: boolean },
): void {
  const s = k.store;
  const head = s.folioHead(pfn);
  const nr = opts?.pmd ? s.folioNr(head) : 1;
  const av = anonVmaPrepare(vma);
  s.set(head, PG_anon);
  s.clear(head, PG_swapbacked);
  s.setMapping(head, av.id);
  const first = opts?.pmd ? head : pfn;
  const base = linearPageIndex(vma, Math.floor(address / PAGE_SIZE) * PAGE_SIZE);
  for (let i = 0; i < nr; i++) {
    s.setIndex(first + i, base + i);
    if (opts?.exclusive ?? true) s.set(first + i, PG_anon_exclusive);
    else s.clear(first + i, PG_anon_exclusive);
  }
  if (opts?.pmd) s.entireMapcountAdd(head, 1);
  else s.mapcountAdd(pfn, 1);
}

/**
 * folio_add_anon_rmap_pte/pmd / folio_dup_anon_rmap_*: one more mapping of an existing anon page (or, `pmd`, of
 * the whole folio). `exclusive` sets PageAnonExclusive (restore of an exclusive mapping).
 */
export function pageAddAnonRmap(k: Kernel, pfn: number, opts?: { pmd?: boolean; exclusive?: boolean }): void {
  const s = k.store;
  if (!s.test(s.folioHead(pfn), PG_anon)) throw new KernelRuleError("folio_add_anon_rmap_not_anon", `pfn ${pfn}`);
  if (opts?.pmd) s.entireMapcountAdd(pfn, 1);
  else s.mapcountAdd(pfn, 1);
  if (opts?.exclusive) s.set(pfn, PG_anon_exclusive);
}

/** folio_add_file_rmap_pte/pmd: one more mapping of a page-cache page. */
export function pageAddFileRmap(k: Kernel, pfn: number, opts?: { pmd?: boolean }): void {
  if (opts?.pmd) k.store.entireMapcountAdd(pfn, 1);
  else k.store.mapcountAdd(pfn, 1);
}

/** folio_remove_rmap_pte/pmd: one mapping fewer. The caller puts the mapping's reference afterwards. */
export function pageRemoveRmap(k: Kernel, pfn: number, opts?: { pmd?: boolean }): void {
  if (opts?.pmd) k.store.entireMapcountAdd(pfn, -1);
  else k.store.mapcountAdd(pfn, -1);
}

/**
 * folio_try_dup_anon_rmap_pte/pmd (fork): share an anon page with a child; clears PageAnonExclusive. Always
 * succeeds here: fork (copy_present_pte) checks folioMaybeDmaPinned first and copies a pinned exclusive page for
 * the child instead, which is when the kernel's version fails.
 */
export function pageTryDupAnonRmap(k: Kernel, pfn: number, opts?: { pmd?: boolean }): boolean {
  const s = k.store;
  if (opts?.pmd) {
    s.entireMapcountAdd(pfn, 1);
    const h = s.folioHead(pfn);
    for (let i = 0; i < s.folioNr(h); i++) s.clear(h + i, PG_anon_exclusive);
  } else {
    s.mapcountAdd(pfn, 1);
    s.clear(pfn, PG_anon_exclusive);
  }
  return true;
}

/**
 * folio_try_share_anon_rmap_pte/pmd (include/linux/rmap.h): before unmapping an exclusive anon page for migration,
 * drop PageAnonExclusive — unless the folio may be GUP-pinned, then -EBUSY and nothing changes (the caller restores
 * the mapping). `pmd`: every page of the folio.
 */
export function folioTryShareAnonRmap(k: Kernel, pfn: number, opts?: { pmd?: boolean }): number {
  const s = k.store;
  if (folioMaybeDmaPinned(k, pfn)) return -EBUSY;
  if (opts?.pmd) {
    const h = s.folioHead(pfn);
    for (let i = 0; i < s.folioNr(h); i++) s.clear(h + i, PG_anon_exclusive);
  } else {
    s.clear(pfn, PG_anon_exclusive);
  }
  return 0;
}

/** rmap_walk_control.rmap_one: return false to stop the walk. `arg` is rmapWalk's `arg` (rwc->arg). */
export type RmapOne<A = undefined> = (mm: Mm, vma: VmAreaStruct, address: number, arg: A) => boolean;

/**
 * rmap_walk (mm/rmap.c): call `rmapOne(mm, vma, address, arg)` for every place that may map `pfn`; the callee
 * checks the entry there (present, device-private, device-exclusive or migration entry with this pfn). Stops when
 * it returns false. As with struct rmap_walk_control, a hot caller passes a function made once plus an `arg`
 * object instead of a new closure per call. The walk allocates nothing: it iterates the anon_vma's mms / the
 * file's mappers in place (the kernel holds the anon_vma / i_mmap lock, so rmapOne must not add or remove VMAs).
 */
export function rmapWalk<A = undefined>(k: Kernel, pfn: number, rmapOne: RmapOne<A>, arg?: A): void {
  const s = k.store;
  const head = s.folioHead(pfn);
  const id = s.mapping(head);
  if (id === 0) return;
  const obj = k.objects.get(id);
  if (obj === undefined) return;
  const index = s.index(pfn);
  if (obj.kind === "anon") {
    for (const mm of obj.mms) {
      if (!obj.nonLinear) {
        const address = index * PAGE_SIZE;
        const vma = mm.vmaLookup(address);
        if (vma !== null && vma.anonVma === obj && !rmapOne(mm, vma, address, arg as A)) return;
        continue;
      }
      const vmas = mm.vmas;
      for (let i = 0; i < vmas.length; i++) {
        const vma = vmas[i]!;
        if (vma.anonVma !== obj) continue;
        const address = vmaAddress(vma, index);
        if (address >= vma.vmStart && address < vma.vmEnd && !rmapOne(mm, vma, address, arg as A)) return;
      }
    }
    return;
  }
  for (const vma of obj.mappers) {
    const address = vma.vmStart + (index - vma.vmPgoff) * PAGE_SIZE;
    if (address >= vma.vmStart && address < vma.vmEnd && !rmapOne(vma.vmMm, vma, address, arg as A)) return;
  }
}

/** vma_address(vma, pgoff, 1) (mm/internal.h): where page offset `pgoff` of the VMA's object sits, or -1 if outside. */
export function vmaAddress(vma: VmAreaStruct, pgoff: number): number {
  const address = vma.vmStart + (pgoff - vma.vmPgoff) * PAGE_SIZE;
  return address >= vma.vmStart && address < vma.vmEnd ? address : -1;
}
