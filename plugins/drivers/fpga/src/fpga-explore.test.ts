// The schedule explorer (@hmmsim/engine explore) runs FPGA streams faulting one interrupt at a time while the host,
// in another task, munmaps part of the same range, zaps and rewrites a page, and reads and writes pages the driver is
// migrating to card memory (device-private pages fault back through migrate_to_ram; pages under migration make the
// CPU wait and retry).
//
// Per run: a fresh kernel (bytes on), one mm with CPU-written pages, and the real FpgaDriver built on the explorer's
// engine (a test cost model, a 16 GB/s link, the policy defaults, 4-entry TLBs so refills happen too). The driver's
// mirror loop (range-fault's mirrorRangeFault) gets a yield point at each place the kernel's loop holds no lock
// (after read_begin, after hmm_range_fault, before the driver lock): the driver passes no `window`, so the test wraps
// mirrorRangeFault (vi.mock) to add them — the same wrapper swaps in the broken loop below.
//
// Checked before every place a task gives up the CPU (every engine block) and after the run — the stale-mapping
// check: every valid entry of the driver's mapping table maps what the CPU maps at that address now (a host mapping:
// the present PTE's pfn, or a migration entry of it; a card-memory mapping: the device-private entry of that pfn, or
// a migration entry of it; writable only if the CPU's is), the block counts agree with the entries, and every TLB
// entry on the card stands for a valid mapping. After the run: the kernel invariant checker, every byte the CPU last
// wrote still there, and after exit no card page left in use.
//
// The deliberately broken driver: the mirror loop without mmu_interval_read_retry. The explorer must catch it, and
// the seed it reports must replay it.
//
// Run counts: HMMSIM_EXPLORE_RUNS / HMMSIM_EXPLORE_SEED; the default (1,100 runs) gives ≥ 1,000 distinct interleavings.
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
import { CHUNK_PAGES } from "./card-memory.js";
import { BLOCK_SIZE, FPGA_MAP_HOST, FPGA_MAP_VALID, FPGA_MAP_WRITE } from "./device-mappings.js";
import { FpgaFaultError } from "./errors.js";
import { FpgaDriver } from "./fpga-driver.js";
import { resolveFpgaSpec } from "./fpga-spec.js";
import { tlbTag2m, tlbTag4k } from "./fpga-tlb.js";

const mirrorHook = vi.hoisted(() => ({
  engine: null as { yieldPoint(label: string): Promise<void> } | null,
  broken: false,
  windows: 0,
}));

