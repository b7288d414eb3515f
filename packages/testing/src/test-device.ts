/**
 * TestDevice: a minimal ZONE_DEVICE "driver" for tests of code that must cope with device pages before (or
 * without) @hmmsim/migrate: a pgmap from memremapPages, a free list filled by pageFree, and one-page moves of a
 * mapped anonymous page to and from device memory. Moves follow what migrate_vma_* + remove_migration_ptes do
 * for one order-0 page (every mapping found by rmap is switched over with its mapcount and reference, content
 * and memcg charge move, rss is unchanged) but skip the protocol (no migration entries, no collect/pinned
 * phases). It is a test double, not a model of a real driver: lib/test_hmm.c lives in plugins/drivers/dmirror.
 */
import {
  EBUSY,
  ENOMEM,
  MMU_NOTIFY_EXCLUSIVE,
  MMU_NOTIFY_MIGRATE,
  PAGE_SIZE,
  PG_anon,
  PG_anon_exclusive,
  PG_dirty,
  PG_lru,
  PG_uptodate,
  VM_FAULT_OOM,
  allocPages,
  folioUnlock,
  getPage,
  invalidateEnd,
  invalidateStart,
  isDevicePrivateEntry,
  isWritableDevicePrivateEntry,
  makeDeviceExclusiveEntry,
  makeDevicePrivateEntry,
  memcgMigrate,
  pageRemoveRmap,
  pfnPte,
  pteDirty,
  ptePfn,
  ptePresent,
  pteSpecial,
  pteWrite,
  putPage,
  rmapWalk,
  type DevPagemap,
  type Kernel,
  type VmFault,
  type Mm,
} from "@hmmsim/core";
import { MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_PRIVATE, isErrValue, memremapPages, zoneDevicePageInit } from "@hmmsim/memremap";

export interface TestDeviceOptions {
  /** MEMORY_DEVICE_PRIVATE (default) or MEMORY_DEVICE_COHERENT. */
  type?: typeof MEMORY_DEVICE_PRIVATE | typeof MEMORY_DEVICE_COHERENT;
  /** Device pages (default 512). */
  nrPages?: number;
  /** The pgmap owner (default a fresh object). */
  owner?: unknown;
}

export class TestDevice {
  readonly owner: unknown;
  readonly pgmap: DevPagemap;
  readonly startPfn: number;
  readonly nrPages: number;
  /** Free device pfns (refcount 0). */
  readonly free: number[] = [];
  /** Every pfn pageFree was called with, in order. */
  readonly freed: number[] = [];
  /** migrate_to_ram calls (CPU faults on device-private entries). */
  readonly faults: VmFault[] = [];

  constructor(
    readonly kernel: Kernel,
    opts: TestDeviceOptions = {},
  ) {
    const type = opts.type ?? MEMORY_DEVICE_PRIVATE;
    this.nrPages = opts.nrPages ?? 512;
    this.owner = opts.owner ?? { name: "test-device" };
    this.pgmap = {
      type,
      range: { start: 0, end: -1 },
      owner: this.owner,
      ops:
        type === MEMORY_DEVICE_PRIVATE
          ? { pageFree: (pfn) => this.pageFree(pfn), migrateToRam: (vmf) => this.migrateToRam(vmf) }
          : { pageFree: (pfn) => this.pageFree(pfn) },
    };
    const start = memremapPages(kernel, this.pgmap, this.nrPages);
    if (isErrValue(start)) throw new Error(`TestDevice: memremapPages returned ${start}`);
    this.startPfn = start;
    for (let i = this.nrPages - 1; i >= 0; i--) this.free.push(start + i);
  }

  private pageFree(pfn: number): void {
    this.freed.push(pfn);
    this.free.push(pfn);
  }

