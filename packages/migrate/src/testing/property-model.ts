/**
 * Test-only (not exported from index.ts): the byte model and op generators of migrate-property.test.ts — the core
 * property test's model (packages/testing/src/property.test.ts, not importable: it is a test file) redone
 * compactly and extended with device memory.
 *
 * - ModelDevice: a driver in the shape of lib/test_hmm.c, built only on this package's public API:
 *   dmirror_devmem_alloc_page (a device page and, for a device-private one, a RAM backing page `rpage` the driver
 *   holds a reference on until dmirror_devmem_free), dmirror_migrate_to_device (migrate_vma_setup
 *   SELECT_SYSTEM [| SELECT_COMPOUND] + alloc_and_copy + pages + finalize; this driver has no device THPs, so a
 *   COMPOUND entry gets 512 small device pages — the source THP is split, a 2 MiB hole filled page by page — or,
 *   with fewer than 512 free, is declined whole), dmirror_devmem_fault (dev_pagemap_ops.migrate_to_ram:
 *   fault_page, SELECT_DEVICE_PRIVATE, own owner), dmirror_migrate_to_system (SELECT_DEVICE_PRIVATE or
 *   SELECT_DEVICE_COHERENT, own owner), dmirror_exclusive (make_device_exclusive + folio_unlock + folio_put) and
 *   dmirror_device_evict_chunk (migrate_device_range over every device pfn + copy + pages + finalize).
 * - World: processes with their expected bytes per page. Device operations never change what a page holds, so
 *   the model only tracks CPU-visible semantics (COW at fork, shared objects, file-private copies, DONTNEED).
 *   After every step the whole state is checked: invariants (with the drivers' backing-page references declared
 *   as extraRefs) and every written page's bytes, resolved without faulting wherever they live (RAM, device-
 *   private, coherent, device-exclusive).
 */
import {
  EBUSY,
  EFAULT,
  EINVAL,
  EOPNOTSUPP,
  HPAGE_PMD_NR,
  MADV_DONTNEED,
  MADV_HUGEPAGE,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  MEMORY_DEVICE_COHERENT,
  MEMORY_DEVICE_PRIVATE,
  PAGE_SIZE,
  PG_anon_exclusive,
  PMD_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  SegmentationFault,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
  VM_WRITE,
  ZONE_DEVICE,
  allocPages,
  errnoName,
  FOLL_LONGTERM,
  FOLL_WRITE,
  GUP_PIN_COUNTING_BIAS,
  folioTrylock,
  folioUnlock,
  getUserPages,
  pinUserPagesFast,
  unpinUserPage,
  isDeviceExclusiveEntry,
  isDevicePrivateEntry,
  pagePgmap,
  pmdTransHuge,
  ptePfn,
  ptePresent,
  pteWrite,
  putPage,
  registerPgmap,
  zoneDevicePageInit,
  type AddressSpace,
  type DevPagemap,
  type Kernel,
  type Mm,
  type VmFault,
} from "@hmmsim/core";
import { checkInvariants, createTestMachine, resolveContentPfn, type TestMachine } from "@hmmsim/testing";
import fc from "fast-check";
import {
  MIGRATE_PFN_COMPOUND,
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_COMPOUND,
  MIGRATE_VMA_SELECT_DEVICE_COHERENT,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM,
  makeDeviceExclusive,
  installMigrateDeviceCoherentFolio,
  migrateDeviceFinalize,
  migrateDevicePages,
  migrateDeviceRange,
  migratePfn,
  migratePfnToPage,
  migrateVmaFinalize,
  migrateVmaInit,
  migrateVmaPages,
  migrateVmaSetup,
  type MpfnArray,
} from "../index.js";

export const RAM = 8 * 1024 * 1024;
/** THP-eligible regions mapped per run (each 2 MiB). */
export const MAX_THP = 2;
export const FILE_PAGES = 64;
export const MAX_PROCS = 4;
export const MAX_MAPS = 5;

// ---- the driver -----------------------------------------------------------------------------------------------
type DevType = typeof MEMORY_DEVICE_PRIVATE | typeof MEMORY_DEVICE_COHERENT;

/** What the devices did, summed over a run (the property test asserts the paths were really taken). */
export interface DeviceStats {
  /** Pages that moved to device memory (migrate_vma_pages kept MIGRATE with a device dst). */
  toDevice: number;
  /** migrate_to_ram calls that moved a page back (CPU or GUP fault-back). */
  faultBack: number;
  /** Pages moved back by an explicit migrate-to-system. */
  toSystem: number;
  /** Pages moved back by eviction. */
  evicted: number;
  /** make_device_exclusive successes. */
  exclusive: number;
  /** MIGRATE | COMPOUND entries after a SELECT_COMPOUND migrate_vma_setup (a PMD-mapped THP or a 2 MiB hole). */
  compoundCollected: number;
  /** Of those, entries whose 512 pages all moved to small device pages. */
  compoundMoved: number;
  /** Successful GUPs held by the model (get_user_pages FOLL_GET or pin_user_pages_fast FOLL_PIN). */
  gupHeld: number;
  /** Pages a migration to a device skipped because a GUP reference or pin was held on their folio. */
  gupSkipped: number;
}

export const newStats = (): DeviceStats => ({
  toDevice: 0,
  faultBack: 0,
  toSystem: 0,
  evicted: 0,
  exclusive: 0,
  compoundCollected: 0,
  compoundMoved: 0,
  gupHeld: 0,
  gupSkipped: 0,
});

/** GUP references the model holds at once (the oldest is released first, and all before the final checks). */
export const MAX_GUP = 4;

export class ModelDevice {
  readonly owner: { name: string };
  readonly pgmap: DevPagemap;
  readonly startPfn: number;
  readonly free: number[] = [];
  /** dmirror's zone_device_data: device pfn → its RAM backing page (device-private only). */
  readonly backing = new Map<number, number>();
  /** Out of RAM for a backing page or a copy back. */
  oom = 0;

  constructor(
    readonly k: Kernel,
    readonly name: string,
    readonly type: DevType,
    readonly nrPages: number,
    readonly stats: DeviceStats,
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
    this.startPfn = registerPgmap(k, this.pgmap, nrPages).startPfn;
    for (let i = nrPages - 1; i >= 0; i--) this.free.push(this.startPfn + i);
  }

  get inUse(): number {
    return this.nrPages - this.free.length;
  }

  /** dmirror_devmem_free(): drop the backing page, return the device page to the free list. */
  private pageFree(pfn: number): void {
    const rpage = this.backing.get(pfn);
    if (rpage !== undefined) {
      this.backing.delete(pfn);
      putPage(this.k, rpage);
    }
    this.free.push(pfn);
  }

