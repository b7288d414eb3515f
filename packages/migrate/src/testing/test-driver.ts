/**
 * A tiny device driver for tests and benchmarks (not exported): the migration side of lib/test_hmm.c.
 * - migrateToDevice: dmirror_migrate_to_device → migrate_vma_setup(SELECT_SYSTEM) + dmirror_migrate_alloc_and_copy
 *   + migrate_vma_pages + migrate_vma_finalize.
 * - devmemFault: dmirror_devmem_fault, the pgmap's migrate_to_ram: migrate_vma_setup(fault_page,
 *   SELECT_DEVICE_PRIVATE, own owner) + dmirror_devmem_fault_alloc_and_copy + pages + finalize.
 * - migrateToSystem: dmirror_migrate_to_system (explicit, SELECT_DEVICE_PRIVATE or SELECT_DEVICE_COHERENT).
 * - evict: dmirror_device_evict_chunk → migrate_device_range + copy + migrate_device_pages/finalize.
 * Device memory is a pgmap registered with core's registerPgmap; its bytes live in the kernel's page-bytes pool.
 * With `hugeFolios` the first that many 2 MiB of it are handed out as order-9 folios (zone_device_folio_init), as
 * dmirror's THP chunks: COMPOUND src entries get a device THP (or, with `smallDst` / none free, 512 small pages).
 */
import {
  HPAGE_PMD_NR,
  HPAGE_PMD_ORDER,
  MEMORY_DEVICE_COHERENT,
  MEMORY_DEVICE_PRIVATE,
  PAGE_SIZE,
  PG_locked,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
  allocPages,
  folioTrylock,
  registerPgmap,
  zoneDeviceFolioInitK,
  zoneDevicePageInit,
  type DevPagemap,
  type Kernel,
  type Mm,
  type VmFault,
} from "@hmmsim/core";
import { migrateDeviceFinalize, migrateDevicePages, migrateDeviceRange, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup } from "../migrate-device.js";
import {
  MIGRATE_PFN_COMPOUND,
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_COMPOUND,
  MIGRATE_VMA_SELECT_DEVICE_COHERENT,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM,
  migratePfn,
  migratePfnToPage,
  migrateVmaInit,
  type MigrateVma,
} from "../migrate-pfn.js";

export interface MigrateHooks {
  /** Decline entry i (leave dst[i] = 0). */
  decline?: (i: number) => boolean;
  /** Runs between the copy and migrate_vma_pages (e.g. to take a pin). */
  beforePages?: (args: MigrateVma) => void;
  /** Leave dst pages unlocked (a driver bug). */
  forgetLock?: boolean;
  /** Add MIGRATE_VMA_SELECT_COMPOUND. */
  compound?: boolean;
  /** Give a COMPOUND src 512 order-0 dst pages instead of a THP (the split path). */
  smallDst?: boolean;
}

/** The steps of a driver-initiated migration, in order. */
export type MigratePhase = "setup" | "copy" | "pages" | "finalize";

export class TestDevice {
  readonly owner: { name: string };
  readonly pgmap: DevPagemap;
  readonly startPfn: number;
  readonly free: number[] = [];
  /** Free order-9 device folios (heads). */
  readonly freeHuge: number[] = [];
  /** pfns passed to folio_free (recorded while `recordFreed`; a benchmark turns it off so the list cannot grow). */
  readonly freed: number[] = [];
  recordFreed = true;
  /** Called after each step of migrateToDevice / migrateToSystem (a benchmark's per-phase clock); null: none. */
  phaseDone: ((phase: MigratePhase) => void) | null = null;
  /** migrate_to_ram calls. */
  faults = 0;
  /** Reused src/dst arrays (allocated once per size). */
  private src = new Float64Array(0);
  private dst = new Float64Array(0);
  private readonly faultSrc = new Float64Array(1);
  private readonly faultDst = new Float64Array(1);

  constructor(
    readonly k: Kernel,
    readonly nrPages: number,
    readonly type: typeof MEMORY_DEVICE_PRIVATE | typeof MEMORY_DEVICE_COHERENT = MEMORY_DEVICE_PRIVATE,
    name = "dmirror",
    hugeFolios = 0,
  ) {
    this.owner = { name };
    this.pgmap = {
      type,
      range: { start: 0, end: -1 },
      owner: this.owner,
      ops:
        type === MEMORY_DEVICE_PRIVATE
          ? { pageFree: (pfn) => this.pageFree(pfn), migrateToRam: (vmf) => this.devmemFault(vmf) }
          : { pageFree: (pfn) => this.pageFree(pfn) },
    };
    this.startPfn = registerPgmap(k, this.pgmap, nrPages).startPfn; // 2 MiB aligned
    const huge = Math.min(hugeFolios, Math.floor(nrPages / HPAGE_PMD_NR));
    for (let i = nrPages - 1; i >= huge * HPAGE_PMD_NR; i--) this.free.push(this.startPfn + i);
    for (let i = huge - 1; i >= 0; i--) this.freeHuge.push(this.startPfn + i * HPAGE_PMD_NR);
  }

