import { describe, expect, it } from "vitest";
import { MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_PRIVATE, type DevPagemap } from "./dev-pagemap.js";
import { EBUSY } from "./errno.js";
import { InvalidArgumentError, KernelRuleError } from "./errors.js";
import { createKernel } from "./kernel.js";
import { memcgCharge } from "./memcontrol.js";
import { isDeviceCoherentPage, isDevicePrivatePage, pagePgmap, pgmapRecord, registerPgmap, unregisterPgmap, zoneDevicePageInit } from "./memremap.js";
import { PAGE_SIZE, PG_anon, PG_anon_exclusive, PG_locked, ZONE_DEVICE, ZONE_NONE } from "./page-flags.js";
import { folioUnlock, getPage, putPage } from "./page-ref.js";

function pgmap(type: 1 | 2, freed: number[]): DevPagemap {
  return { type, range: { start: 0, end: -1 }, owner: {}, ops: { pageFree: (pfn) => freed.push(pfn), migrateToRam: () => 0 } };
}

describe("ZONE_DEVICE pages (mm/memremap.c)", () => {
  it("registers a pfn range above RAM and fills pgmap.range in bytes", () => {
    const k = createKernel({ ramBytes: 8 << 20 });
    const freed: number[] = [];
    const pm = pgmap(MEMORY_DEVICE_PRIVATE, freed);
    const { startPfn } = registerPgmap(k, pm, 1000);
    expect(startPfn).toBeGreaterThan(k.nrRamPages);
    expect(startPfn % 512).toBe(0);
    expect(pm.range).toEqual({ start: startPfn * PAGE_SIZE, end: (startPfn + 1000) * PAGE_SIZE - 1 });
    expect(k.store.zone(startPfn + 999)).toBe(ZONE_DEVICE);
    expect(k.store.refcount(startPfn)).toBe(0);
    expect(pagePgmap(k, startPfn + 5)).toBe(pm);
    expect(isDevicePrivatePage(k, startPfn)).toBe(true);
    expect(isDevicePrivatePage(k, 0)).toBe(false);
    const pm2 = pgmap(MEMORY_DEVICE_COHERENT, freed);
    const s2 = registerPgmap(k, pm2, 10).startPfn;
    expect(s2).toBeGreaterThanOrEqual(startPfn + 1000);
    expect(isDeviceCoherentPage(k, s2)).toBe(true);
  });

  it("rejects bad registrations without changing state", () => {
    const k = createKernel({ ramBytes: 8 << 20 });
    const pm = pgmap(MEMORY_DEVICE_PRIVATE, []);
    expect(() => registerPgmap(k, pm, 0)).toThrow(InvalidArgumentError);
    expect(k.pgmaps.all()).toHaveLength(0);
    registerPgmap(k, pm, 4);
    expect(() => registerPgmap(k, pm, 4)).toThrow(/already registered/);
  });

  it("zone_device_page_init: refcount 1, locked, pgmap ref; free at 0 runs free_zone_device_folio", () => {
    const k = createKernel({ ramBytes: 8 << 20 });
    const freed: number[] = [];
    const pm = pgmap(MEMORY_DEVICE_PRIVATE, freed);
    const { startPfn: p } = registerPgmap(k, pm, 16);
    zoneDevicePageInit(k, p);
    expect(k.store.refcount(p)).toBe(1);
    expect(k.store.test(p, PG_locked)).toBe(true);
    expect(pgmapRecord(k, pm)!.refs).toBe(1);
    expect(() => zoneDevicePageInit(k, p)).toThrow(KernelRuleError);
    // as migration would: anon, exclusive, charged
    k.store.set(p, PG_anon | PG_anon_exclusive);
    k.store.setMapping(p, 77);
    expect(memcgCharge(k.store, p, k.memcgs.root)).toBe(0);
    expect(k.memcgs.root.usage).toBe(1);
    folioUnlock(k, p);
    getPage(k, p);
    putPage(k, p);
    expect(freed).toEqual([]);
    putPage(k, p);
    expect(freed).toEqual([p]);
    expect(k.store.refcount(p)).toBe(0);
    expect(k.memcgs.root.usage).toBe(0);
    expect(k.store.test(p, PG_anon_exclusive)).toBe(false);
    expect(k.store.mapping(p)).toBe(0);
    expect(pgmapRecord(k, pm)!.refs).toBe(0);
    // a device page never goes to the RAM allocator
    expect(k.allocator.nrFree).toBe(k.nrRamPages);
  });

  it("unregister is -EBUSY while pages are in use, then removes the struct pages", () => {
    const k = createKernel({ ramBytes: 8 << 20 });
    const pm = pgmap(MEMORY_DEVICE_PRIVATE, []);
    const { startPfn: p } = registerPgmap(k, pm, 4);
    zoneDevicePageInit(k, p);
    expect(unregisterPgmap(k, pm)).toBe(-EBUSY);
    folioUnlock(k, p);
    putPage(k, p);
    expect(unregisterPgmap(k, pm)).toBe(0);
    expect(k.store.zone(p)).toBe(ZONE_NONE);
    expect(pagePgmap(k, p)).toBeNull();
  });

  it("a large device pgmap costs no struct-page memory until pages are used", () => {
    const k = createKernel({ ramBytes: 8 << 20 });
    const before = k.store.allocatedChunks;
    const { startPfn } = registerPgmap(k, pgmap(MEMORY_DEVICE_PRIVATE, []), 4 << 20); // 16 GiB
    expect(k.store.allocatedChunks).toBe(before);
    expect(k.store.zone(startPfn + (4 << 20) - 1)).toBe(ZONE_DEVICE);
  });
});