  /** dmirror_devmem_alloc_page(): a locked device page with refcount 1 (+ a backing page if private), or -1. */
  allocDevicePage(): number {
    let rpage = -1;
    if (this.type === MEMORY_DEVICE_PRIVATE) {
      rpage = allocPages(this.k, 0);
      if (rpage < 0) {
        this.oom++;
        return -1;
      }
    }
    const p = this.free.pop();
    if (p === undefined) {
      if (rpage >= 0) putPage(this.k, rpage);
      return -1;
    }
    zoneDevicePageInit(this.k, p);
    if (rpage >= 0) this.backing.set(p, rpage);
    return p;
  }

  /** References this driver holds outside page tables (folio head → count), for checkInvariants extraRefs. */
  addRefs(into: Map<number, number>): void {
    for (const r of this.backing.values()) into.set(r, (into.get(r) ?? 0) + 1);
  }

  /**
   * dmirror_migrate_to_device() over [start, end) of the VMA at start (end clipped to it): setup's return. With
   * `compound`, MIGRATE_VMA_SELECT_COMPOUND: a MIGRATE | COMPOUND entry gets 512 small device pages (the kernel
   * then splits the source THP, or inserts 512 pages into the 2 MiB hole) when that many are free, else none.
   */
  migrateToDevice(mm: Mm, start: number, end: number, compound = false): number {
    return mm.withReadLock("dmirror_migrate_to_device", () => {
      const vma = mm.vmaLookup(start);
      if (vma !== null) end = Math.min(end, vma.vmEnd);
      const n = (end - start) / PAGE_SIZE;
      const src = new Float64Array(n);
      const dst = new Float64Array(n);
      const flags = MIGRATE_VMA_SELECT_SYSTEM | (compound ? MIGRATE_VMA_SELECT_COMPOUND : 0);
      const args = migrateVmaInit({ vma, start, end, src, dst, pgmapOwner: this.owner, flags });
      const ret = migrateVmaSetup(args);
      if (ret !== 0) return ret;
      const k = this.k;
      const compoundAt: number[] = [];
      for (let i = 0; i < args.npages; i++) {
        const m = src[i]!;
        if ((m & MIGRATE_PFN_MIGRATE) === 0) continue;
        if ((m & MIGRATE_PFN_COMPOUND) !== 0) {
          this.stats.compoundCollected++;
          compoundAt.push(i);
          const spage = migratePfnToPage(m);
          if (this.free.length >= HPAGE_PMD_NR) {
            for (let j = 0; j < HPAGE_PMD_NR; j++) {
              const dpage = this.allocDevicePage();
              if (dpage < 0) break; // out of RAM for a backing page: the rest of the entry is declined
              if (spage >= 0) k.pageBytes.copy(dpage, spage + j);
              else k.pageBytes.clear(dpage);
              dst[i + j] = migratePfn(dpage) + (m & MIGRATE_PFN_WRITE);
            }
          }
          i += HPAGE_PMD_NR - 1;
          continue;
        }
        const dpage = this.allocDevicePage();
        if (dpage < 0) continue;
        const spage = migratePfnToPage(m);
        if (spage >= 0) k.pageBytes.copy(dpage, spage);
        else k.pageBytes.clear(dpage);
        dst[i] = migratePfn(dpage) + (m & MIGRATE_PFN_WRITE);
      }
      migrateVmaPages(args);
      for (let i = 0; i < args.npages; i++) if ((src[i]! & MIGRATE_PFN_MIGRATE) !== 0 && migratePfnToPage(dst[i]!) >= 0) this.stats.toDevice++;
      for (const i of compoundAt) {
        let moved = 0;
        for (let j = 0; j < HPAGE_PMD_NR; j++) if ((src[i + j]! & MIGRATE_PFN_MIGRATE) !== 0 && migratePfnToPage(dst[i + j]!) >= 0) moved++;
        if (moved === HPAGE_PMD_NR) this.stats.compoundMoved++;
      }
      migrateVmaFinalize(args);
      return 0;
    });
  }

  /** Copy every migrating device page to a new locked RAM page. */
  private allocAndCopyToSystem(src: MpfnArray, dst: MpfnArray, n: number): boolean {
    const k = this.k;
    let ok = true;
    for (let i = 0; i < n; i++) {
      const m = src[i]!;
      const spage = migratePfnToPage(m);
      if ((m & MIGRATE_PFN_MIGRATE) === 0 || spage < 0) continue;
      const npage = allocPages(k, 0);
      if (npage < 0) {
        this.oom++;
        ok = false;
        continue;
      }
      folioTrylock(k, npage);
      k.pageBytes.copy(npage, spage);
      dst[i] = migratePfn(npage) + (m & MIGRATE_PFN_WRITE);
    }
    return ok;
  }

  private countMoved(src: MpfnArray, dst: MpfnArray, n: number): number {
    let moved = 0;
    for (let i = 0; i < n; i++) if ((src[i]! & MIGRATE_PFN_MIGRATE) !== 0 && migratePfnToPage(dst[i]!) >= 0 && migratePfnToPage(src[i]!) >= 0) moved++;
    return moved;
  }

  /** dmirror_devmem_fault(): dev_pagemap_ops.migrate_to_ram for the faulting page. */
  devmemFault(vmf: VmFault): number {
    const src = new Float64Array(1);
    const dst = new Float64Array(1);
    const args = migrateVmaInit({
      vma: vmf.vma,
      start: vmf.address,
      end: vmf.address + PAGE_SIZE,
      src,
      dst,
      pgmapOwner: this.owner,
      flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
      faultPage: vmf.page,
    });
    if (migrateVmaSetup(args) !== 0) return VM_FAULT_SIGBUS;
    const ok = this.allocAndCopyToSystem(src, dst, args.npages);
    migrateVmaPages(args);
    this.stats.faultBack += this.countMoved(src, dst, args.npages);
    migrateVmaFinalize(args);
    return ok ? 0 : VM_FAULT_OOM;
  }

  /** dmirror_migrate_to_system() over [start, end) of the VMA at start (end clipped): setup's return. */
  migrateToSystem(mm: Mm, start: number, end: number): number {
    return mm.withReadLock("dmirror_migrate_to_system", () => {
      const vma = mm.vmaLookup(start);
      if (vma !== null) end = Math.min(end, vma.vmEnd);
      const n = (end - start) / PAGE_SIZE;
      const src = new Float64Array(n);
      const dst = new Float64Array(n);
      const flags = this.type === MEMORY_DEVICE_PRIVATE ? MIGRATE_VMA_SELECT_DEVICE_PRIVATE : MIGRATE_VMA_SELECT_DEVICE_COHERENT;
      const args = migrateVmaInit({ vma, start, end, src, dst, pgmapOwner: this.owner, flags });
      const ret = migrateVmaSetup(args);
      if (ret !== 0) return ret;
      this.allocAndCopyToSystem(src, dst, args.npages);
      migrateVmaPages(args);
      this.stats.toSystem += this.countMoved(src, dst, args.npages);
      migrateVmaFinalize(args);
      return 0;
    });
  }

