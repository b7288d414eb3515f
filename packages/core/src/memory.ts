/**
 * The page fault handler and zapping (mm/memory.c): handle_mm_fault, do_anonymous_page, do_fault
 * (do_read_fault / do_cow_fault / do_shared_fault with filemap_fault), do_wp_page / wp_page_copy, do_swap_page
 * (device-private → migrate_to_ram, device-exclusive → remove_device_exclusive_entry, migration entry → wait),
 * vm_normal_page, zap_pte_range / zap_nonpresent_ptes, restore_exclusive_pte.
 */
import { MEMORY_DEVICE_PRIVATE } from "./dev-pagemap.js";
import { InvalidArgumentError } from "./errors.js";
import type { AddressSpace } from "./filemap.js";
import { doHugePmdAnonymousPage, doHugePmdWpPage, isHugeZeroPmd, splitFolio, splitHugePmd, thpEligible } from "./huge-memory.js";
import { hugetlbFault, unmapHugepageRange } from "./hugetlb.js";
import type { Kernel } from "./kernel.js";
import { memcgCharge } from "./memcontrol.js";
import { addMmCounter, decMmCounter, incMmCounter, MM_ANONPAGES, mmCounter, mmCounterFile } from "./mm-counters.js";
import { invalidateEnd, invalidateStart } from "./mm-notify.js";
import { mmapAssertLocked, type Mm } from "./mm.js";
import { MMU_NOTIFY_CLEAR } from "./mmu-notifier-range.js";
import {
  HPAGE_PMD_NR,
  PAGE_SIZE,
  PG_anon,
  PG_anon_exclusive,
  PG_dirty,
  PG_lru,
  PG_swapbacked,
  PG_uptodate,
  PMD_SIZE,
  alignDown,
} from "./page-flags.js";
import { allocPages, folioTrylock, folioTryGet, folioUnlock, getPage, putPage } from "./page-ref.js";
import {
  isDeviceExclusiveEntry,
  isDevicePrivateEntry,
  isHwpoisonEntry,
  isMigrationEntry,
  pfnPte,
  pmdTransHuge,
  pteDirty,
  pteMkdirty,
  pteMkwrite,
  pteMkyoung,
  ptePfn,
  ptePresent,
  pteSoftDirty,
  pteSpecial,
  pteWrite,
} from "./pgtable.js";
import { pageAddFileRmap, pageAddNewAnonRmap, pageRemoveRmap } from "./rmap.js";
import {
  FAULT_FLAG_ALL,
  FAULT_FLAG_UNSHARE,
  FAULT_FLAG_WRITE,
  VM_FAULT_HWPOISON,
  VM_FAULT_OOM,
  VM_FAULT_RETRY,
  VM_FAULT_SIGBUS,
  VM_FAULT_SIGSEGV,
  type VmFault,
} from "./vm-fault.js";
import {
  VM_EXEC,
  VM_IO,
  VM_PFNMAP,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
  isCowMapping,
  isVmHugetlbPage,
  linearPageIndex,
  vmaIsAnonymous,
  vmPageProtWrite,
  type VmAreaStruct,
} from "./vma.js";

/**
 * vm_normal_page(): the pfn of the struct page a present PTE maps, or -1 for special mappings (VM_PFNMAP/VM_IO
 * special PTEs) and the zero page.
 */
export function vmNormalPage(k: Kernel, pte: number): number {
  if (!ptePresent(pte) || pteSpecial(pte)) return -1;
  const pfn = ptePfn(pte);
  if (pfn === k.zeroPfn) return -1;
  return pfn;
}

/**
 * handle_mm_fault(vma, address, flags) with the arch's access_error() check in front: returns VM_FAULT_* bits.
 * 0: handled (the access may be retried); VM_FAULT_SIGSEGV: no VMA or no permission; VM_FAULT_SIGBUS: nothing
 * can back the address; VM_FAULT_OOM: out of memory or memcg limit; VM_FAULT_HWPOISON; VM_FAULT_RETRY (hmmsim):
 * the fault would sleep — a migration entry is in place (migration_entry_wait) or a page lock is held — retry once
 * it is gone. The caller holds the mmap lock.
 */
