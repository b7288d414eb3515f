// The FPGA driver on a machine, as a driver developer checks it: every stream fault is one interrupt serviced alone;
// the TLBs are filled by the driver only; jobs can pre-migrate or pre-map their buffers; invalidations clear the card's
// mappings and TLB entries; CPU faults migrate back; eviction goes through selectVictim. After every test: the
// kernel's invariant checker, no byte lost, and after the mm exits no card page left in use.
import { describe, expect, it } from "vitest";
import { PAGE_SIZE, type Mm } from "@hmmsim/core";
import { COST_KINDS, MachineTrace, type CostKind, type Machine } from "@hmmsim/machine";
import { POLICY_STAGE_OVERRIDE, Policy, THRASHING_HINT_PIN, THRASHING_HINT_THROTTLE } from "@hmmsim/policy";
import { checkInvariants, compareContents, snapshotContents } from "@hmmsim/testing";
import { createPattern } from "@hmmsim/workloads";
import { CHUNK_PAGES } from "./card-memory.js";
import { FpgaFaultError, FpgaInputError, FpgaSpecError } from "./errors.js";
import { FpgaDriver } from "./fpga-driver.js";
import type { FpgaJobResult } from "./fpga-job.js";
import { resolveFpgaSpec } from "./fpga-spec.js";
import { tlbTag2m, tlbTag4k } from "./fpga-tlb.js";
import { anonMap, beats, fillPages, testMachine } from "./testing/test-util.js";

const MiB = 2 ** 20;

/** The conformance checks after a test: invariants, bytes, then exit leaves no card page and no violation. */
function conformance(machine: Machine, fpga: FpgaDriver, mm: Mm, snap?: ReturnType<typeof snapshotContents>): void {
  expect(checkInvariants(machine.kernel!)).toEqual([]);
  if (snap) expect(compareContents(mm, snap)).toEqual([]);
  mm.exit();
  expect(fpga.card.usedPages).toBe(0);
  expect(fpga.card.usedChunks).toBe(0);
  expect(checkInvariants(machine.kernel!)).toEqual([]);
  expect(machine.ledger.unsettledPs).toBe(0);
}

async function job(machine: Machine, fpga: FpgaDriver, mm: Mm, acc: { addr: number; write: boolean }[], opts: Parameters<FpgaDriver["runJob"]>[2] = {}): Promise<FpgaJobResult> {
  let res: FpgaJobResult | undefined;
  let err: unknown;
  machine.spawn("app", async () => {
    try {
      res = await fpga.runJob(mm, acc, opts);
    } catch (e) {
      err = e;
    }
  });
  await machine.run();
  if (err) throw err;
  return res!;
}

