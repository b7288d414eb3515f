/**
 * hmm_range_fault() (mm/hmm.c: hmm_range_fault, hmm_range_fault_locked, hmm_do_fault, hmm_record_fault,
 * hmm_pte_need_fault, hmm_range_need_fault, hmm_pfns_fill, hmm_vma_walk_hole, hmm_vma_walk_pmd,
 * hmm_vma_handle_pmd, hmm_vma_handle_absent_pmd, hmm_vma_handle_pte, hmm_vma_walk_hugetlb_entry, hmm_vma_walk_test)
 * and struct hmm_range
 * (include/linux/hmm.h). Follows the mm-unstable structure: walk callbacks record the range to fault and return
 * the HMM_FAULT_PENDING sentinel; the outer loop faults outside the walk and re-walks from `last`.
 *
 * Synchronous-plane rules (documented deviations, all of which surface as -EBUSY so the caller's retry loop
 * handles them as it handles an invalidation):
 * - A migration entry with a fault requested: the kernel sleeps in migration_entry_wait and restarts the walk;
 *   hmmsim cannot sleep here, so the walk stops at that page (`last`) and hmmRangeFault returns -EBUSY.
 * - handle_mm_fault returning VM_FAULT_RETRY (core: the fault would sleep on a migration entry or a page lock)
 *   or VM_FAULT_COMPLETED: -EBUSY (the kernel's HMM_FAULT_UNLOCKED path of hmm_range_fault).
 * - A fault that reports success but leaves the page still needing a fault HMM_NO_PROGRESS_LIMIT times in a row
 *   at the same address: -EBUSY (the kernel would spin).
 * handle_mm_fault errors map through vm_fault_to_errno (mm-unstable): SIGBUS/SIGSEGV → -EFAULT, OOM → -ENOMEM.
 */
import {
  EBUSY,
  EFAULT,
  EINVAL,
  EPERM,
  FAULT_FLAG_REMOTE,
  FAULT_FLAG_WRITE,
  HPAGE_PMD_ORDER,
  InvalidArgumentError,
  KernelRuleError,
  MEMORY_DEVICE_PRIVATE,
  Mm,
  PAGE_SIZE,
  PMD_SIZE,
  PTE_PFN_SHIFT,
  TASK_SIZE,
  VM_FAULT_COMPLETED,
  VM_FAULT_ERROR,
  VM_FAULT_RETRY,
  VM_IO,
  VM_PFNMAP,
  VM_READ,
  VM_WRITE,
  _PAGE_PRESENT,
  _PAGE_RW,
  _PAGE_SPECIAL,
  handleMmFault,
  hstateVma,
  hugePageOrder,
  isDeviceExclusiveEntry,
  isDevicePrivateEntry,
  isMigrationEntry,
  isWritableDevicePrivateEntry,
  mmapAssertLocked,
  pmdTransHuge,
  ptePfn,
  ptePresent,
  pteSwpType,
  pteWrite,
  vmFaultToErrno,
  vmNormalPage,
  SWP_SWAPFILE,
  type Kernel,
  type PmdTable,
} from "@hmmsim/core";
import { mmuIntervalCheckRetry, type MmuIntervalNotifier } from "@hmmsim/mmu-notifier";
import {
  HMM_PFN_ERROR,
  HMM_PFN_FLAGS,
  HMM_PFN_INOUT_FLAGS,
  HMM_PFN_PFN_MUL,
  HMM_PFN_REQ_FAULT,
  HMM_PFN_REQ_WRITE,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  hmmPfnFlagsOrder,
} from "./hmm-pfn.js";
import { walkPageRange, type MmWalk, type MmWalkOps } from "./walk-page-range.js";

/** struct hmm_range. */
export interface HmmRange {
  /** The interval notifier; its mm (a @hmmsim/core Mm) is the address space walked. */
  notifier: MmuIntervalNotifier;
  /** mmu_interval_read_begin()'s result. */
  notifierSeq: number;
  /** First address (page aligned, inclusive). */
  start: number;
  /** End address (page aligned, exclusive). */
  end: number;
  /** One entry per page: input request flags, output pfn + flags (see hmm-pfn.ts). */
  hmmPfns: Float64Array | number[];
  /** Request flags for every page (HMM_PFN_REQ_FAULT [| HMM_PFN_REQ_WRITE]). */
  defaultFlags: number;
  /** Which per-page input bits count: request = (hmmPfns[i] & pfnFlagsMask) | defaultFlags. */
  pfnFlagsMask: number;
  /** Device-private pages whose pgmap owner is this (compared with ===, never null) are reported, not faulted. */
  devPrivateOwner: unknown;
}

