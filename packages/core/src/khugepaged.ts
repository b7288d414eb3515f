/**
 * MADV_COLLAPSE (mm/khugepaged.c: madvise_collapse, hpage_collapse_scan_pmd, collapse_huge_page,
 * __collapse_huge_page_copy, madvise_collapse_errno): synchronously replace each PMD-aligned 2 MiB extent of
 * PTE-mapped anonymous pages by one THP.
 *
 * As the kernel: MADV_COLLAPSE ignores the sysfs THP mode (TVA_FORCED_COLLAPSE) but not VM_NOHUGEPAGE; none and
 * zero-page PTEs are allowed (max_ptes_none = 512) and become zeroed subpages (rss grows by one each); shared pages
 * are allowed. An extent fails on: no page table (SCAN_PMD_NONE), a non-present entry — device-private,
 * device-exclusive, migration, swap (SCAN_PTE_NON_PRESENT), a special or ZONE_DEVICE page (SCAN_PAGE_NULL), a file
 * page (SCAN_PAGE_ANON), a locked page, a page off the LRU, a page with extra references such as a GUP pin
 * (SCAN_PAGE_LOCK / _LRU / _COUNT: -EAGAIN), no writable PTE (SCAN_PAGE_RO), a PMD migration entry (-EAGAIN), no
 * free 2 MiB block (-ENOMEM) or the memcg limit (-EBUSY). An already PMD-mapped extent counts as done. The call
 * returns 0 only if every extent is a THP afterwards, else the errno of the last failure.
 *
 * The collapse sends MMU_NOTIFY_CLEAR over the 2 MiB, copies (or clears) every subpage, unmaps and puts the old
 * pages, frees the PTE table and maps the new folio with one PMD (dirty; writable iff VM_WRITE; anon-exclusive).
 * Not modelled: file/shmem collapse (-EINVAL), khugepaged itself, swap-in.
 */
import { EAGAIN, EBUSY, EINVAL, ENOMEM } from "./errno.js";
import { splitFolio } from "./huge-memory.js";
import { memcgCharge } from "./memcontrol.js";
import { vmNormalPage } from "./memory.js";
import { MM_ANONPAGES, addMmCounter } from "./mm-counters.js";
import { invalidateEnd, invalidateStart } from "./mm-notify.js";
import type { Mm } from "./mm.js";
import { MMU_NOTIFY_CLEAR } from "./mmu-notifier-range.js";
import {
  HPAGE_PMD_NR,
  HPAGE_PMD_ORDER,
  PG_anon,
  PG_dirty,
  PG_locked,
  PG_lru,
  PG_uptodate,
  PMD_SIZE,
  ZONE_DEVICE,
  alignDown,
  alignUp,
} from "./page-flags.js";
import { allocPages, putPage } from "./page-ref.js";
import { isMigrationEntry, pfnPmd, pmdTransHuge, ptePfn, ptePresent, pteWrite } from "./pgtable.js";
import { pageAddNewAnonRmap, pageRemoveRmap } from "./rmap.js";
import { VM_HUGETLB, VM_IO, VM_MIXEDMAP, VM_NOHUGEPAGE, VM_PFNMAP, VM_WRITE, vmaIsAnonymous, type VmAreaStruct } from "./vma.js";

/** enum scan_result (the values MADV_COLLAPSE can see). */
export const SCAN_FAIL = 0;
export const SCAN_SUCCEED = 1;
export const SCAN_PMD_NULL = 2;
export const SCAN_PMD_NONE = 3;
export const SCAN_PMD_MAPPED = 4;
export const SCAN_PMD_MIGRATION = 5;
export const SCAN_PTE_NON_PRESENT = 6;
export const SCAN_PAGE_RO = 7;
export const SCAN_PAGE_NULL = 8;
export const SCAN_PAGE_ANON = 9;
export const SCAN_PAGE_LOCK = 10;
export const SCAN_PAGE_LRU = 11;
export const SCAN_PAGE_COUNT = 12;
export const SCAN_ALLOC_HUGE_PAGE_FAIL = 13;
export const SCAN_CGROUP_CHARGE_FAIL = 14;
export const SCAN_VMA_CHECK = 15;

/** madvise_collapse_errno(). */
export function madviseCollapseErrno(r: number): number {
  switch (r) {
    case SCAN_ALLOC_HUGE_PAGE_FAIL:
      return -ENOMEM;
    case SCAN_CGROUP_CHARGE_FAIL:
      return -EBUSY;
    case SCAN_PAGE_COUNT:
    case SCAN_PAGE_LOCK:
    case SCAN_PAGE_LRU:
    case SCAN_PMD_MIGRATION:
      return -EAGAIN;
    default:
      return -EINVAL;
  }
}

/** thp_vma_allowable_order(vma, TVA_FORCED_COLLAPSE, PMD_ORDER) for the VMA kinds hmmsim collapses. */
function collapseAllowed(vma: VmAreaStruct): boolean {
  if (!vmaIsAnonymous(vma)) return false;
  return (vma.vmFlags & (VM_NOHUGEPAGE | VM_HUGETLB | VM_PFNMAP | VM_IO | VM_MIXEDMAP)) === 0;
}

