/**
 * The generic page-table walker (mm/pagewalk.c: walk_page_range, walk_page_test, __walk_page_range,
 * walk_pud_range, walk_pmd_range, walk_pte_range; include/linux/pagewalk.h: struct mm_walk_ops, struct mm_walk,
 * enum page_walk_action, enum page_walk_lock).
 *
 * Why this package has its own walker although @hmmsim/core exports a `walkPageRange`: core's walker only calls
 * `pmdEntry` for huge PMD entries and reports every PTE to `pteEntry` one by one, while the kernel's pmd_entry
 * receives every non-none PMD (with the PTE table behind it) so that hmm_vma_walk_pmd can scan the leaf table
 * itself. hmmRangeFault's hot path depends on that. This walker follows mm/pagewalk.c:
 *
 * - VMA by VMA over [start, end); addresses outside any VMA go to `pteHole(addr, next, -1)` with `walk.vma = null`.
 * - `testWalk(start, end)` per VMA: 0 walk it, > 0 skip it, < 0 stop with that value. Without a testWalk a
 *   VM_PFNMAP VMA is reported to `pteHole` and skipped (walk_page_test).
 * - A PUD region (1 GiB) without a PMD table → `pteHole(addr, next, 2)`; a none PMD → `pteHole(addr, next, 3)`.
 * - Every other PMD → `pmdEntry(dir, index, addr, next)` where `(dir, index)` stands for `pmd_t *pmd`
 *   (`dir.pmd[index]` is the huge entry, `dir.pte[index]` the PTE table). `walk.action` is ACTION_SUBTREE on
 *   entry; the callback may set ACTION_CONTINUE (do not descend) or ACTION_AGAIN (re-read this PMD).
 * - With a `pteEntry`, the walker then descends: a huge PMD is split first (split_huge_pmd), then
 *   `pteEntry(table, index, addr, next)` runs for each PTE slot, pte_none included (`(table, index)` stands for
 *   `pte_t *pte`).
 * - A hugetlb VMA (is_vm_hugetlb_page) is walked only through `hugetlbEntry` (__walk_page_range): with it,
 *   walk_hugetlb_range calls `hugetlbEntry(dir, index, hmask, addr, next)` once per huge page of [addr, next)
 *   whose page table exists (`(dir, index)` stands for the huge `pte_t *`, `dir.pmd[index]` its entry, none
 *   included; hmask = huge_page_mask as a negative number, -2 MiB), and `pteHole(addr, next, -1)` where
 *   hugetlb_walk finds no table; without it the VMA is skipped entirely (no pmdEntry/pteEntry/pteHole calls).
 * - A callback returning nonzero stops the walk; walkPageRange returns that value.
 * - Lock: `walkLock` PGWALK_RDLOCK (default) asserts the mmap lock is held (mmap_assert_locked),
 *   PGWALK_WRLOCK that it is held for write.
 *
 * Not modelled: pud_entry (core has no PUD leaves; its only hstate is 2 MiB), pre_vma / post_vma, install_pte.
 */
import {
  EINVAL,
  PAGE_SIZE,
  PMD_SIZE,
  PUD_SIZE,
  VM_PFNMAP,
  hstateVma,
  hugePageSize,
  isVmHugetlbPage,
  mmapAssertLocked,
  mmapAssertWriteLocked,
  splitHugePmd,
  type Mm,
  type PmdTable,
  type VmAreaStruct,
} from "@hmmsim/core";

/** enum page_walk_action. */
export const ACTION_SUBTREE = 0;
export const ACTION_CONTINUE = 1;
export const ACTION_AGAIN = 2;

/** enum page_walk_lock. */
export const PGWALK_RDLOCK = 0;
export const PGWALK_WRLOCK = 1;

