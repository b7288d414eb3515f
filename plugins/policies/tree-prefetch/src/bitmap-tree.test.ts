// Worked examples of UVM's tree prefetcher (uvm_perf_prefetch.c), each computed by hand from the source: the tree
// is built from resident ∨ faulted, faults grow to their 64 KiB big page, and the highest node on the way from the
// faulted leaf to the root with counter·100 > pages·51 is the prefetch region.
import { describe, expect, it } from "vitest";
import { BLOCK_PAGES } from "@hmmsim/policy";
import {
  BitmapTree,
  bigPageRegionSubset,
  buildBitmapTree,
  computePrefetchMask,
  computePrefetchRegion,
  maxPrefetchRegion,
  uvmPrefetchRegion,
} from "./bitmap-tree.js";
import { blockQuery, pages } from "./testing/block-query.js";

const T = 51;
const region = (o: Parameters<typeof blockQuery>[0], threshold = T) => uvmPrefetchRegion(new BitmapTree(), blockQuery(o), threshold);

describe("the 51 % rule (compute_prefetch_region)", () => {
  it("262 of 512 pages resident and one fault: the root (263+ of 512 > 51 %) is taken, the whole block", () => {
    // resident 0..261; fault at 300 grows to its big page 288..303: 262 + 16 = 278 leaves set.
    // Walking up from leaf 300: [288,304) 16/16 yes, [288,320) 16/32 no, [256,320) 22/64 no, [256,384) 22/128 no,
    // [256,512) 22/256 no, root 278/512 = 54 % yes → the highest qualifying node is the root.
    expect(region({ page: 300, resident: pages(0, 262) })).toEqual({ first: 0, outer: 512 });
  });

  it("the threshold itself: 262 set leaves take the root (26,200 > 26,112), 261 do not", () => {
    // the fault's big page 496..511 is otherwise resident, so growth adds nothing: set = resident + 1
    const big = pages(496, 512).filter((i) => i !== 500);
    expect(region({ page: 500, resident: [...pages(0, 246), ...big] })).toEqual({ first: 0, outer: 512 }); // 246 + 15 + 1 = 262
    // 245 + 15 + 1 = 261: only the big page ([480,512) is 16/32, not > 51 %)
    expect(region({ page: 500, resident: [...pages(0, 245), ...big] })).toEqual({ first: 496, outer: 512 });
  });

  it("an inner node: 131 resident pages in the upper half + the fault's big page = 147/256 > 51 % → [256, 512)", () => {
    // [384,512) holds 3 + 16 = 19/128 (no), [256,512) 147/256 = 57 % (yes), root 147/512 (no)
    expect(region({ page: 500, resident: pages(256, 387) })).toEqual({ first: 256, outer: 512 });
  });

  it("the threshold is a parameter: the rule is strict, so 100 takes no node (not even a full one); 0 takes the root", () => {
    expect(region({ page: 500, resident: pages(256, 387) }, 100)).toEqual({ first: 0, outer: 0 });
    expect(region({ page: 500, resident: pages(256, 387) }, 93)).toEqual({ first: 496, outer: 512 });
    expect(region({ page: 7 }, 0)).toEqual({ first: 0, outer: 512 });
  });
});

describe("grow_fault_granularity: faults first grow to their 64 KiB big page", () => {
  it("a lone fault in an empty block prefetches its big page (16/16), nothing above it (16/32 ≤ 51 %)", () => {
    expect(region({ page: 37 })).toEqual({ first: 32, outer: 48 });
  });

  it("two faults in neighbouring big pages make [0, 32) full", () => {
    expect(region({ page: 3, faulted: [20] })).toEqual({ first: 0, outer: 32 });
  });

  it("the tree: leaves of the grown big pages are set, nothing else", () => {
    const t = new BitmapTree();
    const q = blockQuery({ page: 37, faulted: [200] });
    buildBitmapTree(t, maxPrefetchRegion(q), q);
    expect(t.weight(0, BLOCK_PAGES)).toBe(32);
    expect(t.weight(32, 48) + t.weight(192, 208)).toBe(32);
    expect([t.offset, t.leafCount, t.levelCount]).toEqual([0, 512, 10]);
  });
});

