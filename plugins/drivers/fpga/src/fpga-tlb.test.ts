import { describe, expect, it } from "vitest";
import { FpgaTlb, tlbTag2m, tlbTag4k } from "./fpga-tlb.js";
import { defaultSpec } from "./fpga-spec.js";

describe("FpgaTlb (the shell's 4 KiB and 2 MiB TLBs, filled by the driver)", () => {
  it("has Coyote's default geometry: 1024 × 4 KiB entries in 4 ways, 512 × 2 MiB entries in 2 ways", () => {
    const s = new FpgaTlb("stlb", defaultSpec.tlbSmallEntries, defaultSpec.tlbSmallWays);
    const l = new FpgaTlb("ltlb", defaultSpec.tlbLargeEntries, defaultSpec.tlbLargeWays);
    expect([s.entries, s.ways, s.sets]).toEqual([1024, 4, 256]);
    expect([l.entries, l.ways, l.sets]).toEqual([512, 2, 256]);
    // Reach: 4 MiB of 4 KiB pages, 1 GiB of 2 MiB pages.
    expect(s.entries * 4096).toBe(4 * 2 ** 20);
    expect(l.entries * 2 ** 21).toBe(2 ** 30);
  });

  it("misses until the driver fills an entry; a hit refreshes LRU; invalidate removes it", () => {
    const t = new FpgaTlb("t", 8, 2);
    const tag = tlbTag4k(0, 1234);
    expect(t.lookup(tag)).toBe(false);
    t.insert(tag);
    expect(t.lookup(tag)).toBe(true);
    expect([t.hits, t.misses, t.fills]).toEqual([1, 1, 1]);
    expect(t.invalidate(tag)).toBe(true);
    expect(t.invalidate(tag)).toBe(false);
    expect(t.lookup(tag)).toBe(false);
  });

  it("a full set replaces its least recently used way (conflict misses beyond the ways)", () => {
    const t = new FpgaTlb("t", 8, 2); // 4 sets
    const a = tlbTag4k(0, 0);
    const b = tlbTag4k(0, 4); // same set (tag mod 4)
    const c = tlbTag4k(0, 8);
    t.insert(a);
    t.insert(b);
    expect(t.lookup(a)).toBe(true); // b is now the LRU way
    t.insert(c);
    expect(t.replacements).toBe(1);
    expect(t.contains(a)).toBe(true);
    expect(t.contains(b)).toBe(false);
    expect(t.contains(c)).toBe(true);
    expect(t.valid).toBe(2);
  });

  it("4 KiB and 2 MiB tags of different VA spaces never collide", () => {
    expect(tlbTag4k(1, 0)).not.toBe(tlbTag4k(0, 0));
    expect(tlbTag2m(1, 0)).not.toBe(tlbTag2m(0, 0));
    expect(tlbTag4k(0, 2 ** 35 - 1)).toBeLessThan(tlbTag4k(1, 0));
  });

  it("rejects a geometry whose ways do not divide the entries", () => {
    expect(() => new FpgaTlb("t", 10, 4)).toThrow(RangeError);
  });
});