describe("FPGA driver: faults as an FPGA shell takes them", () => {
  it("one stream over CPU-written pages: each first touch stalls the stream, raises one interrupt and migrates one page", async () => {
    const { machine, fpga } = testMachine();
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 16 * PAGE_SIZE);
    fillPages(mm, addr, 16);
    const snap = snapshotContents(mm, addr, addr + 16 * PAGE_SIZE);
    const batches: number[] = [];
    MachineTrace.getHooks(machine).deviceFaultBatch.tap("t", (e) => void batches.push(e.faults));
    const r = await job(machine, fpga, mm, beats(addr, 16, 4, 3));
    expect(r.accesses).toBe(64);
    // 16 page faults (4 beats per page, the first one faults); the writes to a page the first read mapped writable do not fault.
    expect(r.faults).toBe(16);
    expect(r.streams).toHaveLength(1);
    expect(r.streams[0]!.faults).toBe(16);
    expect(r.streams[0]!.stallPs).toBeGreaterThan(0);
    expect(r.streams[0]!.stallPs).toBeLessThan(r.endPs - r.startPs);
    // No batching: one interrupt, one service round, one "batch" of one fault each.
    expect(fpga.stats).toMatchObject({ interrupts: 16, serviced: 16, pageFaults: 16, tlbRefills: 0, migratedPages: 16, migrateRuns: 16, droppedFaults: 0 });
    expect(batches).toEqual(new Array(16).fill(1));
    expect(fpga.counters()).toEqual({ batches: 16, faultedPages: 16, migratedPages: 16, populatedPages: 0 });
    for (let i = 0; i < 16; i++) {
      expect(fpga.isResident(mm, addr + i * PAGE_SIZE)).toBe(true);
      expect(fpga.entry(mm, addr + i * PAGE_SIZE)).toMatchObject({ host: false, write: true });
    }
    // The CPU reads it all back: every page faults back through migrate_to_ram, nothing lost.
    machine.spawn("cpu", async () => {
      for (let i = 0; i < 16; i++) mm.touch(addr + i * PAGE_SIZE, false);
      await machine.ledger.settle();
    });
    await machine.run();
    expect(fpga.stats.cpuFaultPages).toBe(16);
    expect(fpga.entry(mm, addr)).toBeNull();
    conformance(machine, fpga, mm, snap);
  });

  it("interrupts from several stalled streams are serviced one at a time, in order, each a full service round (no batch)", async () => {
    const { machine, fpga } = testMachine({ fpga: { streams: 4 } });
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 4 * PAGE_SIZE);
    fillPages(mm, addr, 4);
    const spans: [number, number][] = [];
    MachineTrace.getHooks(machine).deviceFaultBatch.tap("t", (e) => void spans.push([e.startPs, e.endPs]));
    const before = machine.ledger.chargedCount.DEVICE_FAULT;
    // Four streams, one beat each on its own page: all four miss at the same instant.
    const r = await job(machine, fpga, mm, [0, 1, 2, 3].map((i) => ({ addr: addr + i * PAGE_SIZE, write: false })));
    expect(r.streams.map((s) => s.faults)).toEqual([1, 1, 1, 1]);
    expect(machine.ledger.chargedCount.DEVICE_FAULT - before).toBe(4);
    expect(spans).toHaveLength(4);
    for (let i = 1; i < 4; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]); // strictly one after another
    // The later streams waited for the earlier services: stall grows with the queue position.
    const stalls = r.streams.map((s) => s.stallPs);
    expect([...stalls].sort((a, b) => a - b)).toEqual(stalls.slice().sort((a, b) => a - b));
    expect(Math.max(...stalls)).toBeGreaterThan(3 * Math.min(...stalls));
    conformance(machine, fpga, mm);
  });

  it("a TLB miss on a page already mapped is a refill, not a page fault (small TLB: conflict misses)", async () => {
    const { machine, fpga } = testMachine({ fpga: { tlbSmallEntries: 4, tlbSmallWays: 1 } });
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 16 * PAGE_SIZE);
    fillPages(mm, addr, 16);
    const pass = beats(addr, 16, 1);
    const r = await job(machine, fpga, mm, [...pass, ...pass]);
    // Pass 1: 16 page faults. Pass 2: a direct-mapped 4-entry TLB (4 sets of 1 way) keeps pages 12-15 until the
    // refills of pages 0-3 take their sets: every beat of pass 2 misses and refills (the page is mapped).
    expect(fpga.stats.pageFaults).toBe(16);
    expect(fpga.stats.tlbRefills).toBe(16);
    expect(r.faults).toBe(32);
    expect(fpga.tlbSmall.replacements).toBe(28);
    expect(fpga.stats.migratedPages).toBe(16);
    expect(machine.ledger.chargedCount.DEVICE_FAULT).toBe(16); // a refill is no page-fault service round
    conformance(machine, fpga, mm);
  });

  it("a whole 2 MiB block in card memory is one 2 MiB TLB entry; clearing one page drops it", async () => {
    const { machine, fpga } = testMachine();
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 2 * MiB);
    fillPages(mm, addr, 8);
    const r = await job(machine, fpga, mm, beats(addr, CHUNK_PAGES, 1), { mode: "premigrate", buffers: [{ start: addr, end: addr + 2 * MiB }] });
    expect(r.faults).toBe(0);
    expect(r.prepare.pages).toBe(CHUNK_PAGES);
    const space = fpga.spaceId(mm);
    expect(fpga.tlbLarge.contains(tlbTag2m(space, addr / (2 * MiB)))).toBe(true);
    expect(fpga.stats.migratedPages + fpga.stats.populatedPages).toBe(CHUNK_PAGES);
    expect(fpga.stats.populatedPages).toBe(CHUNK_PAGES - 8); // never written by the CPU: cleared on the card, no copy
    // The CPU touches one page: migrate_to_ram; the block's 2 MiB entry goes, a card TLB shootdown is paid.
    machine.spawn("cpu", async () => {
      mm.touch(addr, false);
      await machine.ledger.settle();
    });
    await machine.run();
    expect(fpga.tlbLarge.contains(tlbTag2m(space, addr / (2 * MiB)))).toBe(false);
    expect(fpga.stats.shootdowns).toBe(1);
    conformance(machine, fpga, mm);
  });
});

