/**
 * Transparent huge pages (mm/huge_memory.c): eligibility (thp_vma_allowable_order), the PMD anonymous fault
 * (do_huge_pmd_anonymous_page), PMD write-protect fault (do_huge_pmd_wp_page), PMD split (__split_huge_pmd) and
 * folio split (__split_huge_page, run as the deferred-split shrinker would once a THP is partly unmapped).
 */
import type { Kernel } from "./kernel.js";
import { memcgCharge } from "./memcontrol.js";
import { addMmCounter, MM_ANONPAGES } from "./mm-counters.js";
import { invalidateEnd, invalidateStart } from "./mm-notify.js";
import type { Mm } from "./mm.js";
import { MMU_NOTIFY_CLEAR } from "./mmu-notifier-range.js";
import {
  HPAGE_PMD_NR,
  HPAGE_PMD_ORDER,
  PAGE_SIZE,
  PG_anon,
  PG_anon_exclusive,
  PG_head,
  PG_tail,
  PMD_SIZE,
  alignDown,
} from "./page-flags.js";
import { allocPages, putPage } from "./page-ref.js";
import {
  isDevicePrivateEntry,
  pfnPmd,
  pmdToPteBits,
  pmdTransHuge,
  pteDirty,
  ptePfn,
  pteWrite,
  pteYoung,
  pteMkdirty,
  pteMkwrite,
  pteMkyoung,
} from "./pgtable.js";
import { pageAddNewAnonRmap } from "./rmap.js";
import { VM_HUGEPAGE, VM_NOHUGEPAGE, VM_WRITE, vmaIsAnonymous, type VmAreaStruct } from "./vma.js";
import { VM_FAULT_FALLBACK } from "./vm-fault.js";

/** thp_vma_allowable_order(vma, PMD_ORDER) + the extent check of do_huge_pmd_anonymous_page for haddr. */
export function thpEligible(vma: VmAreaStruct, addr: number): boolean {
  const k = vma.vmMm.kernel;
  if (!vmaIsAnonymous(vma) || (vma.vmFlags & VM_NOHUGEPAGE) !== 0) return false;
  if (k.thp === "never" || (k.thp === "madvise" && (vma.vmFlags & VM_HUGEPAGE) === 0)) return false;
  const haddr = alignDown(addr, PMD_SIZE);
  return haddr >= vma.vmStart && haddr + PMD_SIZE <= vma.vmEnd;
}

/**
 * do_huge_pmd_anonymous_page(): allocate a zeroed order-9 folio, charge it, map it with one PMD (writable+dirty
 * iff VM_WRITE; hmmsim has use_zero_page = 0 so read faults allocate too). VM_FAULT_FALLBACK when no 2 MiB block
 * is free or the memcg charge fails (the kernel then falls back to PTEs).
 */
export function doHugePmdAnonymousPage(mm: Mm, vma: VmAreaStruct, addr: number): number {
  const k = mm.kernel;
  const haddr = alignDown(addr, PMD_SIZE);
  const pfn = allocPages(k, HPAGE_PMD_ORDER, true);
  if (pfn < 0) return VM_FAULT_FALLBACK;
  if (memcgCharge(k.store, pfn, mm.memcg) !== 0) {
    putPage(k, pfn);
    return VM_FAULT_FALLBACK;
  }
  pageAddNewAnonRmap(k, pfn, vma, haddr, { pmd: true });
  const w = (vma.vmFlags & VM_WRITE) !== 0;
  mm.pgtable.pmdSet(haddr, pfnPmd(pfn, w, { dirty: w }));
  addMmCounter(mm, MM_ANONPAGES, HPAGE_PMD_NR);
  if (k.charge !== null) k.charge("pteUpdate", 1);
  return 0;
}

/**
 * do_huge_pmd_wp_page(): reuse the THP in place when this PMD is its only user (exclusive anon), else split the
 * PMD and return VM_FAULT_FALLBACK so the PTE-level COW handles the page.
 */