export function handleMmFault(mm: Mm, address: number, flags: number): number {
  if (!Number.isInteger(address) || address < 0) throw new InvalidArgumentError("address", "must be an integer >= 0", address);
  if (!Number.isInteger(flags) || (flags & ~FAULT_FLAG_ALL) !== 0)
    throw new InvalidArgumentError("flags", "unknown FAULT_FLAG_* bits", flags);
  mm.assertLive();
  mmapAssertLocked(mm);
  const k = mm.kernel;
  if (k.charge !== null) k.charge("cpuFault", 1);
  const ret = faultLocked(mm, address, flags);
  const tp = k.tracepoints.pageFault;
  if (tp !== null) tp(mm, address, flags, ret);
  return ret;
}

function faultLocked(mm: Mm, address: number, flags: number): number {
  const vma = mm.vmaLookup(address);
  if (vma === null) return VM_FAULT_SIGSEGV;
  const write = (flags & FAULT_FLAG_WRITE) !== 0;
  if (write ? (vma.vmFlags & VM_WRITE) === 0 : (vma.vmFlags & (VM_READ | VM_EXEC)) === 0) return VM_FAULT_SIGSEGV;
  const addr = alignDown(address, PAGE_SIZE);
  if (isVmHugetlbPage(vma)) return hugetlbFault(mm, vma, addr, flags);
  const pt = mm.pgtable;
  // __handle_mm_fault: PMD level.
  const pmd = pt.pmdGet(addr);
  if (pmd === 0 && pt.pteTable(addr, false) === null && thpEligible(vma, addr)) {
    const r = doHugePmdAnonymousPage(mm, vma, addr, write);
    if (r === 0) return 0;
  } else if (pmd !== 0) {
    if (pmdTransHuge(pmd)) {
      if (!write && (flags & FAULT_FLAG_UNSHARE) !== 0 && !pteWrite(pmd) && isHugeZeroPmd(mm.kernel, pmd)) {
        // do_huge_pmd_wp_page(unshare) checks is_huge_zero_pmd first: do_huge_zero_wp_pmd, as for a write.
        const r = doHugePmdWpPage(mm, vma, addr);
        if (r === 0) return 0;
      } else if (!write && (flags & FAULT_FLAG_UNSHARE) !== 0 && !pteWrite(pmd)) {
        // do_huge_pmd_wp_page(unshare): an exclusive anon THP needs nothing; a shared one is split and the page
        // unshared at PTE level.
        const s = mm.kernel.store;
        const head = ptePfn(pmd);
        if (!s.test(head, PG_anon) || s.test(head, PG_anon_exclusive)) return 0;
        if (s.refcount(head) === 1 && s.folioMapcount(head) === HPAGE_PMD_NR) {
          for (let i = 0; i < HPAGE_PMD_NR; i++) s.set(head + i, PG_anon_exclusive);
          return 0;
        }
        splitHugePmd(mm, vma, addr);
      } else if (write && !pteWrite(pmd)) {
        const r = doHugePmdWpPage(mm, vma, addr);
        if (r === 0) return 0;
      } else {
        pt.pmdSet(addr, write ? pteMkdirty(pteMkyoung(pmd)) : pteMkyoung(pmd));
        return 0;
      }
    } else if (isMigrationEntry(pmd)) {
      return VM_FAULT_RETRY;
    } else if (isDevicePrivateEntry(pmd)) {
      return doHugePmdDevicePrivate(mm, vma, address, addr, flags, pmd);
    } else {
      splitHugePmd(mm, vma, addr);
    }
  }
  return handlePteFault(mm, vma, address, addr, flags);
}

/**
 * do_huge_pmd_device_private() (mm/huge_memory.c): a CPU fault on a huge device-private PMD hands the whole folio
 * to the driver: vmf->page = the folio's head, vmf->pte = NULL (`atPmd`), folio trylocked (else retry) and
 * referenced around pgmap->ops->migrate_to_ram(vmf). The driver chooses the order (lib/test_hmm.c migrates the
 * whole 2 MiB with MIGRATE_VMA_SELECT_COMPOUND).
 */
function doHugePmdDevicePrivate(mm: Mm, vma: VmAreaStruct, realAddress: number, addr: number, flags: number, pmd: number): number {
  const k = mm.kernel;
  const head = ptePfn(pmd);
  const pgmap = k.pgmaps.pgmapOf(head);
  if (pgmap === null || pgmap.type !== MEMORY_DEVICE_PRIVATE || typeof pgmap.ops.migrateToRam !== "function") return VM_FAULT_SIGBUS;
  if (!folioTrylock(k, head)) return VM_FAULT_RETRY;
  getPage(k, head);
  try {
    return pgmap.ops.migrateToRam(makeVmf(mm, vma, realAddress, addr, flags, head, pmd, true));
  } finally {
    folioUnlock(k, head);
    putPage(k, head);
  }
}

