// Issue #15: the schedule explorer (@hmmsim/engine explore.ts) runs the GPU driver servicing replayable-fault
// batches while the CPU, in another task, changes the same address space:
//  (a) munmap: the CPU unmaps half the range (and zaps + rewrites one page) while batches mirror and migrate it;
//  (b) migrate back: the CPU reads and writes pages the batches are moving to device memory (device-private pages
//      fault back through the driver's migrate_to_ram; pages under migration make the CPU wait and retry);
//  (c) fork: the CPU forks the mm mid-service (MMU_NOTIFY_PROTECTION_PAGE; the device-private entries turn
//      read-only in parent and child) and the child writes some pages (migrate_to_ram + COW); the device only
//      reads here (a device write to its own page that fork made read-only livelocks this driver: see below);
//  (d) eviction: one 2 MiB root chunk of device memory for two VA blocks, so every other batch evicts the other
//      block (migrate_device_range / pages / finalize) while the CPU reads, writes and zaps pages.
//
// Per run: a fresh kernel (bytes on), one mm with CPU-written pages, and the real GpuDriver built on the
// explorer's engine (its own kernel, a test cost model, a 16 GB/s link, the policy defaults). The driver's
// mirror loop (range-fault's mirrorRangeFault) gets a yield point at each place the kernel's loop holds no lock
// (after read_begin, after hmm_range_fault, before the driver lock): the driver passes no `window`, so the test
// wraps mirrorRangeFault (vi.mock) to add them — the same wrapper swaps in the broken loop below.
//
// Checked before every place a task gives up the CPU (every engine block: yield points, sleeps, locks, waits, link
// transfers — the only states another task can see) and after the run: no device PTE maps a page the CPU side no
// longer maps there. A remote PTE (a system pfn) must match the CPU entry at that address (the present PTE's pfn,
// or a migration entry of it mid-migration), writable only if the CPU's is; a local PTE (device memory) must be
// the page whose device-private entry the CPU has there (or a migration entry of it), writable only if that entry
// is. After the run: @hmmsim/testing's invariant checker, every page still mapped holds exactly the bytes the CPU
// last wrote there (resolved without faulting, wherever it lives), and after exit no page or device page is left.
//
// The deliberately broken driver: the mirror loop without mmu_interval_read_retry (it programs the device page
// table from an hmm_range_fault result an invalidation has since made stale). The explorer must find it, and the
// seed it reports must replay it.
//
// Run counts: HMMSIM_EXPLORE_RUNS / HMMSIM_EXPLORE_SEED (npm run soak: 10^4 runs); the default gives ≥ 1,000
// distinct interleavings per scenario.
import {
  FaultWouldBlockError,
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MmapLockHeldError,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  createKernel,
  isDevicePrivateEntry,
  isMigrationEntry,
  isWritableDevicePrivateEntry,
  isWritableMigrationEntry,
  pmdTransHuge,
  ptePfn,
  ptePresent,
  pteWrite,
  type Kernel,
  type Mm,
} from "@hmmsim/core";
import { PS_PER_US, checkExplore, explore, exploreConfig, replay, type Engine, type ExploreOptions, type Task, type Waitable } from "@hmmsim/engine";
import { DuplexLink, MachineTrace, TaskCostLedger, type CostKind, type DeviceSpec } from "@hmmsim/machine";
import { Policy } from "@hmmsim/policy";
import type { HmmRange, MirrorRangeFaultOptions } from "@hmmsim/range-fault";
import { assertInvariants, resolveContentPfn } from "@hmmsim/testing";
import { describe, expect, it, vi } from "vitest";
import { GpuFaultError } from "./errors.js";
import { GpuDriver } from "./gpu-driver.js";
import { resolveGpuSpec, type GpuDriverSpec } from "./gpu-spec.js";
import { CHUNK_PAGES } from "./root-chunks.js";
import { GPU_PTE_REMOTE, GPU_PTE_VALID, GPU_PTE_WRITE, VA_BLOCK_SIZE } from "./va-block.js";

