/**
 * Test helpers shared by this package's tests (not exported from index.ts): a notifier recorder and a tiny
 * device that installs device-private / device-exclusive entries the way migrate_vma_* / make_device_exclusive
 * would, so the core's handling of those entries can be tested before @hmmsim/migrate exists.
 */
import { MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_PRIVATE, type DevPagemap } from "../dev-pagemap.js";
import type { Kernel } from "../kernel.js";
import { splitHugePmd } from "../huge-memory.js";
import { memcgMigrate } from "../memcontrol.js";
import { registerPgmap, zoneDeviceFolioInitK, zoneDevicePageInit } from "../memremap.js";
import { MMU_NOTIFY_EVENT_NAMES, type MmuNotifierRange, type MmuNotifierSubscriptionsOps } from "../mmu-notifier-range.js";
import type { Mm } from "../mm.js";
import { PG_anon, PG_anon_exclusive, PG_lru, PG_uptodate } from "../page-flags.js";
import { allocPages, folioTrylock, folioUnlock, putPage } from "../page-ref.js";
import {
  isDevicePrivateEntry,
  isWritableDevicePrivateEntry,
  makeDeviceExclusiveEntry,
  makeDevicePrivateEntry,
  pfnPte,
  pmdMkhuge,
  ptePfn,
  ptePresent,
  pteWrite,
} from "../pgtable.js";
import { pageRemoveRmap, rmapWalk } from "../rmap.js";
import { VM_FAULT_OOM, type VmFault } from "../vm-fault.js";

export interface RecordedEvent {
  kind: "start" | "end" | "release";
  event: string;
  start: number;
  end: number;
  owner: unknown;
  mmId: number;
}

export class NotifierRecorder implements MmuNotifierSubscriptionsOps<Mm> {
  readonly log: RecordedEvent[] = [];
  invalidateRangeStart(r: MmuNotifierRange<Mm>): number {
    this.log.push({ kind: "start", event: MMU_NOTIFY_EVENT_NAMES[r.event], start: r.start, end: r.end, owner: r.owner, mmId: r.mm.id });
    return 0;
  }
  invalidateRangeEnd(r: MmuNotifierRange<Mm>): void {
    this.log.push({ kind: "end", event: MMU_NOTIFY_EVENT_NAMES[r.event], start: r.start, end: r.end, owner: r.owner, mmId: r.mm.id });
  }
  release(mm: Mm): void {
    this.log.push({ kind: "release", event: "MMU_NOTIFY_RELEASE", start: 0, end: Number.MAX_SAFE_INTEGER, owner: null, mmId: mm.id });
  }
  starts(): { event: string; start: number; end: number; owner: unknown }[] {
    return this.log.filter((e) => e.kind !== "end").map(({ event, start, end, owner }) => ({ event, start, end, owner }));
  }
  clear(): void {
    this.log.length = 0;
  }
}

export function record(mm: Mm): NotifierRecorder {
  const r = new NotifierRecorder();
  mm.notifierSubscriptions = r;
  return r;
}

/** A minimal device-private "driver": a pgmap, a free list, and a migrate_to_ram that copies back to RAM. */
export class FakeDevice {
  readonly owner = { name: "fake-device" };
  readonly pgmap: DevPagemap;
  readonly startPfn: number;
  readonly free: number[] = [];
  readonly freed: number[] = [];
  readonly faults: VmFault[] = [];
  /** Set to make migrate_to_ram fail. */
  failWith = 0;

  constructor(
    readonly k: Kernel,
    nrPages: number,
  ) {
    this.pgmap = {
      type: MEMORY_DEVICE_PRIVATE,
      range: { start: 0, end: -1 },
      owner: this.owner,
      ops: {
        pageFree: (pfn) => {
          this.freed.push(pfn);
          this.free.push(pfn);
        },
        migrateToRam: (vmf) => this.migrateToRam(vmf),
      },
    };
    this.startPfn = registerPgmap(k, this.pgmap, nrPages).startPfn;
    for (let i = nrPages - 1; i >= 0; i--) this.free.push(this.startPfn + i);
  }

