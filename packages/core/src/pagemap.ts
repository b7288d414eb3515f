/**
 * /proc/pid/pagemap (fs/proc/task_mmu.c: pagemap_read, pagemap_pmd_range, pte_to_pagemap_entry,
 * pagemap_hugetlb_range, pagemap_pte_hole), read as CAP_SYS_ADMIN (frames shown).
 *
 * Each page has a 64-bit entry: bits 0-54 the frame (pfn when present; swap type | offset << 5 when swapped),
 * bit 55 soft-dirty, 56 exclusively mapped, 57 uffd-wp, 61 file-page or shared-anon, 62 swapped, 63 present.
 * JS numbers cannot hold bit 63, so an entry is returned as a PagemapEntry: the decoded flags, the frame as a
 * number (below 2^53), and `pm`, the exact 64-bit value as a BigInt.
 *
 * "Swapped" (PM_SWAP) means any non-present, non-none entry: device-private, device-exclusive and migration
 * entries too (their frame carries the pfn as the swap offset); the swap type in the frame is hmmsim's SWP_* number
 * (pgtable.ts), not the kernel's MAX_SWAPFILES-relative one. PM_MMAP_EXCLUSIVE is set for a present page mapped
 * exactly once (folio_precise_page_mapcount == 1; for hugetlb: the folio is not mapped shared). VM_SOFTDIRTY and
 * uffd are not modelled.
 */
import { InvalidArgumentError } from "./errors.js";
import { vmNormalPage } from "./memory.js";
import type { Mm } from "./mm.js";
import { HPAGE_PMD_NR, PAGE_SIZE, PG_anon, isAligned } from "./page-flags.js";
import { isPfnSwapEntry, pmdTransHuge, ptePfn, ptePresent, pteSoftDirty, pteSwpType } from "./pgtable.js";
import { isVmHugetlbPage } from "./vma.js";

export const PM_ENTRY_BYTES = 8;
export const PM_PFRAME_BITS = 55;
export const PM_SOFT_DIRTY = 1n << 55n;
export const PM_MMAP_EXCLUSIVE = 1n << 56n;
export const PM_UFFD_WP = 1n << 57n;
export const PM_FILE = 1n << 61n;
export const PM_SWAP = 1n << 62n;
export const PM_PRESENT = 1n << 63n;
/** MAX_SWAPFILES_SHIFT: the swap type's width in a swapped entry's frame. */
export const MAX_SWAPFILES_SHIFT = 5;

/** One pagemap entry, decoded. */
export interface PagemapEntry {
  present: boolean;
  swap: boolean;
  file: boolean;
  exclusive: boolean;
  softDirty: boolean;
  /** Bits 0-54: the pfn when present, swap type | offset << 5 when swapped, else 0. */
  frame: number;
  /** The raw 64-bit entry. */
  pm: bigint;
}

function makePme(frame: number, present: boolean, swap: boolean, file: boolean, exclusive: boolean, softDirty: boolean): PagemapEntry {
  let pm = BigInt(frame);
  if (softDirty) pm |= PM_SOFT_DIRTY;
  if (exclusive) pm |= PM_MMAP_EXCLUSIVE;
  if (file) pm |= PM_FILE;
  if (swap) pm |= PM_SWAP;
  if (present) pm |= PM_PRESENT;
  return { present, swap, file, exclusive, softDirty, frame, pm };
}

function swapFrame(type: number, offset: number): number {
  return type + offset * 2 ** MAX_SWAPFILES_SHIFT;
}

/** The pagemap entry of the page containing addr (no fault, as reading pagemap never faults). */
export function pagemapRead(mm: Mm, addr: number): PagemapEntry {
  if (!Number.isInteger(addr) || addr < 0) throw new InvalidArgumentError("addr", "must be an integer >= 0", addr);
  mm.assertLive();
  const k = mm.kernel;
  const s = k.store;
  const a = addr - (addr % PAGE_SIZE);
  const vma = mm.vmaLookup(a);
  if (vma === null) return makePme(0, false, false, false, false, false);
  const pt = mm.pgtable;
  const pmd = pt.pmdGet(a);
  const idx = (Math.floor(a / PAGE_SIZE) & (HPAGE_PMD_NR - 1));
  if (isVmHugetlbPage(vma)) {
    // pagemap_hugetlb_range(): a present huge entry, else nothing (hugetlb migration entries are not reported).
    if (pmd === 0 || !ptePresent(pmd)) return makePme(0, false, false, false, false, false);
    const head = ptePfn(pmd);
    return makePme(head + idx, true, false, !s.test(head, PG_anon), s.entireMapcount(head) === 1, false);
  }
  if (pmd !== 0) {
    // pagemap_pmd_range(), huge branch.
    const head = ptePfn(pmd);
    const file = !s.test(s.folioHead(head), PG_anon);
    if (pmdTransHuge(pmd)) return makePme(head + idx, true, false, file, s.pageMapcount(head + idx) === 1, pteSoftDirty(pmd));
    return makePme(swapFrame(pteSwpType(pmd), head + idx), false, true, file, false, pteSoftDirty(pmd));
  }
  const pte = pt.pteGet(a);
  if (pte === 0) return makePme(0, false, false, false, false, false);
  if (ptePresent(pte)) {
    const pfn = vmNormalPage(k, pte);
    const page = pfn >= 0;
    return makePme(
      ptePfn(pte),
      true,
      false,
      page && !s.test(s.folioHead(pfn), PG_anon),
      page && s.pageMapcount(pfn) === 1,
      pteSoftDirty(pte),
    );
  }
  const pfn = ptePfn(pte);
  const file = isPfnSwapEntry(pte) && !s.test(s.folioHead(pfn), PG_anon);
  return makePme(swapFrame(pteSwpType(pte), pfn), false, true, file, false, pteSoftDirty(pte));
}

/** pagemap_read() of nrPages entries from `start` (page aligned). */
export function pagemapReadRange(mm: Mm, start: number, nrPages: number): PagemapEntry[] {
  if (!Number.isInteger(start) || start < 0 || !isAligned(start, PAGE_SIZE))
    throw new InvalidArgumentError("start", "must be a page-aligned integer >= 0", start);
  if (!Number.isInteger(nrPages) || nrPages < 0) throw new InvalidArgumentError("nrPages", "must be an integer >= 0", nrPages);
  const out: PagemapEntry[] = [];
  for (let i = 0; i < nrPages; i++) out.push(pagemapRead(mm, start + i * PAGE_SIZE));
  return out;
}