/** HMM_NEED_FAULT / HMM_NEED_WRITE_FAULT. */
const HMM_NEED_FAULT = 1;
const HMM_NEED_WRITE_FAULT = 2;
const HMM_NEED_ALL_BITS = HMM_NEED_FAULT | HMM_NEED_WRITE_FAULT;

/** Internal sentinel of a walk callback that recorded a fault (mm/hmm.c HMM_FAULT_PENDING = -EAGAIN). */
const HMM_FAULT_PENDING = -11;
/** Consecutive faults at the same address without progress before hmmsim gives up with -EBUSY. */
export const HMM_NO_PROGRESS_LIMIT = 16;

/** The PTE → hmm pfn conversion: a PTE is pfn * 2^PTE_PFN_SHIFT + 12 low bits; an hmm entry pfn * 2^11 + flags. */
const PTE_PFN_MUL = 2 ** PTE_PFN_SHIFT;
const PTE_LOW = PTE_PFN_MUL - 1;
const PTE_TO_HMM = HMM_PFN_PFN_MUL / PTE_PFN_MUL;
// Module-local copies of the imported constants the per-entry loops use: an imported binding is read through its
// module cell with a TDZ (hole) check on every use, which the JIT does not hoist out of a loop; a local const is
// a constant.
const INOUT = HMM_PFN_INOUT_FLAGS;
const PFN_MUL = HMM_PFN_PFN_MUL;
const VALID = HMM_PFN_VALID;
const VALID_WRITE = HMM_PFN_VALID | HMM_PFN_WRITE;
const PMD_ORDER_FLAGS = hmmPfnFlagsOrder(HPAGE_PMD_ORDER);
const PTES_PER_TABLE = PMD_SIZE / PAGE_SIZE;

/** struct hmm_vma_walk, plus the values hmmsim computes once per call. */
interface HmmVmaWalk {
  range: HmmRange;
  pfns: Float64Array;
  kernel: Kernel;
  last: number;
  end: number;
  requiredFault: number;
  /** range.pfnFlagsMask / defaultFlags, validated. */
  mask: number;
  dflt: number;
  /** (defaultFlags | pfnFlagsMask) & REQ_FAULT: whether any page may need a fault. */
  mayFault: boolean;
  /** The walk stopped at a migration entry that needs a fault (would wait in the kernel). */
  migrationWait: boolean;
  /** pfnFlagsMask has a REQ bit: the decision depends on each page's input. */
  perPage: boolean;
  /** Otherwise the decision depends only on the CPU flags: hmm_pte_need_fault for a read-only / writable page. */
  needRo: number;
  needRw: number;
}

/** hmm_pte_need_fault(). */
function hmmPteNeedFault(w: HmmVmaWalk, pfnReqFlags: number, cpuFlags: number): number {
  // Consider the per-page request and the range's default flags (see hmm.rst "Leverage default_flags...").
  const req = (pfnReqFlags & w.mask) | w.dflt;
  if ((req & HMM_PFN_REQ_FAULT) === 0) return 0;
  if ((req & HMM_PFN_REQ_WRITE) !== 0 && (cpuFlags & HMM_PFN_WRITE) === 0) return HMM_NEED_FAULT | HMM_NEED_WRITE_FAULT;
  if ((cpuFlags & HMM_PFN_VALID) === 0) return HMM_NEED_FAULT;
  return 0;
}

/** hmm_range_need_fault() over pfns[i, i + npages). */
function hmmRangeNeedFault(w: HmmVmaWalk, i: number, npages: number, cpuFlags: number): number {
  if (!w.mayFault) return 0;
  // Without REQ bits in the mask every page asks the same (defaultFlags): one decision covers the range.
  if (!w.perPage) return hmmPteNeedFault(w, 0, cpuFlags);
  const pfns = w.pfns;
  let required = 0;
  for (const stop = i + npages; i < stop; i++) {
    required |= hmmPteNeedFault(w, pfns[i]!, cpuFlags);
    if (required === HMM_NEED_ALL_BITS) return required;
  }
  return required;
}