describe("FPGA driver: job-scoped pre-migration and pre-mapping", () => {
  it("premigrate: the job's buffer (default: the VMA of its first access) is on the card before launch; the streams never stall", async () => {
    const { machine, fpga } = testMachine({ fpga: { streams: 2, jobMode: "premigrate" } });
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 64 * PAGE_SIZE);
    fillPages(mm, addr, 64);
    const snap = snapshotContents(mm, addr, addr + 64 * PAGE_SIZE);
    const r = await job(machine, fpga, mm, beats(addr, 64, 2, 5));
    expect(r.mode).toBe("premigrate");
    expect(r.faults).toBe(0);
    expect(r.streams.every((s) => s.stallPs === 0)).toBe(true);
    expect(r.prepare.endPs).toBeGreaterThan(r.prepare.startPs);
    expect(r.startPs).toBe(r.prepare.endPs); // launched when the pre-migration ended
    expect(fpga.stats.migratedPages).toBe(64);
    // The VMA is 64 pages + 2 MiB of alignment slack (anonMap): every page of it was prepared.
    expect(r.prepare.pages).toBe(fpga.stats.preparedPages);
    expect(r.prepare.pages).toBeGreaterThanOrEqual(64);
    conformance(machine, fpga, mm, snap);
  });

  it("premap: the buffer is faulted in on the host and mapped; the streams read it over the link in PMTU packets", async () => {
    const { machine, fpga } = testMachine();
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 8 * PAGE_SIZE);
    fillPages(mm, addr, 8);
    const snap = snapshotContents(mm, addr, addr + 8 * PAGE_SIZE);
    const link = machine.link("l0");
    const h2d0 = link.stats("h2d").transfers;
    const r = await job(machine, fpga, mm, beats(addr, 8, 16), { mode: "premap", buffers: [{ start: addr, end: addr + 8 * PAGE_SIZE }] });
    expect(r.faults).toBe(0);
    expect(r.prepare.pages).toBe(8);
    expect(fpga.stats.migratedPages).toBe(0);
    expect(fpga.entry(mm, addr)).toMatchObject({ host: true, write: true });
    // 16 beats of 64 B per page: one 4 KiB packet per page, the other 15 beats from the packet on the card.
    expect(r.hostPackets).toBe(8);
    expect(r.remoteAccesses).toBe(128);
    expect(link.stats("h2d").transfers - h2d0).toBe(8);
    conformance(machine, fpga, mm, snap);
  });

  it("migrateToCard (user-managed migration) and a bad range", async () => {
    const { machine, fpga } = testMachine();
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 4 * PAGE_SIZE);
    fillPages(mm, addr, 4);
    let ret = 1;
    machine.spawn("app", async () => {
      ret = await fpga.migrateToCard(mm, addr, addr + 4 * PAGE_SIZE);
    });
    await machine.run();
    expect(ret).toBe(0);
    expect(fpga.isResident(mm, addr + 3 * PAGE_SIZE)).toBe(true);
    await expect(fpga.migrateToCard(mm, addr, addr)).rejects.toBeInstanceOf(FpgaInputError);
    conformance(machine, fpga, mm);
  });
});

