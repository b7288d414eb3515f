/**
 * fork (kernel/fork.c dup_mm / dup_mmap; mm/memory.c copy_page_range, copy_pte_range, copy_present_ptes,
 * copy_nonpresent_pte; mm/huge_memory.c copy_huge_pmd).
 *
 * - VMAs are copied (VM_DONTCOPY skipped); the child shares the parent's anon_vmas and files.
 * - Page tables are copied only where a fault could not rebuild them (vma_needs_copy: an anon_vma, or
 *   VM_PFNMAP/VM_MIXEDMAP). For a COW mapping the parent's range gets MMU_NOTIFY_PROTECTION_PAGE.
 * - Present pages: a reference, rmap dup (AnonExclusive cleared), rss++; write-protected in both for COW
 *   mappings; the child's copy is old (and clean for shared mappings). An exclusive anon page that may be
 *   DMA-pinned (folioMaybeDmaPinned) is copied for the child right away (copy_present_page); a pinned THP is split
 *   first.
 * - Device-private entries: a reference, rmap dup, rss[mm_counter]++; a writable entry in a COW mapping becomes
 *   readable in BOTH parent and child.
 * - Device-exclusive entries: the parent's present PTE is restored first (try_restore_exclusive_pte), then copied
 *   as a present PTE.
 * - Migration entries: rss++ in the child; writable ones become readable in both for COW mappings.
 */
import { EBUSY, ENOMEM } from "./errno.js";
import { KernelRuleError, SyscallError } from "./errors.js";
import { restoreExclusivePte, vmNormalPage } from "./memory.js";
import { addMmCounter, incMmCounter, mmCounter, mmCounterFile, MM_ANONPAGES } from "./mm-counters.js";
import { invalidateEnd, invalidateStart } from "./mm-notify.js";
import type { Mm } from "./mm.js";
import { MMU_NOTIFY_PROTECTION_PAGE } from "./mmu-notifier-range.js";
import { insertVma } from "./mmap.js";
import { isHugeZeroPmd, splitHugePmd } from "./huge-memory.js";
import { copyHugetlbPageRange } from "./hugetlb.js";
import type { Kernel } from "./kernel.js";
import { memcgCharge } from "./memcontrol.js";
import { HPAGE_PMD_NR, PAGE_SIZE, PG_anon, PG_anon_exclusive, PG_lru, PG_uptodate, PMD_SIZE, alignDown } from "./page-flags.js";
import { allocPages, folioMaybeDmaPinned, folioTrylock, folioUnlock, putPage } from "./page-ref.js";
import {
  isDeviceExclusiveEntry,
  isDevicePrivateEntry,
  isMigrationEntry,
  isWritableDevicePrivateEntry,
  isWritableMigrationEntry,
  isReadableExclusiveMigrationEntry,
  makeReadableMigrationEntry,
  makeDevicePrivateEntry,
  pmdMkhuge,
  pmdTransHuge,
  pteMkclean,
  pteMkold,
  pfnPte,
  ptePfn,
  ptePresent,
  pteWrite,
  pteWrprotect,
} from "./pgtable.js";
import { pageAddFileRmap, pageAddNewAnonRmap, pageTryDupAnonRmap } from "./rmap.js";
import { VM_DONTCOPY, VM_MAYSHARE, VM_MIXEDMAP, VM_PFNMAP, VM_SHARED, VM_WRITE, isCowMapping, isVmHugetlbPage, type VmAreaStruct } from "./vma.js";

/** A copy step failed the way the kernel's copy_page_range does (its negative errno): dup_mmap unwinds. */
class CopyFailed {
  constructor(
    readonly errno: number,
    readonly reason: string,
  ) {}
}

/**
 * dup_mm(): a child mm with a copy of every VMA and the page tables of the ones that need them. When a copy fails
 * (-ENOMEM copying a pinned page, -EBUSY when a device-exclusive folio is locked), the half-built child is torn
 * down (dup_mmap fails, mmput) and SyscallError("fork", errno) is thrown; the parent keeps what copying already did
 * to it (write-protected COW pages, restored exclusive entries), as in the kernel.
 */
export function dupMm(parent: Mm): Mm {
  const child = parent.kernel.createMm({ memcg: parent.memcg });
  try {
    for (const src of parent.vmas) {
      if (src.vmFlags & VM_DONTCOPY) continue;
      const dst: VmAreaStruct = { ...src, vmMm: child };
      // hugetlb_dup_vma_private(): a child never owns the reservations of a private hugetlb mapping.
      if (isVmHugetlbPage(src) && !(src.vmFlags & VM_MAYSHARE)) dst.hugetlbResv = null;
      if (src.anonVma !== null) src.anonVma.mms.add(child);
      insertVma(child, dst);
      if (src.anonVma !== null || (src.vmFlags & (VM_PFNMAP | VM_MIXEDMAP)) !== 0) copyPageRange(dst, src);
    }
  } catch (e) {
    if (!(e instanceof CopyFailed)) throw e;
    child.exit();
    throw new SyscallError("fork", e.errno, e.reason);
  }
  return child;
}

