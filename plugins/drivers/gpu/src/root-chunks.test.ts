import { describe, expect, it } from "vitest";
import { RootChunks } from "./root-chunks.js";

const lru = (c: RootChunks) => {
  const out: number[] = [];
  for (let x = c.first(); x !== -1; x = c.nextOf(x)) out.push(x);
  return out;
};

describe("RootChunks (uvm_pmm_gpu.c root chunks: free stack, LRU used list, in-use bitmap)", () => {
  it("allocates 0, 1, 2 … at the LRU tail with their stamps, -1 when none is free", () => {
    const c = new RootChunks(3);
    expect([c.alloc(10, 100), c.alloc(11, 200), c.alloc(12, 300)]).toEqual([0, 1, 2]);
    expect(c.alloc(13, 400)).toBe(-1);
    expect(lru(c)).toEqual([0, 1, 2]);
    expect([c.block[1], c.stamp[1], c.allocStamp[1]]).toEqual([11, 200, 200]);
    expect([c.freeChunks, c.usedChunks]).toEqual([0, 3]);
  });

  it("touch moves a chunk to the tail (chunk_update_lists_locked) without changing its allocation time", () => {
    const c = new RootChunks(3);
    for (let i = 0; i < 3; i++) c.alloc(i, i);
    c.touch(0, 50);
    expect(lru(c)).toEqual([1, 2, 0]);
    expect([c.stamp[0], c.allocStamp[0]]).toEqual([50, 0]);
    c.touch(2, 60);
    expect(lru(c)).toEqual([1, 0, 2]);
  });

  it("release unlinks, unpins and pushes the chunk back: it is the next one allocated", () => {
    const c = new RootChunks(3);
    for (let i = 0; i < 3; i++) c.alloc(i, i);
    c.pinned[1] = 1;
    c.release(1);
    expect(lru(c)).toEqual([0, 2]);
    expect([c.block[1], c.pinned[1], c.freeChunks]).toEqual([-1, 0, 1]);
    expect(c.alloc(9, 9)).toBe(1);
    expect(lru(c)).toEqual([0, 2, 1]);
  });

  it("the in-use bitmap counts per chunk and in total; double set / clear are reported", () => {
    const c = new RootChunks(2);
    c.alloc(0, 0);
    expect(c.setPageUsed(0, 0)).toBe(true);
    expect(c.setPageUsed(0, 511)).toBe(true);
    expect(c.setPageUsed(0, 511)).toBe(false);
    expect([c.isPageUsed(0, 511), c.isPageUsed(0, 510), c.isPageUsed(1, 511)]).toEqual([true, false, false]);
    expect([c.used[0], c.usedPages]).toEqual([2, 2]);
    expect(c.clearPageUsed(0, 511)).toBe(1);
    expect(c.clearPageUsed(0, 511)).toBe(-1);
    expect(c.clearPageUsed(0, 0)).toBe(0);
    expect(c.usedPages).toBe(0);
  });
});