export function doHugePmdWpPage(mm: Mm, vma: VmAreaStruct, addr: number): number {
  const k = mm.kernel;
  const s = k.store;
  const haddr = alignDown(addr, PMD_SIZE);
  const pmd = mm.pgtable.pmdGet(haddr);
  const head = ptePfn(pmd);
  if (s.test(head, PG_anon) && s.test(head, PG_anon_exclusive) && (vma.vmFlags & VM_WRITE) !== 0) {
    mm.pgtable.pmdSet(haddr, pteMkyoung(pteMkdirty(pteMkwrite(pmd))));
    return 0;
  }
  if (s.test(head, PG_anon) && s.refcount(head) === 1 && s.folioMapcount(head) === HPAGE_PMD_NR && (vma.vmFlags & VM_WRITE) !== 0) {
    for (let i = 0; i < HPAGE_PMD_NR; i++) s.set(head + i, PG_anon_exclusive);
    mm.pgtable.pmdSet(haddr, pteMkyoung(pteMkdirty(pteMkwrite(pmd))));
    return 0;
  }
  splitHugePmd(mm, vma, haddr);
  return VM_FAULT_FALLBACK;
}

/**
 * split_huge_pmd() / __split_huge_pmd_locked(): replace the huge entry covering addr by 512 PTE-level entries
 * (present pages, device-private or migration entries), with MMU_NOTIFY_CLEAR over the 2 MiB range. For a mapped
 * folio each PTE holds its own reference (+511) and page mapcount; the entire mapcount drops. rss is unchanged.
 */
export function splitHugePmd(mm: Mm, _vma: VmAreaStruct, addr: number): void {
  const k = mm.kernel;
  const s = k.store;
  const haddr = alignDown(addr, PMD_SIZE);
  const pmd = mm.pgtable.pmdGet(haddr);
  if (pmd === 0) return;
  const range = invalidateStart(mm, MMU_NOTIFY_CLEAR, haddr, haddr + PMD_SIZE);
  const head = ptePfn(pmd);
  const low = pmdToPteBits(pmd) - head * PAGE_SIZE;
  mm.pgtable.pmdSet(haddr, 0);
  const t = mm.pgtable.pteTable(haddr, true)!;
  for (let i = 0; i < HPAGE_PMD_NR; i++) t[i] = (head + i) * PAGE_SIZE + low;
  if (pmdTransHuge(pmd) || isDevicePrivateEntry(pmd)) {
    s.refAdd(head, HPAGE_PMD_NR - 1);
    for (let i = 0; i < HPAGE_PMD_NR; i++) s.mapcountAdd(head + i, 1);
    s.entireMapcountAdd(head, -1);
  }
  if (k.charge !== null) {
    k.charge("pteUpdate", HPAGE_PMD_NR);
    k.charge("tlbShootdown", HPAGE_PMD_NR);
  }
  invalidateEnd(range);
}

/**
 * split_folio() of an unmapped-at-PMD-level large folio into order-0 folios (__split_huge_page). Each page keeps
 * one reference per PTE mapping; extra references stay with the head. Pages left with no reference are freed.
 * Returns 0, or -EBUSY when the folio is still PMD-mapped or holds references beyond its mappings and `extraRefs`
 * (the kernel's can_split_folio).
 */
export function splitFolio(k: Kernel, pfn: number, extraRefs = 0): number {
  const s = k.store;
  const head = s.folioHead(pfn);
  const nr = s.folioNr(head);
  if (nr === 1) return 0;
  if (s.entireMapcount(head) !== 0) return -16;
  let maps = 0;
  for (let i = 0; i < nr; i++) maps += s.mapcount(head + i);
  const ref = s.refcount(head);
  if (ref !== maps + extraRefs) return -16;
  const flags = s.flags(head) & ~(PG_head | PG_tail);
  const mapping = s.mapping(head);
  const memcg = s.memcgId(head);
  for (let i = nr - 1; i >= 0; i--) {
    const p = head + i;
    const keepExcl = s.flags(p) & PG_anon_exclusive;
    s.setFlagsWord(p, (flags & ~PG_anon_exclusive) | keepExcl);
    s.setOrder(p, 0);
    s.setMapping(p, mapping);
    s.setRefcount(p, s.mapcount(p) + (i === 0 ? extraRefs : 0) + 1);
    s.setMemcgId(p, memcg);
  }
  // The charge of nr pages is now nr charges of one page each: usage unchanged.
  for (let i = 0; i < nr; i++) putPage(k, head + i);
  return 0;
}

/** The PMD entry maps a huge page the CPU can use (pmd_trans_huge && present). */
export function pmdIsHugePresent(pmd: number): boolean {
  return pmdTransHuge(pmd);
}

/** Whether a present huge entry allows writes. */
export function pmdWrite(pmd: number): boolean {
  return pteWrite(pmd);
}
export { pteDirty as pmdDirty, pteYoung as pmdYoung };

