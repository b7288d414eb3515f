/**
 * hugetlb (mm/hugetlb.c, fs/hugetlbfs/inode.c): one pool (the default hstate) of 2 MiB huge pages,
 * MAP_HUGETLB mappings, their faults, COW, fork, unmap and reservations.
 *
 * Pool (`kernel.hugetlbPool`, an Hstate): nr_hugepages is 0 by default, as on a machine with no huge pages
 * configured (hugetlb users such as hmm-tests' anon_write_hugetlbfs then SKIP). `kernel.setHugetlbPages(n)` (or
 * `createKernel({ hugetlbPages })`) is /proc/sys/vm/nr_hugepages: it takes free 2 MiB blocks from the page
 * allocator (possibly fewer than asked) or gives unused, unreserved ones back. Pool pages are order-9 folios with
 * PG_hugetlb; a free one has refcount 0; a folio whose last reference goes is put back in the pool
 * (free_huge_folio), never in the page allocator. Hugetlb pages are not in rss and not charged to a memcg (the
 * kernel's default without memory_hugetlb_accounting); `mm.hugetlbUsage` counts mapped hugetlb pages (in base pages,
 * /proc/pid/status HugetlbPages).
 *
 * Mappings: mmap(MAP_HUGETLB | MAP_ANONYMOUS) rounds the length up to 2 MiB, needs a 2 MiB aligned MAP_FIXED
 * address (-EINVAL), and creates a VM_HUGETLB | VM_DONTEXPAND VMA backed by an internal hugetlbfs file (so it is not
 * vma_is_anonymous). Unless MAP_NORESERVE, mmap reserves one pool page per huge page (-ENOMEM when free - reserved
 * is too small); a fault consumes its reservation, munmap/exit give back the unconsumed ones. Splits (munmap,
 * mprotect, madvise) must be 2 MiB aligned (-EINVAL, hugetlb_vm_op_split); mremap must be aligned and cannot grow.
 *
 * Entries: a huge page is mapped by one PMD-level entry, the same packed present huge entry a THP uses
 * (pmdTransHuge() is true for it); what makes it hugetlb is the VMA (isVmHugetlbPage), as in the kernel. Walkers:
 * walkPageRange calls `hugetlbEntry` for hugetlb VMAs and skips them when it is absent (walk_page_range). Private
 * pages are anon (PG_anon, anon_vma rmap, entire mapcount 1 per mapping); shared pages live in the file's page cache
 * (one reference) and use the file rmap.
 *
 * Faults: a read of a private mapping maps a new zeroed page read-only; a write maps it writable (the kernel's
 * "COW without a second fault"). A write to a read-only private entry reuses the page when it is exclusive, else
 * copies the whole huge page (hugetlb_wp, MMU_NOTIFY_CLEAR over the 2 MiB); no free page → VM_FAULT_SIGBUS (the
 * kernel's unmap_ref_private stealing from children is not modelled). fork shares private pages write-protected
 * (the child owns no reservations) and copies a maybe-pinned one; shared mappings are refaulted from the cache.
 *
 * Not modelled: gigantic (1 GiB, PUD) pages and other hstates, surplus pages / overcommit, hugetlbfs files other
 * than MAP_HUGETLB's, PMD sharing, hugetlb migration and hwpoison, MADV_DONTNEED on hugetlb (returns -EINVAL as the
 * core's madvise did before).
 */
import { EINVAL, ENOMEM } from "./errno.js";
import { KernelRuleError } from "./errors.js";
import type { AddressSpace } from "./filemap.js";
import type { Kernel } from "./kernel.js";
import { invalidateEnd, invalidateStart } from "./mm-notify.js";
import type { Mm } from "./mm.js";
import { MMU_NOTIFY_CLEAR } from "./mmu-notifier-range.js";
import {
  HPAGE_PMD_NR,
  HPAGE_PMD_ORDER,
  PAGE_SIZE,
  PG_anon,
  PG_anon_exclusive,
  PG_dirty,
  PG_head,
  PG_hugetlb,
  PG_tail,
  PG_uptodate,
  PMD_SIZE,
  alignDown,
  isAligned,
} from "./page-flags.js";
import { folioMaybeDmaPinned, getPage, putPage } from "./page-ref.js";
import {
  isHwpoisonEntry,
  isMigrationEntry,
  pfnPmd,
  pteDirty,
  pteMkdirty,
  pteMkwrite,
  pteMkyoung,
  ptePfn,
  ptePresent,
  pteWrite,
  pteWrprotect,
} from "./pgtable.js";
import { pageAddNewAnonRmap } from "./rmap.js";
import {
  FAULT_FLAG_UNSHARE,
  FAULT_FLAG_WRITE,
  VM_FAULT_HWPOISON_LARGE,
  VM_FAULT_RETRY,
  VM_FAULT_SIGBUS,
} from "./vm-fault.js";
import {
  VM_MAYSHARE,
  VM_WRITE,
  isCowMapping,
  isVmHugetlbPage,
  linearPageIndex,
  vmPageProtWrite,
  type HugetlbResvMap,
  type VmAreaStruct,
} from "./vma.js";

