// hmmRangeFault (@hmmsim/range-fault, mm/hmm.c) over the page-table entries only this package's operations produce:
// device-exclusive entries (makeDeviceExclusive), PTE and PMD migration entries (between migrate_vma_setup and
// migrate_vma_finalize), and huge device-private PMDs (a THP migrated with MIGRATE_VMA_SELECT_COMPOUND). The
// range-fault package cannot depend on this one (this one's tests depend on it), so these cases live here, on
// states produced by the real operations; every test ends with the kernel invariants checked.
import {
  EBUSY,
  HPAGE_PMD_NR,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MMU_NOTIFY_CLEAR,
  MMU_NOTIFY_EXCLUSIVE,
  MMU_NOTIFY_MIGRATE,
  PAGE_SIZE,
  PMD_SIZE,
  PROT_READ,
  PROT_WRITE,
  createKernel,
  folioUnlock,
  isDeviceExclusiveEntry,
  isDevicePrivateEntry,
  isMigrationEntry,
  isWritableDevicePrivateEntry,
  pmdTransHuge,
  pteIsHuge,
  ptePfn,
  ptePresent,
  pteWrite,
  putPage,
  type Kernel,
  type Mm,
  type MmuNotifierRange,
} from "@hmmsim/core";
import { MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalReadBegin, mmuIntervalSetSeq, type NotifierMm } from "@hmmsim/mmu-notifier";
import {
  HMM_PFN_DMA_MAPPED,
  HMM_PFN_ERROR,
  HMM_PFN_REQ_FAULT,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  asNotifierMm,
  hmmPfnFlagsOrder,
  hmmRangeFault,
  makeHmmPfn,
  type HmmRange,
} from "@hmmsim/range-fault";
import { afterEach, describe, expect, it } from "vitest";
import { makeDeviceExclusive } from "./make-device-exclusive.js";
import { migrateVmaFinalize, migrateVmaPages, migrateVmaSetup } from "./migrate-device.js";
import { MIGRATE_PFN_COMPOUND, MIGRATE_PFN_MIGRATE, MIGRATE_VMA_SELECT_COMPOUND, MIGRATE_VMA_SELECT_SYSTEM, migratePfn, migrateVmaInit } from "./migrate-pfn.js";
import { TestDevice } from "./testing/test-driver.js";
import { assertTrackedInvariants, locked, pattern, setup, trackKernel } from "./testing/test-helpers.js";

afterEach(assertTrackedInvariants);

const P = PAGE_SIZE;
const N = HPAGE_PMD_NR;
const VW = HMM_PFN_VALID | HMM_PFN_WRITE;
const ORDER9 = hmmPfnFlagsOrder(9);

interface Mirror {
  sub: MmuIntervalNotifier;
  events: { event: number; start: number; end: number; owner: unknown }[];
  /** An HmmRange over [start, start + npages pages) with a fresh notifier sequence. */
  range(start: number, npages: number, init?: Partial<HmmRange>): HmmRange;
}

/** An interval notifier over the whole address space that records every invalidation and set_seq's. */
function mirror(mm: Mm): Mirror {
  const sub = new MmuIntervalNotifier();
  const events: Mirror["events"] = [];
  const r = mmuIntervalNotifierInsert(sub, asNotifierMm(mm), 0, 2 ** 47, {
    invalidate(s, range: MmuNotifierRange<NotifierMm>, seq) {
      events.push({ event: range.event, start: range.start, end: range.end, owner: range.owner });
      mmuIntervalSetSeq(s, seq);
      return true;
    },
  });
  if (r !== 0) throw new Error(`mmu_interval_notifier_insert: ${r}`);
  return {
    sub,
    events,
    range: (start, npages, init) => ({
      notifier: sub,
      notifierSeq: mmuIntervalReadBegin(sub),
      start,
      end: start + npages * P,
      hmmPfns: new Float64Array(npages),
      defaultFlags: 0,
      pfnFlagsMask: 0,
      devPrivateOwner: null,
      ...init,
    }),
  };
}

