// Worked examples of UVMSmart's prefetchers (gpu-sim.cc gmmu_t::do_hardware_prefetch, traverse_and_fill_lp_tree).
import { describe, expect, it } from "vitest";
import { PrefetchPageMask } from "@hmmsim/policy";
import { BASIC_BLOCKS, randomPages, sequentialLocalRegion, tbnRegion, traverseAndFillLpTree } from "./uvmsmart.js";
import { blockQuery, pages } from "./testing/block-query.js";

const tbn = (o: Parameters<typeof blockQuery>[0]) => tbnRegion(blockQuery(o), new Uint8Array(BASIC_BLOCKS));

describe("TBN (-hardware_prefetch 1): 64 KiB leaves, a node more than half valid is filled", () => {
  it("a lone fault fetches its basic block only (1 of 2 is not more than half)", () => {
    expect(tbn({ page: 37 })).toEqual({ first: 32, outer: 48 });
  });

  it("3 of 4 basic blocks valid fill the node: faults in bbs 0, 1, 2 fetch [0, 64 pages)", () => {
    expect(tbn({ page: 0, faulted: [16, 32] })).toEqual({ first: 0, outer: 64 });
  });

  it("2 of 4 is exactly half: not filled; the fault's full node [0, 2) is its range", () => {
    expect(tbn({ page: 0, faulted: [16] })).toEqual({ first: 0, outer: 32 });
  });

  it("fills cascade upwards: bbs 0–2 resident + a fault in bb 4 fill [0,4), then [0,8) (5 of 8)", () => {
    const valid = new Uint8Array(BASIC_BLOCKS);
    valid.fill(1, 0, 3);
    valid[4] = 1;
    expect(traverseAndFillLpTree(valid)).toBe(8);
    expect(Array.from(valid.subarray(0, 9))).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 0]);
    expect(tbn({ page: 70, resident: pages(0, 48) })).toEqual({ first: 0, outer: 128 });
  });

  it("17 of 32 basic blocks make the whole 2 MiB large page", () => {
    expect(tbn({ page: 0, resident: pages(16, 16 * 17) })).toEqual({ first: 0, outer: 512 });
    expect(tbn({ page: 0, resident: pages(16, 16 * 16) })).toEqual({ first: 0, outer: 256 }); // 16/32: [0,16) full
  });
});

describe("sequential-local (-hardware_prefetch 2): the faulted page's 64 KiB basic block", () => {
  it("whatever the residency", () => {
    expect(sequentialLocalRegion(blockQuery({ page: 37 }))).toEqual({ first: 32, outer: 48 });
    expect(sequentialLocalRegion(blockQuery({ page: 511 }))).toEqual({ first: 496, outer: 512 });
  });
  it("clamped to the VMA", () => {
    expect(sequentialLocalRegion(blockQuery({ page: 41, vma: [40, 300] }))).toEqual({ first: 40, outer: 48 });
    expect(sequentialLocalRegion(blockQuery({ page: 290, vma: [0, 292] }))).toEqual({ first: 288, outer: 292 });
  });
});

describe("random (-hardware_prefetch 3): the faulted page plus one random 4 KiB page of the large page, as a mask", () => {
  const rand = (o: Parameters<typeof blockQuery>[0], draw: number) => {
    const m = new PrefetchPageMask();
    const q = blockQuery(o);
    m.zero(q.blockStart);
    randomPages(q, draw, m);
    return Array.from(m.pages.keys()).filter((i) => m.test(i));
  };
  it("the drawn page joins wherever it lies in the block, when neither resident nor faulted", () => {
    expect(rand({ page: 37 }, 300)).toEqual([37, 300]); // far from the fault: the case a single range could not carry
    expect(rand({ page: 37 }, 38)).toEqual([37, 38]);
    expect(rand({ page: 37 }, 0)).toEqual([0, 37]);
    expect(rand({ page: 37 }, 511)).toEqual([37, 511]);
  });
  it("otherwise the faulted page alone: drawn page resident, faulted in this batch, itself, or outside the VMA", () => {
    expect(rand({ page: 37, resident: [300] }, 300)).toEqual([37]);
    expect(rand({ page: 37, faulted: [300] }, 300)).toEqual([37]);
    expect(rand({ page: 37 }, 37)).toEqual([37]);
    expect(rand({ page: 40, vma: [40, 100] }, 39)).toEqual([40]);
    expect(rand({ page: 40, vma: [40, 100] }, 100)).toEqual([40]);
  });
});