  /** Move the present anon page at addr to a device page (what migrate_vma_* does for one page). */
  migrateToDevice(mm: Mm, addr: number): number {
    const k = this.k;
    const s = k.store;
    const pte = mm.pgtable.pteGet(addr);
    if (!ptePresent(pte)) throw new Error("not present");
    const src = ptePfn(pte);
    const dpfn = this.free.pop()!;
    zoneDevicePageInit(k, dpfn);
    k.pageBytes.copy(dpfn, src);
    s.set(dpfn, PG_anon);
    s.setMapping(dpfn, s.mapping(src));
    s.setIndex(dpfn, s.index(src));
    if (s.test(src, PG_anon_exclusive)) s.set(dpfn, PG_anon_exclusive);
    s.setMapcount(dpfn, s.mapcount(src));
    memcgMigrate(s, k.memcgs, src, dpfn);
    // Every mapping of src (after fork there may be several) now maps the device page.
    const maps = s.mapcount(src);
    rmapWalk(k, src, (m, _vma, a) => {
      const e = m.pgtable.pteGet(a);
      if (ptePresent(e) && ptePfn(e) === src) {
        m.pgtable.pteSet(a, makeDevicePrivateEntry(dpfn, pteWrite(e)));
        pageRemoveRmap(k, src);
        putPage(k, src);
      }
      return true;
    });
    s.setRefcount(dpfn, maps);
    folioUnlock(k, dpfn);
    return dpfn;
  }

  /**
   * Move the PMD-mapped THP at haddr to an order-9 device folio mapped by a device-private PMD (what
   * migrate_vma_* with MIGRATE_VMA_SELECT_COMPOUND does). Takes the device's first 512 pfns.
   */
  migrateThpToDevice(mm: Mm, haddr: number): number {
    const k = this.k;
    const s = k.store;
    const pmd = mm.pgtable.pmdGet(haddr);
    const head = ptePfn(pmd);
    const dhead = this.startPfn;
    this.free.splice(this.free.indexOf(dhead) - 511, 512);
    zoneDeviceFolioInitK(k, dhead, 9);
    for (let i = 0; i < 512; i++) {
      k.pageBytes.copy(dhead + i, head + i);
      s.setIndex(dhead + i, s.index(head + i));
      if (s.test(head + i, PG_anon_exclusive)) s.set(dhead + i, PG_anon_exclusive);
    }
    s.set(dhead, PG_anon);
    s.setMapping(dhead, s.mapping(head));
    memcgMigrate(s, k.memcgs, head, dhead);
    s.entireMapcountAdd(dhead, 1);
    s.entireMapcountAdd(head, -1);
    mm.pgtable.pmdSet(haddr, pmdMkhuge(makeDevicePrivateEntry(dhead, pteWrite(pmd))));
    folioUnlock(k, dhead);
    putPage(k, head);
    return dhead;
  }

  /** dev_pagemap_ops.migrate_to_ram: copy back to a new system page for every mapping of the device page. */
  migrateToRam(vmf: VmFault): number {
    this.faults.push(vmf);
    if (this.failWith !== 0) return this.failWith;
    const k = this.k;
    const s = k.store;
    // A fault on a huge device-private PMD: this fake driver splits the mapping and moves the one faulting page.
    if (vmf.atPmd) splitHugePmd(vmf.mm, vmf.vma, vmf.address);
    const dpfn = vmf.atPmd ? ptePfn(vmf.mm.pgtable.pteGet(vmf.address)) : vmf.page;
    const np = allocPages(k, 0);
    if (np < 0) return VM_FAULT_OOM;
    k.pageBytes.copy(np, dpfn);
    s.set(np, PG_anon | PG_lru | PG_uptodate);
    s.setMapping(np, s.mapping(dpfn));
    s.setIndex(np, s.index(dpfn));
    if (s.test(dpfn, PG_anon_exclusive)) s.set(np, PG_anon_exclusive);
    memcgMigrate(s, k.memcgs, dpfn, np);
    let maps = 0;
    rmapWalk(k, dpfn, (m, _vma, a) => {
      const e = m.pgtable.pteGet(a);
      if (isDevicePrivateEntry(e) && ptePfn(e) === dpfn) {
        m.pgtable.pteSet(a, pfnPte(np, isWritableDevicePrivateEntry(e), { dirty: isWritableDevicePrivateEntry(e) }));
        s.mapcountAdd(np, 1);
        pageRemoveRmap(k, dpfn);
        putPage(k, dpfn);
        maps++;
      }
      return true;
    });
    s.setRefcount(np, maps);
    return 0;
  }

