import { describe, expect, it } from "vitest";
import type { CostKind } from "./cost.js";
import { InvalidArgumentError } from "./errors.js";
import { createKernel } from "./kernel.js";
import { PAGE_SIZE, PMD_SIZE } from "./page-flags.js";
import { walkPageRange } from "./page-table.js";
import { ptePfn } from "./pgtable.js";
import { rmapWalk } from "./rmap.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, type VmAreaStruct } from "./vma.js";
import type { Mm } from "./mm.js";

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

describe("Kernel", () => {
  it("validates options", () => {
    expect(() => createKernel({ ramBytes: 3 << 20 })).toThrow(InvalidArgumentError);
    expect(() => createKernel({ ramBytes: 0 })).toThrow(/ramBytes/);
    expect(() => createKernel({ ramBytes: 2 << 20, thp: "sometimes" as never })).toThrow(/thp/);
  });

  it("charges costs to the sink and fires trace points", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const costs = new Map<CostKind, number>();
    k.charge = (kind, n) => costs.set(kind, (costs.get(kind) ?? 0) + n);
    const faults: number[] = [];
    k.tracepoints.pageFault = (_mm, addr) => faults.push(addr);
    const mm = k.createMm();
    const a = mm.mmap({ length: 2 * PAGE_SIZE, prot: RW, flags: ANON });
    mm.touch(a, true);
    const c = mm.fork();
    c.touch(a, true);
    expect(faults).toEqual([a, a]);
    expect(costs.get("cpuFault")).toBe(2);
    expect(costs.get("pageZero")).toBe(1);
    expect(costs.get("pageCopy")).toBe(1);
    expect(costs.get("pteUpdate")).toBeGreaterThanOrEqual(3);
    expect(costs.get("tlbShootdown")).toBeGreaterThanOrEqual(1);
  });

  it("mm ids are unique and mms are listed until exit", () => {
    const k = createKernel({ ramBytes: 2 << 20 });
    const m1 = k.createMm();
    const m2 = k.createMm();
    expect(m1.id).not.toBe(m2.id);
    expect([...k.mms.keys()]).toEqual([m1.id, m2.id]);
    m1.exit();
    expect([...k.mms.keys()]).toEqual([m2.id]);
  });

  it("bytes-off mode: touch keeps content tags through fork/COW with no page bytes", () => {
    const k = createKernel({ ramBytes: 16 << 20, bytes: false });
    const mm = k.createMm();
    const a = mm.mmap({ length: PAGE_SIZE, prot: RW, flags: ANON });
    mm.touch(a, true, 1234);
    const c = mm.fork();
    expect(c.readTag(a)).toBe(1234);
    c.touch(a, true, 99);
    expect(mm.readTag(a)).toBe(1234);
    expect(c.readTag(a)).toBe(99);
    expect(k.pageBytes.inUse).toBe(0);
  });
});

describe("walkPageRange and rmapWalk", () => {
  it("reports holes, PTEs and huge PMDs in order", () => {
    const k = createKernel({ ramBytes: 16 << 20, thp: "always" });
    const mm = k.createMm();
    const a = mm.mmap({ length: PMD_SIZE, prot: RW, flags: ANON });
    const b = mm.mmap({ length: 2 * PAGE_SIZE, prot: RW, flags: ANON });
    mm.touch(a, true);
    mm.touch(b + PAGE_SIZE, true);
    const seen: string[] = [];
    const r = walkPageRange(mm, a - PAGE_SIZE, b + 2 * PAGE_SIZE, {
      pteHole: (s, e, w) => (seen.push(`hole ${(s - a) / PAGE_SIZE} ${(e - a) / PAGE_SIZE} ${w.vma === null}`), 0),
      pmdEntry: (pmd, s) => (seen.push(`pmd ${(s - a) / PAGE_SIZE} ${ptePfn(pmd)}`), 0),
      pteEntry: (pte, s) => (pte !== 0 && seen.push(`pte ${(s - b) / PAGE_SIZE}`), 0),
    });
    expect(r).toBe(0);
    expect(seen[0]).toBe("hole -1 0 true");
    expect(seen[1]).toMatch(/^pmd 0 \d+$/);
    expect(seen[seen.length - 1]).toBe("pte 1");
    expect(walkPageRange(mm, b, b, {})).toBe(-22);
  });

  it("rmapWalk finds every mm mapping an anon page after fork", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const p = k.createMm();
    const a = p.mmap({ length: PAGE_SIZE, prot: RW, flags: ANON });
    p.touch(a, true);
    const c = p.fork();
    const pfn = ptePfn(p.pgtable.pteGet(a));
    const hits: number[] = [];
    rmapWalk(k, pfn, (mm, _vma, addr) => {
      if (ptePfn(mm.pgtable.pteGet(addr)) === pfn) hits.push(mm.id);
      return true;
    });
    expect(hits.sort()).toEqual([p.id, c.id].sort());
  });

  it("rmapWalk passes rwc->arg to one shared rmap_one and stops when it returns false", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const p = k.createMm();
    const a = p.mmap({ length: PAGE_SIZE, prot: RW, flags: ANON });
    p.touch(a, true);
    const c1 = p.fork();
    const c2 = p.fork();
    const pfn = ptePfn(p.pgtable.pteGet(a));
    interface Arg { pfn: number; ids: number[]; max: number }
    const rmapOne = (mm: Mm, _vma: VmAreaStruct, addr: number, arg: Arg): boolean => {
      if (ptePfn(mm.pgtable.pteGet(addr)) === arg.pfn) arg.ids.push(mm.id);
      return arg.ids.length < arg.max;
    };
    const all: Arg = { pfn, ids: [], max: 99 };
    rmapWalk(k, pfn, rmapOne, all);
    expect(all.ids.sort()).toEqual([p.id, c1.id, c2.id].sort());
    const first: Arg = { pfn, ids: [], max: 1 };
    rmapWalk(k, pfn, rmapOne, first);
    expect(first.ids).toHaveLength(1);
  });
});
