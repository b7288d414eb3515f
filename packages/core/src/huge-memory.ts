/**
 * Transparent huge pages (mm/huge_memory.c): eligibility (thp_vma_allowable_order), the PMD anonymous fault
 * (do_huge_pmd_anonymous_page: the huge zero folio on a read, a THP on a write), PMD write-protect fault
 * (do_huge_pmd_wp_page, do_huge_zero_wp_pmd), PMD split (__split_huge_pmd, __split_huge_zero_page_pmd) and folio
 * split (__split_huge_page, run as the deferred-split shrinker would once a THP is partly unmapped).
 *
 * The huge zero folio (Kernel.hugeZeroPfn) is mapped like the zero page: by a special, read-only PMD that holds no
 * reference, no mapcount and no rss (set_huge_zero_folio); is_huge_zero_pmd tells it apart from a THP.
 */
import { KernelRuleError } from "./errors.js";
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
  PG_locked,
  PG_lru,
  PG_tail,
  PG_uptodate,
  PMD_SIZE,
  ZONE_DEVICE,
  alignDown,
} from "./page-flags.js";
import { MEMORY_DEVICE_PRIVATE } from "./dev-pagemap.js";
import { allocPages, putPage } from "./page-ref.js";
import {
  isDevicePrivateEntry,
  pfnPmd,
  pfnPte,
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
import { anonVmaPrepare, pageAddNewAnonRmap, rmapWalk } from "./rmap.js";
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

/** is_huge_zero_pmd(): a present PMD mapping the huge zero folio. */
export function isHugeZeroPmd(k: Kernel, pmd: number): boolean {
  return pmdTransHuge(pmd) && ptePfn(pmd) === k.hugeZeroPfn;
}

/**
 * do_huge_pmd_anonymous_page(): a read fault with transparent_hugepage/use_zero_page maps the huge zero folio
 * (set_huge_zero_folio: one special, read-only PMD; no rss, no rmap, no reference, no memcg charge); otherwise it
 * allocates a zeroed order-9 folio, charges it, maps it with one PMD (writable+dirty iff VM_WRITE).
 * VM_FAULT_FALLBACK when no 2 MiB block is free or the memcg charge fails (the kernel then falls back to PTEs).
 */
export function doHugePmdAnonymousPage(mm: Mm, vma: VmAreaStruct, addr: number, write = true): number {
  const k = mm.kernel;
  const haddr = alignDown(addr, PMD_SIZE);
  if (!write && k.thpUseZeroPage) {
    anonVmaPrepare(vma); // vmf_anon_prepare() runs first, whatever gets mapped (so fork copies the PMD)
    mm.pgtable.pmdSet(haddr, pfnPmd(k.hugeZeroPfn, false, { special: true }));
    if (k.charge !== null) k.charge("pteUpdate", 1);
    return 0;
  }
  const pfn = allocPages(k, HPAGE_PMD_ORDER, true);
  if (pfn < 0) return VM_FAULT_FALLBACK;
  if (memcgCharge(k.store, pfn, mm.memcg) !== 0) {
    putPage(k, pfn);
    return VM_FAULT_FALLBACK;
  }
  pageAddNewAnonRmap(k, pfn, vma, haddr, { pmd: true });
  k.store.set(pfn, PG_lru | PG_uptodate); // folio_add_lru_vma(); __folio_mark_uptodate() after the clear
  const w = (vma.vmFlags & VM_WRITE) !== 0;
  mm.pgtable.pmdSet(haddr, pfnPmd(pfn, w, { dirty: w }));
  addMmCounter(mm, MM_ANONPAGES, HPAGE_PMD_NR);
  if (k.charge !== null) k.charge("pteUpdate", 1);
  return 0;
}

/**
 * do_huge_pmd_wp_page(): on the huge zero folio, do_huge_zero_wp_pmd (a new THP in its place, or a split and
 * VM_FAULT_FALLBACK when none can be had); otherwise reuse the THP in place when this PMD is its only user
 * (exclusive anon), else split the PMD and return VM_FAULT_FALLBACK so the PTE-level COW handles the page.
 */
export function doHugePmdWpPage(mm: Mm, vma: VmAreaStruct, addr: number): number {
  const k = mm.kernel;
  const s = k.store;
  const haddr = alignDown(addr, PMD_SIZE);
  const pmd = mm.pgtable.pmdGet(haddr);
  if (isHugeZeroPmd(k, pmd)) {
    if (doHugeZeroWpPmd(mm, vma, haddr) === 0) return 0;
    // "Fallback to splitting PMD if THP cannot be allocated": 512 zero-page PTEs, the write COWs one of them.
    splitHugePmd(mm, vma, haddr);
    return VM_FAULT_FALLBACK;
  }
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
 * do_huge_zero_wp_pmd(): a write (or unshare) fault on the huge zero PMD replaces it by a new zeroed, charged THP
 * (vma_alloc_anon_folio_pmd + map_anon_folio_pmd: writable iff VM_WRITE, dirty, exclusive anon rmap, rss += 512)
 * inside MMU_NOTIFY_CLEAR over the 2 MiB. VM_FAULT_FALLBACK, with nothing changed, when no THP can be allocated or
 * charged.
 */
function doHugeZeroWpPmd(mm: Mm, vma: VmAreaStruct, haddr: number): number {
  const k = mm.kernel;
  const pfn = allocPages(k, HPAGE_PMD_ORDER, true);
  if (pfn < 0) return VM_FAULT_FALLBACK;
  if (memcgCharge(k.store, pfn, mm.memcg) !== 0) {
    putPage(k, pfn);
    return VM_FAULT_FALLBACK;
  }
  const range = invalidateStart(mm, MMU_NOTIFY_CLEAR, haddr, haddr + PMD_SIZE);
  mm.pgtable.pmdSet(haddr, 0); // pmdp_huge_clear_flush
  pageAddNewAnonRmap(k, pfn, vma, haddr, { pmd: true });
  k.store.set(pfn, PG_lru | PG_uptodate);
  mm.pgtable.pmdSet(haddr, pfnPmd(pfn, (vma.vmFlags & VM_WRITE) !== 0, { dirty: true }));
  addMmCounter(mm, MM_ANONPAGES, HPAGE_PMD_NR);
  if (k.charge !== null) {
    k.charge("pteUpdate", 1);
    k.charge("tlbShootdown", HPAGE_PMD_NR);
  }
  invalidateEnd(range);
  return 0;
}

/**
 * split_huge_pmd() / __split_huge_pmd_locked(): replace the huge entry covering addr by 512 PTE-level entries
 * (present pages, device-private or migration entries), with MMU_NOTIFY_CLEAR over the 2 MiB range. For a mapped
 * folio each PTE holds its own reference (+511) and page mapcount; the entire mapcount drops. rss is unchanged.
 * The huge zero PMD becomes 512 read-only special PTEs of the (small) zero page (__split_huge_zero_page_pmd).
 */
export function splitHugePmd(mm: Mm, _vma: VmAreaStruct, addr: number): void {
  const k = mm.kernel;
  const s = k.store;
  const haddr = alignDown(addr, PMD_SIZE);
  const pmd = mm.pgtable.pmdGet(haddr);
  if (pmd === 0) return;
  const range = invalidateStart(mm, MMU_NOTIFY_CLEAR, haddr, haddr + PMD_SIZE);
  if (isHugeZeroPmd(k, pmd)) {
    mm.pgtable.pmdSet(haddr, 0);
    const zt = mm.pgtable.pteTable(haddr, true)!;
    const zero = pfnPte(k.zeroPfn, false, { special: true });
    for (let i = 0; i < HPAGE_PMD_NR; i++) zt[i] = zero;
    if (k.charge !== null) {
      k.charge("pteUpdate", HPAGE_PMD_NR);
      k.charge("tlbShootdown", HPAGE_PMD_NR);
    }
    invalidateEnd(range);
    return;
  }
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
 * split_huge_page(page) / __folio_split() of an unmapped-at-PMD-level large folio into order-0 folios. Each new
 * folio takes the folio's flags (PG_lru included: lru_add_split_folio puts the tails on the LRU), its own
 * PageAnonExclusive, mapping and memcg, and one reference per PTE mapping; the `extraRefs` (the caller's) stay
 * with `pfn`'s page, the lock_at page: as the kernel, every new folio but that one is then unlocked
 * (folio_unlock) and put, so a page left with no reference is freed. A device-private folio runs its pgmap's
 * folio_split op (zone_device_private_split_cb) for each new folio, then once with tail -1 (the kernel's NULL).
 * A folio still PMD-mapped (in any mm: a THP shared after fork) has those PMDs split first, as unmap_folio()'s
 * try_to_migrate(TTU_SPLIT_HUGE_PMD) and remap_page() leave it: PTE mappings of the new folios.
 * Returns 0, or -EBUSY, with nothing changed, when the folio holds references beyond its mappings and `extraRefs`
 * (the kernel's can_split_folio: folio_mapcount() == folio_ref_count() - extra_pins - caller_pins).
 */
export function splitFolio(k: Kernel, pfn: number, extraRefs = 0): number {
  const s = k.store;
  const head = s.folioHead(pfn);
  const nr = s.folioNr(head);
  if (nr === 1) return 0;
  let maps = s.entireMapcount(head);
  for (let i = 0; i < nr; i++) maps += s.mapcount(head + i);
  if (s.refcount(head) !== maps + extraRefs) return -16;
  if (s.entireMapcount(head) !== 0) rmapWalk(k, head, splitFolioPmd, head);
  if (s.entireMapcount(head) !== 0) {
    throw new KernelRuleError("split_folio_pmd_mapped", `folio ${head}: a PMD mapping of it was not found by the rmap walk`);
  }
  const flags = s.flags(head) & ~(PG_head | PG_tail);
  const mapping = s.mapping(head);
  const memcg = s.memcgId(head);
  const lockAt = pfn;
  for (let i = nr - 1; i >= 0; i--) {
    const p = head + i;
    const keepExcl = s.flags(p) & PG_anon_exclusive;
    s.setFlagsWord(p, (flags & ~PG_anon_exclusive) | keepExcl);
    s.setOrder(p, 0);
    s.setMapping(p, mapping);
    s.setRefcount(p, s.mapcount(p) + (p === lockAt ? extraRefs : 0) + 1);
    s.setMemcgId(p, memcg);
  }
  if (s.zone(head) === ZONE_DEVICE) {
    const pgmap = k.pgmaps.pgmapOf(head);
    const op = pgmap !== null && pgmap.type === MEMORY_DEVICE_PRIVATE ? pgmap.ops.folioSplit : undefined;
    if (op !== undefined) {
      for (let p = head + 1; p < head + nr; p++) op(head, p);
      op(head, -1);
    }
  }
  // The charge of nr pages is now nr charges of one page each: usage unchanged.
  for (let p = head; p < head + nr; p++) {
    if (p !== lockAt) s.clear(p, PG_locked);
    putPage(k, p);
  }
  return 0;
}

/** unmap_folio()'s TTU_SPLIT_HUGE_PMD step for one place the rmap names: split a PMD there that maps the folio. */
function splitFolioPmd(mm: Mm, vma: VmAreaStruct, address: number, head: number): boolean {
  if (address % PMD_SIZE !== 0) return true;
  const pmd = mm.pgtable.pmdGet(address);
  if ((pmdTransHuge(pmd) || isDevicePrivateEntry(pmd)) && ptePfn(pmd) === head) splitHugePmd(mm, vma, address);
  return mm.kernel.store.entireMapcount(head) !== 0;
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

