/**
 * ZONE_DEVICE page maps: enum memory_type, struct dev_pagemap, struct dev_pagemap_ops (include/linux/memremap.h)
 * and the registry of pgmap pfn ranges that mm/memremap.c keeps (pgmap_array). Validation and the
 * memremap_pages / memunmap_pages API live in @hmmsim/memremap on top of registerPgmap / unregisterPgmap.
 *
 * Device pfns get their own physical range above RAM, aligned to 2 MiB (512 pfns), as the kernel places
 * device-private memory in a free physical region (request_free_mem_region).
 */
import { InvalidArgumentError, KernelRuleError } from "./errors.js";
import { HPAGE_PMD_NR, PAGE_SIZE, PG_head, PG_locked, PG_tail, ZONE_DEVICE, alignUp } from "./page-flags.js";
import { PAGE_SLOT_MASK, type PageStore } from "./page-store.js";
import type { VmFault } from "./vm-fault.js";

/** enum memory_type. */
export const MEMORY_DEVICE_PRIVATE = 1;
export const MEMORY_DEVICE_COHERENT = 2;
export const MEMORY_DEVICE_FS_DAX = 3;
export const MEMORY_DEVICE_GENERIC = 4;
export const MEMORY_DEVICE_PCI_P2PDMA = 5;
export type MemoryType = 1 | 2 | 3 | 4 | 5;

/** struct range: physical **byte** addresses, `end` inclusive (range_len = end - start + 1), as in the kernel. */
export interface PhysRange {
  start: number;
  end: number;
}

/** struct dev_pagemap_ops. */
export interface DevPagemapOps {
  /** folio_free (formerly page_free): the folio's refcount reached 0. `pfn` is the head pfn. */
  pageFree(pfn: number): void;
  /** migrate_to_ram (MEMORY_DEVICE_PRIVATE only): returns VM_FAULT_* bits (0 on success). */
  migrateToRam?(vmf: VmFault): number;
  /** memory_failure: 0 or -errno (-EOPNOTSUPP falls back to the generic handler). */
  memoryFailure?(pgmap: DevPagemap, pfn: number, nrPages: number, flags: number): number;
  /** folio_split: a device THP was split; fix per-page driver data. */
  folioSplit?(headPfn: number, tailPfn: number): void;
}

/** struct dev_pagemap. */
export interface DevPagemap {
  type: MemoryType;
  /** Filled by registerPgmap when empty. */
  range: PhysRange;
  /** Opaque owner, compared by identity (===). */
  owner: unknown;
  ops: DevPagemapOps;
  vmemmapShift?: number;
  flags?: number;
}

/** One registered pgmap (the kernel's pgmap_array entry plus pgmap->ref). */
export interface PgmapRecord {
  /** The id stored in each page's pgmapId field (1..65535). */
  id: number;
  pgmap: DevPagemap;
  startPfn: number;
  nrPages: number;
  /** pgmap->ref: one per in-use page (zone_device_page_init .. free_zone_device_folio). */
  refs: number;
}

export class PgmapRegistry {
  private readonly records: (PgmapRecord | undefined)[] = [undefined];
  private readonly byPgmap = new Map<DevPagemap, PgmapRecord>();
  /** The next free device pfn (device ranges are never reused). */
  nextPfn: number;

  constructor(
    private readonly store: PageStore,
    firstDevicePfn: number,
  ) {
    this.nextPfn = firstDevicePfn;
  }

  /**
   * Give `nrPages` ZONE_DEVICE struct pages to `pgmap` (the pfn part of memremap_pages: pgmap_array insert,
   * add_pages / memmap_init_zone_device). Pages start free (refcount 0). Sets pgmap.range. Returns the record.
   */
  register(pgmap: DevPagemap, nrPages: number): PgmapRecord {
    if (!Number.isInteger(nrPages) || nrPages <= 0)
      throw new InvalidArgumentError("nrPages", "must be a positive integer", nrPages);
    if (this.byPgmap.has(pgmap)) throw new InvalidArgumentError("pgmap", "is already registered");
    const id = this.records.length;
    if (id > 0xffff) throw new InvalidArgumentError("pgmap", "too many pgmaps (65535)");
    const startPfn = alignUp(this.nextPfn, HPAGE_PMD_NR);
    this.store.initRange(startPfn, nrPages, ZONE_DEVICE, id);
    this.nextPfn = startPfn + nrPages;
    pgmap.range = { start: startPfn * PAGE_SIZE, end: (startPfn + nrPages) * PAGE_SIZE - 1 };
    const rec: PgmapRecord = { id, pgmap, startPfn, nrPages, refs: 0 };
    this.records.push(rec);
    this.byPgmap.set(pgmap, rec);
    return rec;
  }