  /**
   * Move the order-0 anonymous page mapped by a present PTE at addr to a free device page, in every mm that maps
   * it. Private memory: the mappings become device-private entries (writable iff the PTE was); coherent memory:
   * present PTEs to the device pfn. Returns the device pfn, or -EBUSY (no present order-0 anon page there, or
   * it has references beyond its mappings), -ENOMEM (no free device page).
   */
  migrateToDevice(mm: Mm, addr: number): number {
    const k = this.kernel;
    const s = k.store;
    const a = addr - (addr % PAGE_SIZE);
    if (mm.pgtable.pmdGet(a) !== 0) return -EBUSY;
    const pte = mm.pgtable.pteGet(a);
    if (!ptePresent(pte) || pteSpecial(pte)) return -EBUSY;
    const src = ptePfn(pte);
    if (src === k.zeroPfn || !s.test(src, PG_anon) || s.isLarge(src) || s.refcount(src) !== s.mapcount(src)) return -EBUSY;
    const dpfn = this.free.pop();
    if (dpfn === undefined) return -ENOMEM;
    zoneDevicePageInit(k, dpfn);
    this.moveMappings(src, dpfn, (e) => (this.pgmap.type === MEMORY_DEVICE_PRIVATE ? makeDevicePrivateEntry(dpfn, pteWrite(e)) : pfnPte(dpfn, pteWrite(e), { dirty: pteDirty(e) })), (e) => ptePresent(e) && ptePfn(e) === src);
    folioUnlock(k, dpfn);
    putPage(k, dpfn); // the zone_device_page_init reference (migrate_vma_finalize's put)
    return dpfn;
  }

  /**
   * Move device page dpfn back to a new RAM page in every mm that maps it (what migrate_to_ram / an eviction
   * does). 0, or VM_FAULT_OOM when RAM is exhausted.
   */
  evict(dpfn: number): number {
    const k = this.kernel;
    const np = allocPages(k, 0);
    if (np < 0) return VM_FAULT_OOM;
    this.moveMappings(dpfn, np, (e) => {
      const w = isDevicePrivateEntry(e) ? isWritableDevicePrivateEntry(e) : pteWrite(e);
      return pfnPte(np, w, { dirty: w || (ptePresent(e) && pteDirty(e)) });
    }, (e) => (isDevicePrivateEntry(e) || ptePresent(e)) && ptePfn(e) === dpfn);
    k.store.set(np, PG_lru | PG_uptodate);
    putPage(k, np); // the allocation reference; the mappings hold theirs
    return 0;
  }

  /** dev_pagemap_ops.migrate_to_ram. */
  migrateToRam(vmf: VmFault): number {
    this.faults.push(vmf);
    return this.evict(vmf.page);
  }

  /**
   * make_device_exclusive for the order-0 anon page at addr (mm only): the present PTE becomes a device-exclusive
   * entry that keeps its mapcount and reference (dirty moves to the folio). Returns the pfn or -EBUSY.
   */
  makeExclusive(mm: Mm, addr: number): number {
    const k = this.kernel;
    const a = addr - (addr % PAGE_SIZE);
    if (mm.pgtable.pmdGet(a) !== 0) return -EBUSY;
    const pte = mm.pgtable.pteGet(a);
    if (!ptePresent(pte) || pteSpecial(pte) || ptePfn(pte) === k.zeroPfn || !k.store.test(ptePfn(pte), PG_anon)) return -EBUSY;
    const pfn = ptePfn(pte);
    const range = invalidateStart(mm, MMU_NOTIFY_EXCLUSIVE, a, a + PAGE_SIZE, this.owner);
    if (pteDirty(pte)) k.store.set(k.store.folioHead(pfn), PG_dirty);
    mm.pgtable.pteSet(a, makeDeviceExclusiveEntry(pfn));
    invalidateEnd(range);
    return pfn;
  }

  /** Content, memcg charge, anon rmap state and every mapping move from `from` to `to` (which holds a ref). */
  private moveMappings(from: number, to: number, entry: (old: number) => number, match: (e: number) => boolean): void {
    const k = this.kernel;
    const s = k.store;
    k.pageBytes.copy(to, from);
    s.set(to, PG_anon);
    s.setMapping(to, s.mapping(from));
    s.setIndex(to, s.index(from));
    if (s.test(from, PG_anon_exclusive)) s.set(to, PG_anon_exclusive);
    else s.clear(to, PG_anon_exclusive);
    memcgMigrate(s, k.memcgs, from, to);
    const sites: [Mm, number][] = [];
    rmapWalk(k, from, (m, _vma, a) => {
      if (match(m.pgtable.pteGet(a))) sites.push([m, a]);
      return true;
    });
    for (const [m, a] of sites) {
      const range = invalidateStart(m, MMU_NOTIFY_MIGRATE, a, a + PAGE_SIZE, this.owner);
      m.pgtable.pteSet(a, entry(m.pgtable.pteGet(a)));
      s.mapcountAdd(to, 1);
      getPage(k, to);
      pageRemoveRmap(k, from);
      putPage(k, from);
      invalidateEnd(range);
    }
  }
}