/** struct mm_walk. */
export interface MmWalk<P = unknown> {
  readonly mm: Mm;
  /** The VMA being walked; null for addresses outside any VMA. */
  vma: VmAreaStruct | null;
  readonly ops: MmWalkOps<P>;
  /** walk->private. */
  readonly private: P;
  /** Set by pmdEntry: ACTION_SUBTREE / ACTION_CONTINUE / ACTION_AGAIN. */
  action: number;
}

/** struct mm_walk_ops. */
export interface MmWalkOps<P = unknown> {
  /** Per VMA: 0 walk it, > 0 skip it, < 0 stop. */
  testWalk?(start: number, end: number, walk: MmWalk<P>): number;
  /** A range without page tables; depth -1 outside any VMA, 2 = no PMD table, 3 = none PMD. */
  pteHole?(addr: number, next: number, depth: number, walk: MmWalk<P>): number;
  /** A non-none PMD: `dir.pmd[index]` is its huge entry (0 when a PTE table hangs at `dir.pte[index]`). */
  pmdEntry?(dir: PmdTable, index: number, addr: number, next: number, walk: MmWalk<P>): number;
  /**
   * One huge page of a hugetlb VMA: `dir.pmd[index]` is its entry (huge_ptep_get; none included); hmask is
   * huge_page_mask(hstate) as a negative number; [addr, next) is the part of the huge page being walked.
   */
  hugetlbEntry?(dir: PmdTable, index: number, hmask: number, addr: number, next: number, walk: MmWalk<P>): number;
  /** One PTE slot: `table[index]` is the entry (pte_none included). */
  pteEntry?(table: Float64Array, index: number, addr: number, next: number, walk: MmWalk<P>): number;
  /** PGWALK_RDLOCK (default) or PGWALK_WRLOCK. */
  walkLock?: number;
}

/**
 * walk_page_range(mm, start, end, ops, private): returns 0, -EINVAL (start >= end), or the first nonzero value a
 * callback returned. The caller holds the mmap lock (asserted: KernelRuleError otherwise).
 */
export function walkPageRange<P>(mm: Mm, start: number, end: number, ops: MmWalkOps<P>, priv: P): number {
  if (!(start < end)) return -EINVAL;
  if (ops.walkLock === PGWALK_WRLOCK) mmapAssertWriteLocked(mm);
  else mmapAssertLocked(mm);
  const walk: MmWalk<P> = { mm, vma: null, ops, private: priv, action: ACTION_SUBTREE };
  let vma = mm.findVma(start);
  let err = 0;
  let next: number;
  do {
    if (vma === null) {
      // After the last VMA.
      walk.vma = null;
      next = end;
      if (ops.pteHole) err = ops.pteHole(start, next, -1, walk);
    } else if (start < vma.vmStart) {
      // Outside a VMA.
      walk.vma = null;
      next = Math.min(end, vma.vmStart);
      if (ops.pteHole) err = ops.pteHole(start, next, -1, walk);
    } else {
      walk.vma = vma;
      next = Math.min(end, vma.vmEnd);
      vma = mm.findVma(vma.vmEnd);
      err = walkPageTest(start, next, walk);
      if (err > 0) {
        err = 0;
        start = next;
        continue;
      }
      if (err < 0) break;
      // __walk_page_range(): hugetlb VMAs only through hugetlb_entry.
      if (isVmHugetlbPage(walk.vma)) {
        if (ops.hugetlbEntry) err = walkHugetlbRange(start, next, walk);
      } else {
        err = walkPgdRange(start, next, walk);
      }
    }
    if (err !== 0) break;
    start = next;
  } while (start < end);
  return err;
}

/** walk_page_test(). */
function walkPageTest<P>(start: number, end: number, walk: MmWalk<P>): number {
  const ops = walk.ops;
  if (ops.testWalk) return ops.testWalk(start, end, walk);
  // A VM_PFNMAP VMA has no struct pages behind its PTEs: report it as a hole and skip it.
  if ((walk.vma!.vmFlags & VM_PFNMAP) !== 0) {
    let err = 1;
    if (ops.pteHole) err = ops.pteHole(start, end, -1, walk);
    return err !== 0 ? err : 1;
  }
  return 0;
}