/** madvise_collapse() over [start, end) of one VMA: 0 or -errno. */
export function madviseCollapse(mm: Mm, vma: VmAreaStruct, start: number, end: number): number {
  if (!collapseAllowed(vma)) return -EINVAL;
  const hstart = alignUp(start, PMD_SIZE);
  const hend = alignDown(end, PMD_SIZE);
  if (hend < hstart) return -EINVAL;
  let thps = 0;
  let lastFail = SCAN_FAIL;
  for (let addr = hstart; addr < hend; addr += PMD_SIZE) {
    // hugepage_vma_revalidate(): the extent must lie inside the VMA.
    let result = addr >= vma.vmStart && addr + PMD_SIZE <= vma.vmEnd ? hpageCollapseScanPmd(mm, addr) : SCAN_VMA_CHECK;
    if (result === SCAN_SUCCEED) result = collapseHugePage(mm, vma, addr);
    switch (result) {
      case SCAN_SUCCEED:
      case SCAN_PMD_MAPPED:
        thps++;
        break;
      case SCAN_PMD_NULL:
      case SCAN_PMD_MIGRATION:
      case SCAN_PTE_NON_PRESENT:
      case SCAN_PAGE_RO:
      case SCAN_PAGE_NULL:
      case SCAN_PAGE_COUNT:
      case SCAN_PAGE_LOCK:
      case SCAN_PAGE_LRU:
        lastFail = result;
        break;
      default:
        return madviseCollapseErrno(result);
    }
  }
  return thps === (hend - hstart) / PMD_SIZE ? 0 : madviseCollapseErrno(lastFail);
}

/** hpage_collapse_scan_pmd(): can the extent at haddr be collapsed? SCAN_SUCCEED or the reason not. */
function hpageCollapseScanPmd(mm: Mm, haddr: number): number {
  const k = mm.kernel;
  const s = k.store;
  const pt = mm.pgtable;
  const pmd = pt.pmdGet(haddr);
  if (pmd !== 0) {
    if (pmdTransHuge(pmd)) return SCAN_PMD_MAPPED;
    return isMigrationEntry(pmd) ? SCAN_PMD_MIGRATION : SCAN_PMD_NULL;
  }
  const t = pt.pteTable(haddr, false);
  if (t === null) return SCAN_PMD_NONE;
  let writable = false;
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    const e = t[i]!;
    if (e === 0) continue;
    if (!ptePresent(e)) return SCAN_PTE_NON_PRESENT;
    if (k.isZeroPfn(ptePfn(e))) continue;
    if (pteWrite(e)) writable = true;
    const pfn = vmNormalPage(k, e);
    if (pfn < 0 || s.zone(pfn) === ZONE_DEVICE) return SCAN_PAGE_NULL;
    const head = s.folioHead(pfn);
    if (!s.test(head, PG_anon)) return SCAN_PAGE_ANON;
    if (s.test(head, PG_locked)) return SCAN_PAGE_LOCK;
    if (!s.test(head, PG_lru)) return SCAN_PAGE_LRU;
    // is_refcount_suitable(): no reference beyond the mappings (a GUP pin, a driver's get_page).
    if (s.refcount(head) !== s.folioMapcount(head)) return SCAN_PAGE_COUNT;
  }
  return writable ? SCAN_SUCCEED : SCAN_PAGE_RO;
}

/** collapse_huge_page(): allocate, charge, copy, and replace the PTE table by a PMD. */
function collapseHugePage(mm: Mm, vma: VmAreaStruct, haddr: number): number {
  const k = mm.kernel;
  const s = k.store;
  const pt = mm.pgtable;
  const head = allocPages(k, HPAGE_PMD_ORDER);
  if (head < 0) return SCAN_ALLOC_HUGE_PAGE_FAIL;
  if (memcgCharge(s, head, mm.memcg) !== 0) {
    putPage(k, head);
    return SCAN_CGROUP_CHARGE_FAIL;
  }
  const range = invalidateStart(mm, MMU_NOTIFY_CLEAR, haddr, haddr + PMD_SIZE);
  const t = pt.pteTable(haddr, false)!;
  const partial = new Set<number>();
  let copied = 0;
  let newRss = 0;
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    const e = t[i]!;
    t[i] = 0;
    if (e === 0 || k.isZeroPfn(ptePfn(e))) {
      k.pageBytes.clear(head + i);
      newRss++;
      continue;
    }
    const pfn = ptePfn(e);
    k.pageBytes.copy(head + i, pfn);
    copied++;
    pageRemoveRmap(k, pfn);
    if (s.isLarge(pfn)) partial.add(s.folioHead(pfn));
    putPage(k, pfn);
  }
  pt.freePteTable(haddr);
  pageAddNewAnonRmap(k, head, vma, haddr, { pmd: true });
  s.set(head, PG_lru | PG_uptodate | PG_dirty);
  const w = (vma.vmFlags & VM_WRITE) !== 0;
  pt.pmdSet(haddr, pfnPmd(head, w, { dirty: true }));
  addMmCounter(mm, MM_ANONPAGES, newRss);
  if (k.charge !== null) {
    if (copied > 0) k.charge("pageCopy", copied);
    if (newRss > 0) k.charge("pageZero", newRss);
    k.charge("pteUpdate", HPAGE_PMD_NR + 1);
    k.charge("tlbShootdown", HPAGE_PMD_NR);
  }
  invalidateEnd(range);
  // Large folios left partly mapped go to the deferred split queue (split at once here, as zap does).
  for (const h of partial) if (s.refcount(h) > 0 && s.isLarge(h) && s.folioMapped(h)) splitFolio(k, h);
  return SCAN_SUCCEED;
}
