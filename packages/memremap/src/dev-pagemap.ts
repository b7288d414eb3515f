/**
 * ZONE_DEVICE page maps (include/linux/memremap.h): enum memory_type, struct dev_pagemap, struct
 * dev_pagemap_ops and the page predicates. The types and the registry live in @hmmsim/core (the page store needs
 * them); this file re-exports them and adds the predicates drivers use.
 */
import { MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_PRIVATE, ZONE_DEVICE, ZONE_NONE, pagePgmap, type Kernel } from "@hmmsim/core";

export {
  MEMORY_DEVICE_PRIVATE,
  MEMORY_DEVICE_COHERENT,
  MEMORY_DEVICE_FS_DAX,
  MEMORY_DEVICE_GENERIC,
  MEMORY_DEVICE_PCI_P2PDMA,
  isDevicePrivatePage,
  isDeviceCoherentPage,
  folioIsZoneDevice,
  pagePgmap,
  type MemoryType,
  type PhysRange,
  type DevPagemap,
  type DevPagemapOps,
} from "@hmmsim/core";

/** folio_is_device_private() (same as is_device_private_page: the folio's pgmap is MEMORY_DEVICE_PRIVATE). */
export function folioIsDevicePrivate(kernel: Kernel, pfn: number): boolean {
  return kernel.store.zone(pfn) === ZONE_DEVICE && pagePgmap(kernel, pfn)?.type === MEMORY_DEVICE_PRIVATE;
}

/** folio_is_device_coherent(). */
export function folioIsDeviceCoherent(kernel: Kernel, pfn: number): boolean {
  return kernel.store.zone(pfn) === ZONE_DEVICE && pagePgmap(kernel, pfn)?.type === MEMORY_DEVICE_COHERENT;
}

/**
 * Whether the pfn is in the kernel's linear map, i.e. CPU-addressable: RAM (and the zero page) and every
 * ZONE_DEVICE type except MEMORY_DEVICE_PRIVATE, whose memory memremap_pages adds with add_pages only (struct
 * pages, no linear map) — the CPU can never load from it, so it is never mapped by a present CPU PTE.
 */
export function pfnIsCpuAddressable(kernel: Kernel, pfn: number): boolean {
  const zone = kernel.store.zone(pfn);
  if (zone === ZONE_NONE) return false;
  if (zone !== ZONE_DEVICE) return true;
  const pgmap = pagePgmap(kernel, pfn);
  return pgmap !== null && pgmap.type !== MEMORY_DEVICE_PRIVATE;
}

/** page_pgmap(page)->owner, or undefined for a pfn with no pgmap: the identity hmm and migration compare. */
export function pageOwner(kernel: Kernel, pfn: number): unknown {
  return pagePgmap(kernel, pfn)?.owner;
}