/** huge_page_order(&default_hstate) on x86-64 with 4 KiB pages: 2 MiB pages. */
export const HUGETLB_PAGE_ORDER = HPAGE_PMD_ORDER;

/** struct hstate (the default one): the hugetlb pool and its counters (in huge pages). */
export class Hstate {
  readonly order = HUGETLB_PAGE_ORDER;
  /** nr_huge_pages. */
  nrHugePages = 0;
  /** free_huge_pages. */
  freeHugePages = 0;
  /** resv_huge_pages: free pages promised to mappings by mmap-time reservations. */
  resvHugePages = 0;
  /** Head pfns of free pool pages (hugepage_freelists), lowest last so it is taken first. */
  private readonly freeList: number[] = [];

  constructor(private readonly k: Kernel) {}

  /** Bytes per huge page. */
  get size(): number {
    return PAGE_SIZE * 2 ** this.order;
  }

  /**
   * set_max_huge_pages() (/proc/sys/vm/nr_hugepages): grow from free 2 MiB blocks of RAM or shrink by freeing
   * unreserved free pages. Returns the new nr_huge_pages (fewer than asked when RAM or free pages run out).
   */
  setMaxHugePages(count: number): number {
    if (!Number.isInteger(count) || count < 0) throw new KernelRuleError("set_max_huge_pages", `count ${count} must be an integer >= 0`);
    const k = this.k;
    const s = k.store;
    while (this.nrHugePages < count) {
      const head = k.allocator.alloc(HUGETLB_PAGE_ORDER);
      if (head < 0) break;
      for (let p = head; p < head + HPAGE_PMD_NR; p++) {
        s.setFlagsWord(p, p === head ? PG_head | PG_hugetlb : PG_tail);
        s.setOrder(p, HUGETLB_PAGE_ORDER);
        s.setMapcount(p, 0);
        s.setMapping(p, 0);
        s.setIndex(p, 0);
      }
      s.setRefcount(head, 0);
      this.insertFree(head);
      this.nrHugePages++;
      this.freeHugePages++;
    }
    while (this.nrHugePages > count && this.freeHugePages > this.resvHugePages) {
      const head = this.freeList.pop()!;
      for (let p = head; p < head + HPAGE_PMD_NR; p++) {
        k.pageBytes.release(p);
        s.setFlagsWord(p, 0);
        s.setOrder(p, 0);
      }
      k.allocator.free(head, HUGETLB_PAGE_ORDER);
      this.nrHugePages--;
      this.freeHugePages--;
    }
    return this.nrHugePages;
  }

  private insertFree(head: number): void {
    // Keep the list sorted high → low so pop() hands out the lowest pfn (deterministic).
    let i = this.freeList.length;
    while (i > 0 && this.freeList[i - 1]! < head) i--;
    this.freeList.splice(i, 0, head);
  }

  /** Free pages not promised to a reservation. */
  get availableHugePages(): number {
    return this.freeHugePages - this.resvHugePages;
  }

  /** hugetlb_acct_memory(+n): reserve n free pages; false when too few are available. */
  reserve(n: number): boolean {
    if (this.availableHugePages < n) return false;
    this.resvHugePages += n;
    return true;
  }
  /** hugetlb_acct_memory(-n). */
  unreserve(n: number): void {
    if (n > this.resvHugePages) throw new KernelRuleError("hugetlb_resv_underflow", `${n} > ${this.resvHugePages}`);
    this.resvHugePages -= n;
  }