  /** dmirror_exclusive() for one page: make_device_exclusive, then (device programmed) folio_unlock + folio_put. */
  exclusive(mm: Mm, addr: number): number {
    return mm.withReadLock("dmirror_exclusive", () => {
      const pfn = makeDeviceExclusive(mm, addr, this.owner);
      if (pfn < 0) return pfn;
      folioUnlock(this.k, pfn);
      putPage(this.k, pfn);
      this.stats.exclusive++;
      return pfn;
    });
  }

  /** dmirror_device_evict_chunk(): every in-use page of this device back to RAM. */
  evict(): void {
    const n = this.nrPages;
    const src = new Float64Array(n);
    const dst = new Float64Array(n);
    migrateDeviceRange(this.k, src, this.startPfn, n);
    this.allocAndCopyToSystem(src, dst, n);
    migrateDevicePages(this.k, src, dst, n);
    this.stats.evicted += this.countMoved(src, dst, n);
    migrateDeviceFinalize(this.k, src, dst, n);
  }
}

// ---- ops ------------------------------------------------------------------------------------------------------
export type Kind = "anon-private" | "anon-shared" | "file-private" | "file-shared";
export type Prot = 0 | 1 | 3;
/** Device index: 0 and 1 are device-private (two owners), 2 is device-coherent (a third owner). */
export type Dev = 0 | 1 | 2;
export const DEV_NAMES = ["privA", "privB", "coherentC"] as const;

export type Op =
  | { op: "mmap"; p: number; kind: Kind; pages: number; thp: boolean; file: number; off: number }
  | { op: "write"; p: number; m: number; page: number; off: number; len: number; val: number }
  | { op: "read"; p: number; m: number; page: number; off: number; len: number }
  | { op: "mprotect"; p: number; m: number; from: number; n: number; prot: Prot }
  | { op: "dontneed"; p: number; m: number; from: number; n: number }
  | { op: "munmap"; p: number; m: number; from: number; n: number }
  | { op: "fork"; p: number }
  | { op: "exit"; p: number }
  | { op: "migrate"; p: number; dev: Dev; m: number; from: number; n: number }
  | { op: "migrateThp"; p: number; dev: Dev }
  | { op: "migrateBack"; p: number; dev: Dev; m: number; from: number; n: number }
  | { op: "exclusive"; p: number; dev: Dev; m: number; page: number }
  | { op: "evict"; dev: Dev }
  | { op: "pin"; p: number; m: number; page: number; longterm: boolean; get: boolean }
  | { op: "unpin" };

const PROT_NAME: Record<Prot, string> = { 0: "PROT_NONE", 1: "PROT_READ", 3: "PROT_READ|PROT_WRITE" };

export function opString(o: Op): string {
  switch (o.op) {
    case "mmap":
      return o.thp
        ? `mmap(p${o.p}, anon-private THP 2 MiB + MADV_HUGEPAGE)`
        : `mmap(p${o.p}, ${o.kind}, ${o.pages} pages${o.kind.startsWith("file") ? `, file${o.file} @page ${o.off}` : ""})`;
    case "write":
      return `write(p${o.p}, map${o.m}, page ${o.page} +${o.off}, ${o.len} bytes from ${o.val})`;
    case "read":
      return `read(p${o.p}, map${o.m}, page ${o.page} +${o.off}, ${o.len} bytes)`;
    case "mprotect":
      return `mprotect(p${o.p}, map${o.m}, pages ${o.from}+${o.n}, ${PROT_NAME[o.prot]})`;
    case "dontneed":
      return `madvise(p${o.p}, map${o.m}, pages ${o.from}+${o.n}, MADV_DONTNEED)`;
    case "munmap":
      return `munmap(p${o.p}, map${o.m}, pages ${o.from}+${o.n})`;
    case "fork":
      return `fork(p${o.p})`;
    case "exit":
      return `exit(p${o.p})`;
    case "migrate":
      return `migrateToDevice(${DEV_NAMES[o.dev]}, p${o.p}, map${o.m}, pages ${o.from}+${o.n}, SELECT_SYSTEM)`;
    case "migrateThp":
      return `migrateToDevice(${DEV_NAMES[o.dev]}, p${o.p}, the THP map's 2 MiB, SELECT_SYSTEM|SELECT_COMPOUND)`;
    case "migrateBack":
      return `migrateToSystem(${DEV_NAMES[o.dev]}, p${o.p}, map${o.m}, pages ${o.from}+${o.n}, ${o.dev === 2 ? "SELECT_DEVICE_COHERENT" : "SELECT_DEVICE_PRIVATE"})`;
    case "exclusive":
      return `makeDeviceExclusive(${DEV_NAMES[o.dev]}, p${o.p}, map${o.m}, page ${o.page})`;
    case "evict":
      return `evict(${DEV_NAMES[o.dev]})`;
    case "pin":
      return `${o.get ? "get_user_pages(FOLL_GET" : "pin_user_pages_fast(FOLL_PIN"}|FOLL_WRITE${o.longterm ? "|FOLL_LONGTERM" : ""}, p${o.p}, map${o.m}, page ${o.page})`;
    case "unpin":
      return "release the oldest GUP reference (put_page / unpin_user_page)";
  }
}

const named = <T extends Op>(arb: fc.Arbitrary<T>): fc.Arbitrary<Op> =>
  arb.map((o) => Object.assign(o, { [fc.toStringMethod]: () => opString(o) }) as Op);

const proc = fc.nat({ max: 7 });
const mapIdx = fc.nat({ max: 7 });
const dev = fc.constantFrom<Dev>(0, 1, 2);
// Page offsets biased to the first pages so accesses meet earlier migrations and mprotect/munmap/dontneed ranges.
// Byte offsets within a page, biased to a few slots so reads meet earlier writes (and each other's COW copies);
// uniform offsets alone make a read of a written byte a ~1/500 event.
const off = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(0, 8, 2044, 4088) }, { weight: 1, arbitrary: fc.nat({ max: PAGE_SIZE - 1 }) });
const page = fc.oneof({ weight: 3, arbitrary: fc.nat({ max: 3 }) }, { weight: 1, arbitrary: fc.nat({ max: 511 }) });
const count = fc.integer({ min: 1, max: 16 });

const mmapArb = named(fc.record({ op: fc.constant("mmap" as const), p: proc, kind: fc.constantFrom<Kind>("anon-private", "anon-private", "anon-shared", "file-private", "file-shared"), pages: count, thp: fc.nat({ max: 3 }).map((x) => x === 0), file: fc.nat({ max: 1 }), off: fc.nat({ max: FILE_PAGES - 16 }) }));