  /** Remove a pgmap's pfns (memunmap_pages after the ref drained). 0, or -EBUSY while pages are in use. */
  unregister(pgmap: DevPagemap): number {
    const rec = this.byPgmap.get(pgmap);
    if (rec === undefined) throw new InvalidArgumentError("pgmap", "is not registered");
    if (rec.refs !== 0) return -16; // -EBUSY
    this.store.clearRange(rec.startPfn, rec.nrPages);
    this.byPgmap.delete(pgmap);
    this.records[rec.id] = undefined;
    return 0;
  }

  record(pgmap: DevPagemap): PgmapRecord | undefined {
    return this.byPgmap.get(pgmap);
  }
  recordById(id: number): PgmapRecord | undefined {
    return this.records[id];
  }
  /** page_pgmap(): the pgmap of a ZONE_DEVICE pfn, or null. */
  pgmapOf(pfn: number): DevPagemap | null {
    const id = this.store.pgmapId(pfn);
    return id === 0 ? null : (this.records[id]?.pgmap ?? null);
  }
  /** Registered pgmaps, in registration order. */
  all(): PgmapRecord[] {
    return this.records.filter((r): r is PgmapRecord => r !== undefined);
  }
}

/** is_zone_device_page(). */
export function isZoneDevicePage(store: PageStore, pfn: number): boolean {
  return store.zone(pfn) === ZONE_DEVICE;
}

/**
 * zone_device_page_init / zone_device_folio_init (mm/memremap.c): a free device page becomes in use: refcount 1,
 * locked, pgmap->ref taken (×nr); order > 0 preps a compound folio. The page must be free (refcount 0).
 */
export function zoneDeviceFolioInit(store: PageStore, registry: PgmapRegistry, pfn: number, order = 0): void {
  if (store.zone(pfn) !== ZONE_DEVICE) throw new KernelRuleError("zone_device_page_init_not_device", `pfn ${pfn}`);
  const rec = registry.recordById(store.pgmapId(pfn));
  if (rec === undefined) throw new KernelRuleError("zone_device_page_init_no_pgmap", `pfn ${pfn}`);
  if (!Number.isInteger(order) || order < 0 || order > 30) throw new InvalidArgumentError("order", "must be an integer in [0, 30]", order);
  if (order === 0) {
    // zone_device_page_init: the common single page, same state as the loop below gives.
    if (pfn + 1 > rec.startPfn + rec.nrPages) throw new KernelRuleError("zone_device_folio_init_alignment", `pfn ${pfn} order 0`);
    if (store.refcount(pfn) !== 0 && !store.isTail(pfn))
      throw new KernelRuleError("zone_device_page_init_refcount", `pfn ${pfn} has refcount ${store.refcount(pfn)}`);
    const c = store.pagesOf(pfn);
    const i = pfn & PAGE_SLOT_MASK;
    c.flags[i] = PG_locked;
    c.order[i] = 0;
    c.mapcount[i] = 0;
    c.refcount[i] = 1;
    rec.refs += 1;
    return;
  }
  const nr = 1 << order;
  if (pfn % nr !== 0 || pfn + nr > rec.startPfn + rec.nrPages)
    throw new KernelRuleError("zone_device_folio_init_alignment", `pfn ${pfn} order ${order}`);
  for (let p = pfn; p < pfn + nr; p++) {
    if (store.refcount(p) !== 0 && !store.isTail(p))
      throw new KernelRuleError("zone_device_page_init_refcount", `pfn ${p} has refcount ${store.refcount(p)}`);
  }
  for (let p = pfn; p < pfn + nr; p++) {
    store.setFlagsWord(p, p === pfn ? (order > 0 ? PG_head : 0) : PG_tail);
    store.setOrder(p, order);
    store.setRefcount(p, 0);
    store.setMapcount(p, 0);
  }
  store.setRefcount(pfn, 1);
  store.set(pfn, PG_locked);
  rec.refs += nr;
}