/** hmm_pfns_fill(): [addr, end) get `(old & INOUT) | cpuFlags` (no pfn). */
function hmmPfnsFill(w: HmmVmaWalk, addr: number, end: number, cpuFlags: number): number {
  const pfns = w.pfns;
  const stop = (end - w.range.start) / PAGE_SIZE;
  for (let i = (addr - w.range.start) / PAGE_SIZE; i < stop; i++) pfns[i] = (pfns[i]! & INOUT) | cpuFlags;
  return 0;
}

/** hmm_record_fault(): remember what to fault; the outer loop faults it outside the walk. */
function hmmRecordFault(w: HmmVmaWalk, addr: number, end: number, requiredFault: number): number {
  if (requiredFault === 0) throw new KernelRuleError("hmm_record_fault", "WARN_ON_ONCE(!required_fault)");
  w.last = addr;
  w.end = end;
  w.requiredFault = requiredFault;
  return HMM_FAULT_PENDING;
}

/** hmm_vma_walk_hole(): no page table (or no VMA) over [addr, end). */
function hmmVmaWalkHole(addr: number, end: number, _depth: number, walk: MmWalk<HmmVmaWalk>): number {
  const w = walk.private;
  const required = hmmRangeNeedFault(w, (addr - w.range.start) / PAGE_SIZE, (end - addr) / PAGE_SIZE, 0);
  if (walk.vma === null) {
    if (required !== 0) return -EFAULT;
    return hmmPfnsFill(w, addr, end, HMM_PFN_ERROR);
  }
  if (required !== 0) return hmmRecordFault(w, addr, end, required);
  return hmmPfnsFill(w, addr, end, 0);
}

/** hmm_vma_walk_test(): VM_IO / VM_PFNMAP / unreadable VMAs are errors (hard failure when a fault is wanted). */
function hmmVmaWalkTest(start: number, end: number, walk: MmWalk<HmmVmaWalk>): number {
  const w = walk.private;
  const flags = walk.vma!.vmFlags;
  if ((flags & (VM_IO | VM_PFNMAP)) === 0 && (flags & VM_READ) !== 0) return 0;
  // No struct pages behind it, or I/O: hmm_range_fault cannot handle it. No read means no write either.
  if (hmmRangeNeedFault(w, (start - w.range.start) / PAGE_SIZE, (end - start) / PAGE_SIZE, 0) !== 0) return -EFAULT;
  hmmPfnsFill(w, start, end, HMM_PFN_ERROR);
  return 1; // skip this VMA, continue with the next
}

/** The pgmap owner test of hmm_vma_handle_pte / hmm_vma_handle_absent_pmd. */
function ownedDevicePrivate(w: HmmVmaWalk, pfn: number): boolean {
  const owner = w.range.devPrivateOwner;
  if (owner === null || owner === undefined) return false;
  const pgmap = w.kernel.pgmaps.pgmapOf(pfn);
  return pgmap !== null && pgmap.type === MEMORY_DEVICE_PRIVATE && pgmap.owner === owner;
}

/** hmm_vma_handle_pmd(): a present trans-huge PMD over [addr, end). */
function hmmVmaHandlePmd(w: HmmVmaWalk, addr: number, end: number, pmd: number): number {
  const start = w.range.start;
  const i0 = (addr - start) / PAGE_SIZE;
  const npages = (end - addr) / PAGE_SIZE;
  // pmd_to_hmm_pfn_flags (hmmsim has no NUMA-hinting protnone entries).
  const cpuFlags = (pteWrite(pmd) ? HMM_PFN_VALID | HMM_PFN_WRITE : HMM_PFN_VALID) | PMD_ORDER_FLAGS;
  const required = hmmRangeNeedFault(w, i0, npages, cpuFlags);
  if (required !== 0) return hmmRecordFault(w, addr, end, required);
  const pfns = w.pfns;
  // Entry i's pfn is one above entry i-1's: step the whole entry by HMM_PFN_PFN_MUL (exact: integers below 2^53).
  // (the page's index in its PMD by `& 511`: `%` on an address above 2^31 is a floating-point fmod call)
  let v = (ptePfn(pmd) + ((addr / PAGE_SIZE) & (PTES_PER_TABLE - 1))) * HMM_PFN_PFN_MUL + cpuFlags;
  // Small-integer loop bounds (a range has < 2^31 pages): a division result would keep the index a double.
  for (let i = i0 | 0, stop = (i0 + npages) | 0; i < stop; i++, v += PFN_MUL) pfns[i] = (pfns[i]! & INOUT) + v;
  return 0;
}

