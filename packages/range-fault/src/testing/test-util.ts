/**
 * Test helpers for this package's tests (not exported from index.ts): a kernel + mm + interval notifier set-up,
 * a locked hmmRangeFault call, and a tiny device-private "driver" that moves pages to its memory and back the way
 * migrate_vma_* and dev_pagemap_ops.migrate_to_ram would (with the MMU_NOTIFY_MIGRATE invalidation, owner = its
 * pgmap owner), before @hmmsim/migrate exists.
 */
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MEMORY_DEVICE_PRIVATE,
  MMU_NOTIFY_MIGRATE,
  PAGE_SIZE,
  PG_anon,
  PG_anon_exclusive,
  PG_lru,
  PG_uptodate,
  PROT_READ,
  PROT_WRITE,
  VM_FAULT_OOM,
  allocPages,
  createKernel,
  folioTestHugetlb,
  folioUnlock,
  invalidateEnd,
  invalidateStart,
  isDevicePrivateEntry,
  isWritableDevicePrivateEntry,
  makeDevicePrivateEntry,
  memcgMigrate,
  pageRemoveRmap,
  pfnPte,
  ptePfn,
  ptePresent,
  pteWrite,
  putPage,
  registerPgmap,
  rmapWalk,
  zoneDevicePageInit,
  type DevPagemap,
  type Kernel,
  type Mm,
  type MmuNotifierRange,
  type ThpMode,
  type VmFault,
} from "@hmmsim/core";
import { MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalReadBegin, mmuIntervalSetSeq, type NotifierMm } from "@hmmsim/mmu-notifier";
import { Mutex, type Engine } from "@hmmsim/engine";
import { InvariantViolationError, checkInvariants, type InvariantOptions, type Violation } from "@hmmsim/testing";
import { HMM_PFN_ERROR, HMM_PFN_VALID, HMM_PFN_WRITE, hmmPfnToPfn } from "../hmm-pfn.js";
import { hmmRangeFault, type HmmRange } from "../hmm-range-fault.js";
import { asNotifierMm } from "../notifier-mm.js";

export interface RecordedInvalidation {
  event: number;
  start: number;
  end: number;
  owner: unknown;
}

export interface TestSetup {
  k: Kernel;
  mm: Mm;
  /** The anonymous VMA's start. */
  addr: number;
  sub: MmuIntervalNotifier;
  /** Every invalidation the notifier saw. */
  invalidations: RecordedInvalidation[];
}

/** What assertTrackedInvariants checks a kernel with. */
export interface TrackedCheck {
  /** assertInvariants' options (references the test still holds, ...). */
  invariants?: InvariantOptions;
  /** Violations to drop, each for a stated reason (a known gap of the checker). */
  ignore?: (v: Violation) => boolean;
}

/** Kernels created by setup() since the last assertTrackedInvariants(), with what their check needs. */
const tracked: { k: Kernel; check: TrackedCheck }[] = [];

/**
 * Check the kernel invariants (@hmmsim/testing checkInvariants: refcounts, mapcounts, rss, memcg, page locks, no
 * migration entry left, allocator state) on every kernel setup() created since the last call, then forget them.
 * Test files call it from afterEach, so every test ends on a checked state. Throws InvariantViolationError.
 */
export function assertTrackedInvariants(): void {
  const list = tracked.splice(0);
  for (const { k, check } of list) {
    const v = checkInvariants(k, check.invariants).filter((x) => !(check.ignore?.(x) ?? false));
    if (v.length > 0) throw new InvariantViolationError(v);
  }
}

/** Set what assertTrackedInvariants checks `k` with (a kernel setup() created). */
export function trackInvariants(k: Kernel, check: TrackedCheck): void {
  const t = tracked.find((x) => x.k === k);
  if (t === undefined) throw new Error("trackInvariants: kernel not created by setup()");
  t.check = check;
}

/**
 * The two rules @hmmsim/testing's checker gets wrong for hugetlb (it does not model hugetlb; reported): it counts
 * hugetlb mappings in rss, but the kernel accounts them in mm->hugetlb_usage only (mm/hugetlb.c
 * hugetlb_count_add, no inc_mm_counter), and it expects free pool pages (refcount 0, PG_hugetlb, still allocated
 * from the buddy allocator: hugetlb's free lists) to be free in the allocator. Exactly those violations are
 * dropped: an rss_mismatch whose difference is the mm's hugetlb usage, an allocator_mismatch of a free pool page.
 */
export function hugetlbCheckerGap(k: Kernel): (v: Violation) => boolean {
  return (v) => {
    if (v.rule === "allocator_mismatch" && v.pfn !== undefined)
      return folioTestHugetlb(k, v.pfn) && k.store.refcount(k.store.folioHead(v.pfn)) === 0;
    if (v.rule === "rss_mismatch" && v.mmId !== undefined) {
      const m = /is (\d+), page tables map (\d+)$/.exec(v.message);
      const mm = k.mms.get(v.mmId);
      return m !== null && mm !== undefined && Number(m[2]) - Number(m[1]) === mm.hugetlbUsage;
    }
    return false;
  };
}

