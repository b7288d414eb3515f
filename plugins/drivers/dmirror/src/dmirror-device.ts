/**
 * lib/test_hmm.c: struct dmirror_device and struct dmirror_chunk — the per-device ZONE_DEVICE memory. Device
 * memory comes in DEVMEM_CHUNK_SIZE chunks from memremap_pages (dmirror_allocate_chunk); free pages sit on
 * `free_pages` (4 KiB) and `free_folios` (PMD-sized); dmirror_devmem_alloc_page takes one (allocating a chunk
 * when a list is empty) and the pgmap's folio_free op (dmirror_devmem_free) gives it back. The migrate_to_ram op
 * (dmirror_devmem_fault) and chunk eviction live in dmirror-migrate.ts.
 *
 * `page->zone_device_data` is kept in a side table per module (the page store has no driver field): for a device
 * page it is the backing system page (private devices; BACKING_PAGE) and for that backing page the dmirror that
 * migrated it. The free lists are stacks of pfns (the kernel links them through zone_device_data; same LIFO order).
 */
import {
  ENOMEM,
  HPAGE_PMD_NR,
  HPAGE_PMD_ORDER,
  InvalidArgumentError,
  KernelRuleError,
  allocPages,
  putPage,
  type Kernel,
} from "@hmmsim/core";
import {
  MEMORY_DEVICE_COHERENT,
  MEMORY_DEVICE_PRIVATE,
  isDevicePrivatePage,
  isErrValue,
  memremapPages,
  memunmapPages,
  pagePgmap,
  pgmapPfnRange,
  zoneDevicePageInit,
  type DevPagemap,
} from "@hmmsim/memremap";
import { dmirrorDevmemFault, dmirrorDevmemFolioSplit, dmirrorDeviceEvictChunk } from "./dmirror-migrate.js";
import type { Dmirror } from "./dmirror.js";
import { HMM_DMIRROR_MEMORY_DEVICE_COHERENT, HMM_DMIRROR_MEMORY_DEVICE_PRIVATE } from "./test-hmm-uapi.js";

/** #define DMIRROR_NDEVICES 4: two private devices, then two coherent ones (when spm_addr_dev0/1 are set). */
export const DMIRROR_NDEVICES = 4;
/** #define DEVMEM_CHUNK_SIZE (256 * 1024 * 1024U), in pages. */
export const DEVMEM_CHUNK_SIZE = 256 * 1024 * 1024;
export const DEVMEM_CHUNK_PAGES = DEVMEM_CHUNK_SIZE / 4096;
/** #define DMIRROR_RANGE_FAULT_TIMEOUT 1000 (ms). */
export const DMIRROR_RANGE_FAULT_TIMEOUT = 1000;

/** The driver's view of page->zone_device_data (see the file comment). */
export class ZoneDeviceData {
  private readonly data = new Map<number, number | Dmirror>();
  get(pfn: number): number | Dmirror | undefined {
    return this.data.get(pfn);
  }
  set(pfn: number, v: number | Dmirror | undefined): void {
    if (v === undefined) this.data.delete(pfn);
    else this.data.set(pfn, v);
  }
  /** dpage->zone_device_data as the backing page pfn (private devices), or -1. */
  backing(pfn: number): number {
    const v = this.data.get(pfn);
    return typeof v === "number" ? v : -1;
  }
  /** rpage->zone_device_data as the dmirror that migrated it, or null. */
  mirror(pfn: number): Dmirror | null {
    const v = this.data.get(pfn);
    return v !== undefined && typeof v !== "number" ? v : null;
  }
  get size(): number {
    return this.data.size;
  }
  entries(): IterableIterator<[number, number | Dmirror]> {
    return this.data.entries();
  }
}

/** struct dmirror_chunk. */
export class DmirrorChunk {
  /** Set by dmirror_device_remove_chunks: folio_free no longer returns pages to the free lists. */
  remove = false;
  constructor(
    readonly pagemap: DevPagemap,
    readonly mdevice: DmirrorDevice,
    readonly pfnFirst: number,
    readonly pfnLast: number,
  ) {}
}

/** The module state shared by all devices: the kernel and the zone_device_data side table. */
export interface DmirrorModuleContext {
  readonly kernel: Kernel;
  readonly zdd: ZoneDeviceData;
}

/** What a device is built with besides its minor number and memory type (a machine's dmirror device). */
export interface DmirrorDeviceOptions {
  /** The device's name (default `hmm_dmirror<id>`, the kernel's device node). */
  name?: string;
  /**
   * Device memory, in 4 KiB pages (default: unbounded, as the kernel's driver, which memremaps another chunk
   * whenever the free lists run dry). Private devices memremap chunks of at most DEVMEM_CHUNK_PAGES until the
   * total reaches it (then -ENOMEM); a coherent device's one chunk, its SPM range, is this many pages
   * (default DEVMEM_CHUNK_PAGES).
   */
  memoryPages?: number;
}