  /**
   * alloc_hugetlb_folio(): a zeroed pool folio with refcount 1, taken with a reservation (`reserved`) or from the
   * unreserved free pages; -1 when none (the fault then gets VM_FAULT_SIGBUS, -ENOSPC).
   */
  allocFolio(reserved: boolean): number {
    if (reserved) {
      if (this.resvHugePages <= 0) throw new KernelRuleError("alloc_hugetlb_folio_no_reservation");
    } else if (this.availableHugePages <= 0) {
      return -1;
    }
    const head = this.freeList.pop();
    if (head === undefined) return -1;
    if (reserved) this.resvHugePages--;
    this.freeHugePages--;
    const k = this.k;
    k.store.setRefcount(head, 1);
    for (let p = head; p < head + HPAGE_PMD_NR; p++) k.pageBytes.clear(p);
    if (k.charge !== null) k.charge("pageZero", HPAGE_PMD_NR);
    return head;
  }

  /** free_huge_folio(): the last reference went; the folio returns to the pool. */
  freeFolio(head: number): void {
    const s = this.k.store;
    if (s.entireMapcount(head) !== 0) throw new KernelRuleError("free_huge_folio_mapped", `pfn ${head}`);
    if (s.pincount(head) !== 0) throw new KernelRuleError("free_huge_folio_pinned", `pfn ${head}`);
    for (let p = head; p < head + HPAGE_PMD_NR; p++) {
      s.clear(p, PG_anon_exclusive | PG_anon | PG_dirty | PG_uptodate);
      s.setMapping(p, 0);
      s.setIndex(p, 0);
    }
    this.insertFree(head);
    this.freeHugePages++;
  }
}

/** hstate_vma(). */
export function hstateVma(vma: VmAreaStruct): Hstate {
  return vma.vmMm.kernel.hugetlbPool;
}
/** huge_page_order(h). */
export function hugePageOrder(h: Hstate): number {
  return h.order;
}
/** huge_page_size(h). */
export function hugePageSize(h: Hstate): number {
  return h.size;
}
/** folio_test_hugetlb(). */
export function folioTestHugetlb(k: Kernel, pfn: number): boolean {
  return k.store.test(k.store.folioHead(pfn), PG_hugetlb);
}

/** The huge-page index of addr in the VMA's file (vma_hugecache_offset). */
function hugeIndex(vma: VmAreaStruct, haddr: number): number {
  return linearPageIndex(vma, haddr) / HPAGE_PMD_NR;
}

/**
 * hugetlb_reserve_pages() at mmap: reserve the pages of [vma.vmStart, vma.vmEnd). Private: the VMA owns a resv map
 * of the indices; shared: the file holds them. 0 or -ENOMEM.
 */
export function hugetlbReservePages(vma: VmAreaStruct, noreserve: boolean): number {
  const h = hstateVma(vma);
  const n = (vma.vmEnd - vma.vmStart) / PMD_SIZE;
  if (noreserve) {
    vma.hugetlbResv = null;
    return 0;
  }
  if (!h.reserve(n)) return -ENOMEM;
  const map: HugetlbResvMap = { reserved: new Set<number>() };
  const first = hugeIndex(vma, vma.vmStart);
  for (let i = 0; i < n; i++) map.reserved.add(first + i);
  if (vma.vmFlags & VM_MAYSHARE) {
    vma.vmFile!.hugetlbResv = map;
    vma.hugetlbResv = null;
  } else {
    vma.hugetlbResv = map;
  }
  return 0;
}

/** hugetlb_vm_op_close(): a private VMA going away gives back the reservations of its range not yet consumed. */
export function hugetlbVmOpClose(vma: VmAreaStruct): void {
  const map = vma.hugetlbResv;
  if (map === null || map === undefined || vma.vmFlags & VM_MAYSHARE) return;
  const h = hstateVma(vma);
  let n = 0;
  for (let idx = hugeIndex(vma, vma.vmStart); idx < hugeIndex(vma, vma.vmEnd); idx++) if (map.reserved.delete(idx)) n++;
  if (n > 0) h.unreserve(n);
  vma.hugetlbResv = null;
}

/** hugetlbfs evict_inode for MAP_HUGETLB's internal file: drop the page cache and the unconsumed reservations. */
export function hugetlbFileRelease(k: Kernel, file: AddressSpace): void {
  for (const head of file.pages.values()) putPage(k, head);
  file.pages.clear();
  const map = file.hugetlbResv;
  if (map !== null && map !== undefined) {
    k.hugetlbPool.unreserve(map.reserved.size);
    map.reserved.clear();
  }
}

/** Whether splitting hugetlb VMAs at start and end would cut a huge page (hugetlb_vm_op_split → -EINVAL). */
export function hugetlbSplitCheck(mm: Mm, start: number, end: number): number {
  for (const v of mm.vmasIn(start, end)) {
    if (!isVmHugetlbPage(v)) continue;
    if ((start > v.vmStart && !isAligned(start, PMD_SIZE)) || (end < v.vmEnd && !isAligned(end, PMD_SIZE))) return -EINVAL;
  }
  return 0;
}