function makeVmf(mm: Mm, vma: VmAreaStruct, realAddress: number, addr: number, flags: number, page: number, origPte: number, atPmd = false): VmFault {
  return { vma, mm, address: addr, realAddress, flags, pgoff: linearPageIndex(vma, addr), page, origPte, atPmd };
}

/** handle_pte_fault(). */
function handlePteFault(mm: Mm, vma: VmAreaStruct, realAddress: number, addr: number, flags: number): number {
  const pte = mm.pgtable.pteGet(addr);
  const write = (flags & FAULT_FLAG_WRITE) !== 0;
  if (pte === 0) {
    if (vmaIsAnonymous(vma)) return doAnonymousPage(mm, vma, addr, write);
    return doFault(mm, vma, addr, write);
  }
  if (!ptePresent(pte)) return doSwapPage(mm, vma, realAddress, addr, flags, pte);
  if (write && !pteWrite(pte)) return doWpPage(mm, vma, addr, pte);
  if ((flags & FAULT_FLAG_UNSHARE) !== 0 && !pteWrite(pte)) return doWpPage(mm, vma, addr, pte, true);
  mm.pgtable.pteSet(addr, write ? pteMkdirty(pteMkyoung(pte)) : pteMkyoung(pte));
  return 0;
}

/** do_anonymous_page(): read → the zero page (no rss, no refcount); write → a new zeroed exclusive anon page. */
function doAnonymousPage(mm: Mm, vma: VmAreaStruct, addr: number, write: boolean): number {
  const k = mm.kernel;
  if (!write) {
    mm.pgtable.pteSet(addr, pfnPte(k.zeroPfn, false, { special: true }));
    if (k.charge !== null) k.charge("pteUpdate", 1);
    return 0;
  }
  const pfn = allocPages(k, 0, true);
  if (pfn < 0) return VM_FAULT_OOM;
  if (memcgCharge(k.store, pfn, mm.memcg) !== 0) {
    putPage(k, pfn);
    return VM_FAULT_OOM;
  }
  pageAddNewAnonRmap(k, pfn, vma, addr);
  k.store.set(pfn, PG_lru | PG_uptodate);
  incMmCounter(mm, MM_ANONPAGES);
  mm.pgtable.pteSet(addr, pfnPte(pfn, (vma.vmFlags & VM_WRITE) !== 0, { dirty: true }));
  if (k.charge !== null) k.charge("pteUpdate", 1);
  return 0;
}

/**
 * filemap_fault / shmem_fault: the page-cache page for `index`, created zeroed (and charged to mm's memcg) on a
 * miss. Returns the pfn (holding one extra reference for the caller), -1 on OOM, -2 beyond EOF.
 */
export function filemapGetPage(mm: Mm, file: AddressSpace, index: number): number {
  const k = mm.kernel;
  if (index >= Math.ceil(file.size / PAGE_SIZE)) return -2;
  let pfn = file.pages.get(index);
  if (pfn === undefined) {
    const p = allocPages(k, 0, true);
    if (p < 0) return -1;
    if (memcgCharge(k.store, p, mm.memcg) !== 0) {
      putPage(k, p);
      return -1;
    }
    k.store.set(p, PG_lru | PG_uptodate | (file.shmem ? PG_swapbacked : 0));
    k.store.setMapping(p, file.id);
    k.store.setIndex(p, index);
    file.pages.set(index, p);
    pfn = p;
  }
  getPage(k, pfn);
  return pfn;
}

