import { createKernel, folioUnlock } from "@hmmsim/core";
import { describe, expect, it } from "vitest";
import {
  MEMORY_DEVICE_COHERENT,
  MEMORY_DEVICE_PRIVATE,
  folioIsDeviceCoherent,
  folioIsDevicePrivate,
  folioIsZoneDevice,
  isDeviceCoherentPage,
  isDevicePrivatePage,
  memremapPages,
  pageOwner,
  pagePgmap,
  pfnIsCpuAddressable,
  zoneDevicePageInit,
  type DevPagemap,
} from "./index.js";

describe("ZONE_DEVICE predicates (include/linux/memremap.h)", () => {
  it("tell private, coherent and RAM pages apart, and report the owner by identity", () => {
    const k = createKernel({ ramBytes: 8 * 1024 * 1024 });
    const privOwner = { name: "gpu" };
    const cohOwner = { name: "c2c" };
    const priv: DevPagemap = { type: MEMORY_DEVICE_PRIVATE, range: { start: 0, end: -1 }, owner: privOwner, ops: { pageFree: () => {}, migrateToRam: () => 0 } };
    const coh: DevPagemap = { type: MEMORY_DEVICE_COHERENT, range: { start: 0, end: -1 }, owner: cohOwner, ops: { pageFree: () => {} } };
    const p = memremapPages(k, priv, 4);
    const c = memremapPages(k, coh, 4);
    zoneDevicePageInit(k, p);
    folioUnlock(k, p);

    expect([isDevicePrivatePage(k, p), isDeviceCoherentPage(k, p), folioIsZoneDevice(k, p)]).toEqual([true, false, true]);
    expect([isDevicePrivatePage(k, c), isDeviceCoherentPage(k, c), folioIsZoneDevice(k, c)]).toEqual([false, true, true]);
    expect([isDevicePrivatePage(k, 3), isDeviceCoherentPage(k, 3), folioIsZoneDevice(k, 3)]).toEqual([false, false, false]);
    expect(folioIsDevicePrivate(k, p + 1)).toBe(true);
    expect(folioIsDeviceCoherent(k, c + 3)).toBe(true);
    expect(folioIsDeviceCoherent(k, p)).toBe(false);

    // add_pages (private) vs arch_add_memory (coherent): only the latter is in the linear map.
    expect(pfnIsCpuAddressable(k, p)).toBe(false);
    expect(pfnIsCpuAddressable(k, c)).toBe(true);
    expect(pfnIsCpuAddressable(k, 0)).toBe(true);
    expect(pfnIsCpuAddressable(k, k.zeroPfn)).toBe(true);
    expect(pfnIsCpuAddressable(k, p + 4)).toBe(false); // no struct page

    expect(pagePgmap(k, p)).toBe(priv);
    expect(pageOwner(k, p)).toBe(privOwner);
    expect(pageOwner(k, c)).toBe(cohOwner);
    expect(pageOwner(k, c)).not.toBe(privOwner);
    expect(pageOwner(k, 0)).toBeUndefined();
  });
});
