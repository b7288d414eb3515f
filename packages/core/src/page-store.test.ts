import { describe, expect, it } from "vitest";
import { KernelRuleError } from "./errors.js";
import { PG_head, PG_tail, ZONE_DEVICE, ZONE_NONE, ZONE_NORMAL } from "./page-flags.js";
import { PAGE_STORE_BYTES_PER_PAGE, PageStore } from "./page-store.js";

function compound(s: PageStore, head: number, order: number): void {
  for (let p = head; p < head + 2 ** order; p++) {
    s.setFlagsWord(p, p === head ? PG_head : PG_tail);
    s.setOrder(p, order);
  }
}

describe("struct page store (mem_map)", () => {
  it("costs 28 bytes per page without page bytes", () => {
    expect(PAGE_STORE_BYTES_PER_PAGE).toBe(28);
    const s = new PageStore();
    s.initRange(0, 1024, ZONE_NORMAL);
    s.populate(0, 1024);
    expect(s.allocatedChunks).toBe(1);
    const empty = s.hostBytes;
    s.setTag(5, 7);
    expect(s.hostBytes).toBe(empty); // no bufSlot array until a page gets a buffer
    s.setBufSlot(5, 0);
    expect(s.hostBytes).toBe(empty);
    s.setBufSlot(5, 3);
    expect(s.bufSlot(5)).toBe(3);
    expect(s.hostBytes).toBeGreaterThan(empty);
  });

  it("page->index keeps 40-bit values in the arrays and anything else exactly", () => {
    const s = new PageStore();
    s.initRange(0, 64, ZONE_NORMAL);
    const anonAt16TiB = 2 ** 44 / 4096; // 2^32: the first index that needs the high byte
    const top = 2 ** 47 / 4096 - 1; // the last page below TASK_SIZE
    for (const [pfn, v] of [
      [1, 0],
      [2, 2 ** 32 - 1],
      [3, anonAt16TiB],
      [4, top],
      [5, 2 ** 40 + 3],
      [6, Number.MAX_SAFE_INTEGER],
    ] as const) {
      s.setIndex(pfn, v);
      expect(s.index(pfn)).toBe(v);
    }
    s.setIndex(6, 12);
    expect(s.index(6)).toBe(12);
    expect(s.index(5)).toBe(2 ** 40 + 3);
    s.clearRange(0, 64);
    expect(s.index(5)).toBe(0);
  });

  it("content tags: 32-bit integers in the array, any other number exactly", () => {
    const s = new PageStore();
    s.initRange(0, 64, ZONE_NORMAL);
    for (const [pfn, v] of [
      [1, 1],
      [2, 0xfffffffe],
      [3, 0xffffffff],
      [4, 2 ** 40],
      [5, -3],
      [6, 1.5],
    ] as const) {
      s.setTag(pfn, v);
      expect(s.tag(pfn)).toBe(v);
    }
    s.setTag(3, 9);
    expect(s.tag(3)).toBe(9);
    expect(s.info(4).tag).toBe(2 ** 40);
  });

  it("entire mapcount and pincount live on the head of a large folio", () => {
    const s = new PageStore();
    s.initRange(0, 2048, ZONE_NORMAL);
    compound(s, 512, 9);
    expect(s.entireMapcountAdd(512 + 7, 1)).toBe(1);
    expect(s.entireMapcount(512)).toBe(1);
    expect(s.entireMapcount(1023)).toBe(1);
    expect(s.entireMapcount(1024)).toBe(0);
    expect(s.pageMapcount(600)).toBe(1);
    expect(s.folioMapcount(600)).toBe(512);
    expect(s.pincountAdd(600, 2)).toBe(2);
    expect(s.pincount(512)).toBe(2);
    expect(s.pincountAdd(512, -2)).toBe(0);
    expect(() => s.pincountAdd(512, -1)).toThrow(KernelRuleError);
    expect(s.entireMapcountAdd(512, -1)).toBe(0);
    expect(() => s.entireMapcountAdd(512, -1)).toThrow(KernelRuleError);
    expect(s.folioMapped(512)).toBe(false);
  });

  it("zone and pgmap id come from the ranges, exactly at their edges", () => {
    const s = new PageStore();
    s.initRange(0, 1024, ZONE_NORMAL);
    s.initRange(1024, 1, ZONE_NORMAL); // the zero page
    s.initRange(1536, 700, ZONE_DEVICE, 1);
    s.initRange(2236, 10, ZONE_DEVICE, 2); // shares a 2 MiB section with pgmap 1
    expect(s.zone(1023)).toBe(ZONE_NORMAL);
    expect(s.zone(1024)).toBe(ZONE_NORMAL);
    expect(s.zone(1025)).toBe(ZONE_NONE);
    expect(s.pfnValid(1025)).toBe(false);
    expect(s.zone(1535)).toBe(ZONE_NONE);
    expect([s.zone(1536), s.pgmapId(1536)]).toEqual([ZONE_DEVICE, 1]);
    expect([s.zone(2235), s.pgmapId(2235)]).toEqual([ZONE_DEVICE, 1]);
    expect([s.zone(2236), s.pgmapId(2236)]).toEqual([ZONE_DEVICE, 2]);
    expect([s.zone(2246), s.pgmapId(2246)]).toEqual([ZONE_NONE, 0]);
    expect(s.pgmapId(10)).toBe(0);
    s.setTag(1600, 5);
    s.clearRange(1536, 700);
    expect([s.zone(1600), s.pgmapId(1600), s.tag(1600)]).toEqual([ZONE_NONE, 0, 0]);
    expect([s.zone(2240), s.pgmapId(2240)]).toEqual([ZONE_DEVICE, 2]);
    expect(s.zone(-1)).toBe(ZONE_NONE);
    expect(s.zone(2 ** 32 - 2)).toBe(ZONE_NONE);
  });
});