describe("FPGA driver: policy hooks, invalidation, eviction", () => {
  it("shouldMigrate false: the fault maps the host page (hmm_range_fault), no migration", async () => {
    const { machine, fpga } = testMachine();
    Policy.getHooks(machine).shouldMigrate.tap({ name: "t", stage: POLICY_STAGE_OVERRIDE }, () => false);
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 4 * PAGE_SIZE);
    fillPages(mm, addr, 4);
    const r = await job(machine, fpga, mm, beats(addr, 4, 4));
    expect(r.faults).toBe(4);
    expect(fpga.stats.migratedPages).toBe(0);
    expect(fpga.stats.hostMapped).toBe(4);
    expect(fpga.entry(mm, addr)).toMatchObject({ host: true });
    expect(r.hostPackets).toBe(4);
    conformance(machine, fpga, mm);
  });

  it("thrashingHint PIN maps the page on the host without asking shouldMigrate; THROTTLE holds the stream until the hint's time", async () => {
    const pin = testMachine();
    const h = Policy.getHooks(pin.machine);
    let asked = 0;
    h.shouldMigrate.tap({ name: "spy", stage: POLICY_STAGE_OVERRIDE }, () => void asked++);
    h.thrashingHint.tap("t", () => ({ type: THRASHING_HINT_PIN, untilPs: 0 }));
    const mm = pin.machine.kernel!.createMm();
    const addr = anonMap(mm, 2 * PAGE_SIZE);
    fillPages(mm, addr, 2);
    await job(pin.machine, pin.fpga, mm, beats(addr, 2, 1));
    expect(pin.fpga.stats).toMatchObject({ thrashingPins: 2, migratedPages: 0, hostMapped: 2 });
    expect(asked).toBe(0);
    conformance(pin.machine, pin.fpga, mm);

    // THROTTLE the first fault for 100 µs past its service: the stream stands still that long more than without it.
    const run = async (throttle: boolean) => {
      const { machine, fpga } = testMachine({ fpga: { maxFaultsPerAccess: 1 } });
      let first = true;
      Policy.getHooks(machine).thrashingHint.tap("t", () => {
        if (!throttle || !first) return undefined;
        first = false;
        return { type: THRASHING_HINT_THROTTLE, untilPs: machine.engine.now + 100_000_000 };
      });
      const m = machine.kernel!.createMm();
      const a = anonMap(m, PAGE_SIZE);
      fillPages(m, a, 1);
      const r = await job(machine, fpga, m, beats(a, 1, 1));
      conformance(machine, fpga, m);
      return { r, stats: { ...fpga.stats } };
    };
    const plain = await run(false);
    const held = await run(true);
    expect(held.stats).toMatchObject({ throttledFaults: 1, migratedPages: 1 });
    expect(held.stats.throttlePs).toBeGreaterThan(0);
    // The held fault is retried (a second interrupt) and is not counted against maxFaultsPerAccess (1 here).
    expect(held.r.faults).toBe(plain.r.faults + 1);
    expect(held.r.streams[0]!.stallPs - plain.r.streams[0]!.stallPs).toBeGreaterThanOrEqual(held.stats.throttlePs);
  });

  it("prefetchRange widens one fault to the policy's range (one interrupt, one migrateVma run)", async () => {
    const { machine, fpga } = testMachine();
    Policy.getHooks(machine).prefetchRange.tap({ name: "t", stage: POLICY_STAGE_OVERRIDE }, (range) => {
      range.end = range.start + 16 * PAGE_SIZE;
      return range;
    });
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 16 * PAGE_SIZE);
    fillPages(mm, addr, 16);
    const r = await job(machine, fpga, mm, beats(addr, 16, 1));
    expect(r.faults).toBe(1);
    expect(fpga.stats).toMatchObject({ pageFaults: 1, migratedPages: 16, migrateRuns: 1 });
    conformance(machine, fpga, mm);
  });

  it("a host munmap invalidates the card's mappings and TLB entries and pays a card TLB shootdown", async () => {
    const { machine, fpga } = testMachine();
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 8 * PAGE_SIZE);
    fillPages(mm, addr, 8);
    await job(machine, fpga, mm, beats(addr, 8, 1));
    const space = fpga.spaceId(mm);
    expect(fpga.tlbSmall.contains(tlbTag4k(space, addr / PAGE_SIZE))).toBe(true);
    const before = Object.fromEntries(COST_KINDS.map((k) => [k, machine.ledger.chargedCount[k]])) as Record<CostKind, number>;
    let t0 = 0;
    let t1 = 0;
    machine.spawn("cpu", async () => {
      t0 = machine.now;
      expect(mm.munmap(addr, 4 * PAGE_SIZE)).toBe(0);
      await machine.ledger.settle();
      t1 = machine.now;
    });
    await machine.run();
    expect(fpga.stats.invalidatedMappings).toBe(4);
    expect(fpga.stats.shootdowns).toBe(1);
    expect(fpga.entry(mm, addr)).toBeNull();
    expect(fpga.tlbSmall.contains(tlbTag4k(space, addr / PAGE_SIZE))).toBe(false);
    expect(fpga.entry(mm, addr + 4 * PAGE_SIZE)).not.toBeNull();
    // The munmap task paid the shootdown: 2 µs + 4 × 100 ns (with its own kernel costs on top).
    expect(machine.ledger.chargedCount.DEVICE_FAULT - before.DEVICE_FAULT).toBe(0);
    expect(t1 - t0).toBeGreaterThanOrEqual(2_400_000);
    conformance(machine, fpga, mm);
  });

  it("card memory full: selectVictim (default LRU) evicts a chunk, its pages go back over the link, nothing lost", async () => {
    const { machine, fpga } = testMachine({ deviceMemory: "2MiB" });
    const victims: number[] = [];
    Policy.getHooks(machine).selectVictim.tap({ name: "spy", stage: POLICY_STAGE_OVERRIDE }, (q) => {
      victims.push(q.first());
      expect(q.chunkAccesses(q.first())).toBeGreaterThan(0);
      return undefined;
    });
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 4 * MiB);
    const a = addr;
    const b = addr + 2 * MiB;
    fillPages(mm, a, 4);
    fillPages(mm, b, 4, 50);
    const snapA = snapshotContents(mm, a, a + 4 * PAGE_SIZE);
    const snapB = snapshotContents(mm, b, b + 4 * PAGE_SIZE);
    await job(machine, fpga, mm, [...beats(a, 4, 1), ...beats(b, 4, 1), ...beats(a, 4, 1)]);
    expect(fpga.stats.evictions).toBe(2);
    expect(victims).toEqual([0, 0]);
    expect(fpga.isResident(mm, a)).toBe(true);
    expect(fpga.isResident(mm, b)).toBe(false);
    expect(compareContents(mm, snapA)).toEqual([]);
    expect(compareContents(mm, snapB)).toEqual([]);
    conformance(machine, fpga, mm);
  });

  it("a beat to an unmapped address: the driver drops the fault and the job rejects with FpgaFaultError", async () => {
    const { machine, fpga } = testMachine();
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, PAGE_SIZE);
    await expect(job(machine, fpga, mm, [{ addr: addr - 64 * MiB, write: false }])).rejects.toBeInstanceOf(FpgaFaultError);
    expect(fpga.stats.droppedFaults).toBe(1);
    conformance(machine, fpga, mm);
  });
});

