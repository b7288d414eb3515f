import {
  EINVAL,
  HPAGE_PMD_NR,
  KernelRuleError,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  PAGE_SIZE,
  PMD_SIZE,
  PROT_READ,
  PROT_WRITE,
  createKernel,
  pmdTransHuge,
  ptePfn,
  remapPfnRange,
} from "@hmmsim/core";
import { describe, expect, it } from "vitest";
import { ACTION_AGAIN, ACTION_CONTINUE, PGWALK_WRLOCK, walkPageRange, type MmWalkOps } from "./walk-page-range.js";

function mmWith(thp: "never" | "always" = "never") {
  const k = createKernel({ ramBytes: 64 * 1024 * 1024, bytes: false, thp });
  const mm = k.createMm();
  return { k, mm };
}

type Ev = [string, number, number, number?];

/** A recording walker: addresses relative to `base`, in pages. */
function recorder(base: number, extra: Partial<MmWalkOps<Ev[]>> = {}): MmWalkOps<Ev[]> {
  const p = (a: number) => (a - base) / PAGE_SIZE;
  return {
    pteHole: (a, n, depth, walk) => (walk.private.push(["hole", p(a), p(n), depth]), 0),
    pmdEntry: (dir, i, a, n, walk) => (walk.private.push([dir.pmd[i] !== 0 ? "pmd-huge" : "pmd-table", p(a), p(n)]), 0),
    testWalk: (a, n, walk) => (walk.private.push(["vma", p(a), p(n)]), 0),
    ...extra,
  };
}