/** walk_hugetlb_range(): one hugetlbEntry per huge page whose page table exists (hugetlb_walk), else pteHole. */
function walkHugetlbRange<P>(start: number, end: number, walk: MmWalk<P>): number {
  const sz = hugePageSize(hstateVma(walk.vma!));
  const hmask = -sz;
  const dirs = walk.mm.pgtable.dirs;
  const ops = walk.ops;
  for (let addr = start, next: number; addr < end; addr = next) {
    // hugetlb_entry_end()
    next = Math.min(end, addr - (addr % sz) + sz);
    const dir = dirs.get(Math.floor(addr / PUD_SIZE));
    let err = 0;
    if (dir !== undefined) err = ops.hugetlbEntry!(dir, (Math.floor(addr / PMD_SIZE) & 511), hmask, addr, next, walk);
    else if (ops.pteHole) err = ops.pteHole(addr, next, -1, walk);
    if (err !== 0) return err;
  }
  return 0;
}

/** walk_pgd_range / walk_p4d_range / walk_pud_range: the PGD+PUD levels are one Map keyed by 1 GiB region. */
function walkPgdRange<P>(start: number, end: number, walk: MmWalk<P>): number {
  const dirs = walk.mm.pgtable.dirs;
  const ops = walk.ops;
  let addr = start;
  while (addr < end) {
    const key = Math.floor(addr / PUD_SIZE);
    const next = Math.min(end, (key + 1) * PUD_SIZE);
    const dir = dirs.get(key);
    if (dir === undefined) {
      if (ops.pteHole) {
        const err = ops.pteHole(addr, next, 2, walk);
        if (err !== 0) return err;
      }
    } else {
      const err = walkPmdRange(dir, addr, next, walk);
      if (err !== 0) return err;
    }
    addr = next;
  }
  return 0;
}

/** walk_pmd_range() over one PMD table. */
function walkPmdRange<P>(dir: PmdTable, start: number, end: number, walk: MmWalk<P>): number {
  const ops = walk.ops;
  let addr = start;
  let index = (Math.floor(addr / PMD_SIZE) & 511);
  while (addr < end) {
    const next = Math.min(end, (Math.floor(addr / PMD_SIZE) + 1) * PMD_SIZE);
    if (dir.pmd[index] === 0 && dir.pte[index] === null) {
      if (ops.pteHole) {
        const err = ops.pteHole(addr, next, 3, walk);
        if (err !== 0) return err;
      }
    } else {
      walk.action = ACTION_SUBTREE;
      if (ops.pmdEntry) {
        const err = ops.pmdEntry(dir, index, addr, next, walk);
        if (err !== 0) return err;
      }
      if (walk.action === ACTION_AGAIN) continue;
      if (walk.action !== ACTION_CONTINUE && ops.pteEntry) {
        if (dir.pmd[index] !== 0 && walk.vma !== null) splitHugePmd(walk.mm, walk.vma, addr);
        const table = dir.pte[index];
        if (table === null) {
          // The PMD went away (pmd_trans_unstable): look at it again.
          if (dir.pmd[index] === 0) continue;
        } else {
          const err = walkPteRange(table, addr, next, walk);
          if (err !== 0) return err;
        }
      }
    }
    addr = next;
    index++;
  }
  return 0;
}

/** walk_pte_range(). */
function walkPteRange<P>(table: Float64Array, start: number, end: number, walk: MmWalk<P>): number {
  const pteEntry = walk.ops.pteEntry!;
  let index = (Math.floor(start / PAGE_SIZE) & 511);
  for (let addr = start; addr < end; addr += PAGE_SIZE, index++) {
    const err = pteEntry.call(walk.ops, table, index, addr, addr + PAGE_SIZE, walk);
    if (err !== 0) return err;
  }
  return 0;
}