/** struct dmirror_device. The device object itself is the pgmap owner (`pgmap.owner = mdevice`). */
export class DmirrorDevice {
  readonly devmemChunks: DmirrorChunk[] = [];
  /** Pages handed out / given back (mdevice->calloc, mdevice->cfree). */
  calloc = 0;
  cfree = 0;
  /** free_pages / free_folios: stacks of pfns (the top is the list head). */
  readonly freePages: number[] = [];
  readonly freeFolios: number[] = [];
  private readonly chunkByPgmap = new Map<DevPagemap, DmirrorChunk>();

  constructor(
    readonly ctx: DmirrorModuleContext,
    /** The minor number: /dev/hmm_dmirror<id>. */
    readonly id: number,
    /** HMM_DMIRROR_MEMORY_DEVICE_PRIVATE or HMM_DMIRROR_MEMORY_DEVICE_COHERENT. */
    readonly zoneDeviceType: number,
    readonly options: Readonly<DmirrorDeviceOptions> = {},
  ) {
    const pages = options.memoryPages;
    if (pages !== undefined && (!Number.isSafeInteger(pages) || pages <= 0)) throw new InvalidArgumentError("options.memoryPages", "must be a positive whole number of pages", pages);
  }

  get name(): string {
    return this.options.name ?? `hmm_dmirror${this.id}`;
  }
  /** Pages memremapped in the device's chunks. */
  get chunkPages(): number {
    let n = 0;
    for (const c of this.devmemChunks) n += c.pfnLast - c.pfnFirst;
    return n;
  }
  get kernel(): Kernel {
    return this.ctx.kernel;
  }
  /** devmem_count. */
  get devmemCount(): number {
    return this.devmemChunks.length;
  }
  /** dmirror_is_private_zone(). */
  isPrivateZone(): boolean {
    return this.zoneDeviceType === HMM_DMIRROR_MEMORY_DEVICE_PRIVATE;
  }
  /** dmirror_page_to_chunk(page) for a page of this device, or undefined. */
  chunkOf(pfn: number): DmirrorChunk | undefined {
    const pgmap = pagePgmap(this.kernel, pfn);
    return pgmap === null ? undefined : this.chunkByPgmap.get(pgmap);
  }
  /** Device pages currently in use (allocated and not yet freed), over all chunks. */
  pagesInUse(): number {
    let n = 0;
    for (const c of this.devmemChunks) n += pgmapPfnRange(this.kernel, c.pagemap)?.inUse ?? 0;
    return n;
  }

  /**
   * dmirror_allocate_chunk(mdevice, ppage, is_large): memremap a new chunk, put its pages on the free lists (PMD
   * blocks on free_folios when `isLarge`) and, when `wantPage`, take one (a PMD block when large). Returns the
   * page (head pfn) or -1 when none was asked for; a negative errno (< -1) on failure.
   */
  allocateChunk(wantPage: boolean, isLarge: boolean): number {
    const k = this.kernel;
    let type: typeof MEMORY_DEVICE_PRIVATE | typeof MEMORY_DEVICE_COHERENT;
    switch (this.zoneDeviceType) {
      case HMM_DMIRROR_MEMORY_DEVICE_PRIVATE:
        type = MEMORY_DEVICE_PRIVATE;
        break;
      case HMM_DMIRROR_MEMORY_DEVICE_COHERENT:
        // The coherent chunk is the device's fixed SPM range (spm_addr_dev0/1): mapping it a second time hits
        // memremap_pages' "Conflicting mapping in same section" (WARN, -ENOMEM).
        if (this.devmemChunks.length > 0) return -ENOMEM;
        type = MEMORY_DEVICE_COHERENT;
        break;
      default:
        return -22; // -EINVAL
    }
    const pagemap: DevPagemap = {
      type,
      range: { start: 0, end: -1 },
      owner: this,
      ops: {
        pageFree: (pfn: number) => dmirrorDevmemFree(this, pfn),
        migrateToRam: (vmf) => dmirrorDevmemFault(this.ctx, vmf),
        folioSplit: (head: number, tail: number) => dmirrorDevmemFolioSplit(this.ctx, head, tail),
      },
    };
    if (type === MEMORY_DEVICE_COHERENT) delete pagemap.ops.migrateToRam;
    // The kernel's chunks are DEVMEM_CHUNK_SIZE; a device with a memory size stops at it (options.memoryPages).
    const limit = this.options.memoryPages;
    let nrPages = DEVMEM_CHUNK_PAGES;
    if (limit !== undefined) nrPages = type === MEMORY_DEVICE_COHERENT ? limit : Math.min(DEVMEM_CHUNK_PAGES, limit - this.chunkPages);
    if (nrPages <= 0) return -ENOMEM;
    const start = memremapPages(k, pagemap, nrPages);
    if (isErrValue(start)) return start;
    const chunk = new DmirrorChunk(pagemap, this, start, start + nrPages);
    this.devmemChunks.push(chunk);
    this.chunkByPgmap.set(pagemap, chunk);
    for (let pfn = chunk.pfnFirst; pfn < chunk.pfnLast; ) {
      if (isLarge && pfn % HPAGE_PMD_NR === 0 && pfn + HPAGE_PMD_NR <= chunk.pfnLast) {
        this.freeFolios.push(pfn);
        pfn += HPAGE_PMD_NR;
        continue;
      }
      this.freePages.push(pfn);
      pfn++;
    }
    if (!wantPage) return -1;
    if (isLarge) {
      const p = this.freeFolios.pop();
      if (p === undefined) return -ENOMEM;
      this.calloc += HPAGE_PMD_NR;
      return p;
    }
    const p = this.freePages.pop();
    if (p === undefined) return -ENOMEM;
    this.calloc++;
    return p;
  }