/** do_fault(): do_read_fault / do_cow_fault / do_shared_fault over a file or shmem VMA; special VMAs SIGBUS. */
function doFault(mm: Mm, vma: VmAreaStruct, addr: number, write: boolean): number {
  const k = mm.kernel;
  const file = vma.vmFile;
  if (file === null || (vma.vmFlags & (VM_PFNMAP | VM_IO)) !== 0) return VM_FAULT_SIGBUS;
  const index = linearPageIndex(vma, addr);
  const pfn = filemapGetPage(mm, file, index);
  if (pfn === -2) return VM_FAULT_SIGBUS;
  if (pfn === -1) return VM_FAULT_OOM;
  if (write && isCowMapping(vma.vmFlags)) {
    // do_cow_fault: a private copy of the file page.
    const np = allocPages(k, 0);
    if (np < 0 || memcgCharge(k.store, np, mm.memcg) !== 0) {
      if (np >= 0) putPage(k, np);
      putPage(k, pfn);
      return VM_FAULT_OOM;
    }
    k.pageBytes.copy(np, pfn);
    if (k.charge !== null) k.charge("pageCopy", 1);
    putPage(k, pfn);
    pageAddNewAnonRmap(k, np, vma, addr);
    k.store.set(np, PG_lru | PG_uptodate);
    incMmCounter(mm, MM_ANONPAGES);
    mm.pgtable.pteSet(addr, pfnPte(np, true, { dirty: true }));
    if (k.charge !== null) k.charge("pteUpdate", 1);
    return 0;
  }
  // finish_fault: map the page-cache page; the reference taken above is the mapping's.
  pageAddFileRmap(k, pfn);
  incMmCounter(mm, mmCounterFile(k, pfn));
  if (write) k.store.set(pfn, PG_dirty);
  mm.pgtable.pteSet(addr, pfnPte(pfn, vmPageProtWrite(vma.vmFlags), { dirty: write }));
  if (k.charge !== null) k.charge("pteUpdate", 1);
  return 0;
}

/**
 * do_wp_page(): a write to a present read-only PTE in a writable VMA. Shared mappings are made writable
 * (wp_page_shared); a private anon page this mapping owns exclusively is reused (wp_page_reuse); anything else is
 * copied (wp_page_copy).
 */
function doWpPage(mm: Mm, vma: VmAreaStruct, addr: number, pte: number, unshare = false): number {
  const k = mm.kernel;
  const s = k.store;
  const pfn = vmNormalPage(k, pte);
  if (unshare) {
    // FAULT_FLAG_UNSHARE (a read-only FOLL_PIN): a shared anon page is made exclusive (reused or copied); a
    // page-cache or zero page in a COW mapping (FOLL_LONGTERM) is replaced by a private read-only anon copy.
    if (pfn >= 0 && s.test(s.folioHead(pfn), PG_anon)) {
      if (s.test(pfn, PG_anon_exclusive)) return 0;
      if (s.folioNr(pfn) === 1 && s.refcount(pfn) === 1 && s.mapcount(pfn) === 1) {
        s.set(pfn, PG_anon_exclusive);
        return 0;
      }
      return wpPageCopy(mm, vma, addr, pte, pfn, true);
    }
    return isCowMapping(vma.vmFlags) ? wpPageCopy(mm, vma, addr, pte, pfn, true) : 0;
  }
  if ((vma.vmFlags & VM_SHARED) !== 0 && pfn >= 0) {
    s.set(pfn, PG_dirty);
    mm.pgtable.pteSet(addr, pteMkyoung(pteMkdirty(pteMkwrite(pte))));
    return 0;
  }
  if (pfn >= 0 && s.test(s.folioHead(pfn), PG_anon)) {
    if (s.test(pfn, PG_anon_exclusive) || (s.folioNr(pfn) === 1 && s.refcount(pfn) === 1 && s.mapcount(pfn) === 1)) {
      // wp_can_reuse_anon_folio → wp_page_reuse.
      s.set(pfn, PG_anon_exclusive);
      mm.pgtable.pteSet(addr, pteMkyoung(pteMkdirty(pteMkwrite(pte))));
      return 0;
    }
  }
  return wpPageCopy(mm, vma, addr, pte, pfn);
}

/**
 * wp_page_copy(): copy (or zero, for the zero page) into a new anon page; MMU_NOTIFY_CLEAR over the page. With
 * `unshare` the new exclusive page is mapped read-only and clean, as the kernel does for FAULT_FLAG_UNSHARE.
 */
