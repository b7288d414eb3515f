/**
 * Per-mm page tables (include/linux/pgtable.h accessors, mm/pgtable-generic.c) and the page-table walker
 * (mm/pagewalk.c walk_page_range). A radix tree: a Map keyed by the 1 GiB region (PGD+PUD, flattened) to a PMD
 * table of 512 entries; each PMD slot holds either a huge entry (PMD leaf: trans-huge or a huge non-present entry)
 * or a lazily allocated 512-entry PTE table (Float64Array of packed entries, see pgtable.ts).
 *
 * These are raw accessors: they do not touch refcounts, mapcounts, rss or notifiers. Code that installs or zaps
 * entries must keep those right (see rmap helpers in mm-counters.ts).
 *
 * Table indices are taken with `& 511`, not `% 512`: a page number exceeds int32, and `%` on it compiles to a
 * floating-point fmod call, where `&` truncates to the low 32 bits (exact for the low 9) in one instruction.
 */
import { KernelRuleError } from "./errors.js";
import { PAGE_SIZE, PGDIR_SIZE, PMD_SIZE, PTRS_PER_PTE, PUD_SIZE } from "./page-flags.js";
import type { Mm } from "./mm.js";
import { isVmHugetlbPage, type VmAreaStruct } from "./vma.js";

export class PmdTable {
  /** Huge (leaf) entries; 0 where none or where a PTE table hangs. */
  readonly pmd = new Float64Array(512);
  /** PTE tables, allocated on first set. */
  readonly pte: (Float64Array | null)[] = new Array<Float64Array | null>(512).fill(null);
}

export class PageTable {
  readonly dirs = new Map<number, PmdTable>();
  /** PTE tables allocated (mm->pgtables_bytes / 4096). */
  nrPteTables = 0;

  /** The last PMD table found (tables are never removed, so a hit is always current). */
  private lastKey = -1;
  private lastDir: PmdTable | undefined = undefined;

  private dir(addr: number, alloc: boolean): PmdTable | undefined {
    const key = Math.floor(addr / PUD_SIZE);
    if (key === this.lastKey) return this.lastDir;
    let d = this.dirs.get(key);
    if (d === undefined && alloc) {
      d = new PmdTable();
      this.dirs.set(key, d);
    }
    if (d !== undefined) {
      this.lastKey = key;
      this.lastDir = d;
    }
    return d;
  }
  /** The PTE table covering addr (pte_offset_map), allocating when `alloc` (pte_alloc). */
  pteTable(addr: number, alloc: boolean): Float64Array | null {
    const d = this.dir(addr, alloc);
    if (d === undefined) return null;
    const i = (Math.floor(addr / PMD_SIZE) & 511);
    let t = d.pte[i]!;
    if (t === null && alloc) {
      if (d.pmd[i] !== 0) throw new KernelRuleError("pte_alloc_over_huge_pmd", `0x${addr.toString(16)}`);
      t = new Float64Array(PTRS_PER_PTE);
      d.pte[i] = t;
      this.nrPteTables++;
    }
    return t;
  }
  pteGet(addr: number): number {
    const t = this.pteTable(addr, false);
    return t === null ? 0 : t[(Math.floor(addr / PAGE_SIZE) & 511)]!;
  }
  pteSet(addr: number, e: number): void {
    if (e === 0) {
      const t = this.pteTable(addr, false);
      if (t !== null) t[(Math.floor(addr / PAGE_SIZE) & 511)] = 0;
      return;
    }
    this.pteTable(addr, true)![(Math.floor(addr / PAGE_SIZE) & 511)] = e;
  }
  pmdGet(addr: number): number {
    const d = this.dir(addr, false);
    return d === undefined ? 0 : d.pmd[(Math.floor(addr / PMD_SIZE) & 511)]!;
  }
  pmdSet(addr: number, e: number): void {
    const d = this.dir(addr, e !== 0)!;
    if (d === undefined) return;
    const i = (Math.floor(addr / PMD_SIZE) & 511);
    if (e !== 0 && d.pte[i] !== null) throw new KernelRuleError("set_pmd_over_pte_table", `0x${addr.toString(16)}`);
    d.pmd[i] = e;
  }
  /** Free the PTE table under addr's PMD (free_pte_range); it must be empty. */
  freePteTable(addr: number): void {
    const d = this.dir(addr, false);
    if (d === undefined) return;
    const i = (Math.floor(addr / PMD_SIZE) & 511);
    const t = d.pte[i];
    if (t === null || t === undefined) return;
    for (let j = 0; j < 512; j++)
      if (t[j] !== 0) throw new KernelRuleError("free_pte_range_not_empty", `0x${addr.toString(16)}`);
    d.pte[i] = null;
    this.nrPteTables--;
  }
  /** Whether the PMD table covering addr exists (hugetlb_walk finds a huge PTE slot; pud_none is its absence). */
  hasDir(addr: number): boolean {
    return this.dir(addr, false) !== undefined;
  }
  /**
   * Whether any PMD table exists under the PGD entry covering addr (pgd_none is its absence: hmmsim allocates a
   * PUD table with its first PMD table and, like those, never frees it).
   */
  hasPgdEntry(addr: number): boolean {
    const first = Math.floor(addr / PGDIR_SIZE) * (PGDIR_SIZE / PUD_SIZE);
    for (let key = first; key < first + PGDIR_SIZE / PUD_SIZE; key++) if (this.dirs.has(key)) return true;
    return false;
  }
  /** Free the PTE table under addr's PMD if it holds no entry (free_pte_range after a zap). */
  freePteTableIfEmpty(addr: number): void {
    const t = this.pteTable(addr, false);
    if (t === null) return;
    for (let j = 0; j < 512; j++) if (t[j] !== 0) return;
    this.freePteTable(addr);
  }
  /**
   * move_normal_pmd(): hang the PTE table under `from`'s PMD under `to`'s (both PMD aligned); `to` must have no
   * table and no huge entry.
   */
  movePteTable(from: number, to: number): void {
    const src = this.dir(from, false);
    const i = (Math.floor(from / PMD_SIZE) & 511);
    const t = src?.pte[i] ?? null;
    if (t === null) return;
    const dst = this.dir(to, true)!;
    const j = (Math.floor(to / PMD_SIZE) & 511);
    if (dst.pte[j] !== null || dst.pmd[j] !== 0) throw new KernelRuleError("move_normal_pmd_target_not_none", `0x${to.toString(16)}`);
    src!.pte[i] = null;
    dst.pte[j] = t;
  }
  /** Whether any page table exists in [start, end) (for mprotect's PROTECTION_VMA rule). */
  hasTablesIn(start: number, end: number): boolean {
    for (let a = Math.floor(start / PMD_SIZE) * PMD_SIZE; a < end; a += PMD_SIZE) {
      const d = this.dir(a, false);
      if (d === undefined) {
        a = Math.floor(a / PUD_SIZE) * PUD_SIZE + PUD_SIZE - PMD_SIZE;
        continue;
      }
      const i = (Math.floor(a / PMD_SIZE) & 511);
      if (d.pmd[i] !== 0 || d.pte[i] !== null) return true;
    }
    return false;
  }
}

