/**
 * The core side of mm/memremap.c, on a Kernel: register a pgmap's pfn range, zone_device_page_init, and the
 * ZONE_DEVICE predicates (include/linux/memremap.h is_device_private_page, is_device_coherent_page,
 * folio_is_zone_device, page_pgmap). @hmmsim/memremap builds memremap_pages / memunmap_pages on these.
 */
import {
  MEMORY_DEVICE_COHERENT,
  MEMORY_DEVICE_PRIVATE,
  zoneDeviceFolioInit,
  type DevPagemap,
  type PgmapRecord,
} from "./dev-pagemap.js";
import type { Kernel } from "./kernel.js";
import { ZONE_DEVICE } from "./page-flags.js";

/** Give `pgmap` nrPages device pfns (free, refcount 0) above RAM; sets pgmap.range (bytes, end inclusive). */
export function registerPgmap(k: Kernel, pgmap: DevPagemap, nrPages: number): { id: number; startPfn: number } {
  const rec = k.pgmaps.register(pgmap, nrPages);
  return { id: rec.id, startPfn: rec.startPfn };
}
/** Remove a pgmap's pfns: 0, or -EBUSY while any of its pages is in use (pgmap->ref not drained). */
export function unregisterPgmap(k: Kernel, pgmap: DevPagemap): number {
  return k.pgmaps.unregister(pgmap);
}
/** The registry record of a pgmap (startPfn, nrPages, refs), or undefined. */
export function pgmapRecord(k: Kernel, pgmap: DevPagemap): PgmapRecord | undefined {
  return k.pgmaps.record(pgmap);
}
/** zone_device_page_init(page): refcount 1, locked, pgmap ref taken. */
export function zoneDevicePageInit(k: Kernel, pfn: number): void {
  zoneDeviceFolioInit(k.store, k.pgmaps, pfn, 0);
}
/** zone_device_folio_init(folio, order). */
export function zoneDeviceFolioInitK(k: Kernel, pfn: number, order: number): void {
  zoneDeviceFolioInit(k.store, k.pgmaps, pfn, order);
}
/** page_pgmap(): the pgmap of a ZONE_DEVICE pfn, or null. */
export function pagePgmap(k: Kernel, pfn: number): DevPagemap | null {
  return k.pgmaps.pgmapOf(pfn);
}
/** folio_is_zone_device(). */
export function folioIsZoneDevice(k: Kernel, pfn: number): boolean {
  return k.store.zone(pfn) === ZONE_DEVICE;
}
/** is_device_private_page(). */
export function isDevicePrivatePage(k: Kernel, pfn: number): boolean {
  return k.store.zone(pfn) === ZONE_DEVICE && k.pgmaps.pgmapOf(pfn)?.type === MEMORY_DEVICE_PRIVATE;
}
/** is_device_coherent_page(). */
export function isDeviceCoherentPage(k: Kernel, pfn: number): boolean {
  return k.store.zone(pfn) === ZONE_DEVICE && k.pgmaps.pgmapOf(pfn)?.type === MEMORY_DEVICE_COHERENT;
}