describe("walkPageRange (mm/pagewalk.c)", () => {
  it("reports gaps outside VMAs (depth -1), missing PMD tables (2), none PMDs (3), and PMDs with PTE tables", () => {
    const { mm } = mmWith();
    const a = mm.mmap({ length: 2 * PMD_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const b = mm.mmap({ addr: a + 2 * PMD_SIZE + 4 * PAGE_SIZE, length: 4 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED });
    expect(b).toBe(a + 2 * PMD_SIZE + 4 * PAGE_SIZE);
    mm.touch(a + PMD_SIZE + 3 * PAGE_SIZE, true);
    const ev: Ev[] = [];
    mm.mmapLock.tryDownRead();
    expect(walkPageRange(mm, a - PAGE_SIZE, b + 2 * PAGE_SIZE, recorder(a), ev)).toBe(0);
    mm.mmapLock.upRead();
    const gapEnd = (b - a) / PAGE_SIZE;
    expect(ev).toEqual([
      ["hole", -1, 0, -1],
      ["vma", 0, 1024],
      ["hole", 0, 512, 3],
      ["pmd-table", 512, 1024],
      ["hole", 1024, gapEnd, -1],
      ["vma", gapEnd, gapEnd + 2],
      ["hole", gapEnd, gapEnd + 2, 3],
    ]);
  });

  it("a PUD region without any PMD table is one depth-2 hole", () => {
    const { mm } = mmWith();
    const a = mm.mmap({ length: 8 * PAGE_SIZE, prot: PROT_READ, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const ev: Ev[] = [];
    mm.mmapLock.tryDownRead();
    walkPageRange(mm, a, a + 8 * PAGE_SIZE, recorder(a), ev);
    mm.mmapLock.upRead();
    expect(ev).toEqual([
      ["vma", 0, 8],
      ["hole", 0, 8, 2],
    ]);
  });

  it("hands huge PMDs to pmdEntry, and with a pteEntry splits them and visits each PTE (pte_none too)", () => {
    const { mm } = mmWith("always");
    const a = mm.mmap({ length: PMD_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.touch(a, true);
    expect(pmdTransHuge(mm.pgtable.pmdGet(a))).toBe(true);
    const ev: Ev[] = [];
    mm.mmapLock.tryDownRead();
    walkPageRange(mm, a, a + PMD_SIZE, recorder(a), ev);
    expect(ev).toEqual([
      ["vma", 0, 512],
      ["pmd-huge", 0, 512],
    ]);
    let ptes = 0;
    let present = 0;
    walkPageRange(mm, a, a + PMD_SIZE, { pteEntry: (t, i) => (ptes++, t[i] !== 0 && present++, 0) }, null);
    mm.mmapLock.upRead();
    expect(ptes).toBe(HPAGE_PMD_NR);
    expect(present).toBe(HPAGE_PMD_NR);
    expect(mm.pgtable.pmdGet(a)).toBe(0); // split_huge_pmd
  });

  it("ACTION_CONTINUE skips the PTE level; ACTION_AGAIN re-reads the PMD; nonzero callback values stop the walk", () => {
    const { mm } = mmWith();
    const a = mm.mmap({ length: 4 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.touch(a, true);
    mm.mmapLock.tryDownRead();
    let ptes = 0;
    walkPageRange(mm, a, a + 4 * PAGE_SIZE, { pmdEntry: (_d, _i, _a, _n, w) => ((w.action = ACTION_CONTINUE), 0), pteEntry: () => (ptes++, 0) }, null);
    expect(ptes).toBe(0);
    let calls = 0;
    walkPageRange(mm, a, a + 4 * PAGE_SIZE, { pmdEntry: (_d, _i, _a, _n, w) => ((w.action = ++calls < 3 ? ACTION_AGAIN : ACTION_CONTINUE), 0) }, null);
    expect(calls).toBe(3);
    let seen = 0;
    expect(walkPageRange(mm, a, a + 4 * PAGE_SIZE, { pteEntry: () => (++seen === 2 ? -42 : 0) }, null)).toBe(-42);
    expect(seen).toBe(2);
    expect(walkPageRange(mm, a, a + 4 * PAGE_SIZE, { testWalk: () => -7 }, null)).toBe(-7);
    mm.mmapLock.upRead();
  });

  it("without a testWalk a VM_PFNMAP VMA is a hole and skipped; testWalk > 0 skips a VMA", () => {
    const { mm } = mmWith();
    const io = mm.mmap({ length: 2 * PAGE_SIZE, prot: PROT_READ, flags: MAP_SHARED, deviceMmap: (v) => remapPfnRange(v, v.vmStart, 5, 2 * PAGE_SIZE) });
    const ev: Ev[] = [];
    const ops = recorder(io);
    delete ops.testWalk;
    mm.mmapLock.tryDownRead();
    walkPageRange(mm, io, io + 2 * PAGE_SIZE, ops, ev);
    expect(ev).toEqual([["hole", 0, 2, -1]]);
    let ptes = 0;
    walkPageRange(mm, io, io + 2 * PAGE_SIZE, { testWalk: () => 1, pteEntry: () => (ptes++, 0) }, null);
    expect(ptes).toBe(0);
    mm.mmapLock.upRead();
  });

  it("-EINVAL for start >= end; asserts the mmap lock (read, or write with PGWALK_WRLOCK)", () => {
    const { mm } = mmWith();
    mm.mmapLock.tryDownRead();
    expect(walkPageRange(mm, 4 * PAGE_SIZE, 4 * PAGE_SIZE, {}, null)).toBe(-EINVAL);
    expect(() => walkPageRange(mm, 0, PAGE_SIZE, { walkLock: PGWALK_WRLOCK }, null)).toThrow(KernelRuleError);
    mm.mmapLock.upRead();
    expect(() => walkPageRange(mm, 0, PAGE_SIZE, {}, null)).toThrow(KernelRuleError);
  });

  it("walks a hugetlb VMA only through hugetlbEntry: once per huge page, pteHole(-1) where no table exists", () => {
    const k = createKernel({ ramBytes: 64 * 1024 * 1024, bytes: false, hugetlbPages: 2 });
    const mm = k.createMm();
    const a = mm.mmap({ length: 2 * PMD_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB });
    expect(a % PMD_SIZE).toBe(0);
    mm.mmapLock.tryDownRead();
    // No page table yet (hugetlb_walk finds nothing): a hole per huge page, depth -1.
    const ev: Ev[] = [];
    walkPageRange(mm, a + PAGE_SIZE, a + 2 * PMD_SIZE, recorder(a, { hugetlbEntry: (_d, _i, _m, x, n, w) => (w.private.push(["huge", x, n]), 0) }), ev);
    expect(ev).toEqual([
      ["vma", 1, 2 * HPAGE_PMD_NR],
      ["hole", 1, HPAGE_PMD_NR, -1],
      ["hole", HPAGE_PMD_NR, 2 * HPAGE_PMD_NR, -1],
    ]);
    mm.mmapLock.upRead();
    mm.touch(a + PMD_SIZE + 5 * PAGE_SIZE, true);
    const head = ptePfn(mm.pgtable.pmdGet(a + PMD_SIZE));
    mm.mmapLock.tryDownRead();
    // The table exists now: every huge page gets hugetlbEntry (the untouched one with a none entry), clipped.
    const calls: [number, number, number, number][] = [];
    let other = 0;
    const r = walkPageRange(
      mm,
      a + PAGE_SIZE,
      a + PMD_SIZE + 3 * PAGE_SIZE,
      {
        hugetlbEntry: (dir, i, hmask, x, n) => (calls.push([dir.pmd[i] === 0 ? 0 : ptePfn(dir.pmd[i]!), hmask, x - a, n - a]), 0),
        pmdEntry: () => ++other,
        pteEntry: () => ++other,
        pteHole: () => ++other,
      },
      null,
    );
    expect(r).toBe(0);
    expect(other).toBe(0);
    expect(calls).toEqual([
      [0, -PMD_SIZE, PAGE_SIZE, PMD_SIZE],
      [head, -PMD_SIZE, PMD_SIZE, PMD_SIZE + 3 * PAGE_SIZE],
    ]);
    // Without a hugetlbEntry op the VMA is skipped entirely (walk_page_range), even by pteHole.
    let seen = 0;
    expect(walkPageRange(mm, a, a + 2 * PMD_SIZE, { pmdEntry: () => ++seen, pteEntry: () => ++seen, pteHole: () => ++seen }, null)).toBe(0);
    expect(seen).toBe(0);
    // A callback's nonzero value stops the walk.
    let n = 0;
    expect(walkPageRange(mm, a, a + 2 * PMD_SIZE, { hugetlbEntry: () => (++n, -5) }, null)).toBe(-5);
    expect(n).toBe(1);
    mm.mmapLock.upRead();
  });
});