/** hmm_vma_handle_absent_pmd() (CONFIG_ARCH_HAS_PMD_SOFTLEAVES): a huge non-present PMD entry. */
function hmmVmaHandleAbsentPmd(w: HmmVmaWalk, addr: number, end: number, pmd: number): number {
  const i0 = (addr - w.range.start) / PAGE_SIZE;
  const npages = (end - addr) / PAGE_SIZE;
  if (isDevicePrivateEntry(pmd) && ownedDevicePrivate(w, ptePfn(pmd))) {
    const cpuFlags = HMM_PFN_VALID | PMD_ORDER_FLAGS | (isWritableDevicePrivateEntry(pmd) ? HMM_PFN_WRITE : 0);
    // Fully populate the pfn list (drivers that do not know large folios expect it).
    const pfns = w.pfns;
    let pfn = ptePfn(pmd) + ((addr / PAGE_SIZE) & (PTES_PER_TABLE - 1));
    for (let i = i0, stop = i0 + npages; i < stop; i++, pfn++) pfns[i] = (pfns[i]! & INOUT) + pfn * PFN_MUL + cpuFlags;
    return 0;
  }
  const required = hmmRangeNeedFault(w, i0, npages, 0);
  if (required !== 0) {
    if (isDevicePrivateEntry(pmd)) return hmmRecordFault(w, addr, end, required);
    return -EFAULT;
  }
  return hmmPfnsFill(w, addr, end, HMM_PFN_ERROR);
}

/**
 * hmm_vma_handle_pte() for every entry but the common one (present, not special), which the PMD loop inlines: entry
 * `j` of `table`, the page at start + (j - j0) * PAGE_SIZE. The entry and its address are read and computed here,
 * not passed: a PTE or an address is a double beyond 2^31, and a double computed by the caller and passed to a call
 * the JIT does not inline is boxed (a heap allocation per page — a device mirror walks its device-private entries
 * through here); `start` and `end` arrive boxed already.
 */
function hmmVmaHandlePte(w: HmmVmaWalk, table: Float64Array, j: number, j0: number, start: number, end: number, i: number): number {
  const pte = table[j]!;
  const addr = start + (j - j0) * PAGE_SIZE;
  const pfns = w.pfns;
  const req = pfns[i]!;
  let newPfnFlags = 0;
  if (pte === 0) {
    // pte_none (hmmsim has no uffd-wp markers).
    const required = hmmPteNeedFault(w, req, 0);
    if (required !== 0) return hmmRecordFault(w, addr, end, required);
  } else if (!ptePresent(pte)) {
    // Device-private pages owned by the caller are reported, never faulted.
    if (isDevicePrivateEntry(pte) && ownedDevicePrivate(w, ptePfn(pte))) {
      const cpuFlags = HMM_PFN_VALID | (isWritableDevicePrivateEntry(pte) ? HMM_PFN_WRITE : 0);
      newPfnFlags = ptePfn(pte) * HMM_PFN_PFN_MUL + cpuFlags;
    } else {
      const required = hmmPteNeedFault(w, req, 0);
      if (required !== 0) {
        if (pteSwpType(pte) === SWP_SWAPFILE || isDevicePrivateEntry(pte) || isDeviceExclusiveEntry(pte))
          return hmmRecordFault(w, addr, end, required);
        if (isMigrationEntry(pte)) {
          // migration_entry_wait + restart in the kernel; the synchronous plane reports -EBUSY instead.
          w.last = addr;
          w.migrationWait = true;
          return -EBUSY;
        }
        // Report an error for everything else (hwpoison, markers).
        return -EFAULT;
      }
    }
  } else {
    const cpuFlags = pteWrite(pte) ? HMM_PFN_VALID | HMM_PFN_WRITE : HMM_PFN_VALID;
    const required = hmmPteNeedFault(w, req, cpuFlags);
    if (required !== 0) return hmmRecordFault(w, addr, end, required);
    const pfn = ptePfn(pte);
    // The zero page counts as a normal page; any other page without a struct page ("special") is an error.
    if (vmNormalPage(w.kernel, pte) < 0 && !w.kernel.isZeroPfn(pfn)) {
      if (hmmPteNeedFault(w, req, 0) !== 0) return -EFAULT;
      newPfnFlags = HMM_PFN_ERROR;
    } else {
      newPfnFlags = pfn * HMM_PFN_PFN_MUL + cpuFlags;
    }
  }
  pfns[i] = (req & INOUT) + newPfnFlags;
  return 0;
}

