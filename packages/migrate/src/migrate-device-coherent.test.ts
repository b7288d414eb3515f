import {
  EBUSY,
  FOLL_LONGTERM,
  FOLL_WRITE,
  InvalidArgumentError,
  KernelRuleError,
  MEMORY_DEVICE_COHERENT,
  PAGE_SIZE,
  allocPages,
  folioMaybeDmaPinned,
  folioTrylock,
  folioUnlock,
  getPage,
  isDeviceCoherentPage,
  pinUserPagesFast,
  ptePfn,
  ptePresent,
  pteWrite,
  putPage,
  unpinUserPages,
} from "@hmmsim/core";
import { checkInvariants } from "@hmmsim/testing";
import { afterEach, describe, expect, it } from "vitest";
import { installMigrateDeviceCoherentFolio, migrateDeviceCoherentFolio } from "./migrate-device-coherent.js";
import { TestDevice } from "./testing/test-driver.js";
import { assertTrackedInvariants, pattern, recordNotifier, setup } from "./testing/test-helpers.js";

// Every test ends with the kernel invariants checked on every kernel it created (tracked by setup / trackKernel).
afterEach(assertTrackedInvariants);

/** A kernel, an mm with `pages` written pages, all migrated to a coherent device. */
function coherent(pages = 4, ramBytes = 32 << 20) {
  const t = setup({ pages, ramBytes });
  const dev = new TestDevice(t.k, 64, MEMORY_DEVICE_COHERENT, "coherent");
  const data = Array.from({ length: pages }, (_, i) => pattern(i + 1));
  for (let i = 0; i < pages; i++) t.mm.write(t.a + i * PAGE_SIZE, data[i]!);
  expect(dev.migrateToDevice(t.mm, t.a, t.a + pages * PAGE_SIZE).ret).toBe(0);
  const pfnAt = (i: number) => ptePfn(t.mm.pgtable.pteGet(t.a + i * PAGE_SIZE));
  for (let i = 0; i < pages; i++) expect(isDeviceCoherentPage(t.k, pfnAt(i))).toBe(true);
  return { ...t, dev, data, pfnAt };
}