function wpPageCopy(mm: Mm, vma: VmAreaStruct, addr: number, pte: number, oldPfn: number, unshare = false): number {
  const k = mm.kernel;
  const isZero = ptePfn(pte) === k.zeroPfn;
  const np = allocPages(k, 0, isZero);
  if (np < 0) return VM_FAULT_OOM;
  if (memcgCharge(k.store, np, mm.memcg) !== 0) {
    putPage(k, np);
    return VM_FAULT_OOM;
  }
  if (!isZero) {
    k.pageBytes.copy(np, ptePfn(pte));
    if (k.charge !== null) k.charge("pageCopy", 1);
  }
  const range = invalidateStart(mm, MMU_NOTIFY_CLEAR, addr, addr + PAGE_SIZE);
  if (oldPfn >= 0) {
    if (!k.store.test(k.store.folioHead(oldPfn), PG_anon)) {
      decMmCounter(mm, mmCounterFile(k, oldPfn));
      incMmCounter(mm, MM_ANONPAGES);
    }
  } else {
    incMmCounter(mm, MM_ANONPAGES);
  }
  pageAddNewAnonRmap(k, np, vma, addr);
  k.store.set(np, PG_lru | PG_uptodate);
  mm.pgtable.pteSet(addr, unshare ? pfnPte(np, false) : pfnPte(np, true, { dirty: true }));
  if (k.charge !== null) {
    k.charge("pteUpdate", 1);
    k.charge("tlbShootdown", 1);
  }
  if (oldPfn >= 0) {
    pageRemoveRmap(k, oldPfn);
    putPage(k, oldPfn);
  }
  invalidateEnd(range);
  return 0;
}

/** do_swap_page() for the non-present entries hmmsim has. */
function doSwapPage(mm: Mm, vma: VmAreaStruct, realAddress: number, addr: number, flags: number, pte: number): number {
  const k = mm.kernel;
  if (isMigrationEntry(pte)) return VM_FAULT_RETRY;
  if (isDeviceExclusiveEntry(pte)) return removeDeviceExclusiveEntry(mm, vma, addr, pte);
  if (isDevicePrivateEntry(pte)) {
    const pfn = ptePfn(pte);
    const pgmap = k.pgmaps.pgmapOf(pfn);
    if (pgmap === null || pgmap.type !== MEMORY_DEVICE_PRIVATE || typeof pgmap.ops.migrateToRam !== "function")
      return VM_FAULT_SIGBUS;
    // trylock_page(vmf->page) ... get_page, migrate_to_ram, unlock_page, put_page.
    if (!folioTrylock(k, pfn)) return VM_FAULT_RETRY;
    getPage(k, pfn);
    let ret: number;
    try {
      ret = pgmap.ops.migrateToRam(makeVmf(mm, vma, realAddress, addr, flags, pfn, pte));
    } finally {
      folioUnlock(k, pfn);
      putPage(k, pfn);
    }
    return ret;
  }
  if (isHwpoisonEntry(pte)) return VM_FAULT_HWPOISON;
  return VM_FAULT_SIGBUS;
}

/**
 * remove_device_exclusive_entry(): a CPU fault takes the page back from the device: folio_try_get (else refault),
 * folio lock (else retry), MMU_NOTIFY_CLEAR (owner NULL) over the page, restore_exclusive_pte if unchanged.
 */
function removeDeviceExclusiveEntry(mm: Mm, vma: VmAreaStruct, addr: number, pte: number): number {
  const k = mm.kernel;
  const pfn = ptePfn(pte);
  if (!folioTryGet(k, pfn)) return 0;
  if (!folioTrylock(k, pfn)) {
    putPage(k, pfn);
    return VM_FAULT_RETRY;
  }
  const range = invalidateStart(mm, MMU_NOTIFY_CLEAR, addr, addr + PAGE_SIZE);
  if (mm.pgtable.pteGet(addr) === pte) restoreExclusivePte(mm, vma, addr, pte);
  folioUnlock(k, pfn);
  putPage(k, pfn);
  invalidateEnd(range);
  return 0;
}

/**
 * restore_exclusive_pte(): turn a device-exclusive entry back into a present PTE (old), writable (and dirty if
 * the folio is) iff VM_WRITE and the page is anon-exclusive. Mapcount and reference carry over.
 */
export function restoreExclusivePte(mm: Mm, vma: VmAreaStruct, addr: number, orig: number): void {
  const k = mm.kernel;
  const pfn = ptePfn(orig);
  const canWrite = (vma.vmFlags & VM_WRITE) !== 0 && k.store.test(pfn, PG_anon_exclusive);
  const dirty = canWrite && k.store.test(k.store.folioHead(pfn), PG_dirty);
  let e = pfnPte(pfn, canWrite, { dirty, young: false });
  if (pteSoftDirty(orig)) e += 1 << 6;
  mm.pgtable.pteSet(addr, e);
  if (k.charge !== null) k.charge("pteUpdate", 1);
}