vi.mock("@hmmsim/range-fault", async (importOriginal) => {
  const rf = await importOriginal<typeof import("@hmmsim/range-fault")>();
  const { mmuIntervalReadBeginWait } = await import("@hmmsim/mmu-notifier");
  /** Coyote's fpga_do_host_fault loop minus mmu_interval_read_retry: the bug to catch. */
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
const PAGES = 16;
const BACKOFF = PS_PER_US / 4;
/** A test cost model: every CPU-side kernel step 50 ns per item, a device fault round 500 ns. */
const costs = { cost: (kind: CostKind, count: number): number => (kind === "DEVICE_FAULT" ? 500_000 : kind === "DMA" ? 0 : count * 50_000) };
const SPEC = resolveFpgaSpec({ streams: 4, tlbSmallEntries: 4, tlbSmallWays: 2, tlbLargeEntries: 2, tlbLargeWays: 1, faultInterruptPs: 200_000, restartPs: 200_000, tlbInvalidatePs: 300_000 });

class World {
  readonly k: Kernel;
  readonly mm: Mm;
  readonly fpga: FpgaDriver;
  readonly ledger: TaskCostLedger;
  readonly addrs: number[] = [];
  readonly expected = new Map<number, Uint8Array>();
  checks = 0;
  fpgaFaults = 0;

  constructor(readonly engine: Engine) {
    this.k = createKernel({ ramBytes: 4 << 20, bytes: true, thp: "never" });
    const mm = this.k.createMm();
    this.mm = mm;
    mm.mmapLock.engine = engine;
    const a = mm.mmap({ length: 2 * BLOCK_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const base = Math.ceil(a / BLOCK_SIZE) * BLOCK_SIZE;
    for (let i = 0; i < PAGES; i++) {
      const addr = base + i * P;
      this.addrs.push(addr);
      const bytes = new Uint8Array(P).fill(1 + i);
      mm.write(addr, bytes);
      this.expected.set(addr, bytes);
    }
    this.ledger = new TaskCostLedger(costs, engine);
    const link = new DuplexLink("l0", "custom", { h2dBandwidth: 16e9, d2hBandwidth: 16e9, alpha: PS_PER_US, sharing: "fifo" }, false, { engine, onTransfer: null });
    const device: DeviceSpec = { kind: "fpga", name: "fpga0", memory: BLOCK_SIZE, memoryType: "private", driver: "fpga", policy: "on-demand", link: "l0" };
    const owner = {};
    this.fpga = new FpgaDriver({ device, spec: SPEC, kernel: this.k, engine, ledger: this.ledger, link, trace: MachineTrace.getHooks(owner), policy: Policy.getHooks(owner) });
    this.fpga.attachMm(mm);
  }

  /** The stale-mapping check (see the file comment); throws listing what is stale. */
  assertNoStale(when: string): void {
    this.checks++;
    const f = this.fpga;
    const m = f.mappings;
    const bad: string[] = [];
    for (let slot = 0; slot < m.size; slot++) {
      const start = m.start[slot]!;
      let valid = 0;
      let local = 0;
      for (let j = 0; j < CHUNK_PAGES; j++) {
        const fl = m.flags[slot * CHUNK_PAGES + j]!;
        if ((fl & FPGA_MAP_VALID) === 0) continue;
        valid++;
        const host = (fl & FPGA_MAP_HOST) !== 0;
        if (!host) local++;
        const addr = start + j * P;
        const why = staleReason(this.mm, addr, m.pfn[slot * CHUNK_PAGES + j]!, host, (fl & FPGA_MAP_WRITE) !== 0);
        if (why !== null) bad.push(`0x${addr.toString(16)} (${host ? "host" : "card"}): ${why}`);
      }
      if (valid !== m.mapped[slot] || local !== m.localMapped[slot]) bad.push(`block 0x${start.toString(16)}: counts ${m.mapped[slot]} / ${m.localMapped[slot]}, entries ${valid} / ${local}`);
      // TLB ⊆ mappings: a cached entry stands for a valid mapping (a whole block in card memory for a 2 MiB entry).
      const space = m.space[slot]!;
      const bpn = start / BLOCK_SIZE;
      if (f.tlbLarge.contains(tlbTag2m(space, bpn)) && m.localMapped[slot] !== CHUNK_PAGES) bad.push(`block 0x${start.toString(16)}: a 2 MiB TLB entry with ${m.localMapped[slot]} card pages mapped`);
      for (let j = 0; j < CHUNK_PAGES; j++) {
        if (f.tlbSmall.contains(tlbTag4k(space, bpn * CHUNK_PAGES + j)) && (m.flags[slot * CHUNK_PAGES + j]! & FPGA_MAP_VALID) === 0) bad.push(`0x${(start + j * P).toString(16)}: a TLB entry without a mapping`);
      }
    }
    if (bad.length > 0) throw new Error(`stale device mapping ${when}: ${bad.slice(0, 4).join("; ")}${bad.length > 4 ? ` (+${bad.length - 4} more)` : ""}`);
  }

  checkAtEveryBlock(): void {
    const e = this.engine;
    const block = e._block.bind(e);
    e._block = (task: Task, on: Waitable | string): Promise<void> => {
      this.assertNoStale(`before task "${task.name}" blocks on ${typeof on === "string" ? on : on.describeWait(task)}`);
      return block(task, on);
    };
  }

  async access(addr: number, write: Uint8Array | null): Promise<void> {
    for (;;) {
      try {
        if (write !== null) {
          this.mm.write(addr, write);
          this.expected.set(addr, write);
        } else {
          const got = this.mm.read(addr, P);
          if (got[0] !== this.expected.get(addr)![0]) throw new Error(`CPU read of 0x${addr.toString(16)}: got ${got[0]}, want ${this.expected.get(addr)![0]}`);
        }
        await this.ledger.settle();
        return;
      } catch (e) {
        if (!(e instanceof FaultWouldBlockError) && !(e instanceof MmapLockHeldError)) throw e;
        await this.engine.sleep(BACKOFF);
      }
    }
  }

  async locked<T>(op: () => T): Promise<T> {
    const mm = this.mm;
    for (;;) {
      await mm.mmapLock.downWrite();
      mm.mmapLock.upWrite();
      if (!mm.mmapLock.isLocked() && mm.mmapLock.waiting === 0) return op();
    }
  }

  finish(): void {
    this.assertNoStale("after the run");
    assertInvariants(this.k);
    for (const [addr, want] of this.expected) {
      const pfn = resolveContentPfn(this.mm, addr);
      const got = pfn < 0 ? new Uint8Array(P) : this.k.pageBytes.snapshot(pfn);
      if (got[0] !== want[0]) throw new Error(`0x${addr.toString(16)} lost its bytes: holds ${got[0]}, want ${want[0]}`);
    }
    this.mm.exit();
    this.assertNoStale("after exit");
    if (this.fpga.card.usedPages !== 0) throw new Error(`${this.fpga.card.usedPages} card pages still in use after exit`);
    assertInvariants(this.k);
  }
}

function staleReason(mm: Mm, addr: number, pfn: number, host: boolean, write: boolean): string | null {
  if (mm.exited) return "the mm has exited";
  if (mm.vmaLookup(addr) === null) return "no VMA there any more";
  const e = mm.pgtable.pteGet(addr);
  if (e === 0) return "the CPU maps nothing there";
  const cpuPfn = ptePfn(e);
  if (isMigrationEntry(e)) {
    if (cpuPfn !== pfn) return `the CPU's migration entry is for pfn ${cpuPfn}`;
    if (write && !isWritableMigrationEntry(e)) return "writable on the card, read-only migration entry";
    return null;
  }
  if (host) {
    if (!ptePresent(e)) return "the CPU entry is not present";
    if (cpuPfn !== pfn) return `the CPU maps pfn ${cpuPfn}, the card ${pfn}`;
    if (write && !pteWrite(e)) return "writable on the card, read-only on the CPU";
    return null;
  }
  if (!isDevicePrivateEntry(e)) return ptePresent(e) ? `the CPU maps system pfn ${cpuPfn}` : "the CPU entry is not device-private";
  if (cpuPfn !== pfn) return `the CPU's device-private entry is for pfn ${cpuPfn}`;
  if (write && !isWritableDevicePrivateEntry(e)) return "writable on the card, read-only device-private entry";
  return null;
}

interface Tally {
  runs: number;
  checks: number;
  fpgaFaults: number;
  interrupts: number;
  migrated: number;
  cpuFaultPages: number;
  invalidated: number;
  shootdowns: number;
  tlbRefills: number;
  mirrorRetries: number;
}

const delay = (e: Engine): number => e.rng.int(161) * (PS_PER_US / 4);

function scenario(opts: { broken?: boolean; tally?: Tally } = {}) {
  return async (engine: Engine): Promise<void> => {
    mirrorHook.engine = engine;
    mirrorHook.broken = opts.broken === true;
    try {
      const w = new World(engine);
      w.checkAtEveryBlock();
      const { mm, addrs } = w;
      const rng = engine.rng;
      // Four streams read every page, then write every third: each miss one interrupt, serviced alone.
      const acc = [...addrs.map((addr) => ({ addr, write: false })), ...addrs.map((addr, i) => ({ addr: addr + 64, write: i % 3 === 0 }))];
      engine.spawn("fpga", async () => {
        try {
          await w.fpga.runJob(mm, acc);
        } catch (e) {
          if (!(e instanceof FpgaFaultError)) throw e;
          w.fpgaFaults++;
        }
      });
      engine.spawn("host", async () => {
        await engine.sleep(delay(engine));
        // Migrate back: the CPU reads or writes a page the streams are pulling to the card.
        await w.access(addrs[rng.int(PAGES / 2)]!, rng.int(2) === 0 ? null : new Uint8Array(P).fill(100));
        await engine.sleep(Math.floor(delay(engine) / 4));
        // munmap the upper half under the streams.
        expect(await w.locked(() => mm.munmap(addrs[PAGES / 2]!, (PAGES / 2) * P))).toBe(0);
        for (const a of addrs.slice(PAGES / 2)) w.expected.delete(a);
        await engine.sleep(Math.floor(delay(engine) / 4));
        // A page zapped and written again: the card may map the new page only after the old one's invalidation.
        const p = addrs[rng.int(PAGES / 2)]!;
        expect(await w.locked(() => mm.madvise(p, P, MADV_DONTNEED))).toBe(0);
        w.expected.set(p, new Uint8Array(P));
        await w.access(p, new Uint8Array(P).fill(200));
        await w.access(addrs[rng.int(PAGES / 2)]!, null);
      });
      await engine.run();
      w.finish();
      const t = opts.tally;
      if (t) {
        const s = w.fpga.stats;
        t.runs++;
        t.checks += w.checks;
        t.fpgaFaults += w.fpgaFaults;
        t.interrupts += s.interrupts;
        t.migrated += s.migratedPages;
        t.cpuFaultPages += s.cpuFaultPages;
        t.invalidated += s.invalidatedMappings;
        t.shootdowns += s.shootdowns;
        t.tlbRefills += s.tlbRefills;
        t.mirrorRetries += s.mirrorRetries;
      }
    } finally {
      mirrorHook.engine = null;
      mirrorHook.broken = false;
    }
  };
}

describe("schedule explorer: FPGA streams faulting while the host munmaps and migrates the same range", () => {
  const base = { runs: 1100, seed: 14, strategy: "random" } satisfies ExploreOptions;
  const { runs, seed, seedSource } = exploreConfig(base);
  const opts = { ...base, runs, seed };

  it(`${opts.runs} runs: no stale mapping or TLB entry at any block, nothing lost, no card page leaked`, async () => {
    const tally: Tally = { runs: 0, checks: 0, fpgaFaults: 0, interrupts: 0, migrated: 0, cpuFaultPages: 0, invalidated: 0, shootdowns: 0, tlbRefills: 0, mirrorRetries: 0 };
    const res = await explore(scenario({ tally }), opts);
    checkExplore({ file: import.meta.url, test: "FPGA streams faulting", filter: "no stale mapping" }, { seed, seedSource }, res);
    console.log(`fpga munmap+migrate: ${res.distinctTraces} distinct interleavings in ${opts.runs} runs`, JSON.stringify(tally));
    expect(res.runs).toBe(opts.runs);
    expect(tally.runs).toBe(opts.runs);
    expect(res.distinctTraces).toBeGreaterThanOrEqual(Math.min(1000, Math.floor((opts.runs * 3) / 4)));
    expect(tally.checks).toBeGreaterThan(10 * opts.runs);
    // The races happened: invalidations under the driver (card shootdowns), CPU faults migrating back, refills, and
    // mirror passes that met an invalidation after hmm_range_fault and retried; streams hitting the unmapped half.
    // (Over many runs: a replay of one seed, HMMSIM_EXPLORE_RUNS=1, checks that run alone.)
    if (opts.runs >= 100) {
      expect(tally.invalidated).toBeGreaterThan(0);
      expect(tally.shootdowns).toBeGreaterThan(0);
      expect(tally.cpuFaultPages).toBeGreaterThan(0);
      expect(tally.tlbRefills).toBeGreaterThan(0);
      expect(tally.mirrorRetries).toBeGreaterThan(0);
      expect(tally.fpgaFaults).toBeGreaterThan(0);
    }
  }, Math.max(120_000, opts.runs * 60));

  it("the soak's counterexample: a mirror pass that read our device-private pfn while migrate_to_ram moved the page back retries (seed 1105490124)", async () => {
    // `npm run soak` (10^4 runs) found it at run 1,882: the stream's fault read page 6's card pfn with
    // hmm_range_fault; the CPU then touched the page, and migrate_to_ram moved it back under an MMU_NOTIFY_MIGRATE
    // of our own, which the driver skipped without advancing the notifier's sequence, so the mirror loop's
    // read_retry passed and the card mapped a page the CPU no longer had ("the CPU maps system pfn 0").
    const r = await replay(scenario(), 1105490124, { strategy: "random" });
    expect(r.failure?.message).toBeUndefined();
    expect(r.ok).toBe(true);
  }, 60_000);

  it("catches the driver without mmu_interval_read_retry; the reported seed replays it, the real driver passes it", async () => {
    const o = { strategy: "random" as const };
    const res = await explore(scenario({ broken: true }), { runs: 400, seed: 14, ...o });
    expect(res.ok).toBe(false);
    const f = res.failure!;
    console.log(`fpga, no read_retry: caught at run ${f.run} (seed ${f.seed}): ${f.message.slice(0, 160)}`);
    expect(f.message).toMatch(/stale device mapping/);
    const again = await replay(scenario({ broken: true }), f.seed, o);
    expect(again.ok).toBe(false);
    expect(again.failure!.message).toBe(f.message);
    expect((await replay(scenario(), f.seed, o)).ok).toBe(true);
    expect(mirrorHook.windows).toBeGreaterThan(0);
  }, 120_000);
});