/** What the mirrorRangeFault wrapper does in the current run (set by the scenario, cleared after). */
const mirrorHook = vi.hoisted(() => ({
  /** The run's engine: yield points in the mirror loop. null: the driver's loop as it is. */
  engine: null as { yieldPoint(label: string): Promise<void> } | null,
  /** The broken driver: no mmu_interval_read_retry before the device page-table update. */
  broken: false,
  /** Yield points taken in the mirror loop (all runs). */
  windows: 0,
}));

vi.mock("@hmmsim/range-fault", async (importOriginal) => {
  const rf = await importOriginal<typeof import("@hmmsim/range-fault")>();
  const { mmuIntervalReadBeginWait } = await import("@hmmsim/mmu-notifier");
  /** The documented loop (lib/test_hmm.c dmirror_range_fault) minus mmu_interval_read_retry: the bug to catch. */
  const withoutReadRetry = async (range: HmmRange, o: MirrorRangeFaultOptions): Promise<number> => {
    const mm = rf.hmmRangeMm(range);
    const engine = o.engine!;
    for (let attempt = 0; ; attempt++) {
      range.notifierSeq = await mmuIntervalReadBeginWait(range.notifier, engine);
      await o.window!("after-read-begin", attempt);
      await mm.mmapLock.downRead();
      let ret: number;
      try {
        ret = rf.hmmRangeFault(range);
      } finally {
        mm.mmapLock.upRead();
      }
      await o.window!("after-range-fault", attempt);
      if (ret === -16 /* -EBUSY */) continue;
      if (ret !== 0) return ret;
      await o.window!("before-driver-lock", attempt);
      await o.driverLock.lock();
      // BUG: no `if (mmuIntervalReadRetry(range.notifier, range.notifierSeq)) { unlock; continue; }` here.
      try {
        return o.update(range);
      } finally {
        o.driverLock.unlock();
      }
    }
  };
  return {
    ...rf,
    mirrorRangeFault: (range: HmmRange, opts: MirrorRangeFaultOptions): Promise<number> => {
      const e = mirrorHook.engine;
      if (e === null) return rf.mirrorRangeFault(range, opts);
      const o: MirrorRangeFaultOptions = {
        ...opts,
        window: (label) => {
          mirrorHook.windows++;
          return e.yieldPoint(`mirror ${label}`);
        },
      };
      return mirrorHook.broken ? withoutReadRetry(range, o) : rf.mirrorRangeFault(range, o);
    },
  };
});

const P = PAGE_SIZE;
/** How long the CPU waits before retrying an access that met a migration entry (migration_entry_wait). */
const BACKOFF = PS_PER_US / 4;

/** A test cost model: every CPU-side kernel step 50 ns per item, a device fault round 500 ns. */
const costs = {
  cost(kind: CostKind, count: number): number {
    return kind === "DEVICE_FAULT" ? 500_000 : kind === "DMA" ? 0 : count * 50_000;
  },
};

interface WorldOptions {
  /** Pages in each VA block used (from the block's start). */
  pages: number;
  /** VA blocks (2 MiB each) the pages are spread over. */
  blocks: number;
  /** Device memory in root chunks (2 MiB each). */
  chunks: number;
  /** The driver's spec (resolved once: every run's driver reads the same frozen object). */
  spec: Readonly<GpuDriverSpec>;
}

/** One run's machine: kernel, mm, the GPU driver on the run's engine, and the bytes each page must hold. */
class World {
  readonly k: Kernel;
  readonly mm: Mm;
  readonly gpu: GpuDriver;
  readonly ledger: TaskCostLedger;
  /** The pages of the run, block by block. */
  readonly addrs: number[] = [];
  /** Per mm: page address → the bytes a read must return (absent: unmapped). */
  readonly expected = new Map<Mm, Map<number, Uint8Array>>();
  /** Stale-mapping checks made (at engine blocks and at the end). */
  checks = 0;
  /** Device accesses the driver failed (an unmapped page: the expected GpuFaultError). */
  gpuFaults = 0;
  cpuRetries = 0;

