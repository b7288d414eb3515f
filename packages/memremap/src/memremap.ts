/**
 * memremap_pages / memunmap_pages (mm/memremap.c) on a @hmmsim/core Kernel.
 *
 * memremap_pages() validates the pgmap exactly as the kernel does (every failure is WARN + ERR_PTR(-EINVAL)),
 * then gives it struct pages in a pfn range of its own above RAM (pagemap_range: pgmap_array insert, add_pages
 * for MEMORY_DEVICE_PRIVATE — struct pages only, no linear map — or arch_add_memory for the CPU-addressable
 * types, then memmap_init_zone_device). Pages start free: refcount 0, ZONE_DEVICE, page->pgmap set.
 *
 * Return convention (the kernel's ERR_PTR / IS_ERR): memremapPages returns the first pfn of the range (>= 0) on
 * success or a negative errno; `isErrValue(ret)` tells them apart. The kernel returns __va(range.start); a pfn
 * is what a simulated driver needs (pgmap.range holds the byte range, end inclusive).
 *
 * memunmap_pages() kills pgmap->ref and waits (wait_for_completion(&pgmap->done)) until every page of the pgmap
 * is free again. The functional plane is synchronous and cannot sleep, so memunmapPages returns -EBUSY and
 * changes nothing while any page is in use (pgmap->ref not drained); the caller frees its pages and retries.
 */
import {
  EINVAL,
  EBUSY,
  InvalidArgumentError,
  KernelRuleError,
  MEMORY_DEVICE_COHERENT,
  MEMORY_DEVICE_PRIVATE,
  PAGE_SIZE,
  pgmapRecord,
  registerPgmap,
  unregisterPgmap,
  zoneDeviceFolioInitK,
  type DevPagemap,
  type Kernel,
} from "@hmmsim/core";

/** MAX_FOLIO_ORDER on x86-64 with gigantic folios (PUD_ORDER): the largest vmemmap_shift memremap_pages allows. */
export const MAX_FOLIO_ORDER = 18;

/** IS_ERR_VALUE(): a memremapPages result that is a negative errno rather than a pfn. */
export function isErrValue(ret: number): boolean {
  return ret < 0;
}

/**
 * Why memremap_pages would refuse `pgmap` (the WARN message), or null when it is acceptable. Mirrors the checks
 * at the top of memremap_pages(), in the kernel's order.
 */
export function memremapPagesCheck(pgmap: DevPagemap, nrPages: number): string | null {
  if (nrPages === 0) return "nr_range must be specified";
  if ((pgmap.vmemmapShift ?? 0) > MAX_FOLIO_ORDER) return "requested folio size unsupported";
  const ops = pgmap.ops as DevPagemap["ops"] | null | undefined;
  switch (pgmap.type) {
    case MEMORY_DEVICE_PRIVATE:
      // CONFIG_DEVICE_PRIVATE is always enabled in hmmsim.
      if (ops === null || ops === undefined || typeof ops.migrateToRam !== "function") return "Missing migrate_to_ram method";
      if (typeof ops.pageFree !== "function") return "Missing folio_free method";
      if (!pgmap.owner) return "Missing owner";
      return null;
    case MEMORY_DEVICE_COHERENT:
      // The kernel dereferences pgmap->ops here; a NULL ops table is refused like a missing folio_free.
      if (ops === null || ops === undefined || typeof ops.pageFree !== "function") return "Missing folio_free method";
      if (!pgmap.owner) return "Missing owner";
      return null;
    default:
      return null;
  }
}

/**
 * memremap_pages(pgmap, nid): give `pgmap` `nrPages` ZONE_DEVICE struct pages in a new pfn range above RAM
 * (2 MiB aligned, never reused) and set pgmap.range. Returns the first pfn, or -EINVAL (state unchanged) when:
 * nrPages == 0 (nr_range == 0); vmemmapShift > MAX_FOLIO_ORDER; MEMORY_DEVICE_PRIVATE without ops.migrateToRam,
 * ops.pageFree or owner; MEMORY_DEVICE_COHERENT without ops.pageFree or owner. `owner` is checked like a C
 * pointer: any falsy value is NULL.
 *
 * Throws InvalidArgumentError for input the C API cannot even express (pgmap not an object, nrPages not an
 * integer >= 0, a type other than MEMORY_DEVICE_PRIVATE / MEMORY_DEVICE_COHERENT — hmmsim models only those two)
 * and KernelRuleError("memremap_pages_already_mapped") for a pgmap that is already mapped (the kernel WARNs
 * "Conflicting mapping in same section").
 */