describe("VMA clamping (uvm_hmm_get_prefetch_region, big-page alignment of the tree)", () => {
  it("max_prefetch_region is the block clamped to the VMA; the big pages inside it are whole 64 KiB pages", () => {
    const q = blockQuery({ page: 41, vma: [40, 300] });
    expect(maxPrefetchRegion(q)).toEqual({ first: 40, outer: 300 });
    expect(bigPageRegionSubset({ first: 40, outer: 300 })).toEqual({ first: 48, outer: 288 });
    expect(bigPageRegionSubset({ first: 40, outer: 47 })).toEqual({ first: 0, outer: 0 });
  });

  it("a VMA starting inside a big page shifts the tree by 8 leaves: the prefix [40, 48) is the fault's 'big page'", () => {
    const t = new BitmapTree();
    const q = blockQuery({ page: 41, vma: [40, 300] });
    buildBitmapTree(t, maxPrefetchRegion(q), q);
    expect([t.offset, t.leafCount, t.levelCount]).toEqual([8, 268, 10]);
    expect(region({ page: 41, vma: [40, 300] })).toEqual({ first: 40, outer: 48 });
  });

  it("the prefetch never leaves the VMA, even when the root is taken", () => {
    const resident = pages(40, 300).filter((i) => i !== 100);
    expect(region({ page: 100, resident, vma: [40, 300] })).toEqual({ first: 40, outer: 300 });
    // a VMA ending inside the block: the suffix past the last whole big page grows as one region
    expect(region({ page: 290, vma: [0, 300] })).toEqual({ first: 288, outer: 300 });
  });
});

describe("thrashing pages are excluded (update_bitmap_tree_from_va_block, prenotify)", () => {
  it("a big page holding a thrashing page does not grow: the fault stays alone", () => {
    expect(region({ page: 37, thrashing: [40] })).toEqual({ first: 37, outer: 38 });
  });

  it("a thrashing faulted page computes no region", () => {
    expect(region({ page: 37, thrashing: [37] })).toEqual({ first: 0, outer: 0 });
  });

  it("the single range stops at a thrashing page inside the selected subregion", () => {
    // [256,512) is selected as above; page 300 thrashing: the range around the fault is [301, 512)
    expect(region({ page: 500, resident: pages(256, 387), thrashing: [300] })).toEqual({ first: 301, outer: 512 });
  });
});

describe("compute_prefetch_mask: the per-page ranges add up to UVM's mask", () => {
  it("the union over the batch's faulted pages, minus faulted and thrashing pages, equals the mask", () => {
    // deterministic pseudo-random masks (an LCG: no Math.random in tests either)
    let s = 12345;
    const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
    for (let trial = 0; trial < 200; trial++) {
      const density = next();
      const resident = pages(0, BLOCK_PAGES).filter(() => next() < density);
      const free = pages(0, BLOCK_PAGES).filter((i) => !resident.includes(i));
      const faulted = free.filter(() => next() < 0.02);
      if (faulted.length === 0) continue;
      const vma: [number, number] = next() < 0.5 ? [-1, 1000] : [Math.floor(next() * 100), 400 + Math.floor(next() * 112)];
      const inVma = faulted.filter((i) => i >= Math.max(0, vma[0]) && i < vma[1]);
      if (inVma.length === 0) continue;
      const mask = new Uint8Array(BLOCK_PAGES);
      const q0 = blockQuery({ page: inVma[0]!, resident, faulted: inVma, vma });
      const t = new BitmapTree();
      buildBitmapTree(t, maxPrefetchRegion(q0), q0);
      computePrefetchMask(t, maxPrefetchRegion(q0), q0, T, mask);
      const union = new Uint8Array(BLOCK_PAGES);
      for (const p of inVma) {
        const r = uvmPrefetchRegion(new BitmapTree(), blockQuery({ page: p, resident, faulted: inVma, vma }), T);
        union.fill(1, r.first, r.outer);
      }
      for (const p of inVma) union[p] = 0;
      expect(Array.from(union)).toEqual(Array.from(mask));
    }
  });

  it("computePrefetchRegion returns {0, 0} when no node qualifies", () => {
    const t = new BitmapTree();
    const q = blockQuery({ page: 37, thrashing: [40] });
    buildBitmapTree(t, maxPrefetchRegion(q), q);
    expect(computePrefetchRegion(37, t, maxPrefetchRegion(q), 51)).toEqual({ first: 37, outer: 38 });
    expect(computePrefetchRegion(37, t, maxPrefetchRegion(q), 100)).toEqual({ first: 0, outer: 0 });
    expect(computePrefetchRegion(100, t, maxPrefetchRegion(q), 51)).toEqual({ first: 0, outer: 0 });
  });
});