/**
 * A bytes-off kernel, one mm with an anonymous private mapping of `pages` pages (PROT_READ|PROT_WRITE unless
 * `prot`), and an interval notifier over the whole user address space whose invalidate set_seq's and records.
 */
export function setup(opts: { pages: number; thp?: ThpMode; prot?: number; ramMiB?: number }): TestSetup {
  const k = createKernel({ ramBytes: (opts.ramMiB ?? 64) * 1024 * 1024, bytes: false, thp: opts.thp ?? "never" });
  tracked.push({ k, check: {} });
  const mm = k.createMm();
  const addr = mm.mmap({ length: opts.pages * PAGE_SIZE, prot: opts.prot ?? PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  if (addr < 0) throw new Error(`mmap failed: ${addr}`);
  const sub = new MmuIntervalNotifier();
  const invalidations: RecordedInvalidation[] = [];
  const r = mmuIntervalNotifierInsert(sub, asNotifierMm(mm), 0, 2 ** 47, {
    invalidate(s, range: MmuNotifierRange<NotifierMm>, curSeq) {
      invalidations.push({ event: range.event, start: range.start, end: range.end, owner: range.owner });
      mmuIntervalSetSeq(s, curSeq);
      return true;
    },
  });
  if (r !== 0) throw new Error(`notifier insert failed: ${r}`);
  return { k, mm, addr, sub, invalidations };
}

/** An HmmRange over [start, start + npages pages) with a fresh sequence. */
export function makeRange(t: TestSetup, start: number, npages: number, init?: Partial<HmmRange>): HmmRange {
  return {
    notifier: t.sub,
    notifierSeq: mmuIntervalReadBegin(t.sub),
    start,
    end: start + npages * PAGE_SIZE,
    hmmPfns: new Float64Array(npages),
    defaultFlags: 0,
    pfnFlagsMask: 0,
    devPrivateOwner: null,
    ...init,
  };
}

/** hmmRangeFault under mmap_read_lock. */
export function lockedRangeFault(mm: Mm, range: HmmRange): number {
  if (!mm.mmapLock.tryDownRead()) throw new Error("mmap_lock busy");
  try {
    return hmmRangeFault(range);
  } finally {
    mm.mmapLock.upRead();
  }
}

/** A minimal device-private driver: a pgmap with `nrPages` pages, migration of single pages to it and back. */
export class TestDevice {
  readonly owner: { name: string };
  readonly pgmap: DevPagemap;
  readonly startPfn: number;
  readonly free: number[] = [];
  /** migrate_to_ram calls. */
  readonly faults: VmFault[] = [];
  /** Nonzero: migrate_to_ram fails with these VM_FAULT_* bits (device lost, out of memory...). */
  failWith = 0;

  constructor(
    readonly k: Kernel,
    nrPages: number,
    name = "test-device",
  ) {
    this.owner = { name };
    this.pgmap = {
      type: MEMORY_DEVICE_PRIVATE,
      range: { start: 0, end: -1 },
      owner: this.owner,
      ops: {
        pageFree: (pfn) => {
          this.free.push(pfn);
        },
        migrateToRam: (vmf) => this.migrateToRam(vmf),
      },
    };
    this.startPfn = registerPgmap(k, this.pgmap, nrPages).startPfn;
    for (let i = nrPages - 1; i >= 0; i--) this.free.push(this.startPfn + i);
  }

  /** Move the present anon page at addr into device memory (migrate_vma_setup/pages/finalize for one page). */
  migrateToDevice(mm: Mm, addr: number): number {
    const k = this.k;
    const s = k.store;
    const pte = mm.pgtable.pteGet(addr);
    if (!ptePresent(pte)) throw new Error("not present");
    const src = ptePfn(pte);
    const dpfn = this.free.pop()!;
    const range = invalidateStart(mm, MMU_NOTIFY_MIGRATE, addr, addr + PAGE_SIZE, this.owner);
    zoneDevicePageInit(k, dpfn);
    k.pageBytes.copy(dpfn, src);
    s.set(dpfn, PG_anon);
    s.setMapping(dpfn, s.mapping(src));
    s.setIndex(dpfn, s.index(src));
    if (s.test(src, PG_anon_exclusive)) s.set(dpfn, PG_anon_exclusive);
    s.setMapcount(dpfn, s.mapcount(src));
    memcgMigrate(s, k.memcgs, src, dpfn);
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
    invalidateEnd(range);
    return dpfn;
  }

  /** dev_pagemap_ops.migrate_to_ram: MMU_NOTIFY_MIGRATE (owner = this device), then copy back to a new page. */
  migrateToRam(vmf: VmFault): number {
    this.faults.push(vmf);
    if (this.failWith !== 0) return this.failWith;
    const k = this.k;
    const s = k.store;
    const dpfn = vmf.page;
    const range = invalidateStart(vmf.mm, MMU_NOTIFY_MIGRATE, vmf.address, vmf.address + PAGE_SIZE, this.owner);
    try {
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
          const w = isWritableDevicePrivateEntry(e);
          m.pgtable.pteSet(a, pfnPte(np, w, { dirty: w }));
          s.mapcountAdd(np, 1);
          pageRemoveRmap(k, dpfn);
          putPage(k, dpfn);
          maps++;
        }
        return true;
      });
      s.setRefcount(np, maps);
      return 0;
    } finally {
      invalidateEnd(range);
    }
  }
}