describe("migrateDeviceCoherentFolio (mm/migrate_device.c migrate_device_coherent_folio)", () => {
  it("moves a mapped coherent page to a new system page: same bytes, same PTE bits, caller's reference consumed", () => {
    const { k, mm, a, dev, data, pfnAt } = coherent();
    const old = pfnAt(1);
    const log = recordNotifier(mm);
    getPage(k, old); // the reference GUP converted its pin into
    expect(k.store.refcount(old)).toBe(2);
    expect(migrateDeviceCoherentFolio(k, old)).toBe(0);
    const now = pfnAt(1);
    expect(isDeviceCoherentPage(k, now)).toBe(false);
    const pte = mm.pgtable.pteGet(a + PAGE_SIZE);
    expect(ptePresent(pte)).toBe(true);
    expect(pteWrite(pte)).toBe(true);
    expect(k.store.refcount(now)).toBe(1); // only the mapping's
    expect(mm.read(a + PAGE_SIZE, PAGE_SIZE)).toEqual(data[1]);
    // the coherent page went back to the device through folio_free
    expect(dev.freed).toEqual([old]);
    expect(k.store.refcount(old)).toBe(0);
    // unmapped from the mm through a notifier (try_to_migrate)
    expect(log.some((e) => e.start <= a + PAGE_SIZE && e.end >= a + 2 * PAGE_SIZE)).toBe(true);
    // the other pages did not move
    for (const i of [0, 2, 3]) expect(isDeviceCoherentPage(k, pfnAt(i))).toBe(true);
    expect(checkInvariants(k)).toEqual([]);
  });

  it("installed in kernel.migrateDeviceCoherentFolio: a FOLL_LONGTERM pin migrates then pins the system page", () => {
    const { k, mm, a, data, pfnAt } = coherent();
    installMigrateDeviceCoherentFolio(k);
    const pages: number[] = [];
    expect(pinUserPagesFast(mm, a + 2 * PAGE_SIZE, 2, FOLL_WRITE | FOLL_LONGTERM, pages)).toBe(2);
    expect(pages).toEqual([pfnAt(2), pfnAt(3)]);
    for (const p of pages) {
      expect(isDeviceCoherentPage(k, p)).toBe(false);
      expect(folioMaybeDmaPinned(k, p)).toBe(true);
    }
    unpinUserPages(k, pages);
    expect(mm.read(a + 2 * PAGE_SIZE, 2 * PAGE_SIZE)).toEqual(new Uint8Array([...data[2]!, ...data[3]!]));
    // without FOLL_LONGTERM nothing moves
    const p0: number[] = [];
    expect(pinUserPagesFast(mm, a, 1, FOLL_WRITE, p0)).toBe(1);
    expect(isDeviceCoherentPage(k, p0[0]!)).toBe(true);
    unpinUserPages(k, p0);
    expect(checkInvariants(k)).toEqual([]);
  });

  it("-EBUSY, page left in place, when it is pinned, locked by someone else, or no system page can be allocated", () => {
    const { k, mm, a, data, pfnAt } = coherent(3, 4 << 20);
    // 1. pinned (a non-longterm pin keeps it on the device): the unmap restores it.
    const pin: number[] = [];
    expect(pinUserPagesFast(mm, a, 1, FOLL_WRITE, pin)).toBe(1);
    const p0 = pin[0]!;
    const refs0 = k.store.refcount(p0);
    getPage(k, p0);
    expect(migrateDeviceCoherentFolio(k, p0)).toBe(-EBUSY);
    expect(pfnAt(0)).toBe(p0);
    expect(k.store.refcount(p0)).toBe(refs0);
    unpinUserPages(k, pin);
    // 2. locked: folio_lock would sleep; the functional plane reports -EBUSY.
    const p1 = pfnAt(1);
    expect(folioTrylock(k, p1)).toBe(true);
    const refs1 = k.store.refcount(p1);
    getPage(k, p1);
    expect(migrateDeviceCoherentFolio(k, p1)).toBe(-EBUSY);
    expect(k.store.refcount(p1)).toBe(refs1);
    folioUnlock(k, p1);
    // 3. out of RAM: migrate_device_pages leaves it, finalize maps the old page back.
    const hog: number[] = [];
    for (let p = allocPages(k, 0); p >= 0; p = allocPages(k, 0)) hog.push(p);
    const p2 = pfnAt(2);
    getPage(k, p2);
    expect(migrateDeviceCoherentFolio(k, p2)).toBe(-EBUSY);
    expect(pfnAt(2)).toBe(p2);
    expect(k.store.refcount(p2)).toBe(1);
    for (const p of hog) putPage(k, p);
    for (let i = 0; i < 3; i++) expect(mm.read(a + i * PAGE_SIZE, PAGE_SIZE)).toEqual(data[i]);
    // and with memory back it works
    getPage(k, p2);
    expect(migrateDeviceCoherentFolio(k, p2)).toBe(0);
    expect(isDeviceCoherentPage(k, pfnAt(2))).toBe(false);
    expect(checkInvariants(k)).toEqual([]);
  });

  it("misuse: no caller reference or a non-coherent page is rejected and changes nothing", () => {
    const { k, mm, a, pfnAt } = coherent(1);
    const p = pfnAt(0);
    // The caller must hold a reference (a free page has none).
    expect(() => migrateDeviceCoherentFolio(k, allocFreePfn(k))).toThrow(KernelRuleError);
    const ram = allocPages(k, 0);
    expect(() => migrateDeviceCoherentFolio(k, ram)).toThrow(InvalidArgumentError);
    putPage(k, ram);
    expect(() => migrateDeviceCoherentFolio(k, 1.5)).toThrow(InvalidArgumentError);
    expect(pfnAt(0)).toBe(p);
    expect(k.store.refcount(p)).toBe(1);
    expect(mm.readU32(a)).toBe(new DataView(pattern(1).buffer).getUint32(0, true));
  });
});

/** A free RAM pfn (refcount 0). */
function allocFreePfn(k: ReturnType<typeof setup>["k"]): number {
  const p = allocPages(k, 0);
  putPage(k, p);
  return p;
}