export const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: mmapArb },
  { weight: 6, arbitrary: named(fc.record({ op: fc.constant("write" as const), p: proc, m: mapIdx, page, off, len: fc.integer({ min: 1, max: 8 }), val: fc.integer({ min: 1, max: 255 }) })) },
  { weight: 6, arbitrary: named(fc.record({ op: fc.constant("read" as const), p: proc, m: mapIdx, page, off, len: fc.integer({ min: 1, max: 16 }) })) },
  { weight: 2, arbitrary: named(fc.record({ op: fc.constant("mprotect" as const), p: proc, m: mapIdx, from: page, n: count, prot: fc.constantFrom<Prot>(0, 1, 3) })) },
  { weight: 2, arbitrary: named(fc.record({ op: fc.constant("dontneed" as const), p: proc, m: mapIdx, from: page, n: count })) },
  { weight: 1, arbitrary: named(fc.record({ op: fc.constant("munmap" as const), p: proc, m: mapIdx, from: page, n: count })) },
  { weight: 2, arbitrary: named(fc.record({ op: fc.constant("fork" as const), p: proc })) },
  { weight: 1, arbitrary: named(fc.record({ op: fc.constant("exit" as const), p: proc })) },
  { weight: 6, arbitrary: named(fc.record({ op: fc.constant("migrate" as const), p: proc, dev, m: mapIdx, from: page, n: count })) },
  { weight: 3, arbitrary: named(fc.record({ op: fc.constant("migrateThp" as const), p: proc, dev })) },
  { weight: 3, arbitrary: named(fc.record({ op: fc.constant("migrateBack" as const), p: proc, dev, m: mapIdx, from: page, n: count })) },
  { weight: 2, arbitrary: named(fc.record({ op: fc.constant("exclusive" as const), p: proc, dev, m: mapIdx, page })) },
  { weight: 1, arbitrary: named(fc.record({ op: fc.constant("evict" as const), dev })) },
  { weight: 2, arbitrary: named(fc.record({ op: fc.constant("pin" as const), p: proc, m: mapIdx, page, longterm: fc.boolean(), get: fc.boolean() })) },
  { weight: 1, arbitrary: named(fc.record({ op: fc.constant("unpin" as const) })) },
);

/** A sequence: an mmap first (so the ops after it have something to act on), then up to maxLength - 1 ops. */
export function sequenceArb(maxLength: number): fc.Arbitrary<Op[]> {
  return fc.tuple(mmapArb, fc.array(opArb, { maxLength: maxLength - 1 })).map(([first, rest]) => [first, ...rest]);
}

// ---- the model ------------------------------------------------------------------------------------------------
interface SharedObj {
  name: string;
  /** Page index → bytes (absent: zeroes). */
  pages: Map<number, Uint8Array>;
}
/** What one mapped page of a process is. Immutable: changes replace the object. */
interface PageModel {
  prot: Prot;
  kind: Kind;
  /** The shmem object or file behind a shared or file mapping. */
  obj: SharedObj | null;
  index: number;
}
interface MapRecord {
  start: number;
  npages: number;
  thp: boolean;
}
export interface Proc {
  name: string;
  mm: Mm;
  pages: Map<number, PageModel>;
  /** Private bytes: anon-private pages, and file-private pages after their first write (COW). */
  priv: Map<number, Uint8Array>;
  maps: MapRecord[];
}

const ZERO_PAGE = new Uint8Array(PAGE_SIZE);
const hex = (a: number): string => `0x${a.toString(16)}`;

export class World {
  readonly m: TestMachine;
  readonly k: Kernel;
  readonly files: { space: AddressSpace; obj: SharedObj }[] = [];
  readonly procs: Proc[] = [];
  readonly devs: ModelDevice[];
  readonly stats = newStats();
  private nextProc = 0;
  private nextShm = 0;
  private thpMaps = 0;
  readonly log: string[] = [];
  /** Pages held by get_user_pages (FOLL_GET: one reference) or pin_user_pages_fast (FOLL_PIN), oldest first. */
  readonly gup: { pfn: number; pin: boolean }[] = [];
  private readonly pageBuf = new Uint8Array(PAGE_SIZE);

  /**
   * `devPages` per device (default 24); privB gets `bigDevPages` (default 520, more than a THP's 512) so that a
   * SELECT_COMPOUND migration to it can take a whole THP or 2 MiB hole as small pages.
   */
  constructor(opts: { devPages?: number; bigDevPages?: number } = {}) {
    this.m = createTestMachine({ ramBytes: RAM });
    this.k = this.m.kernel;
    // a FOLL_LONGTERM pin of a device-coherent page migrates it to RAM first (migrate_device_coherent_folio)
    installMigrateDeviceCoherentFolio(this.k);
    for (let i = 0; i < 2; i++) this.files.push({ space: this.m.createFile(FILE_PAGES * PAGE_SIZE, { name: `file${i}` }), obj: { name: `file${i}`, pages: new Map() } });
    this.procs.push({ name: `p${this.nextProc++}`, mm: this.m.mm, pages: new Map(), priv: new Map(), maps: [] });
    const n = opts.devPages ?? 24;
    this.devs = [
      new ModelDevice(this.k, DEV_NAMES[0], MEMORY_DEVICE_PRIVATE, n, this.stats),
      new ModelDevice(this.k, DEV_NAMES[1], MEMORY_DEVICE_PRIVATE, opts.bigDevPages ?? 520, this.stats),
      new ModelDevice(this.k, DEV_NAMES[2], MEMORY_DEVICE_COHERENT, n, this.stats),
    ];
  }

  /** Throw the step's failure; `figures` (invariant violations, bytes that differ from the model) go into the report. */
  fail(step: number, op: string, what: string, figures: { violations?: number; bytesLost?: number } = {}): never {
    throw Object.assign(new Error(`step ${step}: ${op}: ${what}\nsteps run:\n${this.log.map((l) => `  ${l}`).join("\n")}`), figures);
  }

  /** The bytes a page should hold now, or null for zeroes. */
  expectedPage(p: Proc, pa: number): Uint8Array | null {
    const pm = p.pages.get(pa)!;
    if (pm.kind === "anon-private") return p.priv.get(pa) ?? null;
    if (pm.kind === "file-private" && p.priv.has(pa)) return p.priv.get(pa)!;
    return pm.obj!.pages.get(pm.index) ?? null;
  }

  expectedByte(p: Proc, addr: number): number {
    const pa = addr - (addr % PAGE_SIZE);
    return this.expectedPage(p, pa)?.[addr - pa] ?? 0;
  }

  /** The model's page bytes to write into (COW for file-private). */
  writableBuf(p: Proc, pa: number): Uint8Array {
    const pm = p.pages.get(pa)!;
    if (pm.kind === "anon-private" || pm.kind === "file-private") {
      let b = p.priv.get(pa);
      if (b === undefined) {
        const src = pm.kind === "file-private" ? pm.obj!.pages.get(pm.index) : undefined;
        b = src === undefined ? new Uint8Array(PAGE_SIZE) : src.slice();
        p.priv.set(pa, b);
      }
      return b;
    }
    let b = pm.obj!.pages.get(pm.index);
    if (b === undefined) {
      b = new Uint8Array(PAGE_SIZE);
      pm.obj!.pages.set(pm.index, b);
    }
    return b;
  }

