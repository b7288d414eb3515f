import {
  EBUSY,
  EINVAL,
  InvalidArgumentError,
  KernelRuleError,
  PAGE_SIZE,
  PG_locked,
  ZONE_DEVICE,
  createKernel,
  folioTestLocked,
  folioUnlock,
  getPage,
  putPage,
  type Kernel,
} from "@hmmsim/core";
import { describe, expect, it } from "vitest";
import {
  MEMORY_DEVICE_COHERENT,
  MEMORY_DEVICE_PRIVATE,
  MEMORY_DEVICE_FS_DAX,
  isErrValue,
  memremapPages,
  memremapPagesCheck,
  memunmapPages,
  pgmapPfnRange,
  pgmapPfnValid,
  rangeLen,
  rangeStartPfn,
  zoneDevicePageInit,
  type DevPagemap,
} from "./index.js";

const RAM = 16 * 1024 * 1024;

function privatePgmap(freed: number[] = [], owner: unknown = { dev: "gpu0" }): DevPagemap {
  return {
    type: MEMORY_DEVICE_PRIVATE,
    range: { start: 0, end: -1 },
    owner,
    ops: { pageFree: (pfn) => freed.push(pfn), migrateToRam: () => 0 },
  };
}
function coherentPgmap(freed: number[] = []): DevPagemap {
  return { type: MEMORY_DEVICE_COHERENT, range: { start: 0, end: -1 }, owner: { dev: "c2c" }, ops: { pageFree: (pfn) => freed.push(pfn) } };
}

/** Everything memremap_pages could change. */
function snapshot(k: Kernel, pgmap: DevPagemap) {
  return {
    range: { ...pgmap.range },
    nextPfn: k.pgmaps.nextPfn,
    pgmaps: k.pgmaps.all().length,
    maxPfn: k.store.maxPfn,
    record: pgmapPfnRange(k, pgmap),
  };
}

describe("memremapPages validation (mm/memremap.c memremap_pages)", () => {
  const cases: [string, () => DevPagemap, number][] = [
    ["nr_range == 0", () => privatePgmap(), 0],
    ["vmemmap_shift > MAX_FOLIO_ORDER", () => ({ ...privatePgmap(), vmemmapShift: 19 }), 512],
    ["PRIVATE without migrate_to_ram", () => ({ ...privatePgmap(), ops: { pageFree: () => {} } }), 512],
    ["PRIVATE without folio_free", () => ({ ...privatePgmap(), ops: { migrateToRam: () => 0 } as never }), 512],
    ["PRIVATE without ops", () => ({ ...privatePgmap(), ops: null as never }), 512],
    ["PRIVATE without owner", () => privatePgmap([], null), 512],
    ["PRIVATE with undefined owner", () => ({ ...privatePgmap(), owner: undefined }), 512],
    ["COHERENT without folio_free", () => ({ ...coherentPgmap(), ops: {} as never }), 512],
    ["COHERENT without ops", () => ({ ...coherentPgmap(), ops: undefined as never }), 512],
    ["COHERENT without owner", () => ({ ...coherentPgmap(), owner: null }), 512],
  ];
  for (const [name, make, nr] of cases) {
    it(`-EINVAL and no state change: ${name}`, () => {
      const k = createKernel({ ramBytes: RAM });
      const pgmap = make();
      const before = snapshot(k, pgmap);
      expect(memremapPagesCheck(pgmap, nr)).not.toBeNull();
      const ret = memremapPages(k, pgmap, nr);
      expect(ret).toBe(-EINVAL);
      expect(isErrValue(ret)).toBe(true);
      expect(snapshot(k, pgmap)).toEqual(before);
      expect(before.record).toBeNull();
      // The next valid pgmap gets the range the failed one would have had.
      const good = privatePgmap();
      const fresh = createKernel({ ramBytes: RAM });
      expect(memremapPages(k, good, 512)).toBe(memremapPages(fresh, privatePgmap(), 512));
    });
  }

  it("coherent memory does not need migrate_to_ram; private needs all three", () => {
    expect(memremapPagesCheck(coherentPgmap(), 1)).toBeNull();
    expect(memremapPagesCheck(privatePgmap(), 1)).toBeNull();
    expect(memremapPagesCheck({ ...privatePgmap(), ops: { pageFree: () => {} } }, 1)).toBe("Missing migrate_to_ram method");
    expect(memremapPagesCheck(privatePgmap([], 0), 1)).toBe("Missing owner");
  });

  it("bad input the C API cannot express throws a typed error naming the field", () => {
    const k = createKernel({ ramBytes: RAM });
    expect(() => memremapPages(k, privatePgmap(), -1)).toThrow(InvalidArgumentError);
    expect(() => memremapPages(k, privatePgmap(), 1.5)).toThrow(/nrPages/);
    expect(() => memremapPages(k, { ...privatePgmap(), type: MEMORY_DEVICE_FS_DAX }, 512)).toThrow(/pgmap.type/);
    expect(() => memremapPages(k, null as never, 512)).toThrow(/pgmap/);
    expect(k.pgmaps.all()).toHaveLength(0);
  });

  it("mapping the same pgmap twice is a kernel rule violation", () => {
    const k = createKernel({ ramBytes: RAM });
    const pgmap = privatePgmap();
    expect(memremapPages(k, pgmap, 512)).toBeGreaterThan(0);
    const before = snapshot(k, pgmap);
    expect(() => memremapPages(k, pgmap, 512)).toThrow(KernelRuleError);
    expect(snapshot(k, pgmap)).toEqual(before);
  });
});