/**
 * zap_pte_range / zap_huge_pmd over [start, end) of one VMA: every mapping is removed with its rss, rmap and
 * reference (device-private and device-exclusive entries too; a migration entry only gives back its rss). A huge
 * PMD only partly covered is split first; a large anon folio left partly mapped is split (deferred split).
 * `freeTables` frees emptied PTE tables (munmap/exit, not MADV_DONTNEED). No notifier: callers send it.
 */
export function zapPageRange(mm: Mm, vma: VmAreaStruct, start: number, end: number, freeTables: boolean): void {
  if (isVmHugetlbPage(vma)) {
    unmapHugepageRange(mm, vma, start, end);
    return;
  }
  const k = mm.kernel;
  const s = k.store;
  const pt = mm.pgtable;
  const partial = new Set<number>();
  let zapped = 0;
  for (let addr = start; addr < end; ) {
    const pmdStart = alignDown(addr, PMD_SIZE);
    const next = Math.min(end, pmdStart + PMD_SIZE);
    const pmd = pt.pmdGet(addr);
    if (pmd !== 0) {
      if (addr === pmdStart && next === pmdStart + PMD_SIZE) {
        zapHugePmd(mm, pmdStart, pmd);
        zapped += HPAGE_PMD_NR;
        addr = next;
        continue;
      }
      splitHugePmd(mm, vma, pmdStart);
    }
    const t = pt.pteTable(addr, false);
    if (t === null) {
      addr = next;
      continue;
    }
    for (let a = addr; a < next; a += PAGE_SIZE) {
      const i = (Math.floor(a / PAGE_SIZE) & 511);
      const e = t[i]!;
      if (e === 0) continue;
      t[i] = 0;
      zapped++;
      if (ptePresent(e)) {
        const pfn = vmNormalPage(k, e);
        if (pfn < 0) continue;
        if (pteDirty(e) && !s.test(s.folioHead(pfn), PG_anon)) s.set(s.folioHead(pfn), PG_dirty);
        decMmCounter(mm, mmCounter(k, pfn));
        pageRemoveRmap(k, pfn);
        if (s.isLarge(pfn)) partial.add(s.folioHead(pfn));
        putPage(k, pfn);
      } else if (isDevicePrivateEntry(e) || isDeviceExclusiveEntry(e)) {
        const pfn = ptePfn(e);
        decMmCounter(mm, mmCounter(k, pfn));
        pageRemoveRmap(k, pfn);
        if (s.isLarge(pfn)) partial.add(s.folioHead(pfn));
        putPage(k, pfn);
      } else if (isMigrationEntry(e)) {
        decMmCounter(mm, mmCounter(k, ptePfn(e)));
      }
    }
    if (freeTables) {
      let empty = true;
      for (let j = 0; j < 512; j++)
        if (t[j] !== 0) {
          empty = false;
          break;
        }
      if (empty) pt.freePteTable(addr);
    }
    addr = next;
  }
  if (k.charge !== null && zapped > 0) {
    k.charge("pteUpdate", zapped);
    k.charge("tlbShootdown", zapped);
  }
  for (const head of partial) {
    if (s.refcount(head) > 0 && s.isLarge(head) && s.test(head, PG_anon) && s.folioMapped(head)) splitFolio(k, head);
  }
}

/** zap_huge_pmd(). */
function zapHugePmd(mm: Mm, haddr: number, pmd: number): void {
  const k = mm.kernel;
  mm.pgtable.pmdSet(haddr, 0);
  const pfn = ptePfn(pmd);
  if (isMigrationEntry(pmd)) {
    addMmCounter(mm, mmCounter(k, pfn), -HPAGE_PMD_NR);
    return;
  }
  if (!pmdTransHuge(pmd) && !isDevicePrivateEntry(pmd)) return;
  if (isHugeZeroPmd(k, pmd)) return; // zap_huge_pmd: the huge zero folio holds no rss, rmap or reference
  addMmCounter(mm, mmCounter(k, pfn), -HPAGE_PMD_NR);
  pageRemoveRmap(k, pfn, { pmd: true });
  putPage(k, pfn);
}
