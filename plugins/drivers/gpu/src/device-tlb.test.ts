import { describe, expect, it } from "vitest";
import { DeviceTlb, tlbTag2m, tlbTag4k } from "./device-tlb.js";

describe("DeviceTlb (set-associative, LRU per set; a timing model)", () => {
  it("4 KiB and 2 MiB tags of one space never collide, and spaces are distinct", () => {
    expect(tlbTag4k(0, 512)).not.toBe(tlbTag2m(0, 512));
    expect(tlbTag4k(0, 7)).not.toBe(tlbTag4k(1, 7));
    const top = 2 ** 35 - 1; // the last VPN of a 47-bit VA space
    expect(Number.isSafeInteger(tlbTag2m(62, top - 511))).toBe(true);
  });

  it("lookup misses until insert, hits after; counts hits and misses; invalidate drops one tag", () => {
    const t = new DeviceTlb(16, 4);
    const a = tlbTag4k(0, 1);
    expect(t.lookup(a)).toBe(false);
    t.insert(a);
    expect(t.lookup(a)).toBe(true);
    expect(t.contains(a)).toBe(true);
    expect([t.hits, t.misses]).toEqual([1, 1]);
    t.invalidate(a);
    expect(t.contains(a)).toBe(false);
    expect(t.lookup(a)).toBe(false);
    expect(t.misses).toBe(2);
  });

  it("a full set replaces its least recently used way; a hit refreshes recency", () => {
    const t = new DeviceTlb(4, 4); // one set of 4 ways: fully associative
    const tags = [0, 1, 2, 3].map((v) => tlbTag4k(0, v));
    for (const x of tags) t.insert(x);
    t.lookup(tags[0]!); // 1 is now the LRU way
    t.insert(tlbTag4k(0, 9));
    expect(tags.map((x) => t.contains(x))).toEqual([true, false, true, true]);
    expect(t.contains(tlbTag4k(0, 9))).toBe(true);
  });

  it("inserting a cached tag does not duplicate it; flushAll empties and counts", () => {
    const t = new DeviceTlb(4, 4);
    const a = tlbTag2m(0, 512);
    t.insert(a);
    t.insert(a);
    t.invalidate(a);
    expect(t.contains(a)).toBe(false); // only one copy was there
    t.insert(a);
    t.flushAll();
    expect([t.contains(a), t.flushes]).toEqual([false, 1]);
  });
});