/**
 * hmm_vma_walk_hugetlb_entry(): one huge page of a hugetlb VMA. The request flags come from the first pfn of the
 * chunk only; cpu flags from the huge entry (pte_to_hmm_pfn_flags: 0 unless present) plus the hstate's order. A
 * fault is recorded for [start, end) (hmm_do_fault then faults it through handle_mm_fault: -EPERM for a write on
 * a VMA without VM_WRITE, the fault's errno otherwise); else every page gets pfn + offset | cpu flags — as the
 * kernel, also when the entry is none and no fault was requested (no VALID bit: the pfn bits mean nothing).
 */
function hmmVmaWalkHugetlbEntry(dir: PmdTable, index: number, hmask: number, start: number, end: number, walk: MmWalk<HmmVmaWalk>): number {
  const w = walk.private;
  const entry = dir.pmd[index]!;
  let i = (start - w.range.start) / PAGE_SIZE;
  const pfns = w.pfns;
  const pfnReqFlags = pfns[i]!;
  const presentFlags = entry !== 0 && ptePresent(entry) ? (pteWrite(entry) ? HMM_PFN_VALID | HMM_PFN_WRITE : HMM_PFN_VALID) : 0;
  const cpuFlags = presentFlags | hmmPfnFlagsOrder(hugePageOrder(hstateVma(walk.vma!)));
  const required = hmmPteNeedFault(w, pfnReqFlags, cpuFlags);
  if (required !== 0) return hmmRecordFault(w, start, end, required);
  let pfn = ptePfn(entry) + (start % -hmask) / PAGE_SIZE;
  for (let addr = start; addr < end; addr += PAGE_SIZE, i++, pfn++) pfns[i] = (pfns[i]! & INOUT) + pfn * PFN_MUL + cpuFlags;
  return 0;
}

/** hmm_vma_walk_pmd(): one PMD slot; scans the PTE table directly (the hot path). */
function hmmVmaWalkPmd(dir: PmdTable, index: number, start: number, end: number, walk: MmWalk<HmmVmaWalk>): number {
  const w = walk.private;
  const pmd = dir.pmd[index]!;
  if (pmd === 0) {
    if (dir.pte[index] === null) return hmmVmaWalkHole(start, end, -1, walk);
  } else {
    if (isMigrationEntry(pmd)) {
      if (hmmRangeNeedFault(w, (start - w.range.start) / PAGE_SIZE, (end - start) / PAGE_SIZE, 0) !== 0) {
        w.last = start;
        w.migrationWait = true;
        return -EBUSY;
      }
      return hmmPfnsFill(w, start, end, 0);
    }
    if (!ptePresent(pmd)) return hmmVmaHandleAbsentPmd(w, start, end, pmd);
    if (pmdTransHuge(pmd)) return hmmVmaHandlePmd(w, start, end, pmd);
    // A bad pmd that will not recover.
    if (hmmRangeNeedFault(w, (start - w.range.start) / PAGE_SIZE, (end - start) / PAGE_SIZE, 0) !== 0) return -EFAULT;
    return hmmPfnsFill(w, start, end, HMM_PFN_ERROR);
  }
  // pte_offset_map + the hmm_vma_handle_pte loop, with the common case (a present page that is not special)
  // inlined: no call, no allocation per page.
  const table = dir.pte[index]!;
  const pfns = w.pfns;
  const mayFault = w.mayFault;
  const perPage = w.perPage;
  const needRo = w.needRo;
  const needRw = w.needRw;
  // Small-integer indices (a range has < 2^31 pages); the address is only computed off the fast path.
  const i0 = ((start - w.range.start) / PAGE_SIZE) | 0;
  const j0 = (start / PAGE_SIZE) & (PTES_PER_TABLE - 1);
  const jEnd = (j0 + (end - start) / PAGE_SIZE) | 0;
  for (let j = j0, i = i0; j < jEnd; ) {
    // The fast run: present, non-special pages that need no fault (snapshot, or already as requested).
    const stop = mayFault ? fillPresentRunFaulting(table, pfns, j, jEnd, i, perPage ? -1 : needRo, needRw, w) : fillPresentRun(table, pfns, j, jEnd, i);
    if (stop === jEnd) break;
    i += stop - j;
    j = stop;
    const pte = table[j]!;
    const low = pte & PTE_LOW;
    if ((low & (_PAGE_PRESENT | _PAGE_SPECIAL)) === _PAGE_PRESENT) {
      // stopped because this present page needs a fault
      const cpuFlags = (low & _PAGE_RW) !== 0 ? HMM_PFN_VALID | HMM_PFN_WRITE : HMM_PFN_VALID;
      const required = perPage ? hmmPteNeedFault(w, pfns[i]!, cpuFlags) : cpuFlags === HMM_PFN_VALID ? needRo : needRw;
      return hmmRecordFault(w, start + (j - j0) * PAGE_SIZE, end, required);
    }
    const r = hmmVmaHandlePte(w, table, j, j0, start, end, i);
    if (r !== 0) return r;
    j++;
    i++;
  }
  return 0;
}