  /** make_device_exclusive for one present anon page (no notifier: tests check the core's side). */
  makeExclusive(mm: Mm, addr: number): number {
    const pte = mm.pgtable.pteGet(addr);
    const pfn = ptePfn(pte);
    mm.pgtable.pteSet(addr, makeDeviceExclusiveEntry(pfn));
    return pfn;
  }
}

/**
 * A minimal MEMORY_DEVICE_COHERENT device: pages mapped by present PTEs, and a migrate_device_coherent_folio that
 * copies a page back to RAM when nothing but its mappings and the caller's reference hold it.
 */
export class FakeCoherentDevice {
  readonly owner = { name: "fake-coherent" };
  readonly pgmap: DevPagemap;
  readonly startPfn: number;
  readonly free: number[] = [];
  readonly migrated: number[] = [];
  constructor(
    readonly k: Kernel,
    nrPages: number,
  ) {
    this.pgmap = {
      type: MEMORY_DEVICE_COHERENT,
      range: { start: 0, end: -1 },
      owner: this.owner,
      ops: { pageFree: (pfn) => this.free.push(pfn) },
    };
    this.startPfn = registerPgmap(k, this.pgmap, nrPages).startPfn;
    for (let i = nrPages - 1; i >= 0; i--) this.free.push(this.startPfn + i);
  }

  /** Replace every mapping of the present anon page at addr by a coherent page (present PTEs). */
  place(mm: Mm, addr: number): number {
    const k = this.k;
    const s = k.store;
    const src = ptePfn(mm.pgtable.pteGet(addr));
    const dpfn = this.free.pop()!;
    zoneDevicePageInit(k, dpfn);
    this.remap(src, dpfn);
    folioUnlock(k, dpfn);
    s.setRefcount(dpfn, s.mapcount(dpfn));
    return dpfn;
  }

  private remap(src: number, dst: number): void {
    const k = this.k;
    const s = k.store;
    k.pageBytes.copy(dst, src);
    s.set(dst, PG_anon | (s.test(src, PG_anon_exclusive) ? PG_anon_exclusive : 0));
    s.setMapping(dst, s.mapping(src));
    s.setIndex(dst, s.index(src));
    memcgMigrate(s, k.memcgs, src, dst);
    rmapWalk(k, src, (m, _vma, a) => {
      const e = m.pgtable.pteGet(a);
      if (ptePresent(e) && ptePfn(e) === src) {
        m.pgtable.pteSet(a, pfnPte(dst, pteWrite(e), { dirty: pteWrite(e) }));
        s.mapcountAdd(dst, 1);
        pageRemoveRmap(k, src);
        putPage(k, src);
      }
      return true;
    });
  }

  /** kernel.migrateDeviceCoherentFolio: consumes the caller's reference; 0 or -EBUSY. */
  readonly migrateDeviceCoherentFolio = (pfn: number): number => {
    const k = this.k;
    const s = k.store;
    if (!folioTrylock(k, pfn)) {
      putPage(k, pfn);
      return -16;
    }
    const np = s.refcount(pfn) === s.mapcount(pfn) + 1 ? allocPages(k, 0) : -1;
    if (np < 0) {
      folioUnlock(k, pfn);
      putPage(k, pfn);
      return -16;
    }
    s.setRefcount(np, 0);
    this.remap(pfn, np);
    s.set(np, PG_lru | PG_uptodate);
    s.setRefcount(np, s.mapcount(np));
    folioUnlock(k, pfn);
    this.migrated.push(pfn);
    putPage(k, pfn);
    return 0;
  };
}