  /** Run f; true if it threw SegmentationFault, rethrow anything else. */
  static faults(f: () => void): boolean {
    try {
      f();
      return false;
    } catch (e) {
      if (e instanceof SegmentationFault) return true;
      throw e;
    }
  }

  range(p: Proc, o: { m: number; from: number; n: number }): { start: number; end: number; map: MapRecord } | null {
    if (p.maps.length === 0) return null;
    const map = p.maps[o.m % p.maps.length]!;
    const from = o.from % map.npages;
    const n = Math.min(o.n, map.npages - from);
    return { start: map.start + from * PAGE_SIZE, end: map.start + (from + n) * PAGE_SIZE, map };
  }

  /** Where the page at addr of mm lives now (for messages and the migration checks). */
  where(mm: Mm, addr: number): string {
    const pt = mm.pgtable;
    const pmd = pt.pmdGet(addr);
    if (pmd !== 0 && pmdTransHuge(pmd)) return "THP";
    const e = pt.pteGet(addr);
    if (e === 0) return "none";
    const pfn = ptePfn(e);
    if (ptePresent(e)) {
      if (pfn === this.k.zeroPfn) return "zero page";
      if (this.k.store.zone(pfn) === ZONE_DEVICE) return `coherent:${(pagePgmap(this.k, pfn)?.owner as { name: string } | undefined)?.name}`;
      return this.k.store.isLarge(pfn) ? "RAM (PTE of a large folio)" : "RAM";
    }
    if (isDevicePrivateEntry(e)) return `private:${(pagePgmap(this.k, pfn)?.owner as { name: string } | undefined)?.name}`;
    if (isDeviceExclusiveEntry(e)) return "exclusive";
    return "other";
  }

