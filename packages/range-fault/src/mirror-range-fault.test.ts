import { EBUSY, EFAULT, EIO, MADV_DONTNEED, PAGE_SIZE, ptePfn } from "@hmmsim/core";
import { Engine, PS_PER_MS } from "@hmmsim/engine";
import { afterEach, describe, expect, it } from "vitest";
import { HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE } from "./hmm-pfn.js";
import type { HmmRange } from "./hmm-range-fault.js";
import { mirrorRangeFault, mirrorRangeFaultStats, type MirrorWindow } from "./mirror-range-fault.js";
import { DeviceMirror, TestDevice, assertTrackedInvariants, lockedFromTask, setup } from "./testing/test-util.js";

// Every test ends with the kernel invariants checked (setup() tracks its kernel).
afterEach(assertTrackedInvariants);

function mirrorSetup(pages: number, engine: Engine | null = null) {
  const t = setup({ pages });
  if (engine) t.mm.mmapLock.engine = engine;
  const mirror = new DeviceMirror(t.mm, engine, t.addr, pages * PAGE_SIZE);
  const range = (defaultFlags: number): HmmRange => ({
    notifier: mirror.sub,
    notifierSeq: 0,
    start: t.addr,
    end: t.addr + pages * PAGE_SIZE,
    hmmPfns: new Float64Array(pages),
    defaultFlags,
    pfnFlagsMask: 0,
    devPrivateOwner: null,
  });
  return { ...t, mirror, range };
}

describe("mirrorRangeFault (dmirror_range_fault) in the synchronous plane", () => {
  it("faults the range and programs the device under the driver lock in one attempt", async () => {
    const s = mirrorSetup(4);
    const p = s.mm.touch(s.addr, true);
    const stats = mirrorRangeFaultStats();
    let lockedDuringUpdate = false;
    const ret = await mirrorRangeFault(s.range(HMM_PFN_REQ_FAULT), {
      driverLock: s.mirror.lock,
      update: (r) => {
        lockedDuringUpdate = s.mirror.lock.locked;
        return s.mirror.update(r);
      },
      stats,
    });
    expect(ret).toBe(0);
    expect(lockedDuringUpdate).toBe(true);
    expect(s.mirror.lock.locked).toBe(false);
    expect(s.mm.mmapLock.isLocked()).toBe(false);
    expect(stats).toEqual({ attempts: 1, rangeFaultBusy: 0, readRetry: 0 });
    expect(s.mirror.pt.get(s.addr / PAGE_SIZE)).toEqual({ pfn: p, write: true });
    expect(s.mirror.pt.get(s.addr / PAGE_SIZE + 1)).toEqual({ pfn: s.k.zeroPfn, write: false });
    s.mirror.assertNoStale();
  });

  it("an invalidation caused by the range fault itself (COW after fork) gives -EBUSY, and the loop retries", async () => {
    const s = mirrorSetup(2);
    const old = s.mm.touch(s.addr, true);
    s.mm.fork();
    const stats = mirrorRangeFaultStats();
    const ret = await mirrorRangeFault(s.range(HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE), {
      driverLock: s.mirror.lock,
      update: (r) => s.mirror.update(r),
      stats,
    });
    expect(ret).toBe(0);
    expect(stats).toEqual({ attempts: 2, rangeFaultBusy: 1, readRetry: 0 });
    const now = ptePfn(s.mm.pgtable.pteGet(s.addr));
    expect(now).not.toBe(old);
    expect(s.mirror.pt.get(s.addr / PAGE_SIZE)).toEqual({ pfn: now, write: true });
    s.mirror.assertNoStale();
  });

  it("a migrate_to_ram of another device's page triggered by the range fault gives -EBUSY, and the loop retries", async () => {
    const s = mirrorSetup(2);
    const other = new TestDevice(s.k, 8, "other-gpu");
    s.mm.touch(s.addr, true);
    s.mm.touch(s.addr + PAGE_SIZE, true);
    const dpfn = other.migrateToDevice(s.mm, s.addr + PAGE_SIZE);
    const stats = mirrorRangeFaultStats();
    const range = { ...s.range(HMM_PFN_REQ_FAULT), devPrivateOwner: { name: "this-gpu" } };
    const ret = await mirrorRangeFault(range, { driverLock: s.mirror.lock, update: (r) => s.mirror.update(r), stats });
    expect(ret).toBe(0);
    expect(other.faults).toHaveLength(1);
    expect(stats).toEqual({ attempts: 2, rangeFaultBusy: 1, readRetry: 0 });
    const ram = ptePfn(s.mm.pgtable.pteGet(s.addr + PAGE_SIZE));
    expect(ram).not.toBe(dpfn);
    expect(s.mirror.pt.get(s.addr / PAGE_SIZE + 1)).toEqual({ pfn: ram, write: true });
    s.mirror.assertNoStale();
  });

  it("an invalidation between hmmRangeFault and read_retry makes read_retry fail; the loop redoes read_begin", async () => {
    const s = mirrorSetup(2);
    const p0 = s.mm.touch(s.addr, true);
    s.mm.touch(s.addr + PAGE_SIZE, true);
    const stats = mirrorRangeFaultStats();
    const seen: string[] = [];
    let updates = 0;
    const window = (label: MirrorWindow, attempt: number) => {
      seen.push(`${attempt}:${label}`);
      // The mmap lock is not held here: MADV_DONTNEED takes it for write and zaps page 1.
      if (attempt === 0 && label === "after-range-fault") expect(s.mm.madvise(s.addr + PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED)).toBe(0);
    };
    const ret = await mirrorRangeFault(s.range(HMM_PFN_REQ_FAULT), {
      driverLock: s.mirror.lock,
      update: (r) => (updates++, s.mirror.update(r)),
      stats,
      window,
    });
    expect(ret).toBe(0);
    expect(stats).toEqual({ attempts: 2, rangeFaultBusy: 0, readRetry: 1 });
    expect(updates).toBe(1);
    expect(seen).toEqual([
      "0:after-read-begin",
      "0:after-range-fault",
      "0:before-driver-lock",
      "1:after-read-begin",
      "1:after-range-fault",
      "1:before-driver-lock",
    ]);
    // Page 1 was zapped: the second pass faulted the zero page in; the old page is not mirrored.
    expect(s.mirror.pt.get(s.addr / PAGE_SIZE)).toEqual({ pfn: p0, write: true });
    expect(s.mirror.pt.get(s.addr / PAGE_SIZE + 1)).toEqual({ pfn: s.k.zeroPfn, write: false });
    s.mirror.assertNoStale();
  });

  it("gives up with -EBUSY when the attempt budget runs out, without programming the device", async () => {
    const s = mirrorSetup(1);
    s.mm.touch(s.addr, true);
    const stats = mirrorRangeFaultStats();
    let updates = 0;
    const ret = await mirrorRangeFault(s.range(HMM_PFN_REQ_FAULT), {
      driverLock: s.mirror.lock,
      update: () => ++updates && 0,
      stats,
      maxAttempts: 5,
      window: (label) => {
        if (label === "after-read-begin") s.mm.madvise(s.addr, PAGE_SIZE, MADV_DONTNEED);
      },
    });
    expect(ret).toBe(-EBUSY);
    expect(stats).toEqual({ attempts: 5, rangeFaultBusy: 5, readRetry: 0 });
    expect(updates).toBe(0);
  });

  it("returns hmmRangeFault's other errors and update's errors as is; -EFAULT once the mm has exited", async () => {
    const s = mirrorSetup(2);
    const outside = { ...s.range(HMM_PFN_REQ_FAULT), start: s.addr - PAGE_SIZE, end: s.addr + PAGE_SIZE };
    let updates = 0;
    expect(await mirrorRangeFault(outside, { driverLock: s.mirror.lock, update: () => ++updates && 0 })).toBe(-EFAULT);
    expect(updates).toBe(0);
    expect(await mirrorRangeFault(s.range(HMM_PFN_REQ_FAULT), { driverLock: s.mirror.lock, update: () => -EIO })).toBe(-EIO);
    expect(s.mirror.lock.locked).toBe(false);
    await expect(
      mirrorRangeFault(s.range(HMM_PFN_REQ_FAULT), {
        driverLock: s.mirror.lock,
        update: () => {
          throw new Error("device error");
        },
      }),
    ).rejects.toThrow("device error");
    expect(s.mirror.lock.locked).toBe(false);
    s.mm.exit();
    expect(await mirrorRangeFault(s.range(HMM_PFN_REQ_FAULT), { driverLock: s.mirror.lock, update: () => 0 })).toBe(-EFAULT);
  });
});