/** copy_page_range(). */
function copyPageRange(dst: VmAreaStruct, src: VmAreaStruct): void {
  if (isVmHugetlbPage(src)) {
    copyHugetlbPageRange(dst, src);
    return;
  }
  const srcMm = src.vmMm;
  const cow = isCowMapping(src.vmFlags);
  const range = cow ? invalidateStart(srcMm, MMU_NOTIFY_PROTECTION_PAGE, src.vmStart, src.vmEnd) : null;
  const k = srcMm.kernel;
  let updated = 0;
  for (let addr = src.vmStart; addr < src.vmEnd; ) {
    const next = Math.min(src.vmEnd, alignDown(addr, PMD_SIZE) + PMD_SIZE);
    const pmd = srcMm.pgtable.pmdGet(addr);
    if (pmd !== 0 && cow && pmdTransHuge(pmd) && anonMaybePinned(k, ptePfn(pmd))) {
      // copy_huge_pmd: folio_try_dup_anon_rmap_pmd fails on a maybe-pinned exclusive THP: split, copy PTEs.
      splitHugePmd(srcMm, src, alignDown(addr, PMD_SIZE));
    }
    if (srcMm.pgtable.pmdGet(addr) !== 0) {
      copyHugePmd(dst, src, alignDown(addr, PMD_SIZE), srcMm.pgtable.pmdGet(addr), cow);
      updated++;
      addr = next;
      continue;
    }
    const t = srcMm.pgtable.pteTable(addr, false);
    if (t !== null) {
      for (let a = addr; a < next; a += PAGE_SIZE) {
        const i = (Math.floor(a / PAGE_SIZE) & 511);
        if (t[i] === 0) continue;
        if (!ptePresent(t[i]!)) copyNonpresentPte(dst, src, a, t, i, cow);
        if (ptePresent(t[i]!)) copyPresentPte(dst, src, a, t, i, cow);
        updated++;
      }
    }
    addr = next;
  }
  if (k.charge !== null && updated > 0) {
    k.charge("pteUpdate", updated * 2);
    if (cow) k.charge("tlbShootdown", updated);
  }
  if (range !== null) invalidateEnd(range);
}

/** copy_present_ptes() for one PTE (srcTable[i] at addr). */
function copyPresentPte(dst: VmAreaStruct, src: VmAreaStruct, addr: number, srcTable: Float64Array, i: number, cow: boolean): void {
  const k = src.vmMm.kernel;
  const s = k.store;
  let pte = srcTable[i]!;
  const pfn = vmNormalPage(k, pte);
  if (pfn >= 0 && cow && s.test(s.folioHead(pfn), PG_anon) && s.test(pfn, PG_anon_exclusive) && folioMaybeDmaPinned(k, pfn)) {
    copyPresentPage(dst, addr, pfn);
    return;
  }
  if (pfn >= 0) {
    s.refAdd(pfn, 1);
    if (s.test(s.folioHead(pfn), PG_anon)) {
      pageTryDupAnonRmap(k, pfn);
      incMmCounter(dst.vmMm, MM_ANONPAGES);
    } else {
      pageAddFileRmap(k, pfn);
      incMmCounter(dst.vmMm, mmCounterFile(k, pfn));
    }
  }
  if (cow && pteWrite(pte)) {
    srcTable[i] = pteWrprotect(pte);
    pte = pteWrprotect(pte);
  }
  if (src.vmFlags & VM_SHARED) pte = pteMkclean(pte);
  dst.vmMm.pgtable.pteSet(addr, pteMkold(pte));
}

/** An exclusive anon folio that may be GUP-pinned (folio_try_dup_anon_rmap_* would fail). */
function anonMaybePinned(k: Kernel, pfn: number): boolean {
  const s = k.store;
  const head = s.folioHead(pfn);
  if (!s.test(head, PG_anon) || !folioMaybeDmaPinned(k, head)) return false;
  for (let i = 0; i < s.folioNr(head); i++) if (s.test(head + i, PG_anon_exclusive)) return true;
  return false;
}

/**
 * copy_present_page(): the parent's page may be DMA-pinned, so the child gets its own copy now (writable if the VMA
 * is); the parent keeps its exclusive, possibly writable mapping.
 */