describe("zone / pgmap id lookup (the per-section shortcut agrees with the range table)", () => {
  /** The reference: the range holding pfn among the live ones, by a linear search. */
  function reference(ranges: { start: number; end: number; zone: number; id: number }[], pfn: number): [number, number] {
    const r = ranges.find((x) => pfn >= x.start && pfn < x.end);
    return r === undefined ? [ZONE_NONE, 0] : [r.zone, r.id];
  }

  it("a range ending inside the section below pfn 2^31 does not cover the rest of that section", () => {
    const s = new PageStore();
    const end = 2 ** 31 - 100;
    s.initRange(2 ** 31 - 4096, end - (2 ** 31 - 4096), ZONE_DEVICE, 1);
    expect(s.zone(end - 1)).toBe(ZONE_DEVICE);
    expect(s.zone(end + 10)).toBe(ZONE_NONE);
    expect(s.pgmapId(end + 10)).toBe(0);
    expect(s.pfnValid(end + 10)).toBe(false);
    // and above 2^31 (sections whose first pfn does not fit an int32)
    s.initRange(2 ** 31 + 512, 1000, ZONE_DEVICE, 2);
    expect([s.zone(2 ** 31 + 512), s.pgmapId(2 ** 31 + 1511), s.zone(2 ** 31 + 1512)]).toEqual([ZONE_DEVICE, 2, ZONE_NONE]);
  });

  it("random ranges (unaligned, sharing sections, removed) give the range table's answer for every pfn", () => {
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let round = 0; round < 20; round++) {
      const s = new PageStore();
      const live: { start: number; end: number; zone: number; id: number }[] = [];
      let next = rnd(2000);
      for (let i = 0; i < 8; i++) {
        const start = next;
        const nr = 1 + rnd(1500);
        const zone = rnd(2) === 0 ? ZONE_NORMAL : ZONE_DEVICE;
        s.initRange(start, nr, zone, zone === ZONE_DEVICE ? i + 1 : 0);
        live.push({ start, end: start + nr, zone, id: zone === ZONE_DEVICE ? i + 1 : 0 });
        next = start + nr + rnd(700);
      }
      // remove two of them (memunmap_pages)
      for (let j = 0; j < 2; j++) {
        const r = live.splice(rnd(live.length), 1)[0]!;
        s.clearRange(r.start, r.end - r.start);
      }
      for (let pfn = 0; pfn < next + 1024; pfn++) expect([s.zone(pfn), s.pgmapId(pfn)]).toEqual(reference(live, pfn));
    }
  });

  it("setOrder refuses orders that 1 << order cannot size", () => {
    const s = new PageStore();
    s.initRange(0, 1024, ZONE_NORMAL);
    expect(() => s.setOrder(0, 31)).toThrow(/order: must be an integer in \[0, 30\]/);
    expect(s.order(0)).toBe(0);
  });
});