describe("device pfn ranges", () => {
  it("are distinct, 2 MiB aligned, above RAM and the zero page, and set pgmap.range (bytes, end inclusive)", () => {
    const k = createKernel({ ramBytes: RAM });
    const a = privatePgmap();
    const b = coherentPgmap();
    const c = privatePgmap();
    const sa = memremapPages(k, a, 100);
    const sb = memremapPages(k, b, 512);
    const sc = memremapPages(k, c, 1);
    for (const s of [sa, sb, sc]) {
      expect(s).toBeGreaterThan(k.zeroPfn);
      expect(s % 512).toBe(0);
    }
    expect(sb).toBeGreaterThanOrEqual(sa + 100);
    expect(sc).toBeGreaterThanOrEqual(sb + 512);
    expect(a.range).toEqual({ start: sa * PAGE_SIZE, end: (sa + 100) * PAGE_SIZE - 1 });
    expect(rangeLen(a.range)).toBe(100 * PAGE_SIZE);
    expect(rangeStartPfn(b.range)).toBe(sb);
    expect(pgmapPfnRange(k, a)).toEqual({ startPfn: sa, nrPages: 100, inUse: 0 });
    expect(pgmapPfnValid(k, a, sa + 99)).toBe(true);
    expect(pgmapPfnValid(k, a, sa + 100)).toBe(false);
    expect(pgmapPfnValid(k, b, sa)).toBe(false);
  });

  it("start free: ZONE_DEVICE, refcount 0, unlocked, owned by their pgmap; RAM is untouched", () => {
    const k = createKernel({ ramBytes: RAM });
    const pgmap = privatePgmap();
    const start = memremapPages(k, pgmap, 600);
    for (const pfn of [start, start + 1, start + 599]) {
      expect(k.store.pfnValid(pfn)).toBe(true);
      expect(k.store.zone(pfn)).toBe(ZONE_DEVICE);
      expect(k.store.refcount(pfn)).toBe(0);
      expect(k.store.test(pfn, PG_locked)).toBe(false);
      expect(k.pgmaps.pgmapOf(pfn)).toBe(pgmap);
    }
    expect(k.store.pfnValid(start + 600)).toBe(false);
    expect(k.allocator.nrFree).toBe(k.nrRamPages);
  });
});

