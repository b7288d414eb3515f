// Acceptance (issue 4, the migrate half; the munmap half is range-fault's mirror-explore.test.ts): the schedule
// explorer runs the documented mirror loop (range-fault's mirrorRangeFault: read_begin → mmap_read_lock →
// hmm_range_fault → unlock → driver lock → mmu_interval_read_retry → update, yielding wherever the kernel holds
// no lock) against a concurrent migration and CPU fault-back under ≥ 500 random and ≥ 500 PCT interleavings, and
// no device mapping is ever stale; the same loop without mmu_interval_read_retry is caught, and its seed replays.
//
// Per run: a kernel with bytes on, one mm with N written anonymous pages, pages 0..2 moved beforehand to device A
// (device-private, owner A). Tasks:
//  - "mirrorA": device A mirrors [0, N) twice through the loop (a read-fault request, then a snapshot) with
//    dev_private_owner = A, so A's own pages are reported with their device pfn and B's are faulted back.
//  - "migrateB": device B (device-private, owner B) migrates pages 2..6 to its memory the way a driver does,
//    holding mmap_read_lock across migrate_vma_setup → yield → copy → yield → migrate_vma_pages → yield →
//    migrate_vma_finalize (page 2 is A's and is skipped: SELECT_SYSTEM).
//  - "cpu": reads page 0 (A's page: A's migrate_to_ram moves it back), writes page 5 (B's page, or under
//    migration: the access waits, as migration_entry_wait, and retries), reads page 1.
// Device A's interval notifier always set_seq's under its driver lock; it tears down the range for every event
// except its own MMU_NOTIFY_MIGRATE (as nouveau does: the migration tells the driver which pages move — A's
// migrate_to_ram erases its mirror entry itself). After each run: every device-A mapping maps what the CPU page
// table maps now (the RAM pfn of a present PTE, or the device pfn of a device-private entry of owner A, writable
// only if the CPU entry is). That is checked before every yield point and sleep of every task (the states another
// task can see: see StaleCheck) and after the run; after the run also every byte is what was written, and 0
// invariant violations.
import {
  EBUSY,
  FaultWouldBlockError,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MEMORY_DEVICE_PRIVATE,
  MMU_NOTIFY_MIGRATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  createKernel,
  errnoName,
  isDevicePrivateEntry,
  isWritableDevicePrivateEntry,
  pagePgmap,
  pteKind,
  ptePfn,
  ptePresent,
  pteWrite,
  type Kernel,
  type Mm,
  type VmFault,
} from "@hmmsim/core";
import { Mutex, PS_PER_US, checkExplore, explore, exploreConfig, replay, runSeed, type Engine, type ExploreOptions } from "@hmmsim/engine";
import { MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalReadBeginWait, mmuIntervalSetSeq } from "@hmmsim/mmu-notifier";
import {
  HMM_PFN_ERROR,
  HMM_PFN_REQ_FAULT,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  asNotifierMm,
  hmmPfnToPfn,
  hmmRangeFault,
  mirrorRangeFault,
  mirrorRangeFaultStats,
  type HmmRange,
  type MirrorRangeFaultStats,
} from "@hmmsim/range-fault";
import { assertInvariants, resolveContentPfn } from "@hmmsim/testing";
import { describe, expect, it } from "vitest";
import {
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_SYSTEM,
  migratePfn,
  migratePfnToPage,
  migrateVmaFinalize,
  migrateVmaInit,
  migrateVmaPages,
  migrateVmaSetup,
} from "./index.js";
import { ModelDevice, newStats } from "./testing/property-model.js";

const N = 8;
const P = PAGE_SIZE;
/** How long a task waits before retrying after meeting a migration entry (migration_entry_wait), in ps. */
const BACKOFF = PS_PER_US;

/**
 * Device A's driver: "correct" (always set_seq; skip the teardown only for its own MIGRATE events and erase the
 * mapping in its migrate_to_ram), or one of two broken drivers the explorer must catch.
 */
type DriverVariant = "correct" | "no-erase-on-fault" | "filter-before-set-seq";

/** Device A: a device-private driver that mirrors part of an mm (lib/test_hmm.c dmirror->pt, reduced). */
class MirrorDevice extends ModelDevice {
  /** Device page table: vpn → pfn (RAM pfn, or A's own device pfn) and write permission. */
  readonly pt = new Map<number, { pfn: number; write: boolean }>();
  readonly lock: Mutex;
  readonly sub = new MmuIntervalNotifier();
  /** migrate_to_ram calls (CPU fault-back of A's own pages). */
  ownFaults = 0;

