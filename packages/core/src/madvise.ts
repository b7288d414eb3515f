/**
 * madvise (mm/madvise.c): MADV_DONTNEED (zap_page_range_single, MMU_NOTIFY_CLEAR per VMA), MADV_FREE
 * (madvise_free_single_vma: MMU_NOTIFY_CLEAR; exclusive present anon pages become clean and old so reclaim could
 * drop them; device-private entries are left alone; hmmsim has no reclaim, so the data stays until written or
 * unmapped), MADV_HUGEPAGE / MADV_NOHUGEPAGE (VMA hints, splitting the VMA).
 * Unmapped parts of the range are skipped and the call returns -ENOMEM after applying the rest, as the kernel.
 */
import { EINVAL, ENOMEM } from "./errno.js";
import { InvalidArgumentError } from "./errors.js";
import { isHugeZeroPmd, splitHugePmd } from "./huge-memory.js";
import { hugetlbSplitCheck } from "./hugetlb.js";
import { madviseCollapse } from "./khugepaged.js";
import { zapPageRange } from "./memory.js";
import { invalidateEnd, invalidateStart } from "./mm-notify.js";
import type { Mm } from "./mm.js";
import { MMU_NOTIFY_CLEAR } from "./mmu-notifier-range.js";
import { rangeFullyMapped, vmasForRange } from "./mmap.js";
import { PAGE_SIZE, PG_anon, PG_dirty, PMD_SIZE, TASK_SIZE, alignDown, alignUp, isAligned } from "./page-flags.js";
import { pteMkclean, pteMkold, ptePfn, ptePresent, pteSpecial } from "./pgtable.js";
import {
  MADV_COLLAPSE,
  MADV_DONTNEED,
  MADV_FREE,
  MADV_HUGEPAGE,
  MADV_NOHUGEPAGE,
  VM_HUGEPAGE,
  VM_HUGETLB,
  VM_LOCKED,
  VM_NOHUGEPAGE,
  VM_PFNMAP,
  vmaIsAnonymous,
  type VmAreaStruct,
} from "./vma.js";

const KNOWN = new Set([MADV_DONTNEED, MADV_FREE, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_COLLAPSE]);

export function doMadvise(mm: Mm, addr: number, length: number, advice: number): number {
  if (!Number.isInteger(addr) || addr < 0 || !isAligned(addr, PAGE_SIZE))
    throw new InvalidArgumentError("addr", "must be a page-aligned integer >= 0", addr);
  if (!Number.isInteger(length) || length < 0) throw new InvalidArgumentError("length", "must be an integer >= 0", length);
  if (!KNOWN.has(advice))
    throw new InvalidArgumentError("advice", "must be MADV_DONTNEED, MADV_FREE, MADV_HUGEPAGE, MADV_NOHUGEPAGE or MADV_COLLAPSE", advice);
  const len = alignUp(length, PAGE_SIZE);
  if (addr + len > TASK_SIZE) throw new InvalidArgumentError("length", "addr + length overflows the address space", length);
  if (len === 0) return 0;
  const end = addr + len;
  const holes = !rangeFullyMapped(mm, addr, end);
  const touched = mm.vmasIn(addr, end);
  if (touched.length === 0) return -ENOMEM;
  // madvise_dontneed_free_valid_vma / MADV_FREE's anonymous-only rule, checked before any change.
  if (advice === MADV_DONTNEED || advice === MADV_FREE) {
    for (const v of touched) {
      if (v.vmFlags & (VM_LOCKED | VM_PFNMAP | VM_HUGETLB)) return -EINVAL;
      if (advice === MADV_FREE && !vmaIsAnonymous(v)) return -EINVAL;
    }
  }
  if (advice === MADV_COLLAPSE) {
    for (const vma of touched) {
      const r = madviseCollapse(mm, vma, Math.max(addr, vma.vmStart), Math.min(end, vma.vmEnd));
      if (r !== 0) return r;
    }
    return holes ? -ENOMEM : 0;
  }
  if (advice === MADV_HUGEPAGE || advice === MADV_NOHUGEPAGE) {
    const bad = hugetlbSplitCheck(mm, addr, end);
    if (bad !== 0) return bad;
    for (const vma of vmasForRange(mm, addr, end)) {
      if (advice === MADV_HUGEPAGE) vma.vmFlags = (vma.vmFlags & ~VM_NOHUGEPAGE) | VM_HUGEPAGE;
      else vma.vmFlags = (vma.vmFlags & ~VM_HUGEPAGE) | VM_NOHUGEPAGE;
    }
    return holes ? -ENOMEM : 0;
  }
  for (const vma of touched) {
    const s = Math.max(addr, vma.vmStart);
    const e = Math.min(end, vma.vmEnd);
    const range = invalidateStart(mm, MMU_NOTIFY_CLEAR, s, e);
    if (advice === MADV_DONTNEED) zapPageRange(mm, vma, s, e, false);
    else madviseFree(mm, vma, s, e);
    invalidateEnd(range);
  }
  return holes ? -ENOMEM : 0;
}

/** madvise_free_pte_range(): exclusive present anon pages become clean + old and the folio clean (lazyfree). */
function madviseFree(mm: Mm, vma: VmAreaStruct, start: number, end: number): void {
  const k = mm.kernel;
  const s = k.store;
  const pt = mm.pgtable;
  for (let a = start; a < end; ) {
    const pmdStart = alignDown(a, PMD_SIZE);
    const next = Math.min(end, pmdStart + PMD_SIZE);
    // madvise_free_huge_pmd() leaves the huge zero PMD alone (is_huge_zero_pmd: goto out), split or not.
    const pmd = pt.pmdGet(a);
    if (pmd !== 0 && !isHugeZeroPmd(k, pmd) && !(a === pmdStart && next === pmdStart + PMD_SIZE)) splitHugePmd(mm, vma, pmdStart);
    const t = pt.pteTable(a, false);
    if (t !== null) {
      for (let p = a; p < next; p += PAGE_SIZE) {
        const i = (Math.floor(p / PAGE_SIZE) & 511);
        const e = t[i]!;
        if (!ptePresent(e) || pteSpecial(e)) continue;
        const pfn = ptePfn(e);
        if (!s.test(s.folioHead(pfn), PG_anon) || s.pageMapcount(pfn) !== 1) continue;
        t[i] = pteMkold(pteMkclean(e));
        s.clear(s.folioHead(pfn), PG_dirty);
      }
    }
    a = next;
  }
}