  private pageFree(pfn: number): void {
    if (this.recordFreed) this.freed.push(pfn);
    if (this.k.store.folioNr(pfn) === HPAGE_PMD_NR) this.freeHuge.push(pfn);
    else this.free.push(pfn);
  }

  /** A device THP: an order-9 folio, refcount 1 and locked (zone_device_folio_init), or -1. */
  allocDeviceFolio(): number {
    const p = this.freeHuge.pop();
    if (p === undefined) return -1;
    zoneDeviceFolioInitK(this.k, p, HPAGE_PMD_ORDER);
    return p;
  }

  /** dmirror_devmem_alloc_page: a device page, refcount 1 and locked (zone_device_page_init), or -1. */
  allocDevicePage(): number {
    const p = this.free.pop();
    if (p === undefined) return -1;
    zoneDevicePageInit(this.k, p);
    return p;
  }

  private arrays(n: number): [Float64Array, Float64Array] {
    if (this.src.length < n) {
      this.src = new Float64Array(n);
      this.dst = new Float64Array(n);
    }
    return [this.src, this.dst];
  }

  /** dmirror_migrate_to_device over [start, end): returns setup's errno and the MigrateVma. */
  migrateToDevice(mm: Mm, start: number, end: number, hooks?: MigrateHooks): { ret: number; args: MigrateVma } {
    return mm.withReadLock("dmirror_migrate_to_device", () => {
      const vma = mm.vmaLookup(start);
      const n = Math.max(0, (end - start) / PAGE_SIZE);
      const [src, dst] = this.arrays(n);
      const flags = MIGRATE_VMA_SELECT_SYSTEM | (hooks?.compound ? MIGRATE_VMA_SELECT_COMPOUND : 0);
      const args = migrateVmaInit({ vma, start, end, src, dst, pgmapOwner: this.owner, flags });
      const ret = migrateVmaSetup(args);
      if (ret !== 0) return { ret, args };
      this.phaseDone?.("setup");
      const k = this.k;
      for (let i = 0; i < args.npages; i++) {
        const m = src[i]!;
        if ((m & MIGRATE_PFN_MIGRATE) === 0 || hooks?.decline?.(i)) continue;
        const spage = migratePfnToPage(m);
        const write = m & MIGRATE_PFN_WRITE;
        if ((m & MIGRATE_PFN_COMPOUND) !== 0) {
          const dfolio = hooks?.smallDst ? -1 : this.allocDeviceFolio();
          for (let j = 0; j < HPAGE_PMD_NR; j++) {
            const dpage = dfolio >= 0 ? dfolio + j : this.allocDevicePage();
            if (dpage < 0) break;
            if (spage >= 0) k.pageBytes.copy(dpage, spage + j);
            else k.pageBytes.clear(dpage);
            if (dfolio < 0) dst[i + j] = migratePfn(dpage) + write;
          }
          if (dfolio >= 0) dst[i] = migratePfn(dfolio) + write + MIGRATE_PFN_COMPOUND;
          i += HPAGE_PMD_NR - 1;
          continue;
        }
        const dpage = this.allocDevicePage();
        if (dpage < 0) continue;
        if (spage >= 0) k.pageBytes.copy(dpage, spage);
        else k.pageBytes.clear(dpage);
        if (hooks?.forgetLock) k.store.clear(dpage, PG_locked);
        dst[i] = migratePfn(dpage) + write;
      }
      hooks?.beforePages?.(args);
      this.phaseDone?.("copy");
      migrateVmaPages(args);
      this.phaseDone?.("pages");
      migrateVmaFinalize(args);
      this.phaseDone?.("finalize");
      return { ret, args };
    });
  }