  /** Apply one op to kernel and model. */
  step(i: number, o: Op): void {
    if (o.op === "unpin") {
      const g = this.gup.shift();
      if (g === undefined) return void this.log.push(`${opString(o)}: skipped (none held)`);
      this.releaseGup(g);
      this.log.push(`${opString(o)}: pfn ${g.pfn}`);
      return;
    }
    if (o.op === "evict") {
      const d = this.devs[o.dev]!;
      const before = d.inUse;
      d.evict();
      // Only page tables and GUP references (a device-coherent page can be GUP'd) hold device pages here, and RAM
      // is ample: eviction must move every page nobody holds.
      const held = new Set(this.gup.filter((g) => g.pfn >= d.startPfn && g.pfn < d.startPfn + d.nrPages).map((g) => g.pfn)).size;
      if (d.inUse > held && d.oom === 0) this.fail(i, opString(o), `${d.inUse} of ${before} device pages still in use after eviction (${held} GUP-held)`);
      this.log.push(`${opString(o)}: ${before} page(s)`);
      return;
    }
    const p = this.procs[o.p % this.procs.length]!;
    const desc = opString(o).replace(`p${o.p}`, p.name);
    const mm = p.mm;
    switch (o.op) {
      case "mmap": {
        if (p.maps.length >= MAX_MAPS) return void this.log.push(`${desc}: skipped (map limit)`);
        const thp = o.thp && !p.maps.some((r) => r.thp) && this.thpMaps < MAX_THP;
        if (thp) this.thpMaps++;
        const kind: Kind = thp ? "anon-private" : o.kind;
        const npages = thp ? PMD_SIZE / PAGE_SIZE : o.pages;
        const file = kind.startsWith("file") ? this.files[o.file]! : null;
        const shared = kind === "anon-shared" || kind === "file-shared";
        const addr = mm.mmap({
          length: npages * PAGE_SIZE,
          prot: PROT_READ | PROT_WRITE,
          flags: (shared ? MAP_SHARED : MAP_PRIVATE) | (file === null ? MAP_ANONYMOUS : 0),
          file: file?.space,
          offset: file === null ? 0 : o.off * PAGE_SIZE,
        });
        if (addr < 0) this.fail(i, desc, `mmap returned ${errnoName(addr)}`);
        if (thp && mm.madvise(addr, npages * PAGE_SIZE, MADV_HUGEPAGE) !== 0) this.fail(i, desc, "madvise(MADV_HUGEPAGE) failed");
        const obj = kind === "anon-shared" ? { name: `shm${this.nextShm++}`, pages: new Map<number, Uint8Array>() } : (file?.obj ?? null);
        for (let j = 0; j < npages; j++) p.pages.set(addr + j * PAGE_SIZE, { prot: 3, kind, obj, index: file !== null ? o.off + j : j });
        p.maps.push({ start: addr, npages, thp });
        this.log.push(`${desc} → ${hex(addr)} (map${p.maps.length - 1}${thp ? ", THP" : ""})`);
        return;
      }
      case "write":
      case "read": {
        if (p.maps.length === 0) return void this.log.push(`${desc}: skipped (no mapping)`);
        const map = p.maps[o.m % p.maps.length]!;
        const addr = map.start + (o.page % map.npages) * PAGE_SIZE + o.off;
        const len = Math.min(o.len, PAGE_SIZE - o.off);
        const pa = addr - (addr % PAGE_SIZE);
        const pm = p.pages.get(pa);
        const allowed = pm !== undefined && (o.op === "write" ? (pm.prot & PROT_WRITE) !== 0 : (pm.prot & PROT_READ) !== 0);
        const at = `${desc} at ${hex(addr)} (${pm === undefined ? "unmapped" : this.where(mm, pa)})`;
        if (o.op === "write") {
          const data = new Uint8Array(len);
          for (let j = 0; j < len; j++) data[j] = (o.val + j) & 0xff;
          const faulted = World.faults(() => mm.write(addr, data));
          if (faulted !== !allowed) this.fail(i, at, allowed ? "write faulted (SIGSEGV) but the page is writable" : "write succeeded but must fault");
          if (allowed) this.writableBuf(p, pa).set(data, addr - pa);
          this.log.push(`${at}${faulted ? ": SIGSEGV (expected)" : ""}`);
        } else {
          let got: Uint8Array | null = null;
          const faulted = World.faults(() => {
            got = mm.read(addr, len);
          });
          if (faulted !== !allowed) this.fail(i, at, allowed ? "read faulted (SIGSEGV) but the page is readable" : "read succeeded but must fault");
          if (got !== null) {
            const want = Array.from({ length: len }, (_, j) => this.expectedByte(p, addr + j));
            const have = Array.from(got as Uint8Array);
            const lost = want.filter((b, j) => b !== have[j]).length;
            if (lost > 0) this.fail(i, at, `read [${have}] but the last bytes written there are [${want}]`, { bytesLost: lost });
          }
          this.log.push(`${at}${faulted ? ": SIGSEGV (expected)" : ""}`);
        }
        return;
      }
      case "mprotect":
      case "dontneed":
      case "munmap": {
        const r = this.range(p, o);
        if (r === null) return void this.log.push(`${desc}: skipped (no mapping)`);
        const at = `${desc} [${hex(r.start)}, ${hex(r.end)})`;
        const addrs: number[] = [];
        for (let a = r.start; a < r.end; a += PAGE_SIZE) addrs.push(a);
        const mapped = addrs.filter((a) => p.pages.has(a));
        const len = r.end - r.start;
        if (o.op === "mprotect") {
          const ret = mm.mprotect(r.start, len, o.prot === 0 ? PROT_NONE : o.prot);
          const want = mapped.length === addrs.length ? 0 : -12;
          if (ret !== want) this.fail(i, at, `returned ${errnoName(ret)}, expected ${errnoName(want)}`);
          if (ret === 0) for (const a of addrs) p.pages.set(a, { ...p.pages.get(a)!, prot: o.prot });
          this.log.push(`${at} = ${errnoName(ret)}`);
        } else if (o.op === "dontneed") {
          const ret = mm.madvise(r.start, len, MADV_DONTNEED);
          const want = mapped.length === addrs.length ? 0 : -12;
          if (ret !== want) this.fail(i, at, `returned ${errnoName(ret)}, expected ${errnoName(want)}`);
          for (const a of mapped) p.priv.delete(a);
          this.log.push(`${at} = ${errnoName(ret)}`);
        } else {
          const ret = mm.munmap(r.start, len);
          if (ret !== 0) this.fail(i, at, `returned ${errnoName(ret)}`);
          for (const a of addrs) {
            p.pages.delete(a);
            p.priv.delete(a);
          }
          this.log.push(at);
        }
        return;
      }
      case "fork": {
        if (this.procs.length >= MAX_PROCS) return void this.log.push(`${desc}: skipped (process limit)`);
        const child: Proc = {
          name: `p${this.nextProc++}`,
          mm: mm.fork(),
          pages: new Map(p.pages),
          priv: new Map([...p.priv].map(([a, b]) => [a, b.slice()])),
          maps: p.maps.map((r) => ({ ...r })),
        };
        this.procs.push(child);
        this.log.push(`${desc} → ${child.name}`);
        return;
      }
      case "exit": {
        if (this.procs.length === 1) return void this.log.push(`${desc}: skipped (last process)`);
        mm.exit();
        this.procs.splice(this.procs.indexOf(p), 1);
        this.log.push(desc);
        return;
      }
      case "migrate":
      case "migrateThp":
      case "migrateBack": {
        let r: { start: number; end: number } | null;
        if (o.op === "migrateThp") {
          // The whole THP map (2 MiB, MADV_HUGEPAGE): a PMD-mapped THP or a 2 MiB hole is one COMPOUND entry
          // when the map is PMD-aligned and still one VMA; otherwise collect goes page by page.
          const map = p.maps.find((x) => x.thp);
          r = map === undefined ? null : { start: map.start, end: map.start + map.npages * PAGE_SIZE };
        } else {
          r = this.range(p, o);
        }
        if (r === null) return void this.log.push(`${desc}: skipped (no ${o.op === "migrateThp" ? "THP " : ""}mapping)`);
        const d = this.devs[o.dev]!;
        const vma = mm.vmaLookup(r.start);
        const end = vma === null ? r.end : Math.min(r.end, vma.vmEnd);
        const at = `${desc} [${hex(r.start)}, ${hex(end)})`;
        // Pages a migration to this device must take: anonymous private pages in system RAM or not yet populated.
        // A folio with a GUP reference or pin held fails migrate_vma_check_page (or folio_try_share_anon_rmap_pte, or
        // the THP split) and stays.
        const must: number[] = [];
        /** GUP-held pages in the range: address → the pfn mapped there, which must stay. */
        const held = new Map<number, number>();
        if (vma !== null) {
          const heads = this.gupHeads();
          // migrate_vma_collect_pmd() meets a PTE-mapped large folio: migrate_vma_split_folio() fails on a held folio
          // (split_folio: extra references), and the kernel then skips the rest of that PMD's chunk of the range
          // (`return migrate_vma_collect_skip(addr, end, walk)`), holes and other folios after it included; the pages
          // of the chunk before it were collected. [the failing page, skipEnd) is that skipped tail.
          let skipEnd = -1;
          for (let a = r.start; a < end; a += PAGE_SIZE) {
            if (this.gupHeldAt(mm, a, heads)) held.set(a, this.mappedPfn(mm, a));
            if (o.op === "migrateBack") continue;
            if (a >= skipEnd && this.pteMappedLargeHeldAt(mm, a, heads)) skipEnd = Math.min(end, a - (a % PMD_SIZE) + PMD_SIZE);
            const pm = p.pages.get(a);
            const w = this.where(mm, a);
            if (pm?.kind !== "anon-private" || !(w.startsWith("RAM") || w === "none" || w === "zero page" || w === "THP")) continue;
            if (held.has(a) || a < skipEnd) this.stats.gupSkipped++;
            else must.push(a);
          }
        }
        const freeBefore = d.free.length;
        const ret = o.op === "migrateBack" ? d.migrateToSystem(mm, r.start, r.end) : d.migrateToDevice(mm, r.start, r.end, o.op === "migrateThp");
        const want = vma === null ? -EINVAL : 0;
        if (ret !== want) this.fail(i, at, `returned ${errnoName(ret)}, expected ${errnoName(want)}`);
        // A page someone holds a GUP reference or pin on must not migrate (migrate_vma_check_page, or
        // folio_try_share_anon_rmap_pte for a pinned exclusive anon page).
        for (const [a, pfn] of held)
          if (this.mappedPfn(mm, a) !== pfn) this.fail(i, at, `${hex(a)}: GUP-held pfn ${pfn} migrated (now ${this.where(mm, a)})`);
        // A COMPOUND entry takes 512 free pages or none, so it must move whenever `must` (then 512 pages) fits too.
        if (o.op !== "migrateBack" && must.length <= freeBefore && d.oom === 0) {
          const kind = d.type === MEMORY_DEVICE_PRIVATE ? `private:${d.name}` : `coherent:${d.name}`;
          const missed = must.filter((a) => this.where(mm, a) !== kind);
          if (missed.length > 0)
            this.fail(i, at, `anonymous page(s) ${missed.map((a) => `${hex(a)} (${this.where(mm, a)})`).join(", ")} not moved to ${d.name} (${freeBefore} free device pages)`);
        }
        if (o.op === "migrateBack" && ret === 0) {
          const kindPrefix = d.type === MEMORY_DEVICE_PRIVATE ? "private:" : "coherent:";
          const heads = this.gupHeads();
          for (let a = r.start; a < end; a += PAGE_SIZE)
            if (this.where(mm, a) === kindPrefix + d.name && d.oom === 0 && !this.gupHeldAt(mm, a, heads)) this.fail(i, at, `${hex(a)} is still on ${d.name}`);
        }
        this.log.push(`${at} = ${errnoName(ret)}; ${d.name} holds ${d.inUse} page(s)`);
        return;
      }
      case "exclusive": {
        if (p.maps.length === 0) return void this.log.push(`${desc}: skipped (no mapping)`);
        const map = p.maps[o.m % p.maps.length]!;
        const addr = map.start + (o.page % map.npages) * PAGE_SIZE;
        const pm = p.pages.get(addr);
        const vma = mm.vmaLookup(addr);
        const at = `${desc} at ${hex(addr)} (${pm === undefined ? "unmapped" : this.where(mm, addr)})`;
        const d = this.devs[o.dev]!;
        const ret = d.exclusive(mm, addr);
        // get_user_page_vma_remote(FOLL_WRITE): no VMA or no VM_WRITE → -EFAULT; then only anon folios qualify.
        const want =
          vma === null || pm === undefined || (vma.vmFlags & VM_WRITE) === 0
            ? -EFAULT
            : pm.kind === "anon-shared" || pm.kind === "file-shared"
              ? -EOPNOTSUPP
              : 0;
        if ((want === 0) !== (ret >= 0) || (want < 0 && ret !== want)) this.fail(i, at, `returned ${ret < 0 ? errnoName(ret) : `pfn ${ret}`}, expected ${want < 0 ? errnoName(want) : "a pfn"}`);
        if (ret >= 0) {
          // FOLL_WRITE broke COW: a file-private page now has its private copy.
          this.writableBuf(p, addr);
          if (!isDeviceExclusiveEntry(mm.pgtable.pteGet(addr))) this.fail(i, at, `no device-exclusive entry after success (${this.where(mm, addr)})`);
        }
        this.log.push(`${at} = ${ret < 0 ? errnoName(ret) : `pfn ${ret}`}`);
        return;
      }
      case "pin": {
        if (p.maps.length === 0) return void this.log.push(`${desc}: skipped (no mapping)`);
        if (this.gup.length >= MAX_GUP) return void this.log.push(`${desc}: skipped (${MAX_GUP} held)`);
        const map = p.maps[o.m % p.maps.length]!;
        const addr = map.start + (o.page % map.npages) * PAGE_SIZE;
        const pm = p.pages.get(addr);
        const vma = mm.vmaLookup(addr);
        const at = `${desc} at ${hex(addr)} (${pm === undefined ? "unmapped" : this.where(mm, addr)})`;
        const pages: number[] = [];
        // A long-term pin of a device-coherent page moves it to RAM first (migrate_longterm_unpinnable_folios:
        // the pin becomes a reference, then migrate_device_coherent_folio); a GUP reference or pin already held on
        // it makes that migration fail (migrate_vma_check_page), and the whole call returns -EBUSY, nothing pinned.
        // But __gup_longterm_locked() pins first (__get_user_pages_locked) and checks pinnability after
        // (check_and_migrate_movable_pages), and FOLL_WRITE on a write-protected PTE faults before pinning
        // (follow_page_pte: can_follow_write_pte fails without FOLL_FORCE; faultin_page → do_wp_page): a page
        // fork() shared (folio_try_dup_anon_rmap_pte cleared PageAnonExclusive, both PTEs write-protected) and held
        // fails wp_can_reuse_anon_folio (the held reference), so wp_page_copy maps a new RAM page here and that one
        // is pinned: 1. (gup-fast pins nothing first: pte_access_permitted fails on the write-protected PTE, and
        // try_grab_folio_fast refuses a FOLL_LONGTERM pin of a device-coherent folio.)
        // A device-exclusive entry (make_device_exclusive does not look at pins, nor at the pgmap: a pinned
        // device-coherent anon page qualifies) changes none of this: GUP faults on it (gup-fast: pte_present fails;
        // follow_page_pte → no_page → faultin_page → do_swap_page → remove_device_exclusive_entry), and
        // restore_exclusive_pte maps the same page again, writable if PageAnonExclusive, before the pin and the check.
        const gp = this.gupPfn(mm, addr);
        const coherentHeld =
          !o.get &&
          o.longterm &&
          gp >= 0 &&
          pagePgmap(this.k, gp)?.type === MEMORY_DEVICE_COHERENT &&
          this.gupHeads().has(this.k.store.folioHead(gp)) &&
          !this.writeFaultCopies(mm, addr);
        // FOLL_LONGTERM goes with FOLL_PIN only (the kernel WARNs and fails it with FOLL_GET).
        const ret = o.get
          ? mm.withReadLock("get_user_pages", () => getUserPages(mm, addr, 1, FOLL_WRITE, pages))
          : pinUserPagesFast(mm, addr, 1, FOLL_WRITE | (o.longterm ? FOLL_LONGTERM : 0), pages);
        // A writable anonymous private page is always GUP-able for write (but for the held coherent page above);
        // other cases (no VMA, read-only, a long-term pin of a file page...) may fail, and then nothing is held.
        const want = coherentHeld ? -EBUSY : 1;
        if (pm?.kind === "anon-private" && vma !== null && (vma.vmFlags & VM_WRITE) !== 0 && ret !== want)
          this.fail(i, at, `returned ${ret < 0 ? errnoName(ret) : ret}, expected ${want < 0 ? errnoName(want) : "1 page"}`);
        // collect_longterm_unpinnable_folios: a long-term pin never ends on a device-coherent page.
        if (ret === 1 && !o.get && o.longterm && pagePgmap(this.k, pages[0]!)?.type === MEMORY_DEVICE_COHERENT)
          this.fail(i, at, `FOLL_LONGTERM pinned device-coherent pfn ${pages[0]}`);
        if (ret === 1) {
          this.gup.push({ pfn: pages[0]!, pin: !o.get });
          this.stats.gupHeld++;
          // FOLL_WRITE broke COW: a file-private page now has its private copy.
          if (pm !== undefined) this.writableBuf(p, addr);
        }
        this.log.push(`${at} = ${ret < 0 ? errnoName(ret) : `pfn ${pages[0]}`}`);
        return;
      }
    }
  }