  constructor(
    k: Kernel,
    engine: Engine,
    mm: Mm,
    start: number,
    length: number,
    readonly driver: DriverVariant = "correct",
  ) {
    super(k, "devA", MEMORY_DEVICE_PRIVATE, 16, newStats());
    this.lock = new Mutex("devA->mutex", engine);
    const r = mmuIntervalNotifierInsert(this.sub, asNotifierMm(mm), start, length, {
      invalidate: (sub, range, curSeq) => {
        // The callback is synchronous (called from inside munmap/migrate/faults); the driver lock is only ever
        // held across synchronous sections, so it is free whenever the callback can run.
        const own = range.event === MMU_NOTIFY_MIGRATE && range.owner === this.owner;
        // lib/test_hmm.c dmirror_interval_invalidate returns before mmu_interval_set_seq for its own migrations.
        if (own && this.driver === "filter-before-set-seq") return true;
        if (!this.lock.tryLock()) throw new Error("devA: invalidate found the driver lock held (model broken)");
        mmuIntervalSetSeq(sub, curSeq);
        if (!own) this.clear(range.start, range.end);
        this.lock.unlock();
        return true;
      },
    });
    if (r !== 0) throw new Error(`notifier insert failed: ${r}`);
  }

  private clear(start: number, end: number): void {
    for (const vpn of [...this.pt.keys()]) if (vpn * P >= start && vpn * P < end) this.pt.delete(vpn);
  }

  /** migrate_to_ram of A's own page: drop the device mapping (under the driver lock), then migrate it back. */
  override devmemFault(vmf: VmFault): number {
    this.ownFaults++;
    if (this.driver === "no-erase-on-fault") return super.devmemFault(vmf);
    if (!this.lock.tryLock()) throw new Error("devA: migrate_to_ram found the driver lock held (model broken)");
    this.clear(vmf.address, vmf.address + P);
    this.lock.unlock();
    return super.devmemFault(vmf);
  }

  /** dmirror_do_fault(): store every VALID entry with its write bit, drop the others. Under `lock`. */
  update(range: HmmRange): number {
    if (!this.lock.locked) throw new Error("devA.update without the driver lock");
    const pfns = range.hmmPfns;
    for (let i = 0; i < pfns.length; i++) {
      const vpn = range.start / P + i;
      const e = pfns[i]!;
      if (e & HMM_PFN_ERROR || !(e & HMM_PFN_VALID)) this.pt.delete(vpn);
      else this.pt.set(vpn, { pfn: hmmPfnToPfn(e), write: (e & HMM_PFN_WRITE) !== 0 });
    }
    return 0;
  }

  /** Every device mapping maps what the CPU maps now: a present PTE's pfn, or A's own device-private entry's. */
  assertNoStale(mm: Mm): void {
    for (const [vpn, d] of this.pt) {
      const addr = vpn * P;
      const e = mm.pgtable.pteGet(addr);
      const pfn = ptePfn(e);
      const own = isDevicePrivateEntry(e) && pagePgmap(this.k, pfn)?.owner === this.owner;
      const ok = (ptePresent(e) && pfn === d.pfn && (!d.write || pteWrite(e))) || (own && pfn === d.pfn && (!d.write || isWritableDevicePrivateEntry(e)));
      if (!ok) {
        const owner = isDevicePrivateEntry(e) ? ` of ${(pagePgmap(this.k, pfn)?.owner as { name: string }).name}` : "";
        throw new Error(
          `stale device mapping at 0x${addr.toString(16)}: devA maps pfn ${d.pfn}${d.write ? " (write)" : ""}, the CPU has ${e === 0 ? "nothing" : `a ${pteKind(e)} entry${owner} to pfn ${pfn}${pteWrite(e) || isWritableDevicePrivateEntry(e) ? " (write)" : ""}`}`,
        );
      }
    }
  }
}

/** The loop of hmm.rst without mmu_interval_read_retry (the bug the explorer must catch). */
async function mirrorWithoutReadRetry(range: HmmRange, dev: MirrorDevice, mm: Mm, engine: Engine, step: Step): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    range.notifierSeq = await mmuIntervalReadBeginWait(range.notifier, engine);
    await backoffWindow(engine, step)("after-read-begin", attempt);
    await mm.mmapLock.downRead();
    const ret = hmmRangeFault(range);
    mm.mmapLock.upRead();
    await step.yield("after-range-fault");
    if (ret === -EBUSY) continue;
    if (ret !== 0) return ret;
    await step.yield("before-driver-lock");
    await dev.lock.lock();
    // BUG: no mmuIntervalReadRetry(range.notifier, range.notifierSeq) here.
    const r = dev.update(range);
    dev.lock.unlock();
    return r;
  }
}

