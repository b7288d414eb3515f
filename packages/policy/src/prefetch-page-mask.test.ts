import { describe, expect, it } from "vitest";
import { BLOCK_PAGES, BLOCK_SIZE } from "./fault-query.js";
import { PrefetchMaskError, PrefetchPageMask } from "./prefetch-page-mask.js";

const BLOCK = 8 * BLOCK_SIZE;

describe("PrefetchPageMask (uvm_perf_prefetch_hint_t.prefetch_pages_mask)", () => {
  it("setPage / set / setRegion set pages anywhere in the block; weight and the span follow", () => {
    const m = new PrefetchPageMask();
    m.zero(BLOCK);
    expect([m.weight, m.first, m.outer]).toEqual([0, BLOCK_PAGES, 0]);
    m.setPage(BLOCK + 37 * 4096 + 123); // any address inside page 37
    m.set(300);
    m.set(300); // twice: counted once
    m.setRegion(510, 512);
    expect([m.weight, m.first, m.outer]).toEqual([4, 37, 512]);
    expect([m.test(37), m.test(38), m.test(300), m.test(511), m.test(-1), m.test(512)]).toEqual([true, false, true, true, false, false]);
    expect(Array.from(m.pages.subarray(36, 39))).toEqual([0, 1, 0]);
    m.clear(300);
    m.clear(301); // not set: nothing
    expect([m.weight, m.test(300)]).toEqual([3, false]);
  });

  it("zero empties the mask (its span only) and moves it to the next fault's block", () => {
    const m = new PrefetchPageMask();
    m.zero(BLOCK);
    m.set(5);
    m.set(400);
    m.zero(BLOCK + BLOCK_SIZE);
    expect(m.pages.every((p) => p === 0)).toBe(true);
    expect([m.blockStart, m.weight, m.first, m.outer]).toEqual([BLOCK + BLOCK_SIZE, 0, BLOCK_PAGES, 0]);
    m.setPage(BLOCK + BLOCK_SIZE);
    expect(m.first).toBe(0);
  });

  it("a page the mask cannot hold is a PrefetchMaskError naming the field and the rule", () => {
    const m = new PrefetchPageMask();
    m.zero(BLOCK);
    const err = (f: () => void) => {
      try {
        f();
      } catch (e) {
        return e as PrefetchMaskError;
      }
      throw new Error("no error");
    };
    const a = err(() => m.setPage(BLOCK + BLOCK_SIZE));
    expect(a).toBeInstanceOf(PrefetchMaskError);
    expect(a).toBeInstanceOf(RangeError);
    expect(a).toMatchObject({ name: "PrefetchMaskError", field: "address", value: BLOCK + BLOCK_SIZE });
    expect(a.message).toBe("prefetchPages: address must lie in the fault's 2 MiB VA block [0x1000000, 0x1200000) (got 0x1200000)");
    expect(err(() => m.setPage(BLOCK - 1)).field).toBe("address");
    expect(err(() => m.setPage(Number.NaN)).field).toBe("address");
    expect(err(() => m.set(512)).message).toBe("prefetchPages: pageIndex must be an integer 0..511 (a page of the 2 MiB VA block) (got 512)");
    expect(err(() => m.set(1.5)).field).toBe("pageIndex");
    expect(err(() => m.clear(-1)).field).toBe("pageIndex");
    expect(err(() => m.setRegion(-1, 3)).field).toBe("first");
    expect(err(() => m.setRegion(4, 3)).field).toBe("outer");
    expect(err(() => m.setRegion(0, 513)).field).toBe("outer");
    expect([m.weight, m.outer]).toEqual([0, 0]); // nothing half-set
    m.setRegion(3, 3); // empty region: fine
    expect(m.weight).toBe(0);
  });
});