function copyPresentPage(dst: VmAreaStruct, addr: number, pfn: number): void {
  const mm = dst.vmMm;
  const k = mm.kernel;
  const np = allocPages(k, 0);
  if (np < 0 || memcgCharge(k.store, np, mm.memcg) !== 0) {
    if (np >= 0) putPage(k, np);
    throw new CopyFailed(-ENOMEM, `no memory to copy the maybe-pinned page pfn ${pfn} for the child (copy_present_page)`);
  }
  k.pageBytes.copy(np, pfn);
  if (k.charge !== null) k.charge("pageCopy", 1);
  pageAddNewAnonRmap(k, np, dst, addr);
  k.store.set(np, PG_lru | PG_uptodate);
  incMmCounter(mm, MM_ANONPAGES);
  mm.pgtable.pteSet(addr, pfnPte(np, (dst.vmFlags & VM_WRITE) !== 0, { dirty: true }));
}

/** copy_nonpresent_pte(). May turn srcTable[i] present (device-exclusive restore); the caller then copies it. */
function copyNonpresentPte(dst: VmAreaStruct, src: VmAreaStruct, addr: number, srcTable: Float64Array, i: number, cow: boolean): void {
  const srcMm = src.vmMm;
  const k = srcMm.kernel;
  const e = srcTable[i]!;
  const pfn = ptePfn(e);
  let out = e;
  if (isMigrationEntry(e)) {
    incMmCounter(dst.vmMm, mmCounter(k, pfn));
    // !softleaf_is_migration_read(entry) && is_cow_mapping(): a writable or readable-exclusive entry becomes
    // readable in both (a previously exclusive page is now shared).
    if ((isWritableMigrationEntry(e) || isReadableExclusiveMigrationEntry(e)) && cow) {
      out = makeReadableMigrationEntry(e);
      srcTable[i] = out;
    }
  } else if (isDevicePrivateEntry(e)) {
    k.store.refAdd(pfn, 1);
    incMmCounter(dst.vmMm, mmCounter(k, pfn));
    pageTryDupAnonRmap(k, pfn);
    if (isWritableDevicePrivateEntry(e) && cow) {
      out = makeDevicePrivateEntry(pfn, false);
      srcTable[i] = out;
    }
  } else if (isDeviceExclusiveEntry(e)) {
    if (!cow) throw new KernelRuleError("copy_nonpresent_pte_exclusive_not_cow", `0x${addr.toString(16)}`);
    // try_restore_exclusive_pte(): folio_trylock, else copy_pte_range fails with -EBUSY.
    if (!folioTrylock(k, pfn)) throw new CopyFailed(-EBUSY, `device-exclusive folio pfn ${pfn} is locked (try_restore_exclusive_pte)`);
    restoreExclusivePte(srcMm, src, addr, e);
    folioUnlock(k, pfn);
    return;
  }
  dst.vmMm.pgtable.pteSet(addr, out);
}

/** copy_huge_pmd(). */
function copyHugePmd(dst: VmAreaStruct, src: VmAreaStruct, haddr: number, pmd: number, cow: boolean): void {
  const srcMm = src.vmMm;
  const k = srcMm.kernel;
  const pfn = ptePfn(pmd);
  let out = pmd;
  if (isMigrationEntry(pmd)) {
    addMmCounter(dst.vmMm, mmCounter(k, pfn), HPAGE_PMD_NR);
    // copy_huge_non_present_pmd(): is_writable_migration_entry || is_readable_exclusive_migration_entry.
    if ((isWritableMigrationEntry(pmd) || isReadableExclusiveMigrationEntry(pmd)) && cow) out = pmdMkhuge(makeReadableMigrationEntry(pmd));
    srcMm.pgtable.pmdSet(haddr, out);
  } else if (isHugeZeroPmd(k, pmd)) {
    // copy_huge_pmd(): the huge zero PMD is copied write-protected (it is), old, with no reference, rmap or rss.
    out = pteMkold(pteWrprotect(pmd));
  } else if (isDevicePrivateEntry(pmd) || pmdTransHuge(pmd)) {
    k.store.refAdd(pfn, 1);
    pageTryDupAnonRmap(k, pfn, { pmd: true });
    addMmCounter(dst.vmMm, mmCounter(k, pfn), HPAGE_PMD_NR);
    if (pmdTransHuge(pmd)) {
      if (cow && pteWrite(pmd)) out = pteWrprotect(pmd);
      srcMm.pgtable.pmdSet(haddr, out);
      out = pteMkold(out);
    } else if (isWritableDevicePrivateEntry(pmd) && cow) {
      out = pmdMkhuge(makeDevicePrivateEntry(pfn, false));
      srcMm.pgtable.pmdSet(haddr, out);
    }
  }
  dst.vmMm.pgtable.pmdSet(haddr, out);
}