/**
 * Where device A's mapping must match the CPU page table: wherever a task gives up the CPU. Every change to
 * either side is synchronous — A updates its table under its lock right after read_retry, its invalidate and
 * migrate_to_ram clear it before the CPU entries change, a migration step or a CPU fault runs to completion — and
 * a task reaches another only through a yield point, a sleep or a lock wait right after one (or by finishing), so
 * checking before each yield point and sleep, and after the run, checks every state another task can see.
 * "end": only after the run (to show what checking at each step adds).
 */
type StaleCheck = "each-step" | "end";

/** A task's way to give up the CPU, checking A's mapping first (with "each-step"). */
interface Step {
  yield(label: string): Promise<void>;
  sleep(dt: number): Promise<void>;
}

function stepper(engine: Engine, check: StaleCheck, dev: MirrorDevice, mm: Mm, tally?: Tally): Step {
  const assert = (): void => {
    if (check !== "each-step") return;
    dev.assertNoStale(mm);
    if (tally) tally.checks++;
  };
  return {
    yield: (label) => (assert(), engine.yieldPoint(label)),
    sleep: (dt) => (assert(), engine.sleep(dt)),
  };
}

/** The loop's lock-free windows: a yield point, and on a retry a short wait (hmm_range_fault met a migration entry). */
function backoffWindow(engine: Engine, step: Step) {
  return async (label: string, attempt: number): Promise<void> => {
    await step.yield(label);
    if (label === "after-read-begin" && attempt > 0) await step.sleep(BACKOFF);
  };
}

/** A CPU access from a task; an access that would sleep on a migration entry waits and retries. */
async function cpuAccess(step: Step, fn: () => void): Promise<void> {
  for (;;) {
    try {
      fn();
      return;
    } catch (e) {
      if (!(e instanceof FaultWouldBlockError)) throw e;
      await step.sleep(BACKOFF);
    }
  }
}

interface Tally {
  runs: number;
  /** Staleness checks made during the runs (before yield points and sleeps). */
  checks: number;
  readRetry: number;
  rangeFaultBusy: number;
  /** Runs in which device B moved pages, A's pages were faulted back by the CPU, B's by A's range fault. */
  migratedB: number;
  ownFaults: number;
  faultsB: number;
  /** Device-A mappings that point at A's own device memory at the end of a run. */
  ownMapped: number;
}

const byte = (page: number): number => 0x10 + page;