describe("FPGA driver: devices, memory types, workloads", () => {
  it("two FPGAs in one machine: each its own dev_pagemap and pgmap owner; the other card's pages come back through the host", async () => {
    const { machine, fpga } = testMachine({ twoDevices: true });
    const other = FpgaDriver.of(machine, "fpga1");
    expect(other.pgmap).not.toBe(fpga.pgmap);
    // The machine's owner of each device (PgmapOwners): no peer link, so one each.
    expect(other.pgmap.owner).toBe(machine.pgmapOwner("fpga1"));
    expect(fpga.pgmap.owner).toBe(machine.pgmapOwner("fpga0"));
    expect(fpga.pgmap.owner).not.toBe(other.pgmap.owner);
    expect(other.startPfn).not.toBe(fpga.startPfn);
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 4 * PAGE_SIZE);
    fillPages(mm, addr, 4);
    const snap = snapshotContents(mm, addr, addr + 4 * PAGE_SIZE);
    await job(machine, fpga, mm, beats(addr, 4, 1));
    expect(fpga.isResident(mm, addr)).toBe(true);
    // fpga1's fault finds fpga0's device-private entry: migrate_vma_setup (MIGRATE_VMA_SELECT_SYSTEM) skips another
    // owner's page, and hmm_range_fault with fpga1 as dev_private_owner faults it back to RAM through fpga0's
    // migrate_to_ram; fpga1 then maps the host page. (A card-to-card path, TaPaSCo svm_migrate_dev_to_dev, is not
    // modelled: peer links come later.)
    await job(machine, other, mm, beats(addr, 4, 1));
    expect(other.entry(mm, addr)).toMatchObject({ host: true });
    expect(fpga.isResident(mm, addr)).toBe(false);
    expect(fpga.entry(mm, addr)).toBeNull();
    expect(fpga.stats.cpuFaultPages).toBe(4);
    expect(checkInvariants(machine.kernel!)).toEqual([]);
    expect(compareContents(mm, snap)).toEqual([]);
    mm.exit();
    expect(fpga.card.usedPages + other.card.usedPages).toBe(0);
  });

  it("DEVICE_COHERENT card memory behind a coherent (CXL) link: the CPU reads migrated pages in place", async () => {
    const { machine, fpga } = testMachine({ coherent: true });
    expect(fpga.memoryType).toBe("coherent");
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 4 * PAGE_SIZE);
    fillPages(mm, addr, 4);
    const snap = snapshotContents(mm, addr, addr + 4 * PAGE_SIZE);
    await job(machine, fpga, mm, beats(addr, 4, 1));
    expect(fpga.isResident(mm, addr)).toBe(true);
    expect(compareContents(mm, snap)).toEqual([]);
    expect(fpga.stats.cpuFaultPages).toBe(0); // no migrate_to_ram for coherent memory
    conformance(machine, fpga, mm, snap);
  });

  it("runs an @hmmsim/workloads pattern (streaming, 4 streams) and reports per-stream stall", async () => {
    const { machine, fpga } = testMachine({ fpga: { streams: 4 }, bytes: false });
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 2 * MiB);
    const r = await job(machine, fpga, mm, createPattern("streaming", { bytes: 2 * MiB, base: addr, granularity: 64 }) as never);
    expect(r.accesses).toBe((2 * MiB) / 64);
    expect(r.streams).toHaveLength(4);
    expect(r.streams.reduce((n, s) => n + s.accesses, 0)).toBe(r.accesses);
    expect(r.streams.every((s) => s.stallPs > 0)).toBe(true);
    expect(fpga.jobs).toHaveLength(1);
    conformance(machine, fpga, mm);
  });

  it("rejects bad job options and bad specs with typed errors naming the field", async () => {
    const { machine, fpga } = testMachine();
    const mm = machine.kernel!.createMm();
    await expect(fpga.runJob(mm, [], { streams: 2 })).rejects.toThrow(/opts\.streams/);
    await expect(fpga.runJob(mm, [], { mode: "eager" as never })).rejects.toThrow(/opts\.mode/);
    expect(() => resolveFpgaSpec({ tlbSmallWays: 3 })).toThrow(FpgaSpecError);
    expect(() => resolveFpgaSpec({ jobMode: "lazy" as never })).toThrow(/jobMode: must be one of fault, premigrate, premap/);
  });
});