/**
 * The common case of the hmm_vma_handle_pte loop with no fault possible: entries [j, jEnd) of a PTE table while
 * they are present and not special, written to pfns from index i; returns where it stopped. Small and
 * monomorphic so that the JIT keeps it tight.
 */
function fillPresentRun(table: Float64Array, pfns: Float64Array, j: number, jEnd: number, i: number): number {
  for (; j < jEnd; j++, i++) {
    const pte = table[j]!;
    const low = pte & PTE_LOW;
    if ((low & (_PAGE_PRESENT | _PAGE_SPECIAL)) !== _PAGE_PRESENT) return j;
    pfns[i] = (pfns[i]! & INOUT) + (pte - low) * PTE_TO_HMM + ((low & _PAGE_RW) !== 0 ? VALID_WRITE : VALID);
  }
  return j;
}

/**
 * fillPresentRun when a fault may be needed: also stops at a present page that needs one (hmm_pte_need_fault;
 * needRo < 0 means the decision is per page).
 */
function fillPresentRunFaulting(table: Float64Array, pfns: Float64Array, j: number, jEnd: number, i: number, needRo: number, needRw: number, w: HmmVmaWalk): number {
  for (; j < jEnd; j++, i++) {
    const pte = table[j]!;
    const low = pte & PTE_LOW;
    if ((low & (_PAGE_PRESENT | _PAGE_SPECIAL)) !== _PAGE_PRESENT) return j;
    const cpuFlags = (low & _PAGE_RW) !== 0 ? HMM_PFN_VALID | HMM_PFN_WRITE : HMM_PFN_VALID;
    const req = pfns[i]!;
    const required = needRo < 0 ? hmmPteNeedFault(w, req, cpuFlags) : cpuFlags === HMM_PFN_VALID ? needRo : needRw;
    if (required !== 0) return j;
    pfns[i] = (req & INOUT) + (pte - low) * PTE_TO_HMM + cpuFlags;
  }
  return j;
}

/** hmm_walk_ops. */
const HMM_WALK_OPS: MmWalkOps<HmmVmaWalk> = {
  pmdEntry: hmmVmaWalkPmd,
  pteHole: hmmVmaWalkHole,
  hugetlbEntry: hmmVmaWalkHugetlbEntry,
  testWalk: hmmVmaWalkTest,
};

/**
 * hmm_do_fault(): fault [last, end) page by page with FAULT_FLAG_REMOTE [| FAULT_FLAG_WRITE]. Returns -EBUSY on
 * success (re-walk), -EFAULT (no VMA), -EPERM (write fault needed on a VMA without VM_WRITE, checked before any
 * fault), or vm_fault_to_errno of a failed fault.
 */
function hmmDoFault(mm: Mm, w: HmmVmaWalk): number {
  let addr = w.last;
  const end = w.end;
  let faultFlags = FAULT_FLAG_REMOTE;
  const vma = mm.vmaLookup(addr);
  if (vma === null) return -EFAULT;
  if ((w.requiredFault & HMM_NEED_WRITE_FAULT) !== 0) {
    if ((vma.vmFlags & VM_WRITE) === 0) return -EPERM;
    faultFlags |= FAULT_FLAG_WRITE;
  }
  for (; addr < end; addr += PAGE_SIZE) {
    const ret = handleMmFault(mm, addr, faultFlags);
    // The fault would sleep (migration entry, page lock): the synchronous plane reports -EBUSY.
    if ((ret & (VM_FAULT_COMPLETED | VM_FAULT_RETRY)) !== 0) return HMM_FAULT_WOULD_BLOCK;
    if ((ret & VM_FAULT_ERROR) !== 0) {
      const err = vmFaultToErrno(ret, 0);
      return err !== 0 ? err : -EINVAL; // WARN_ON(!err)
    }
  }
  return -EBUSY;
}
/** hmm_do_fault's HMM_FAULT_UNLOCKED stand-in: surfaces as -EBUSY to the caller. */
const HMM_FAULT_WOULD_BLOCK = -1000;