/** pte value at addr (0 when no table): ptep_get(pte_offset_map(...)). Does not look through huge PMDs. */
export function pteGet(mm: Mm, addr: number): number {
  return mm.pgtable.pteGet(addr);
}
/** set_pte_at / pte_clear (raw). */
export function pteSet(mm: Mm, addr: number, e: number): void {
  mm.pgtable.pteSet(addr, e);
}
/** The huge entry of the PMD covering addr, 0 when none or when it points to a PTE table. */
export function pmdGet(mm: Mm, addr: number): number {
  return mm.pgtable.pmdGet(addr);
}
/** set_pmd_at / pmd_clear (raw). */
export function pmdSet(mm: Mm, addr: number, e: number): void {
  mm.pgtable.pmdSet(addr, e);
}
/** Whether a PTE table hangs under the PMD covering addr. */
export function pmdHasPteTable(mm: Mm, addr: number): boolean {
  return mm.pgtable.pteTable(addr, false) !== null;
}

/** struct mm_walk. */
export interface MmWalk {
  mm: Mm;
  vma: VmAreaStruct | null;
  ops: MmWalkOps;
  /** Walker-private data. */
  private: unknown;
}

/**
 * struct mm_walk_ops. A callback returning nonzero stops the walk and walkPageRange returns that value.
 * - testWalk(start, end): 0 walk this VMA, 1 skip it, <0 stop.
 * - pmdEntry(pmd, addr, next): for a huge PMD entry (PMD leaf or huge non-present entry) only.
 * - pteEntry(pte, addr, next): for each PTE slot under a PTE table (pte_none included, as the kernel does).
 *   A huge PMD without a pmdEntry callback is reported to pteEntry page by page, as per-page entries, without
 *   splitting it (hmmsim convenience: `walk.private` is untouched; check pmdGet to tell).
 * - pteHole(addr, next): a range with no page table (or outside any VMA when walking without VMAs).
 * - hugetlbEntry(pte, hmask, addr, next): for a VM_HUGETLB VMA, once per huge page of [addr, next) (clipped to the
 *   walk), with its PMD-level entry (0 when none); hmask is huge_page_mask as a negative number (-2 MiB: use
 *   `addr - addr % -hmask`, bitwise & truncates to 32 bits). As walk_page_range does, a hugetlb VMA is walked only
 *   through hugetlbEntry: without it the VMA is skipped (no pmdEntry/pteEntry/pteHole calls); a huge page with no
 *   page table at all goes to pteHole.
 */