/**
 * A device page table mirroring part of an mm (lib/test_hmm.c's dmirror->pt and dmirror_interval_invalidate /
 * dmirror_do_fault, reduced): vpn → { pfn, write }, a driver mutex, and an interval notifier whose invalidate
 * clears the range under that mutex and set_seq's.
 *
 * The invalidate callback is synchronous (core calls it from inside munmap/madvise/...). The kernel's callback
 * sleeps in mutex_lock; here it uses tryLock, which always succeeds because the mirror loop holds the driver
 * lock only across a synchronous critical section (never across a yield point), so whenever another task runs
 * the lock is free. A failed tryLock would mean the model is broken, and throws.
 */
export class DeviceMirror {
  readonly pt = new Map<number, { pfn: number; write: boolean }>();
  readonly lock: Mutex;
  readonly sub = new MmuIntervalNotifier();
  /** Invalidations seen (all events; this model filters none). */
  invalidations = 0;

  constructor(
    readonly mm: Mm,
    engine: Engine | null,
    start: number,
    length: number,
  ) {
    this.lock = new Mutex("dmirror->mutex", engine);
    const r = mmuIntervalNotifierInsert(this.sub, asNotifierMm(mm), start, length, {
      invalidate: (sub, range, curSeq) => {
        if (!this.lock.tryLock()) throw new Error("DeviceMirror: invalidate found the driver lock held (model broken)");
        this.invalidations++;
        mmuIntervalSetSeq(sub, curSeq);
        for (const vpn of [...this.pt.keys()]) if (vpn * PAGE_SIZE >= range.start && vpn * PAGE_SIZE < range.end) this.pt.delete(vpn);
        this.lock.unlock();
        return true;
      },
    });
    if (r !== 0) throw new Error(`notifier insert failed: ${r}`);
  }

  /** dmirror_do_fault(): store every VALID entry (with its write bit), drop the others. Call under `lock`. */
  update(range: HmmRange): number {
    if (!this.lock.locked) throw new Error("DeviceMirror.update without the driver lock");
    const pfns = range.hmmPfns;
    for (let i = 0; i < pfns.length; i++) {
      const vpn = range.start / PAGE_SIZE + i;
      const e = pfns[i]!;
      if (e & HMM_PFN_ERROR || !(e & HMM_PFN_VALID)) this.pt.delete(vpn);
      else this.pt.set(vpn, { pfn: hmmPfnToPfn(e), write: (e & HMM_PFN_WRITE) !== 0 });
    }
    return 0;
  }

  /** Every device mapping must map the page the CPU page table maps there now, writable only if the CPU's is. */
  assertNoStale(): void {
    const pt = this.mm.pgtable;
    for (const [vpn, d] of this.pt) {
      const addr = vpn * PAGE_SIZE;
      const pmd = pt.pmdGet(addr);
      let pte = pmd !== 0 ? pmd : pt.pteGet(addr);
      let pfn = ptePfn(pte);
      if (pmd !== 0) pfn += (addr % (512 * PAGE_SIZE)) / PAGE_SIZE;
      if (pte === 0 || !ptePresent(pte) || pfn !== d.pfn || (d.write && !pteWrite(pte))) {
        if (pte === 0) pte = NaN;
        throw new Error(
          `stale device mapping at 0x${addr.toString(16)}: device maps pfn ${d.pfn}${d.write ? " (write)" : ""}, CPU ${
            Number.isNaN(pte) ? "maps nothing" : ptePresent(pte) ? `maps pfn ${pfn}${pteWrite(pte) ? " (write)" : ""}` : "has a non-present entry"
          }`,
        );
      }
    }
  }
}

/**
 * munmap(2) from an engine task. Core's Mm.munmap takes mmap_lock with tryDownWrite (the functional plane cannot
 * sleep) and throws when it is held, so a task first waits for the lock with downWrite, releases it and calls
 * munmap in the same synchronous step. If up_write handed the lock straight to a queued waiter, it waits again.
 */
export async function munmapFromTask(mm: Mm, addr: number, length: number): Promise<number> {
  return lockedFromTask(mm, () => mm.munmap(addr, length));
}

/** Run a core mm operation that takes mmap_lock for write itself (munmap, madvise, mprotect) from a task. */
export async function lockedFromTask(mm: Mm, op: () => number): Promise<number> {
  for (;;) {
    await mm.mmapLock.downWrite();
    mm.mmapLock.upWrite();
    if (!mm.mmapLock.isLocked() && mm.mmapLock.waiting === 0) return op();
  }
}