function scenario(variant: "documented" | "no-read-retry", tally?: Tally, driver: DriverVariant = "correct", check: StaleCheck = "each-step") {
  return async (engine: Engine) => {
    const k = createKernel({ ramBytes: 8 * 1024 * 1024, bytes: true, thp: "never" });
    const mm = k.createMm();
    mm.mmapLock.engine = engine;
    const addr = mm.mmap({ length: N * P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    for (let i = 0; i < N; i++) mm.write(addr + i * P, new Uint8Array([byte(i)]));
    const want = Array.from({ length: N }, (_, i) => byte(i));
    const devA = new MirrorDevice(k, engine, mm, addr, N * P, driver);
    const statsB = newStats();
    const devB = new ModelDevice(k, "devB", MEMORY_DEVICE_PRIVATE, 16, statsB);
    expect(devA.migrateToDevice(mm, addr, addr + 3 * P)).toBe(0);
    expect(devA.inUse).toBe(3);
    const step = stepper(engine, check, devA, mm, tally);

    const stats: MirrorRangeFaultStats = mirrorRangeFaultStats();
    engine.spawn("mirrorA", async () => {
      for (const flags of [HMM_PFN_REQ_FAULT, 0]) {
        const range: HmmRange = {
          notifier: devA.sub,
          notifierSeq: 0,
          start: addr,
          end: addr + N * P,
          hmmPfns: new Float64Array(N),
          defaultFlags: flags,
          pfnFlagsMask: 0,
          devPrivateOwner: devA.owner,
        };
        const ret =
          variant === "documented"
            ? await mirrorRangeFault(range, { engine, driverLock: devA.lock, update: (r) => devA.update(r), stats, window: backoffWindow(engine, step) })
            : await mirrorWithoutReadRetry(range, devA, mm, engine, step);
        if (ret !== 0) throw new Error(`mirror loop returned ${errnoName(ret)}`);
      }
    });
    engine.spawn("migrateB", async () => {
      for (let i = engine.rng.int(4); i > 0; i--) await step.yield("before migrate");
      await mm.mmapLock.downRead(); // held across the whole migration, as a driver's migrate ioctl does
      try {
        const start = addr + 2 * P;
        const end = addr + 7 * P;
        const n = (end - start) / P;
        const src = new Float64Array(n);
        const dst = new Float64Array(n);
        const args = migrateVmaInit({ vma: mm.vmaLookup(start), start, end, src, dst, pgmapOwner: devB.owner, flags: MIGRATE_VMA_SELECT_SYSTEM });
        expect(migrateVmaSetup(args)).toBe(0);
        await step.yield("after migrate_vma_setup");
        for (let i = 0; i < args.npages; i++) {
          const m = src[i]!;
          if ((m & MIGRATE_PFN_MIGRATE) === 0) continue;
          const dpage = devB.allocDevicePage();
          const spage = migratePfnToPage(m);
          if (spage >= 0) k.pageBytes.copy(dpage, spage);
          else k.pageBytes.clear(dpage);
          dst[i] = migratePfn(dpage) + (m & MIGRATE_PFN_WRITE);
        }
        await step.yield("after copy");
        migrateVmaPages(args);
        for (let i = 0; i < n; i++) if ((src[i]! & MIGRATE_PFN_MIGRATE) !== 0) statsB.toDevice++;
        await step.yield("after migrate_vma_pages");
        migrateVmaFinalize(args);
      } finally {
        mm.mmapLock.upRead();
      }
    });
    engine.spawn("cpu", async () => {
      for (let i = engine.rng.int(6); i > 0; i--) await step.yield("cpu: other work");
      await cpuAccess(step, () => expect(mm.read(addr, 1)[0]).toBe(byte(0)));
      await step.yield("cpu: between accesses");
      await cpuAccess(step, () => mm.write(addr + 5 * P, new Uint8Array([0xee])));
      want[5] = 0xee;
      await step.yield("cpu: between accesses");
      await cpuAccess(step, () => expect(mm.read(addr + P, 1)[0]).toBe(byte(1)));
    });
    await engine.run();

    devA.assertNoStale(mm);
    // Every byte preserved, wherever the page lives (resolved without faulting).
    const got = want.map((_, i) => {
      const pfn = resolveContentPfn(mm, addr + i * P);
      const b = new Uint8Array(1);
      if (pfn >= 0) k.pageBytes.read(pfn, 0, 1, b, 0);
      return b[0];
    });
    expect(got).toEqual(want);
    const refs = new Map<number, number>();
    devA.addRefs(refs);
    devB.addRefs(refs);
    assertInvariants(k, { extraRefs: refs });
    if (tally) {
      tally.runs++;
      tally.readRetry += stats.readRetry;
      tally.rangeFaultBusy += stats.rangeFaultBusy;
      if (statsB.toDevice > 0) tally.migratedB++;
      tally.ownFaults += devA.ownFaults;
      tally.faultsB += statsB.faultBack;
      for (const d of devA.pt.values()) if (d.pfn >= devA.startPfn && d.pfn < devA.startPfn + devA.nrPages) tally.ownMapped++;
    }
  };
}

const newTally = (): Tally => ({ runs: 0, checks: 0, readRetry: 0, rangeFaultBusy: 0, migratedB: 0, ownFaults: 0, faultsB: 0, ownMapped: 0 });

describe("schedule explorer: the documented mirror loop vs a concurrent migration and CPU fault-back", () => {
  // HMMSIM_EXPLORE_RUNS / HMMSIM_EXPLORE_SEED override the runs and base seed (npm run soak: 10^4 runs).
  for (const base of [
    { runs: 600, seed: 4, strategy: "random" },
    { runs: 600, seed: 11, strategy: "pct", depth: 3, steps: 40 },
  ] satisfies ExploreOptions[]) {
    const { runs, seed, seedSource } = exploreConfig(base);
    const opts = { ...base, runs, seed };
    it(`keeps no stale device mapping under ${opts.runs} interleavings (${opts.strategy})`, async () => {
      const tally = newTally();
      const res = await explore(scenario("documented", tally), opts);
      checkExplore({ file: import.meta.url, test: `keeps no stale device mapping (${opts.strategy})`, filter: `keeps no stale device mapping under \\d+ interleavings \\(${opts.strategy}\\)` }, { seed, seedSource }, res);
      expect(res.runs).toBe(opts.runs);
      expect(tally.runs).toBe(opts.runs);
      // A's mapping was checked at every yield point and sleep of every run (the three tasks have at least 8).
      expect(tally.checks).toBeGreaterThan(8 * opts.runs);
      console.log(`${opts.strategy}: ${res.distinctTraces} distinct interleavings`, JSON.stringify(tally));
      // The races really happened: interleavings differ, the protocol's retry paths were taken, B migrated, the
      // CPU faulted A's pages back, A's range fault faulted B's pages back, and A mapped its own device memory.
      // Distinct event traces: ≥ 500 different interleavings under the random strategy (591 at this seed); PCT's
      // priorities repeat more (362).
      // (A reduced HMMSIM_EXPLORE_RUNS asks for at least a quarter of its runs.)
      expect(res.distinctTraces).toBeGreaterThanOrEqual(Math.min(opts.strategy === "random" ? 500 : 300, Math.floor(opts.runs / 4)));
      expect(tally.readRetry).toBeGreaterThan(0);
      expect(tally.rangeFaultBusy).toBeGreaterThan(0);
      expect(tally.migratedB).toBe(opts.runs);
      expect(tally.ownFaults).toBeGreaterThanOrEqual(2 * opts.runs);
      expect(tally.faultsB).toBeGreaterThan(0);
      expect(tally.ownMapped).toBeGreaterThan(0);
    }, Math.max(60_000, opts.runs * 10));
  }

  /** Explore a broken variant: it must fail with a stale mapping, and the failure's seed must replay it exactly. */
  async function expectCaught(sc: (engine: Engine) => Promise<void>, opts: Omit<ExploreOptions, "runs" | "seed">): Promise<number> {
    const res = await explore(sc, { runs: 600, seed: 4, ...opts });
    expect(res.ok).toBe(false);
    const f = res.failure!;
    expect(f.kind).toBe("error");
    // Found by a task's check before a yield point or sleep, or by the check after the run.
    expect(f.task === null || ["mirrorA", "migrateB", "cpu"].includes(f.task)).toBe(true);
    expect(f.message).toMatch(/stale device mapping at 0x[0-9a-f]+: devA maps pfn \d+/);
    const again = await replay(sc, f.seed, opts);
    expect(again.ok).toBe(false);
    expect(again.failure!.message).toBe(f.message);
    expect(again.failure!.trace).toEqual(f.trace);
    return res.runs;
  }

  it("checking at each step catches the broken drivers on seeds where the end-of-run check misses them", async () => {
    // Same seeds, same interleavings (the checks do not touch the engine): a stale mapping that a later pass or
    // fault-back repairs before the run ends is seen only by the per-step check.
    const broken: [variant: "documented" | "no-read-retry", driver: DriverVariant][] = [
      ["no-read-retry", "correct"],
      ["documented", "no-erase-on-fault"],
      ["documented", "filter-before-set-seq"],
    ];
    let endOnly = 0;
    let eachStep = 0;
    for (const [variant, driver] of broken) {
      for (let i = 0; i < 40; i++) {
        const seed = i === 0 ? 4 : runSeed(4, i);
        const end = await replay(scenario(variant, undefined, driver, "end"), seed, { strategy: "random" });
        const each = await replay(scenario(variant, undefined, driver, "each-step"), seed, { strategy: "random" });
        if (!end.ok) endOnly++;
        if (!each.ok) eachStep++;
        if (!end.ok) expect(each.ok).toBe(false); // the per-step check includes the end-of-run one
      }
    }
    expect(eachStep).toBeGreaterThan(endOnly);
  });

  for (const opts of [{ strategy: "random" as const }, { strategy: "pct" as const, depth: 3, steps: 40 }]) {
    it(`catches the loop without mmu_interval_read_retry (${opts.strategy}), and the reported seed replays the failure`, async () => {
      await expectCaught(scenario("no-read-retry"), opts);
    });
  }

  it("catches a driver that ignores its own MIGRATE events but keeps its mapping across its migrate_to_ram", async () => {
    await expectCaught(scenario("documented", undefined, "no-erase-on-fault"), { strategy: "random" });
  });

  it("catches lib/test_hmm.c's order: own MIGRATE events ignored before mmu_interval_set_seq race the loop", async () => {
    // dmirror_interval_invalidate returns before set_seq for MMU_NOTIFY_MIGRATE with its own owner; its
    // migrate_to_ram erases the mirror entry, but a loop that already read A's device pfn (dev_private_owner = A)
    // and takes the driver lock afterwards passes read_retry and maps the page that has just moved to RAM.
    await expectCaught(scenario("documented", undefined, "filter-before-set-seq"), { strategy: "random" });
  });
});