  constructor(
    readonly engine: Engine,
    o: WorldOptions,
  ) {
    this.k = createKernel({ ramBytes: 4 << 20, bytes: true, thp: "never" });
    const mm = this.k.createMm();
    this.mm = mm;
    mm.mmapLock.engine = engine;
    const a = mm.mmap({ length: (o.blocks + 1) * VA_BLOCK_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const base = Math.ceil(a / VA_BLOCK_SIZE) * VA_BLOCK_SIZE;
    const exp = new Map<number, Uint8Array>();
    this.expected.set(mm, exp);
    for (let b = 0; b < o.blocks; b++) {
      for (let i = 0; i < o.pages; i++) {
        const addr = base + b * VA_BLOCK_SIZE + i * P;
        this.addrs.push(addr);
        const bytes = new Uint8Array(P).fill(1 + ((b * o.pages + i) % 250));
        mm.write(addr, bytes);
        exp.set(addr, bytes);
      }
    }
    this.ledger = new TaskCostLedger(costs, engine);
    const link = new DuplexLink("l0", "custom", { h2dBandwidth: 16e9, d2hBandwidth: 16e9, alpha: PS_PER_US, sharing: "fifo" }, false, { engine, onTransfer: null });
    const device: DeviceSpec = { kind: "gpu", name: "gpu0", memory: o.chunks * VA_BLOCK_SIZE, memoryType: "private", driver: "gpu", policy: "on-demand", link: "l0" };
    const owner = {}; // the trace points' and policy hooks' owner (a machine in a composed run)
    this.gpu = new GpuDriver({
      device,
      spec: o.spec,
      kernel: this.k,
      engine,
      ledger: this.ledger,
      link,
      trace: MachineTrace.getHooks(owner),
      policy: Policy.getHooks(owner),
    });
    this.gpu.attachMm(mm);
  }

  /** Every device PTE maps what the CPU maps at that address now (see the file comment); throws listing the stale ones. */
  assertNoStale(when: string): void {
    this.checks++;
    const gpu = this.gpu;
    const bl = gpu.blocks;
    const pte = bl.pte;
    const bad: string[] = [];
    for (let slot = 0; slot < bl.size; slot++) {
      const mm = gpu.spaceMm(bl.space[slot]!)!;
      const start = bl.start[slot]!;
      let valid = 0;
      let local = 0;
      for (let j = 0, base = slot * CHUNK_PAGES; j < CHUNK_PAGES; j++) {
        const f = pte[base + j]!;
        if ((f & GPU_PTE_VALID) === 0) continue;
        valid++;
        const addr = start + j * P;
        const write = (f & GPU_PTE_WRITE) !== 0;
        const remote = (f & GPU_PTE_REMOTE) !== 0;
        if (!remote) local++;
        const pfn = remote ? bl.remotePfns(slot)[j]! : gpu.startPfn + bl.chunk[slot]! * CHUNK_PAGES + j;
        const why = staleReason(mm, addr, pfn, remote, write, bl.chunk[slot]!);
        if (why !== null) bad.push(`0x${addr.toString(16)} (${remote ? "remote" : "local"}${write ? ", writable" : ""} pfn ${pfn}): ${why}`);
      }
      if (valid !== bl.mapped[slot] || local !== bl.localMapped[slot]) bad.push(`block 0x${start.toString(16)}: counts mapped ${bl.mapped[slot]} / local ${bl.localMapped[slot]}, the PTEs say ${valid} / ${local}`);
    }
    if (bad.length > 0) throw new Error(`stale device mapping ${when}: ${bad.slice(0, 4).join("; ")}${bad.length > 4 ? ` (+${bad.length - 4} more)` : ""}`);
  }

  /** Check before every engine block (the places another task can run). */
  checkAtEveryBlock(): void {
    const e = this.engine;
    const block = e._block.bind(e);
    e._block = (task: Task, on: Waitable | string): Promise<void> => {
      this.assertNoStale(`before task "${task.name}" blocks on ${typeof on === "string" ? on : on.describeWait(task)}`);
      return block(task, on);
    };
  }

  /** Run a CPU access of the page at addr as a task does: retry after a backoff while a migration holds it. */
  async access(mm: Mm, addr: number, write: Uint8Array | null): Promise<void> {
    for (;;) {
      try {
        if (write !== null) {
          mm.write(addr, write);
          this.expected.get(mm)!.set(addr, write);
        } else {
          const got = mm.read(addr, P);
          const want = this.expected.get(mm)!.get(addr)!;
          if (!bytesEqual(got, want)) throw new Error(`CPU read of 0x${addr.toString(16)}: got byte ${got[0]}, want ${want[0]}`);
        }
        await this.ledger.settle(); // migrate_to_ram's DMA runs on the link now
        return;
      } catch (e) {
        if (!(e instanceof FaultWouldBlockError) && !(e instanceof MmapLockHeldError)) throw e;
        this.cpuRetries++;
        await this.engine.sleep(BACKOFF);
      }
    }
  }

  /** An mm operation that takes mmap_lock for write itself (munmap, madvise, fork) run from a task. */
  async locked<T>(mm: Mm, op: () => T): Promise<T> {
    for (;;) {
      await mm.mmapLock.downWrite();
      mm.mmapLock.upWrite();
      if (!mm.mmapLock.isLocked() && mm.mmapLock.waiting === 0) return op();
    }
  }

  /** The GPU task: run the kernel; an access the driver cannot service (an unmapped page) ends it with GpuFaultError. */
  spawnGpu(accesses: { addr: number; write: boolean }[], warps: number): void {
    this.engine.spawn("gpu", async () => {
      try {
        await this.gpu.runKernel(this.mm, accesses, { warps });
      } catch (e) {
        if (!(e instanceof GpuFaultError)) throw e;
        this.gpuFaults++;
      }
    });
  }

  /** After the run: no stale mapping, the kernel invariants, every byte where it must be; then exit and nothing left. */
  finish(): void {
    this.assertNoStale("after the run");
    assertInvariants(this.k);
    for (const [mm, exp] of this.expected) {
      for (const [addr, want] of exp) {
        const pfn = resolveContentPfn(mm, addr);
        const got = pfn < 0 ? new Uint8Array(P) : this.k.pageBytes.snapshot(pfn);
        if (!bytesEqual(got, want)) throw new Error(`mm ${mm.id} 0x${addr.toString(16)} lost its bytes: holds ${got[0]}, want ${want[0]} (pfn ${pfn})`);
      }
    }
    for (const mm of this.expected.keys()) mm.exit();
    this.assertNoStale("after exit");
    if (this.gpu.chunks.usedPages !== 0) throw new Error(`${this.gpu.chunks.usedPages} device pages still in use after every mm exited`);
    assertInvariants(this.k);
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Why a device PTE for `pfn` at `addr` is stale against mm's page table, or null when it is not. */
function staleReason(mm: Mm, addr: number, pfn: number, remote: boolean, write: boolean, chunk: number): string | null {
  if (mm.exited) return "the mm has exited";
  if (mm.vmaLookup(addr) === null) return "no VMA there any more";
  if (!remote && chunk < 0) return "a local PTE in a block with no root chunk";
  const pmd = mm.pgtable.pmdGet(addr);
  const e = pmd !== 0 ? pmd : mm.pgtable.pteGet(addr);
  const cpuPfn = pmd !== 0 && pmdTransHuge(pmd) ? ptePfn(pmd) + ((addr / P) & (CHUNK_PAGES - 1)) : ptePfn(e);
  if (e === 0) return "the CPU maps nothing there";
  if (isMigrationEntry(e)) {
    if (cpuPfn !== pfn) return `the CPU's migration entry is for pfn ${cpuPfn}`;
    if (write && !isWritableMigrationEntry(e)) return "writable on the device, read-only migration entry on the CPU";
    return null;
  }
  if (remote) {
    if (!ptePresent(e)) return `the CPU entry is not present (${isDevicePrivateEntry(e) ? "device-private" : "swap-like"})`;
    if (cpuPfn !== pfn) return `the CPU maps pfn ${cpuPfn}`;
    if (write && !pteWrite(e)) return "writable on the device, read-only on the CPU";
    return null;
  }
  if (!isDevicePrivateEntry(e)) return ptePresent(e) ? `the CPU maps system pfn ${cpuPfn}` : "the CPU entry is not device-private";
  if (cpuPfn !== pfn) return `the CPU's device-private entry is for pfn ${cpuPfn}`;
  if (write && !isWritableDevicePrivateEntry(e)) return "writable on the device, read-only device-private entry on the CPU";
  return null;
}

/** Bytes a CPU write puts in a page: distinct per (run step, page). */
function newBytes(tag: number): Uint8Array {
  return new Uint8Array(P).fill(tag & 0xff || 1);
}

/** What the runs did, summed (for the report and to prove each race happened). */
interface Tally {
  runs: number;
  checks: number;
  gpuFaults: number;
  cpuRetries: number;
  batches: number;
  migrated: number;
  cpuFaultPages: number;
  invalidatedPtes: number;
  evictions: number;
  mirrorRetries: number;
  /** Distinct orders of task steps (the event trace without its timestamps). */
  orders: Set<string>;
}

function newTally(): Tally {
  return { runs: 0, checks: 0, gpuFaults: 0, cpuRetries: 0, batches: 0, migrated: 0, cpuFaultPages: 0, invalidatedPtes: 0, evictions: 0, mirrorRetries: 0, orders: new Set() };
}

function account(t: Tally | undefined, w: World): void {
  if (t === undefined) return;
  const s = w.gpu.stats;
  t.runs++;
  t.checks += w.checks;
  t.gpuFaults += w.gpuFaults;
  t.cpuRetries += w.cpuRetries;
  t.batches += s.batches;
  t.migrated += s.migratedPages;
  t.cpuFaultPages += s.cpuFaultPages;
  t.invalidatedPtes += s.invalidatedPtes;
  t.evictions += s.evictions;
  t.mirrorRetries += s.mirrorRetries;
  // The order of steps: each trace line without its timestamp, nor the wake-up times it names ("sleep until t=…").
  t.orders.add(w.engine.eventTrace.map((l) => l.slice(l.indexOf(" ") + 1).replace(/t=\d+/g, "t")).join("\n"));
}

/** A CPU delay drawn from the run's RNG: 0 to 40 µs in steps of 250 ns. */
const delay = (e: Engine): number => e.rng.int(161) * (PS_PER_US / 4);

type ScenarioName = "munmap" | "migrate-back" | "fork" | "eviction";

const SINGLE: WorldOptions = { pages: 24, blocks: 1, chunks: 1, spec: resolveGpuSpec({ warps: 8, batchSize: 4, maxBatchesPerService: 2, tlbEntries: 64, tlbWays: 8 }) };
const EVICT: WorldOptions = { pages: 8, blocks: 2, chunks: 1, spec: resolveGpuSpec({ warps: 2, batchSize: 2, maxBatchesPerService: 2, tlbEntries: 64, tlbWays: 8 }) };

/** The GPU's accesses: every page read, then every third written (two passes over the range). */
function readThenWrite(addrs: number[]): { addr: number; write: boolean }[] {
  return [...addrs.map((addr) => ({ addr, write: false })), ...addrs.map((addr, i) => ({ addr, write: i % 3 === 0 }))];
}

function scenario(name: ScenarioName, opts: { broken?: boolean; tally?: Tally } = {}) {
  return async (engine: Engine): Promise<void> => {
    mirrorHook.engine = engine;
    mirrorHook.broken = opts.broken === true;
    try {
      const w = new World(engine, name === "eviction" ? EVICT : SINGLE);
      w.checkAtEveryBlock();
      const { mm, addrs } = w;
      const rng = engine.rng;
      if (name === "munmap") {
        w.spawnGpu(readThenWrite(addrs), 8);
        engine.spawn("cpu", async () => {
          await engine.sleep(delay(engine));
          const half = addrs.length / 2;
          expect(await w.locked(mm, () => mm.munmap(addrs[half]!, half * P))).toBe(0);
          for (const a of addrs.slice(half)) w.expected.get(mm)!.delete(a);
          await engine.sleep(Math.floor(delay(engine) / 4));
          // A page zapped and written again: the device may map the new page only after the old one's invalidation.
          const p = addrs[rng.int(half)]!;
          expect(await w.locked(mm, () => mm.madvise(p, P, MADV_DONTNEED))).toBe(0);
          w.expected.get(mm)!.set(p, new Uint8Array(P));
          await w.access(mm, p, newBytes(200));
        });
      } else if (name === "migrate-back") {
        w.spawnGpu(readThenWrite(addrs), 8);
        engine.spawn("cpu", async () => {
          for (let op = 0; op < 6; op++) {
            await engine.sleep(Math.floor(delay(engine) / 3));
            const a = addrs[rng.int(addrs.length)]!;
            await w.access(mm, a, rng.int(2) === 0 ? null : newBytes(100 + op));
          }
        });
      } else if (name === "fork") {
        // Device reads only. A device write to its own page that fork left read-only (a COW-shared device-private
        // entry) is never faulted by hmm_range_fault (mm/hmm.c hmm_vma_handle_pte: an entry of the caller's owner
        // is reported, VALID without WRITE, not faulted), so the driver maps it read-only again on every replay
        // until the forward-progress bound stops the kernel (GpuForwardProgressError): with writes here, seed 17
        // hits it at its first run. The driver would have to move such a page to system memory itself.
        w.spawnGpu([...addrs, ...addrs].map((addr) => ({ addr, write: false })), 8);
        engine.spawn("cpu", async () => {
          await engine.sleep(delay(engine));
          const child = await w.locked(mm, () => mm.fork());
          child.mmapLock.engine = engine;
          w.expected.set(child, new Map(w.expected.get(mm)!));
          for (let op = 0; op < 3; op++) {
            await engine.sleep(Math.floor(delay(engine) / 4));
            await w.access(child, addrs[rng.int(addrs.length)]!, newBytes(150 + op));
          }
          await w.access(mm, addrs[rng.int(addrs.length)]!, null);
        });
      } else {
        // Two VA blocks, one root chunk: alternate pairs of accesses between them, so each batch evicts the other.
        const half = addrs.length / 2;
        const acc: { addr: number; write: boolean }[] = [];
        for (let i = 0; i < half; i += 2) {
          for (const b of [0, half]) for (const j of [i, i + 1]) acc.push({ addr: addrs[b + j]!, write: j % 3 === 0 });
        }
        w.spawnGpu(acc, 2);
        engine.spawn("cpu", async () => {
          for (let op = 0; op < 4; op++) {
            await engine.sleep(Math.floor(delay(engine) / 2));
            const a = addrs[rng.int(addrs.length)]!;
            if (op === 2) {
              expect(await w.locked(mm, () => mm.madvise(a, P, MADV_DONTNEED))).toBe(0);
              w.expected.get(mm)!.set(a, new Uint8Array(P));
            } else await w.access(mm, a, rng.int(2) === 0 ? null : newBytes(50 + op));
          }
        });
      }
      await engine.run();
      w.finish();
      account(opts.tally, w);
    } finally {
      mirrorHook.engine = null;
      mirrorHook.broken = false;
    }
  };
}

const SCENARIOS: { name: ScenarioName; what: string; runs: number; seed: number }[] = [
  { name: "munmap", what: "a CPU munmap (and a zap + rewrite)", runs: 1100, seed: 15 },
  { name: "migrate-back", what: "CPU faults migrating pages back (migrate_to_ram)", runs: 1100, seed: 16 },
  { name: "fork", what: "a CPU fork of the same range (and child writes)", runs: 1100, seed: 17 },
  { name: "eviction", what: "eviction (one root chunk for two VA blocks) and CPU accesses", runs: 1100, seed: 18 },
];

describe("schedule explorer: the GPU driver's fault service vs the CPU (stale-mapping check at every block)", () => {
  for (const sc of SCENARIOS) {
    const base = { runs: sc.runs, seed: sc.seed, strategy: "random" } satisfies ExploreOptions;
    const { runs, seed, seedSource } = exploreConfig(base);
    const opts = { ...base, runs, seed };
    it(`${sc.name}: a fault batch during ${sc.what}, ${opts.runs} runs, no stale mapping, nothing lost`, async () => {
      const tally = newTally();
      const t0 = performance.now();
      const res = await explore(scenario(sc.name, { tally }), opts);
      const ms = performance.now() - t0;
      checkExplore({ file: import.meta.url, test: `${sc.name}: a fault batch`, filter: `${sc.name}: a fault batch` }, { seed, seedSource }, res);
      const { orders, ...counts } = tally;
      console.log(
        `${sc.name}: ${res.distinctTraces} distinct interleavings (${orders.size} distinct step orders) in ${opts.runs} runs, ${Math.round(ms)} ms`,
        JSON.stringify(counts),
      );
      expect(res.runs).toBe(opts.runs);
      expect(tally.runs).toBe(opts.runs);
      // ≥ 1,000 distinct interleavings at the default 1,200 runs (a reduced HMMSIM_EXPLORE_RUNS asks for 3/4 of its runs).
      expect(res.distinctTraces).toBeGreaterThanOrEqual(Math.min(1000, Math.floor((opts.runs * 3) / 4)));
      expect(tally.checks).toBeGreaterThan(10 * opts.runs);
      // The races happened: the device page table was invalidated under the driver, and (except in migrate-back,
      // see below) a mirror pass met an invalidation after its hmm_range_fault and retried (read_retry).
      expect(tally.invalidatedPtes).toBeGreaterThan(0);
      if (sc.name !== "migrate-back" && opts.runs >= 100) expect(tally.mirrorRetries).toBeGreaterThan(0);
      expect(tally.batches).toBeGreaterThan(opts.runs);
      if (sc.name === "munmap") expect(tally.gpuFaults).toBeGreaterThan(0);
      if (sc.name === "migrate-back" || sc.name === "fork") expect(tally.cpuFaultPages).toBeGreaterThan(0);
      if (sc.name === "eviction") expect(tally.evictions).toBeGreaterThan(opts.runs);
    }, Math.max(120_000, opts.runs * 40));
  }

  // migrate-back is not among them: its races are the driver's own migrations (MMU_NOTIFY_MIGRATE with its owner,
  // which it ignores) and migrate_to_ram (which erases the device PTE itself), so no invalidation moves the
  // sequence between a mirror pass's hmm_range_fault and its update.
  for (const sc of SCENARIOS.filter((s) => s.name !== "migrate-back")) {
    it(`${sc.name}: catches the driver without mmu_interval_read_retry; the reported seed replays it, the real driver passes it`, async () => {
      const opts = { strategy: "random" as const };
      const res = await explore(scenario(sc.name, { broken: true }), { runs: 400, seed: sc.seed, ...opts });
      expect(res.ok).toBe(false);
      const f = res.failure!;
      console.log(`${sc.name}, no read_retry: caught at run ${f.run} (seed ${f.seed}): ${f.message.slice(0, 160)}`);
      expect(f.kind).toBe("error");
      expect(f.message).toMatch(/stale device mapping/);
      const again = await replay(scenario(sc.name, { broken: true }), f.seed, opts);
      expect(again.ok).toBe(false);
      expect(again.failure!.message).toBe(f.message);
      expect(again.failure!.trace).toEqual(f.trace);
      expect((await replay(scenario(sc.name), f.seed, opts)).ok).toBe(true);
      expect(mirrorHook.windows).toBeGreaterThan(0);
    });
  }
});