describe("zoneDevicePageInit and freeing (free_zone_device_folio)", () => {
  it("init → refcount 1, locked, pgmap ref taken; putPage to 0 calls pageFree exactly once with the pfn", () => {
    const k = createKernel({ ramBytes: RAM });
    const freed: number[] = [];
    const pgmap = privatePgmap(freed);
    const start = memremapPages(k, pgmap, 512);
    const pfn = start + 7;
    zoneDevicePageInit(k, pfn);
    expect(k.store.refcount(pfn)).toBe(1);
    expect(folioTestLocked(k, pfn)).toBe(true);
    expect(pgmapPfnRange(k, pgmap)!.inUse).toBe(1);
    folioUnlock(k, pfn);
    getPage(k, pfn);
    putPage(k, pfn);
    expect(freed).toEqual([]);
    putPage(k, pfn);
    expect(freed).toEqual([pfn]);
    expect(k.store.refcount(pfn)).toBe(0);
    expect(pgmapPfnRange(k, pgmap)!.inUse).toBe(0);
    // A freed page can be handed out again.
    zoneDevicePageInit(k, pfn);
    expect(k.store.refcount(pfn)).toBe(1);
    folioUnlock(k, pfn);
    putPage(k, pfn);
    expect(freed).toEqual([pfn, pfn]);
    expect(() => putPage(k, pfn)).toThrow(KernelRuleError);
  });

  it("a coherent page is freed the same way", () => {
    const k = createKernel({ ramBytes: RAM });
    const freed: number[] = [];
    const pgmap = coherentPgmap(freed);
    const start = memremapPages(k, pgmap, 16);
    zoneDevicePageInit(k, start + 3);
    folioUnlock(k, start + 3);
    putPage(k, start + 3);
    expect(freed).toEqual([start + 3]);
  });

  it("an order-9 folio takes 512 pgmap refs and is freed once, by its head", () => {
    const k = createKernel({ ramBytes: RAM });
    const freed: number[] = [];
    const pgmap = privatePgmap(freed);
    const start = memremapPages(k, pgmap, 1024);
    zoneDevicePageInit(k, start + 512, 9);
    expect(pgmapPfnRange(k, pgmap)!.inUse).toBe(512);
    expect(k.store.refcount(start + 700)).toBe(1);
    folioUnlock(k, start + 512);
    putPage(k, start + 600);
    expect(freed).toEqual([start + 512]);
    expect(pgmapPfnRange(k, pgmap)!.inUse).toBe(0);
  });

  it("initialising a page in use, a RAM page or an unaligned folio is a kernel bug", () => {
    const k = createKernel({ ramBytes: RAM });
    const start = memremapPages(k, privatePgmap(), 1024);
    zoneDevicePageInit(k, start);
    expect(() => zoneDevicePageInit(k, start)).toThrow(KernelRuleError);
    expect(() => zoneDevicePageInit(k, 5)).toThrow(KernelRuleError);
    expect(() => zoneDevicePageInit(k, start + 1, 9)).toThrow(KernelRuleError);
    expect(() => zoneDevicePageInit(k, start, -1)).toThrow(InvalidArgumentError);
  });
});

describe("memunmapPages", () => {
  it("refuses with -EBUSY while a page is in use (the kernel waits for pgmap->ref), then removes the pages", () => {
    const k = createKernel({ ramBytes: RAM });
    const freed: number[] = [];
    const pgmap = privatePgmap(freed);
    const start = memremapPages(k, pgmap, 512);
    zoneDevicePageInit(k, start + 1);
    folioUnlock(k, start + 1);
    const before = snapshot(k, pgmap);
    expect(memunmapPages(k, pgmap)).toBe(-EBUSY);
    expect(snapshot(k, pgmap)).toEqual(before);
    expect(k.store.refcount(start + 1)).toBe(1);
    putPage(k, start + 1);
    expect(memunmapPages(k, pgmap)).toBe(0);
    expect(pgmapPfnRange(k, pgmap)).toBeNull();
    expect(k.store.pfnValid(start + 1)).toBe(false);
    expect(k.pgmaps.pgmapOf(start + 1)).toBeNull();
    // Drivers must not allocate pages after memunmap_pages; unmapping twice is a bug.
    expect(() => zoneDevicePageInit(k, start + 2)).toThrow(KernelRuleError);
    expect(() => memunmapPages(k, pgmap)).toThrow(KernelRuleError);
    // The pgmap can be mapped again; device ranges are never reused.
    const again = memremapPages(k, pgmap, 512);
    expect(again).toBeGreaterThanOrEqual(start + 512);
  });
});
