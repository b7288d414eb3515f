// Acceptance (issue 4): the schedule explorer runs the documented mirror loop against a concurrent munmap under
// ≥ 500 interleavings with no stale device mapping, and catches a variant that omits mmu_interval_read_retry.
//
// Model per run: a bytes-off kernel, one mm with 8 written anonymous pages, a device page table (DeviceMirror:
// vpn → pfn, a driver Mutex, an interval notifier whose invalidate clears the range under that mutex and
// set_seq's). Task "device" mirrors the range twice through the loop (a fault request, then a snapshot); the
// loop yields where the kernel drops locks (after read_begin, after hmmRangeFault + mmap_read_unlock, before the
// driver lock). Task "cpu" munmaps pages 2..5 and then MADV_DONTNEEDs page 7, each with mmap_lock taken for
// write through the engine's RwSemaphore (see lockedFromTask in test-util.ts: core's Mm.munmap takes the lock
// with tryDownWrite itself). After the run every device mapping must map the page the CPU maps there now.
import { EBUSY, EFAULT, MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, createKernel, errnoName } from "@hmmsim/core";
import { explore, replay, type Engine, type ExploreOptions } from "@hmmsim/engine";
import { mmuIntervalReadBeginWait } from "@hmmsim/mmu-notifier";
import { describe, expect, it } from "vitest";
import { HMM_PFN_REQ_FAULT } from "./hmm-pfn.js";
import { hmmRangeFault, type HmmRange } from "./hmm-range-fault.js";
import { mirrorRangeFault, mirrorRangeFaultStats, type MirrorRangeFaultStats } from "./mirror-range-fault.js";
import { DeviceMirror, lockedFromTask, munmapFromTask } from "./test-util.js";

const N = 8;

/** The loop of hmm.rst without mmu_interval_read_retry (the bug the explorer must catch). */
async function mirrorWithoutReadRetry(range: HmmRange, mirror: DeviceMirror, engine: Engine): Promise<number> {
  const mm = mirror.mm;
  for (;;) {
    range.notifierSeq = await mmuIntervalReadBeginWait(range.notifier, engine);
    await engine.yieldPoint("after-read-begin");
    await mm.mmapLock.downRead();
    const ret = hmmRangeFault(range);
    mm.mmapLock.upRead();
    await engine.yieldPoint("after-range-fault");
    if (ret === -EBUSY) continue;
    if (ret !== 0) return ret;
    await engine.yieldPoint("before-driver-lock");
    await mirror.lock.lock();
    // BUG: no mmuIntervalReadRetry(range.notifier, range.notifierSeq) here.
    const r = mirror.update(range);
    mirror.lock.unlock();
    return r;
  }
}

interface Tally {
  runs: number;
  readRetry: number;
  rangeFaultBusy: number;
  efault: number;
}

function scenario(variant: "documented" | "no-read-retry", tally?: Tally) {
  return async (engine: Engine) => {
    const k = createKernel({ ramBytes: 16 * 1024 * 1024, bytes: false, thp: "never" });
    const mm = k.createMm();
    mm.mmapLock.engine = engine;
    const addr = mm.mmap({ length: N * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    for (let i = 0; i < N; i++) mm.touch(addr + i * PAGE_SIZE, true);
    const mirror = new DeviceMirror(mm, engine, addr, N * PAGE_SIZE);
    const range = (defaultFlags: number): HmmRange => ({
      notifier: mirror.sub,
      notifierSeq: 0,
      start: addr,
      end: addr + N * PAGE_SIZE,
      hmmPfns: new Float64Array(N),
      defaultFlags,
      pfnFlagsMask: 0,
      devPrivateOwner: null,
    });
    const stats: MirrorRangeFaultStats = mirrorRangeFaultStats();
    engine.spawn("device", async () => {
      for (const flags of [HMM_PFN_REQ_FAULT, 0]) {
        const r = range(flags);
        const ret =
          variant === "documented"
            ? await mirrorRangeFault(r, { engine, driverLock: mirror.lock, update: (x) => mirror.update(x), stats })
            : await mirrorWithoutReadRetry(r, mirror, engine);
        // A fault request over pages munmapped before the walk is -EFAULT (no VMA); anything else is a bug.
        if (ret === -EFAULT && flags !== 0) {
          if (tally) tally.efault++;
          continue;
        }
        if (ret !== 0) throw new Error(`mirror loop returned ${errnoName(ret)}`);
      }
    });
    engine.spawn("cpu", async () => {
      // The CPU does some other work first: 0..5 scheduling points, drawn from the run's seeded RNG.
      for (let i = engine.rng.int(6); i >= 0; i--) await engine.yieldPoint("before munmap");
      expect(await munmapFromTask(mm, addr + 2 * PAGE_SIZE, 4 * PAGE_SIZE)).toBe(0);
      await engine.yieldPoint("before madvise");
      expect(await lockedFromTask(mm, () => mm.madvise(addr + 7 * PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED))).toBe(0);
    });
    await engine.run();
    mirror.assertNoStale();
    if (tally) {
      tally.runs++;
      tally.readRetry += stats.readRetry;
      tally.rangeFaultBusy += stats.rangeFaultBusy;
    }
  };
}

describe("schedule explorer: the documented mirror loop vs a concurrent munmap", () => {
  for (const opts of [
    { runs: 600, seed: 4, strategy: "random" },
    { runs: 600, seed: 11, strategy: "pct", depth: 3, steps: 40 },
  ] satisfies ExploreOptions[]) {
    it(`keeps no stale device mapping under ${opts.runs} interleavings (${opts.strategy})`, async () => {
      const tally: Tally = { runs: 0, readRetry: 0, rangeFaultBusy: 0, efault: 0 };
      const res = await explore(scenario("documented", tally), opts);
      if (!res.ok) throw new Error(`seed ${res.failure!.seed}: ${res.failure!.message}`);
      expect(res.runs).toBe(opts.runs);
      expect(tally.runs).toBe(opts.runs);
      // The races really happened: interleavings differ, and the retry paths of the protocol were taken.
      expect(res.distinctTraces).toBeGreaterThan(opts.strategy === "random" ? 50 : 10);
      expect(tally.readRetry).toBeGreaterThan(0);
      expect(tally.rangeFaultBusy + tally.efault).toBeGreaterThan(0);
    });
  }

  it("catches the loop without mmu_interval_read_retry, and the reported seed replays the failure", async () => {
    const opts = { strategy: "random" as const };
    const res = await explore(scenario("no-read-retry"), { runs: 600, seed: 4, ...opts });
    expect(res.ok).toBe(false);
    const f = res.failure!;
    expect(f.kind).toBe("error");
    expect(f.message).toMatch(/stale device mapping/);
    const again = await replay(scenario("no-read-retry"), f.seed, opts);
    expect(again.ok).toBe(false);
    expect(again.failure!.message).toBe(f.message);
    expect(again.failure!.trace).toEqual(f.trace);
  });
});