  /**
   * dmirror_devmem_alloc_page(dmirror, is_large): a device page (a PMD-sized folio when large), initialised by
   * zone_device_folio_init (refcount 1, locked), with zone_device_data = its backing system page (private) — or
   * -1 (NULL) when no memory.
   */
  devmemAllocPage(isLarge: boolean): number {
    const k = this.kernel;
    const order = isLarge ? HPAGE_PMD_ORDER : 0;
    let rpage = -1;
    if (this.isPrivateZone()) {
      rpage = allocPages(k, order);
      if (rpage < 0) return -1;
    }
    let dpage: number;
    if (isLarge && this.freeFolios.length > 0) {
      dpage = this.freeFolios.pop()!;
      this.calloc += 2 ** order;
    } else if (!isLarge && this.freePages.length > 0) {
      dpage = this.freePages.pop()!;
      this.calloc++;
    } else {
      dpage = this.allocateChunk(true, isLarge);
      if (dpage < 0) {
        if (rpage >= 0) putPage(k, rpage);
        return -1;
      }
    }
    zoneDevicePageInit(k, dpage, order);
    this.ctx.zdd.set(dpage, rpage >= 0 ? rpage : undefined);
    return dpage;
  }

  /** dmirror_remove_free_pages(devmem): unlink the chunk's free pages so they cannot be reallocated. */
  removeFreePages(chunk: DmirrorChunk): void {
    const inChunk = (p: number) => p >= chunk.pfnFirst && p < chunk.pfnLast;
    filterInPlace(this.freeFolios, (p) => !inChunk(p));
    filterInPlace(this.freePages, (p) => !inChunk(p));
  }

  /** The eviction loop of dmirror_fops_release(): every chunk's allocated pages go back to system memory. */
  evictAllChunks(): void {
    for (const chunk of this.devmemChunks) dmirrorDeviceEvictChunk(this.ctx, chunk);
  }

  /**
   * dmirror_device_remove_chunks() (HMM_DMIRROR_RELEASE, device release): for each chunk, mark it removed,
   * unlink its free pages, evict every allocated page to system memory, memunmap_pages and free the chunk.
   */
  removeChunks(): void {
    for (const chunk of this.devmemChunks) {
      chunk.remove = true;
      this.removeFreePages(chunk);
      dmirrorDeviceEvictChunk(this.ctx, chunk);
      const r = memunmapPages(this.kernel, chunk.pagemap);
      // memunmap_pages waits for pgmap->ref to drain; in the synchronous plane a page still in use is a leak.
      if (r !== 0) throw new KernelRuleError("dmirror_remove_chunk_busy", `${this.name}: a chunk page is still in use after eviction`);
      this.chunkByPgmap.delete(chunk.pagemap);
    }
    this.devmemChunks.length = 0;
    this.freePages.length = 0;
    this.freeFolios.length = 0;
  }
}

function filterInPlace(a: number[], keep: (p: number) => boolean): void {
  let j = 0;
  for (let i = 0; i < a.length; i++) if (keep(a[i]!)) a[j++] = a[i]!;
  a.length = j;
}

/**
 * dmirror_devmem_free(folio): the folio_free op. Frees the backing page (private devices) and, unless the chunk
 * is being removed, pushes the page back on free_folios / free_pages (cfree += nr).
 */
export function dmirrorDevmemFree(mdevice: DmirrorDevice, pfn: number): void {
  const k = mdevice.kernel;
  const zdd = mdevice.ctx.zdd;
  const rpage = isDevicePrivatePage(k, pfn) ? zdd.backing(pfn) : pfn;
  let order = k.store.order(pfn);
  if (rpage !== pfn && rpage >= 0) {
    order = k.store.order(rpage);
    zdd.set(rpage, undefined);
    putPage(k, rpage);
  }
  zdd.set(pfn, undefined);
  const chunk = mdevice.chunkOf(pfn);
  if (chunk === undefined) throw new KernelRuleError("dmirror_devmem_free_foreign_page", `pfn ${pfn} is not a ${mdevice.name} page`);
  if (!chunk.remove) {
    mdevice.cfree += 2 ** order;
    if (order) mdevice.freeFolios.push(pfn);
    else mdevice.freePages.push(pfn);
  }
}