export interface MmWalkOps {
  testWalk?(start: number, end: number, walk: MmWalk): number;
  hugetlbEntry?(pte: number, hmask: number, addr: number, next: number, walk: MmWalk): number;
  pmdEntry?(pmd: number, addr: number, next: number, walk: MmWalk): number;
  pteEntry?(pte: number, addr: number, next: number, walk: MmWalk): number;
  pteHole?(addr: number, next: number, walk: MmWalk): number;
}

/**
 * walk_page_range(mm, start, end, ops, private): walk [start, end) VMA by VMA; gaps between VMAs are reported
 * to pteHole with walk.vma = null. Returns 0 or the first nonzero callback value. -EINVAL if start >= end.
 */
export function walkPageRange(mm: Mm, start: number, end: number, ops: MmWalkOps, priv?: unknown): number {
  if (!(start < end)) return -22;
  const walk: MmWalk = { mm, vma: null, ops, private: priv };
  let addr = start;
  while (addr < end) {
    const vma = mm.findVma(addr);
    if (vma === null || vma.vmStart >= end) {
      walk.vma = null;
      if (ops.pteHole) {
        const r = ops.pteHole(addr, end, walk);
        if (r !== 0) return r;
      }
      return 0;
    }
    if (vma.vmStart > addr) {
      walk.vma = null;
      if (ops.pteHole) {
        const r = ops.pteHole(addr, vma.vmStart, walk);
        if (r !== 0) return r;
      }
      addr = vma.vmStart;
    }
    const next = Math.min(end, vma.vmEnd);
    walk.vma = vma;
    let skip = false;
    if (ops.testWalk) {
      const r = ops.testWalk(addr, next, walk);
      if (r < 0) return r;
      skip = r > 0;
    }
    if (!skip) {
      const r = walkVmaRange(addr, next, walk);
      if (r !== 0) return r;
    }
    addr = next;
  }
  return 0;
}

/** walk_page_range_vma-like: walk [start, end) inside one VMA. */
export function walkPageRangeVma(vma: VmAreaStruct, start: number, end: number, ops: MmWalkOps, priv?: unknown): number {
  if (!(start < end) || start < vma.vmStart || end > vma.vmEnd) return -22;
  return walkVmaRange(start, end, { mm: vma.vmMm, vma, ops, private: priv });
}

/** __walk_page_range(): hugetlb VMAs go to walk_hugetlb_range (only with a hugetlbEntry op), others to the PMDs. */
function walkVmaRange(start: number, end: number, walk: MmWalk): number {
  if (walk.vma !== null && isVmHugetlbPage(walk.vma)) {
    return walk.ops.hugetlbEntry ? walkHugetlbRange(start, end, walk) : 0;
  }
  return walkPmdRange(start, end, walk);
}

/** walk_hugetlb_range() for 2 MiB huge pages. */
function walkHugetlbRange(start: number, end: number, walk: MmWalk): number {
  const pt = walk.mm.pgtable;
  const ops = walk.ops;
  for (let addr = start; addr < end; ) {
    const next = Math.min(end, Math.floor(addr / PMD_SIZE) * PMD_SIZE + PMD_SIZE);
    let r = 0;
    if (pt.hasDir(addr)) r = ops.hugetlbEntry!(pt.pmdGet(addr), -PMD_SIZE, addr, next, walk);
    else if (ops.pteHole) r = ops.pteHole(addr, next, walk);
    if (r !== 0) return r;
    addr = next;
  }
  return 0;
}

function walkPmdRange(start: number, end: number, walk: MmWalk): number {
  const pt = walk.mm.pgtable;
  const ops = walk.ops;
  let addr = start;
  while (addr < end) {
    const next = Math.min(end, Math.floor(addr / PMD_SIZE) * PMD_SIZE + PMD_SIZE);
    const pmd = pt.pmdGet(addr);
    if (pmd !== 0) {
      if (ops.pmdEntry) {
        const r = ops.pmdEntry(pmd, addr, next, walk);
        if (r !== 0) return r;
      } else if (ops.pteEntry) {
        const base = pmd - (pmd & 0xfff);
        const low = (pmd & 0xfff) & ~(1 << 5);
        const headOff = (Math.floor(addr / PAGE_SIZE) & 511);
        for (let a = addr, i = headOff; a < next; a += PAGE_SIZE, i++) {
          const r = ops.pteEntry(base + i * PAGE_SIZE + low, a, a + PAGE_SIZE, walk);
          if (r !== 0) return r;
        }
      }
      addr = next;
      continue;
    }
    const t = pt.pteTable(addr, false);
    if (t === null) {
      if (ops.pteHole) {
        const r = ops.pteHole(addr, next, walk);
        if (r !== 0) return r;
      }
      addr = next;
      continue;
    }
    if (ops.pteEntry) {
      for (let a = addr; a < next; a += PAGE_SIZE) {
        const r = ops.pteEntry(t[(Math.floor(a / PAGE_SIZE) & 511)]!, a, a + PAGE_SIZE, walk);
        if (r !== 0) return r;
      }
    }
    addr = next;
  }
  return 0;
}