/** hugetlb_fault(): the fault handler for VM_HUGETLB VMAs (the caller checked the VMA's access rights). */
export function hugetlbFault(mm: Mm, vma: VmAreaStruct, address: number, flags: number): number {
  const pt = mm.pgtable;
  const haddr = alignDown(address, PMD_SIZE);
  const entry = pt.pmdGet(haddr);
  const write = (flags & FAULT_FLAG_WRITE) !== 0;
  if (entry === 0) return hugetlbNoPage(mm, vma, haddr, write);
  if (!ptePresent(entry)) {
    if (isMigrationEntry(entry)) return VM_FAULT_RETRY;
    if (isHwpoisonEntry(entry)) return VM_FAULT_HWPOISON_LARGE;
    return VM_FAULT_SIGBUS;
  }
  if ((write || (flags & FAULT_FLAG_UNSHARE) !== 0) && !pteWrite(entry)) return hugetlbWp(mm, vma, haddr, entry, !write);
  pt.pmdSet(haddr, write ? pteMkdirty(pteMkyoung(entry)) : pteMkyoung(entry));
  return 0;
}

/** hugetlb_no_page(). */
function hugetlbNoPage(mm: Mm, vma: VmAreaStruct, haddr: number, write: boolean): number {
  const k = mm.kernel;
  const s = k.store;
  const h = k.hugetlbPool;
  const idx = hugeIndex(vma, haddr);
  let head: number;
  if (vma.vmFlags & VM_MAYSHARE) {
    const file = vma.vmFile!;
    const pgoff = idx * HPAGE_PMD_NR;
    if (pgoff >= Math.ceil(file.size / PAGE_SIZE)) return VM_FAULT_SIGBUS;
    const cached = file.pages.get(pgoff);
    if (cached === undefined) {
      const resv = file.hugetlbResv?.reserved.delete(idx) ?? false;
      head = h.allocFolio(resv);
      if (head < 0) return VM_FAULT_SIGBUS;
      s.setMapping(head, file.id);
      for (let i = 0; i < HPAGE_PMD_NR; i++) s.setIndex(head + i, pgoff + i);
      s.set(head, PG_uptodate);
      file.pages.set(pgoff, head); // the page cache's reference
    } else {
      head = cached;
    }
    getPage(k, head);
    s.entireMapcountAdd(head, 1); // hugetlb_add_file_rmap
    if (write) s.set(head, PG_dirty);
    mm.pgtable.pmdSet(haddr, pfnPmd(head, vmPageProtWrite(vma.vmFlags), { dirty: write }));
  } else {
    const resv = vma.hugetlbResv?.reserved.delete(idx) ?? false;
    head = h.allocFolio(resv);
    if (head < 0) return VM_FAULT_SIGBUS;
    pageAddNewAnonRmap(k, head, vma, haddr, { pmd: true });
    s.set(head, PG_uptodate);
    const w = write && (vma.vmFlags & VM_WRITE) !== 0;
    mm.pgtable.pmdSet(haddr, pfnPmd(head, w, { dirty: w }));
  }
  mm.hugetlbUsage += HPAGE_PMD_NR;
  if (k.charge !== null) k.charge("pteUpdate", 1);
  return 0;
}

/** hugetlb_wp(): write (or unshare) fault on a read-only huge entry. */
function hugetlbWp(mm: Mm, vma: VmAreaStruct, haddr: number, entry: number, unshare: boolean): number {
  const k = mm.kernel;
  const s = k.store;
  const pt = mm.pgtable;
  const old = ptePfn(entry);
  if (vma.vmFlags & VM_MAYSHARE) {
    if (!unshare) pt.pmdSet(haddr, pteMkyoung(pteMkdirty(pteMkwrite(entry))));
    return 0;
  }
  if (s.test(old, PG_anon) && (s.test(old, PG_anon_exclusive) || (s.refcount(old) === 1 && s.entireMapcount(old) === 1))) {
    for (let i = 0; i < HPAGE_PMD_NR; i++) s.set(old + i, PG_anon_exclusive);
    if (!unshare) pt.pmdSet(haddr, pteMkyoung(pteMkdirty(pteMkwrite(entry))));
    return 0;
  }
  const np = k.hugetlbPool.allocFolio(false);
  if (np < 0) return VM_FAULT_SIGBUS;
  for (let i = 0; i < HPAGE_PMD_NR; i++) k.pageBytes.copy(np + i, old + i);
  if (k.charge !== null) k.charge("pageCopy", HPAGE_PMD_NR);
  const range = invalidateStart(mm, MMU_NOTIFY_CLEAR, haddr, haddr + PMD_SIZE);
  pageAddNewAnonRmap(k, np, vma, haddr, { pmd: true });
  s.set(np, PG_uptodate);
  pt.pmdSet(haddr, unshare ? pfnPmd(np, false) : pfnPmd(np, true, { dirty: true }));
  s.entireMapcountAdd(old, -1);
  putPage(k, old);
  if (k.charge !== null) {
    k.charge("pteUpdate", 1);
    k.charge("tlbShootdown", HPAGE_PMD_NR);
  }
  invalidateEnd(range);
  return 0;
}