/** The core Mm behind a notifier (typed error if the notifier is not inserted on one). */
export function hmmRangeMm(range: HmmRange): Mm {
  const notifier = range.notifier as MmuIntervalNotifier | null | undefined;
  if (notifier === null || typeof notifier !== "object")
    throw new InvalidArgumentError("range.notifier", "must be an inserted MmuIntervalNotifier", notifier);
  const mm = notifier.mm;
  if (!(mm instanceof Mm)) throw new InvalidArgumentError("range.notifier", "must be inserted on a @hmmsim/core Mm (mmuIntervalNotifierInsert)");
  return mm;
}

/** The rule every hmmPfns entry must follow (see checkHmmPfns). */
const HMM_PFN_ENTRY_RULE = "must be an integer in [0, 2^53): pfn * 2^11 + HMM_PFN_* flag bits";

/**
 * Every entry of hmmPfns must be an integer in [0, 2^53) (Number.MAX_SAFE_INTEGER at most): NaN, ±Infinity,
 * negative and fractional values are no `unsigned long`. All 11 low bits are defined (the six HMM_PFN_* flags and
 * the 5-bit order), and the pfn field above them has 42 bits, so an entry in that range has no unknown bits: a
 * driver may pass its previous output back in, as the kernel allows. Checked before anything changes, so a bad
 * entry leaves hmmPfns, the page tables and the notifier sequence as they were.
 *
 * The hot path is branch-free (the check runs over every entry of every call): the sum of the fractional parts
 * (`v - trunc(v)`, ≥ 0 for v ≥ 0, NaN for NaN and ±Infinity) must be exactly 0 — a sum of non-negative doubles is 0
 * only if every term is — and the minimum ≥ 0, the maximum ≤ 2^53 - 1. Only when that fails does a second loop
 * find the first bad entry for the error.
 */
function checkHmmPfns(pfns: Float64Array, npages: number): void {
  let frac = 0;
  let min = 0;
  let max = 0;
  for (let i = 0; i < npages; i++) {
    const v = pfns[i]!;
    frac += v - Math.trunc(v);
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (frac === 0 && min >= 0 && max <= Number.MAX_SAFE_INTEGER) return;
  for (let i = 0; i < npages; i++) {
    const v = pfns[i]!;
    if (!(v >= 0 && v <= Number.MAX_SAFE_INTEGER && Math.trunc(v) === v))
      throw new InvalidArgumentError(`range.hmmPfns[${i}]`, HMM_PFN_ENTRY_RULE, v);
  }
}

function checkFlags(field: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > HMM_PFN_FLAGS)
    throw new InvalidArgumentError(field, "must be a combination of HMM_PFN_* flag bits (0..HMM_PFN_FLAGS)", v);
  return v;
}

/**
 * hmm_range_fault(range): fill range.hmmPfns with the CPU page table's view of [start, end), faulting pages in
 * where the request flags ask for it. The caller holds the mmap lock (read or write) for the whole call.
 *
 * Returns 0, or: -EINVAL (bad start/end), -EBUSY (the notifier sequence moved — before the call or because a
 * fault invalidated the range — or the fault would have to sleep: redo mmu_interval_read_begin), -EFAULT (a page
 * was requested valid but has no VMA, is in a VM_IO/VM_PFNMAP/unreadable VMA, is special, or could not be
 * faulted), -EPERM (write requested on a VMA without VM_WRITE), -ENOMEM (out of memory while faulting).
 *
 * Throws InvalidArgumentError for a range object the kernel could not even have been given (notifier not on a
 * core Mm, hmmPfns of the wrong type or length or with an entry that is not an integer in [0, 2^53), flags
 * outside HMM_PFN_FLAGS), naming the field (`range.hmmPfns[i]` for an entry) and leaving everything as it was,
 * and KernelRuleError when the mmap lock is not held (mmap_assert_locked).
 */