/** hmmRangeFault under mmap_read_lock (nested inside a driver's read-locked migration is fine: it is shared). */
const rangeFault = (mm: Mm, r: HmmRange): number => locked(mm, () => hmmRangeFault(r));

/** A THP-"always" kernel (tracked) with a PMD-aligned 2 MiB anonymous region whose first write maps a THP. */
function thpSetup(): { k: Kernel; mm: Mm; h: number } {
  const k = trackKernel(createKernel({ ramBytes: 32 << 20, bytes: true, thp: "always" }));
  const mm = k.createMm();
  const a = mm.mmap({ length: 2 * PMD_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  return { k, mm, h: Math.ceil(a / PMD_SIZE) * PMD_SIZE };
}

describe("hmmRangeFault over a device-exclusive entry (make_device_exclusive)", () => {
  it("0 in a snapshot, also for the owner; a fault restores the PTE (MMU_NOTIFY_CLEAR → -EBUSY), then pfn | VALID | WRITE", () => {
    const { k, mm, a } = setup();
    mm.write(a, pattern(1));
    const pfn = ptePfn(mm.pgtable.pteGet(a));
    const m = mirror(mm);
    const owner = { name: "atomics" };
    // dmirror_atomic_map: make the page exclusive, program the device, then unlock and put the folio.
    expect(locked(mm, () => makeDeviceExclusive(mm, a, owner))).toBe(pfn);
    folioUnlock(k, pfn);
    putPage(k, pfn);
    expect(isDeviceExclusiveEntry(mm.pgtable.pteGet(a))).toBe(true);
    expect(m.events).toEqual([{ event: MMU_NOTIFY_EXCLUSIVE, start: a, end: a + P, owner }]);

    for (const devPrivateOwner of [null, owner]) {
      const snap = m.range(a, 1, { devPrivateOwner });
      snap.hmmPfns[0] = makeHmmPfn(77, HMM_PFN_VALID | HMM_PFN_DMA_MAPPED);
      expect(rangeFault(mm, snap)).toBe(0);
      expect(snap.hmmPfns[0]).toBe(HMM_PFN_DMA_MAPPED); // never VALID, not even to the device holding it
    }
    expect(isDeviceExclusiveEntry(mm.pgtable.pteGet(a))).toBe(true);

    const f = m.range(a, 1, { defaultFlags: HMM_PFN_REQ_FAULT });
    expect(rangeFault(mm, f)).toBe(-EBUSY);
    // remove_device_exclusive_entry: MMU_NOTIFY_CLEAR with owner NULL, the PTE is present and writable again
    expect(m.events.at(-1)).toEqual({ event: MMU_NOTIFY_CLEAR, start: a, end: a + P, owner: null });
    const pte = mm.pgtable.pteGet(a);
    expect(ptePresent(pte) && pteWrite(pte) && ptePfn(pte) === pfn).toBe(true);
    const again = m.range(a, 1, { defaultFlags: HMM_PFN_REQ_FAULT });
    expect(rangeFault(mm, again)).toBe(0);
    expect(again.hmmPfns[0]).toBe(makeHmmPfn(pfn, VW));
    expect(mm.read(a, P)).toEqual(pattern(1));
  });
});

describe("hmmRangeFault during a migration (between migrate_vma_setup and migrate_vma_finalize)", () => {
  it("a PTE migration entry: 0 in a snapshot; with a fault request the walk stops there with -EBUSY; after finalize the device page", () => {
    const { k, mm, a } = setup();
    for (let i = 0; i < 3; i++) mm.write(a + i * P, pattern(i));
    const p0 = ptePfn(mm.pgtable.pteGet(a));
    const p2 = ptePfn(mm.pgtable.pteGet(a + 2 * P));
    const dev = new TestDevice(k, 4);
    const m = mirror(mm);
    const src = [0];
    const dst = [0];
    const args = migrateVmaInit({ vma: mm.vmaLookup(a), start: a + P, end: a + 2 * P, src, dst, pgmapOwner: dev.owner, flags: MIGRATE_VMA_SELECT_SYSTEM });
    locked(mm, () => {
      expect(migrateVmaSetup(args)).toBe(0);
      expect(isMigrationEntry(mm.pgtable.pteGet(a + P))).toBe(true);
      // The collect's MMU_NOTIFY_MIGRATE moved the sequence; a range begun now sees the migration entry.
      const snap = m.range(a, 3);
      expect(hmmRangeFault(snap)).toBe(0);
      expect(Array.from(snap.hmmPfns)).toEqual([makeHmmPfn(p0, VW), 0, makeHmmPfn(p2, VW)]);
      // kernel: migration_entry_wait, then the walk restarts; the synchronous plane stops at `last` with -EBUSY.
      const f = m.range(a, 3, { defaultFlags: HMM_PFN_REQ_FAULT });
      f.hmmPfns.fill(HMM_PFN_DMA_MAPPED);
      expect(hmmRangeFault(f)).toBe(-EBUSY);
      expect(Array.from(f.hmmPfns)).toEqual([makeHmmPfn(p0, VW | HMM_PFN_DMA_MAPPED), HMM_PFN_DMA_MAPPED, HMM_PFN_DMA_MAPPED]);
      expect(isMigrationEntry(mm.pgtable.pteGet(a + P))).toBe(true);
      // The driver completes the migration.
      const d = dev.allocDevicePage();
      k.pageBytes.copy(d, ptePfn(mm.pgtable.pteGet(a + P)));
      dst[0] = migratePfn(d);
      migrateVmaPages(args);
      expect(src[0]! & MIGRATE_PFN_MIGRATE).toBe(MIGRATE_PFN_MIGRATE);
      migrateVmaFinalize(args);
    });
    const e = mm.pgtable.pteGet(a + P);
    expect(isWritableDevicePrivateEntry(e)).toBe(true);
    const own = m.range(a, 3, { defaultFlags: HMM_PFN_REQ_FAULT, devPrivateOwner: dev.owner });
    expect(rangeFault(mm, own)).toBe(0);
    expect(Array.from(own.hmmPfns)).toEqual([makeHmmPfn(p0, VW), makeHmmPfn(ptePfn(e), VW), makeHmmPfn(p2, VW)]);
    expect(mm.read(a + P, P)).toEqual(pattern(1)); // the CPU read faults it back (migrate_to_ram)
    expect(dev.faults).toBe(1);
  });

  it("a PMD migration entry (SELECT_COMPOUND): 0 for every page, -EBUSY with a fault request; finalize restores the THP", () => {
    const { mm, h } = thpSetup();
    mm.write(h + 5 * P, pattern(5));
    const pmd = mm.pgtable.pmdGet(h);
    expect(pmdTransHuge(pmd)).toBe(true);
    const head = ptePfn(pmd);
    const m = mirror(mm);
    const src = new Float64Array(N);
    const dst = new Float64Array(N);
    const owner = { name: "dmirror" };
    const args = migrateVmaInit({ vma: mm.vmaLookup(h), start: h, end: h + PMD_SIZE, src, dst, pgmapOwner: owner, flags: MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND });
    locked(mm, () => {
      expect(migrateVmaSetup(args)).toBe(0);
      expect(src[0]! & MIGRATE_PFN_COMPOUND).toBe(MIGRATE_PFN_COMPOUND);
      const e = mm.pgtable.pmdGet(h);
      expect(isMigrationEntry(e) && pteIsHuge(e)).toBe(true);
      const snap = m.range(h + 100 * P, 4);
      snap.hmmPfns.fill(makeHmmPfn(3, HMM_PFN_VALID));
      expect(hmmRangeFault(snap)).toBe(0);
      expect(Array.from(snap.hmmPfns)).toEqual([0, 0, 0, 0]);
      const f = m.range(h, 4, { defaultFlags: HMM_PFN_REQ_FAULT });
      f.hmmPfns.fill(HMM_PFN_DMA_MAPPED);
      expect(hmmRangeFault(f)).toBe(-EBUSY);
      expect(Array.from(f.hmmPfns)).toEqual(new Array(4).fill(HMM_PFN_DMA_MAPPED));
      // The driver has no device THP to give: finalize straight after setup (test_hmm's allocation-error path).
      migrateVmaFinalize(args);
    });
    expect(mm.pgtable.pmdGet(h)).toBe(pmd);
    const again = m.range(h + 4 * P, 2, { defaultFlags: HMM_PFN_REQ_FAULT });
    expect(rangeFault(mm, again)).toBe(0);
    expect(Array.from(again.hmmPfns)).toEqual([makeHmmPfn(head + 4, VW | ORDER9), makeHmmPfn(head + 5, VW | ORDER9)]);
    expect(mm.read(h + 5 * P, P)).toEqual(pattern(5));
  });
});

describe("hmmRangeFault over a huge device-private PMD (a THP migrated with MIGRATE_VMA_SELECT_COMPOUND)", () => {
  it("the owner gets every pfn VALID | WRITE | order 9; another owner ERROR (unlike the PTE level), and its fault brings the THP back", () => {
    const { k, mm, h } = thpSetup();
    mm.write(h + 7 * P, pattern(7));
    const dev = new TestDevice(k, N, undefined, "dmirror", 1);
    const { args } = dev.migrateToDevice(mm, h, h + PMD_SIZE, { compound: true });
    expect(args.src![0]! & (MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND)).toBe(MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND);
    const e = mm.pgtable.pmdGet(h);
    expect(isDevicePrivateEntry(e) && pteIsHuge(e) && isWritableDevicePrivateEntry(e)).toBe(true);
    const dhead = ptePfn(e);
    const m = mirror(mm);

    const own = m.range(h, N, { defaultFlags: HMM_PFN_REQ_FAULT, devPrivateOwner: dev.owner });
    expect(rangeFault(mm, own)).toBe(0);
    for (let i = 0; i < N; i++) expect(own.hmmPfns[i]).toBe(makeHmmPfn(dhead + i, VW | ORDER9));
    const mid = m.range(h + 100 * P, 2, { devPrivateOwner: dev.owner });
    expect(rangeFault(mm, mid)).toBe(0);
    expect(Array.from(mid.hmmPfns)).toEqual([makeHmmPfn(dhead + 100, VW | ORDER9), makeHmmPfn(dhead + 101, VW | ORDER9)]);
    expect(dev.faults).toBe(0);

    for (const devPrivateOwner of [{ name: "other" }, null]) {
      const other = m.range(h, 4, { devPrivateOwner });
      expect(rangeFault(mm, other)).toBe(0);
      expect(Array.from(other.hmmPfns)).toEqual(new Array(4).fill(HMM_PFN_ERROR));
    }
    expect(m.events).toEqual([]);

    // Another owner's fault: do_huge_pmd_device_private hands the whole folio to migrate_to_ram, whose
    // MMU_NOTIFY_MIGRATE (owner: the device) invalidates the range → -EBUSY; the retry sees the RAM THP.
    const f = m.range(h, 4, { defaultFlags: HMM_PFN_REQ_FAULT, devPrivateOwner: { name: "other" } });
    expect(rangeFault(mm, f)).toBe(-EBUSY);
    expect(dev.faults).toBe(1);
    expect(m.events.map((x) => [x.event, x.start, x.end, x.owner])).toEqual([[MMU_NOTIFY_MIGRATE, h, h + PMD_SIZE, dev.owner]]);
    const back = mm.pgtable.pmdGet(h);
    expect(pmdTransHuge(back)).toBe(true);
    const head = ptePfn(back);
    const again = m.range(h, 4, { defaultFlags: HMM_PFN_REQ_FAULT, devPrivateOwner: { name: "other" } });
    expect(rangeFault(mm, again)).toBe(0);
    expect(Array.from(again.hmmPfns)).toEqual([0, 1, 2, 3].map((i) => makeHmmPfn(head + i, VW | ORDER9)));
    expect(dev.freeHuge).toEqual([dhead]);
    expect(mm.read(h + 7 * P, P)).toEqual(pattern(7));
  });
});