  private releaseGup(g: { pfn: number; pin: boolean }): void {
    if (g.pin) unpinUserPage(this.k, g.pfn);
    else putPage(this.k, g.pfn);
  }

  /** Release every GUP reference the model holds (before the final checks). */
  releaseAllGup(): void {
    for (const g of this.gup.splice(0)) this.releaseGup(g);
  }

  /** Folio heads a GUP reference or pin is held on. */
  private gupHeads(): Set<number> {
    return new Set(this.gup.map((g) => this.k.store.folioHead(g.pfn)));
  }

  /** The pfn of the page mapped at addr by a present PTE or a trans-huge PMD, else -1. */
  private mappedPfn(mm: Mm, addr: number): number {
    const pmd = mm.pgtable.pmdGet(addr);
    if (pmd !== 0 && pmdTransHuge(pmd)) return ptePfn(pmd) + ((addr % PMD_SIZE) / PAGE_SIZE);
    const e = mm.pgtable.pteGet(addr);
    return e !== 0 && ptePresent(e) ? ptePfn(e) : -1;
  }

  /** Whether the page mapped at addr (PTE or PMD) is in a folio the model holds a GUP reference on. */
  private gupHeldAt(mm: Mm, addr: number, heads: Set<number>): boolean {
    if (heads.size === 0) return false;
    const pmd = mm.pgtable.pmdGet(addr);
    const e = pmd !== 0 && pmdTransHuge(pmd) ? pmd : mm.pgtable.pteGet(addr);
    return e !== 0 && ptePresent(e) && heads.has(this.k.store.folioHead(ptePfn(e)));
  }