export function hmmRangeFault(range: HmmRange): number {
  if (range === null || typeof range !== "object") throw new InvalidArgumentError("range", "must be an HmmRange object", range);
  const mm = hmmRangeMm(range);
  const { start, end } = range;
  const mask = checkFlags("range.pfnFlagsMask", range.pfnFlagsMask);
  const dflt = checkFlags("range.defaultFlags", range.defaultFlags);
  if (!Number.isInteger(range.notifierSeq)) throw new InvalidArgumentError("range.notifierSeq", "must be an integer (from mmuIntervalReadBegin)", range.notifierSeq);
  mmapAssertLocked(mm);
  mm.assertLive("range.notifier");
  if (
    !Number.isSafeInteger(start) ||
    !Number.isSafeInteger(end) ||
    start < 0 ||
    start >= end ||
    end > TASK_SIZE ||
    start % PAGE_SIZE !== 0 ||
    end % PAGE_SIZE !== 0
  )
    return -EINVAL;
  const npages = (end - start) / PAGE_SIZE;
  // The walk indexes entries with small integers; no array of 2^31 entries can be allocated anyway.
  if (npages > 0x7fff_ffff) throw new InvalidArgumentError("range.end", "the range must span fewer than 2^31 pages", end);
  const given = range.hmmPfns;
  let pfns: Float64Array;
  if (given instanceof Float64Array) {
    if (given.length !== npages)
      throw new InvalidArgumentError("range.hmmPfns", `must have (end - start) / PAGE_SIZE = ${npages} entries`, given.length);
    checkHmmPfns(given, npages);
    pfns = given;
  } else if (Array.isArray(given)) {
    if (given.length !== npages)
      throw new InvalidArgumentError("range.hmmPfns", `must have (end - start) / PAGE_SIZE = ${npages} entries`, given.length);
    pfns = new Float64Array(npages);
    for (let i = 0; i < npages; i++) {
      const v: unknown = given[i];
      if (typeof v !== "number") throw new InvalidArgumentError(`range.hmmPfns[${i}]`, HMM_PFN_ENTRY_RULE, v);
      pfns[i] = v;
    }
    checkHmmPfns(pfns, npages);
  } else {
    throw new InvalidArgumentError("range.hmmPfns", "must be a Float64Array or a number[]", given);
  }
  const ret = hmmRangeFaultLocked(mm, range, pfns, mask, dflt);
  if (pfns !== given) for (let i = 0; i < npages; i++) (given as number[])[i] = pfns[i]!;
  return ret;
}

/** hmm_range_fault_locked() with `locked` = NULL. */
function hmmRangeFaultLocked(mm: Mm, range: HmmRange, pfns: Float64Array, mask: number, dflt: number): number {
  const w: HmmVmaWalk = {
    range,
    pfns,
    kernel: mm.kernel,
    last: range.start,
    end: 0,
    requiredFault: 0,
    mask,
    dflt,
    mayFault: ((dflt | mask) & HMM_PFN_REQ_FAULT) !== 0,
    migrationWait: false,
    perPage: (mask & (HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE)) !== 0,
    needRo: 0,
    needRw: 0,
  };
  w.needRo = hmmPteNeedFault(w, 0, HMM_PFN_VALID);
  w.needRw = hmmPteNeedFault(w, 0, HMM_PFN_VALID | HMM_PFN_WRITE);
  let lastFault = -1;
  let stuck = 0;
  let ret: number;
  do {
    // If the range is no longer valid, force a retry.
    if (mmuIntervalCheckRetry(range.notifier, range.notifierSeq)) return -EBUSY;
    ret = walkPageRange(mm, w.last, range.end, HMM_WALK_OPS, w);
    if (ret === HMM_FAULT_PENDING) {
      if (w.last === lastFault) {
        if (++stuck >= HMM_NO_PROGRESS_LIMIT) return -EBUSY;
      } else {
        lastFault = w.last;
        stuck = 0;
      }
      ret = hmmDoFault(mm, w);
      if (ret === HMM_FAULT_WOULD_BLOCK) return -EBUSY;
    } else if (w.migrationWait) {
      return -EBUSY;
    }
    // On -EBUSY the walk restarts at `last`: entries below it are outputs, the others still inputs.
  } while (ret === -EBUSY);
  return ret;
}