  /**
   * Copy device pages back to new system pages for every MIGRATE entry (a RAM THP for a COMPOUND src unless
   * `smallDst`: then 512 order-0 pages); false if RAM ran out.
   */
  private allocAndCopyToSystem(src: Float64Array, dst: Float64Array, n: number, smallDst = false): boolean {
    const k = this.k;
    let ok = true;
    for (let i = 0; i < n; i++) {
      const m = src[i]!;
      const spage = migratePfnToPage(m);
      if ((m & MIGRATE_PFN_MIGRATE) === 0 || spage < 0) continue;
      const write = m & MIGRATE_PFN_WRITE;
      if ((m & MIGRATE_PFN_COMPOUND) !== 0) {
        const folio = smallDst ? -1 : allocPages(k, HPAGE_PMD_ORDER);
        if (folio >= 0) {
          folioTrylock(k, folio);
          for (let j = 0; j < HPAGE_PMD_NR; j++) k.pageBytes.copy(folio + j, spage + j);
          dst[i] = migratePfn(folio) + write + MIGRATE_PFN_COMPOUND;
        } else {
          for (let j = 0; j < HPAGE_PMD_NR && i + j < n; j++) {
            const npage = allocPages(k, 0);
            if (npage < 0) {
              ok = false;
              break;
            }
            folioTrylock(k, npage);
            k.pageBytes.copy(npage, spage + j);
            dst[i + j] = migratePfn(npage) + write;
          }
        }
        i += HPAGE_PMD_NR - 1;
        continue;
      }
      const npage = allocPages(k, 0);
      if (npage < 0) {
        ok = false;
        continue;
      }
      folioTrylock(k, npage); // lock_page on a fresh page
      k.pageBytes.copy(npage, spage);
      dst[i] = migratePfn(npage) + write;
    }
    return ok;
  }

  /** dmirror_devmem_fault(): dev_pagemap_ops.migrate_to_ram for one page. */
  devmemFault(vmf: VmFault): number {
    this.faults++;
    // A fault on a huge device-private PMD (vmf->pte == NULL) migrates the whole folio, as dmirror_devmem_fault.
    const span = vmf.atPmd ? HPAGE_PMD_NR * PAGE_SIZE : PAGE_SIZE;
    const start = vmf.address - (vmf.address % span);
    const [src, dst] = vmf.atPmd ? [new Float64Array(HPAGE_PMD_NR), new Float64Array(HPAGE_PMD_NR)] : [this.faultSrc, this.faultDst];
    const args = migrateVmaInit({
      vma: vmf.vma,
      start,
      end: start + span,
      src,
      dst,
      pgmapOwner: this.owner,
      flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE | (vmf.atPmd ? MIGRATE_VMA_SELECT_COMPOUND : 0),
      faultPage: vmf.page,
    });
    if (migrateVmaSetup(args) !== 0) return VM_FAULT_SIGBUS;
    const ok = this.allocAndCopyToSystem(src, dst, args.npages);
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    return ok ? 0 : VM_FAULT_OOM;
  }

  /**
   * dmirror_migrate_to_system over [start, end): explicit migration back with this device's owner (`compound`:
   * SELECT_COMPOUND, device THPs come back as RAM THPs unless `smallDst`).
   */
  migrateToSystem(mm: Mm, start: number, end: number, opts?: { compound?: boolean; smallDst?: boolean }): { ret: number; args: MigrateVma } {
    return mm.withReadLock("dmirror_migrate_to_system", () => {
      const vma = mm.vmaLookup(start);
      const n = Math.max(0, (end - start) / PAGE_SIZE);
      const [src, dst] = this.arrays(n);
      const flags =
        (this.type === MEMORY_DEVICE_PRIVATE ? MIGRATE_VMA_SELECT_DEVICE_PRIVATE : MIGRATE_VMA_SELECT_DEVICE_COHERENT) |
        (opts?.compound ? MIGRATE_VMA_SELECT_COMPOUND : 0);
      const args = migrateVmaInit({ vma, start, end, src, dst, pgmapOwner: this.owner, flags });
      const ret = migrateVmaSetup(args);
      if (ret !== 0) return { ret, args };
      this.phaseDone?.("setup");
      this.allocAndCopyToSystem(src, dst, args.npages, opts?.smallDst);
      this.phaseDone?.("copy");
      migrateVmaPages(args);
      this.phaseDone?.("pages");
      migrateVmaFinalize(args);
      this.phaseDone?.("finalize");
      return { ret, args };
    });
  }

  /** dmirror_device_evict_chunk(): move every in-use page of this device back to system memory. */
  evict(): { src: Float64Array; dst: Float64Array } {
    const n = this.nrPages;
    const src = new Float64Array(n);
    const dst = new Float64Array(n);
    migrateDeviceRange(this.k, src, this.startPfn, n);
    this.allocAndCopyToSystem(src, dst, n);
    migrateDevicePages(this.k, src, dst, n);
    migrateDeviceFinalize(this.k, src, dst, n);
    return { src, dst };
  }
}