describe("mirrorRangeFault on the engine", () => {
  it("counts HMM_RANGE_DEFAULT_TIMEOUT (1000 ms) in virtual time", async () => {
    const engine = new Engine({ seed: 1 });
    const s = mirrorSetup(1, engine);
    s.mm.touch(s.addr, true);
    const stats = mirrorRangeFaultStats();
    let ret = 0;
    let updates = 0;
    engine.spawn("device", async () => {
      ret = await mirrorRangeFault(s.range(HMM_PFN_REQ_FAULT), {
        engine,
        driverLock: s.mirror.lock,
        update: () => ++updates && 0,
        stats,
        window: async (label) => {
          if (label !== "before-driver-lock") return;
          await engine.sleep(300 * PS_PER_MS); // the device is slow to get to its lock...
          expect(await lockedFromTask(s.mm, () => s.mm.madvise(s.addr, PAGE_SIZE, MADV_DONTNEED))).toBe(0); // ...and the CPU moves on
        },
      });
    });
    await engine.run();
    expect(ret).toBe(-EBUSY);
    expect(updates).toBe(0);
    // Attempts start at 0, 300, 600, 900 ms; at 1200 ms the deadline (1000 ms) has passed.
    expect(stats).toEqual({ attempts: 4, rangeFaultBusy: 0, readRetry: 4 });
    expect(engine.now).toBe(1200 * PS_PER_MS);
  });

  it("waits in read_begin and for the mmap lock like a task, and mirrors what the CPU maps at the end", async () => {
    const engine = new Engine({ seed: 3 });
    const s = mirrorSetup(4, engine);
    for (let i = 0; i < 4; i++) s.mm.touch(s.addr + i * PAGE_SIZE, true);
    let ret = -1;
    engine.spawn("device", async () => {
      ret = await mirrorRangeFault(s.range(HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE), { engine, driverLock: s.mirror.lock, update: (r) => s.mirror.update(r) });
    });
    engine.spawn("cpu", async () => {
      await s.mm.mmapLock.downWrite(); // hold mmap_lock for write for a while: the device's down_read waits
      await engine.sleep(5 * PS_PER_MS);
      s.mm.mmapLock.upWrite();
    });
    await engine.run();
    expect(ret).toBe(0);
    expect(engine.now).toBe(5 * PS_PER_MS);
    for (let i = 0; i < 4; i++) {
      const pte = s.mm.pgtable.pteGet(s.addr + i * PAGE_SIZE);
      expect(s.mirror.pt.get(s.addr / PAGE_SIZE + i)).toEqual({ pfn: ptePfn(pte), write: true });
    }
    s.mirror.assertNoStale();
  });
});