/** __unmap_hugepage_range(): zap the huge entries of [start, end) (2 MiB aligned). No notifier: callers send it. */
export function unmapHugepageRange(mm: Mm, _vma: VmAreaStruct, start: number, end: number): void {
  const k = mm.kernel;
  const pt = mm.pgtable;
  let zapped = 0;
  for (let a = alignDown(start, PMD_SIZE); a < end; a += PMD_SIZE) {
    const e = pt.pmdGet(a);
    if (e === 0) continue;
    pt.pmdSet(a, 0);
    zapped++;
    if (!ptePresent(e)) continue;
    const head = ptePfn(e);
    if (pteDirty(e) && !k.store.test(head, PG_anon)) k.store.set(head, PG_dirty);
    k.store.entireMapcountAdd(head, -1);
    putPage(k, head);
    mm.hugetlbUsage -= HPAGE_PMD_NR;
  }
  if (k.charge !== null && zapped > 0) {
    k.charge("pteUpdate", zapped);
    k.charge("tlbShootdown", zapped * HPAGE_PMD_NR);
  }
}

/**
 * copy_hugetlb_page_range() (fork): private (COW) mappings share each present page write-protected in both mms,
 * except a maybe-pinned exclusive page, which the child gets a copy of; shared mappings share it as is.
 */
export function copyHugetlbPageRange(dst: VmAreaStruct, src: VmAreaStruct): void {
  const srcMm = src.vmMm;
  const dstMm = dst.vmMm;
  const k = srcMm.kernel;
  const s = k.store;
  const cow = isCowMapping(src.vmFlags);
  // hugetlb_dup_vma_private(): the child owns no reservations of a private mapping.
  if (!(src.vmFlags & VM_MAYSHARE)) dst.hugetlbResv = null;
  const range = cow ? invalidateStart(srcMm, 3 /* MMU_NOTIFY_PROTECTION_PAGE */, src.vmStart, src.vmEnd) : null;
  for (let a = src.vmStart; a < src.vmEnd; a += PMD_SIZE) {
    let e = srcMm.pgtable.pmdGet(a);
    if (e === 0) continue;
    if (!ptePresent(e)) {
      dstMm.pgtable.pmdSet(a, e);
      continue;
    }
    const head = ptePfn(e);
    if (cow && s.test(head, PG_anon) && s.test(head, PG_anon_exclusive) && folioMaybeDmaPinned(k, head)) {
      const np = k.hugetlbPool.allocFolio(false);
      if (np < 0) throw new KernelRuleError("fork_copy_pinned_hugetlb_page", `pfn ${head} (fork would fail -ENOMEM)`);
      for (let i = 0; i < HPAGE_PMD_NR; i++) k.pageBytes.copy(np + i, head + i);
      pageAddNewAnonRmap(k, np, dst, a, { pmd: true });
      s.set(np, PG_uptodate);
      dstMm.pgtable.pmdSet(a, pfnPmd(np, (dst.vmFlags & VM_WRITE) !== 0, { dirty: true }));
      dstMm.hugetlbUsage += HPAGE_PMD_NR;
      continue;
    }
    s.refAdd(head, 1);
    s.entireMapcountAdd(head, 1);
    if (s.test(head, PG_anon)) for (let i = 0; i < HPAGE_PMD_NR; i++) s.clear(head + i, PG_anon_exclusive);
    if (cow && pteWrite(e)) {
      e = pteWrprotect(e);
      srcMm.pgtable.pmdSet(a, e);
    }
    dstMm.pgtable.pmdSet(a, e);
    dstMm.hugetlbUsage += HPAGE_PMD_NR;
  }
  if (range !== null) invalidateEnd(range);
}