export function memremapPages(kernel: Kernel, pgmap: DevPagemap, nrPages: number): number {
  if (pgmap === null || typeof pgmap !== "object") throw new InvalidArgumentError("pgmap", "must be a DevPagemap object", pgmap);
  if (!Number.isInteger(nrPages) || nrPages < 0)
    throw new InvalidArgumentError("nrPages", "must be an integer >= 0", nrPages);
  if (pgmap.type !== MEMORY_DEVICE_PRIVATE && pgmap.type !== MEMORY_DEVICE_COHERENT)
    throw new InvalidArgumentError("pgmap.type", "must be MEMORY_DEVICE_PRIVATE or MEMORY_DEVICE_COHERENT", pgmap.type);
  if (pgmap.vmemmapShift !== undefined && (!Number.isInteger(pgmap.vmemmapShift) || pgmap.vmemmapShift < 0))
    throw new InvalidArgumentError("pgmap.vmemmapShift", "must be an integer >= 0", pgmap.vmemmapShift);
  if (pgmapRecord(kernel, pgmap) !== undefined)
    throw new KernelRuleError("memremap_pages_already_mapped", "Conflicting mapping in same section: pgmap is already mapped");
  if (memremapPagesCheck(pgmap, nrPages) !== null) return -EINVAL;
  return registerPgmap(kernel, pgmap, nrPages).startPfn;
}

/**
 * memunmap_pages(pgmap): remove the pgmap's struct pages. 0 when done; -EBUSY (nothing changed) while any page
 * is in use — the kernel would sleep until pgmap->ref drains. Unmapping a pgmap that is not mapped is a kernel
 * bug (percpu_ref_kill of a dead ref): KernelRuleError("memunmap_pages_not_mapped").
 */
export function memunmapPages(kernel: Kernel, pgmap: DevPagemap): number {
  if (pgmap === null || typeof pgmap !== "object") throw new InvalidArgumentError("pgmap", "must be a DevPagemap object", pgmap);
  const rec = pgmapRecord(kernel, pgmap);
  if (rec === undefined) throw new KernelRuleError("memunmap_pages_not_mapped", "pgmap is not mapped");
  if (rec.refs !== 0) return -EBUSY;
  return unregisterPgmap(kernel, pgmap);
}

/** The pgmap's pfn range [startPfn, startPfn + nrPages) and its in-use page count (pgmap->ref), or null. */
export function pgmapPfnRange(kernel: Kernel, pgmap: DevPagemap): { startPfn: number; nrPages: number; inUse: number } | null {
  const rec = pgmapRecord(kernel, pgmap);
  return rec === undefined ? null : { startPfn: rec.startPfn, nrPages: rec.nrPages, inUse: rec.refs };
}

/** pgmap_pfn_valid(): the pfn belongs to this (mapped) pgmap. */
export function pgmapPfnValid(kernel: Kernel, pgmap: DevPagemap, pfn: number): boolean {
  const rec = pgmapRecord(kernel, pgmap);
  return rec !== undefined && pfn >= rec.startPfn && pfn < rec.startPfn + rec.nrPages;
}

/** range_len(&pgmap->range) in bytes (end is inclusive). */
export function rangeLen(range: { start: number; end: number }): number {
  return range.end - range.start + 1;
}

/** PHYS_PFN(range.start). */
export function rangeStartPfn(range: { start: number }): number {
  return Math.floor(range.start / PAGE_SIZE);
}

/**
 * zone_device_page_init(page, pgmap, order) (mm/memremap.c, 7.x signature): a free device page (refcount 0)
 * becomes in use — refcount 1, locked, pgmap->ref taken (×2^order); order > 0 preps a compound folio. The driver
 * unlocks it after installing it (folio_unlock). Initialising a page that is in use, not a device page, or of an
 * unmapped pgmap is a kernel bug (KernelRuleError).
 */
export function zoneDevicePageInit(kernel: Kernel, pfn: number, order = 0): void {
  if (!Number.isInteger(pfn) || pfn < 0) throw new InvalidArgumentError("pfn", "must be an integer >= 0", pfn);
  if (!Number.isInteger(order) || order < 0 || order > MAX_FOLIO_ORDER)
    throw new InvalidArgumentError("order", `must be an integer in [0, ${MAX_FOLIO_ORDER}]`, order);
  zoneDeviceFolioInitK(kernel, pfn, order);
}