  /**
   * Whether a FOLL_WRITE GUP of the (GUP-held) anonymous page mapped at addr write-faults onto a copy first
   * (do_wp_page): the entry is write-protected and the page is not PageAnonExclusive (fork shared it), so
   * wp_can_reuse_anon_folio fails on the held reference and wp_page_copy maps a new page at addr. An exclusive
   * page behind a write-protected entry is reused (wp_page_reuse) and stays where it is.
   */
  private writeFaultCopies(mm: Mm, addr: number): boolean {
    const pmd = mm.pgtable.pmdGet(addr);
    const e = pmd !== 0 && pmdTransHuge(pmd) ? pmd : mm.pgtable.pteGet(addr);
    const pfn = this.gupPfn(mm, addr);
    // A device-exclusive entry comes back write-protected exactly when the page is not PageAnonExclusive
    // (restore_exclusive_pte → can_change_pte_writable).
    return pfn >= 0 && (isDeviceExclusiveEntry(e) || !pteWrite(e)) && !this.k.store.test(pfn, PG_anon_exclusive);
  }

  /**
   * The pfn a GUP of addr ends on before any write fault: the page mapped by a present PTE or a trans-huge PMD, or
   * the page behind a device-exclusive entry, which GUP's fault maps again in place (do_swap_page →
   * remove_device_exclusive_entry → restore_exclusive_pte); else -1.
   */
  private gupPfn(mm: Mm, addr: number): number {
    const pfn = this.mappedPfn(mm, addr);
    if (pfn >= 0) return pfn;
    const e = mm.pgtable.pteGet(addr);
    return isDeviceExclusiveEntry(e) ? ptePfn(e) : -1;
  }

  /**
   * Whether addr is mapped by a PTE (not a PMD) to a page of a large RAM folio the model holds a GUP reference or pin
   * on: migrate_vma_collect_pmd() calls migrate_vma_split_folio() for it, and split_folio() fails on the extra
   * references.
   */
  private pteMappedLargeHeldAt(mm: Mm, addr: number, heads: Set<number>): boolean {
    if (heads.size === 0) return false;
    const pmd = mm.pgtable.pmdGet(addr);
    if (pmd !== 0 && pmdTransHuge(pmd)) return false;
    const e = mm.pgtable.pteGet(addr);
    if (e === 0 || !ptePresent(e)) return false;
    const pfn = ptePfn(e);
    const s = this.k.store;
    return pfn !== this.k.zeroPfn && s.zone(pfn) !== ZONE_DEVICE && s.isLarge(pfn) && heads.has(s.folioHead(pfn));
  }

  /** The drivers' references outside page tables. */
  driverRefs(): Map<number, number> {
    const m = new Map<number, number>();
    for (const d of this.devs) d.addRefs(m);
    const s = this.k.store;
    for (const g of this.gup) {
      // FOLL_GET: one reference; FOLL_PIN: GUP_PIN_COUNTING_BIAS on a small folio, one (and _pincount) on a large one
      const h = s.folioHead(g.pfn);
      m.set(h, (m.get(h) ?? 0) + (!g.pin || s.isLarge(h) ? 1 : GUP_PIN_COUNTING_BIAS));
    }
    return m;
  }

  /**
   * 0 invariant violations (driver references declared), and every page with written bytes holds them wherever
   * it lives, resolved without faulting. `all`: every mapped page, unwritten ones must read zeroes (or the file).
   */
  check(step: number, what: string, all = false): void {
    const v = checkInvariants(this.k, { extraRefs: this.driverRefs() });
    if (v.length > 0) this.fail(step, what, `invariant violations:\n${v.map((x) => `    [${x.rule}] ${x.message}`).join("\n")}`, { violations: v.length });
    const k = this.k;
    const have = this.pageBuf;
    for (const p of this.procs) {
      for (const pa of p.pages.keys()) {
        const want = this.expectedPage(p, pa);
        if (want === null && !all) continue;
        const pfn = resolveContentPfn(p.mm, pa);
        if (pfn < 0) have.fill(0);
        else k.pageBytes.read(pfn, 0, have.length, have, 0);
        const exp = want ?? ZERO_PAGE;
        if (Buffer.compare(have, exp) !== 0) {
          const j = have.findIndex((b, x) => b !== exp[x]);
          const lost = have.reduce((n, b, x) => n + (b !== exp[x] ? 1 : 0), 0);
          this.fail(step, what, `${p.name} ${hex(pa)} (${this.where(p.mm, pa)}, pfn ${pfn}) byte ${j} is ${have[j]}, the last byte written there is ${exp[j]} (${lost} byte(s) of the page differ)`, { bytesLost: lost });
        }
      }
    }
  }
}

/** Run one sequence: every op, a full check after each; then evict everything, exit all, and check for leaks. */
export function runSequence(ops: readonly Op[], w = new World()): World {
  ops.forEach((o, i) => {
    w.step(i, o);
    w.check(i, opString(o));
  });
  const n = ops.length;
  if (w.gup.length > 0) {
    w.releaseAllGup();
    w.log.push("release every GUP reference");
    w.check(n, "release every GUP reference");
  }
  for (let d = 0; d < w.devs.length; d++) {
    w.step(n, { op: "evict", dev: d as Dev });
    w.check(n, `final evict(${DEV_NAMES[d]})`);
  }
  w.check(n, "final full content check", true);
  for (const p of w.procs) p.mm.exit();
  w.procs.length = 0;
  w.log.push("exit all");
  w.check(n, "exit all");
  const k = w.k;
  for (const d of w.devs) if (d.inUse !== 0 || d.backing.size !== 0) w.fail(n, "exit all", `${d.name} still has ${d.inUse} page(s) in use, ${d.backing.size} backing page(s)`);
  const cached = w.files.reduce((s, f) => s + f.space.nrpages, 0);
  if (k.allocator.nrFree !== k.nrRamPages - cached)
    w.fail(n, "exit all", `${k.nrRamPages - k.allocator.nrFree} RAM pages in use, the files cache ${cached}`);
  return w;
}
