import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MADV_DONTNEED, MEMORY_DEVICE_PRIVATE, type Mm } from "@hmmsim/core";
import {
  DeviceDrivers,
  MachineComponent,
  MachineSpec as MachineSpecToken,
  MachineTrace,
  SpecError,
  createMachine,
  defaultPlugins,
  getMachineStats,
  type DeviceDriver,
  type DeviceFaultBatchEvent,
  type EvictionEvent,
  type MachinePlugin,
} from "@hmmsim/machine";
import { POLICY_STAGE_OVERRIDE, Policy, lruVictim } from "@hmmsim/policy";
import { GpuFaultError, GpuInputError, GpuPolicyError, GpuSpecError } from "./errors.js";
import { GpuDriver } from "./gpu-driver.js";
import { resolveGpuSpec } from "./gpu-spec.js";
import { GpuDevices, GpuDriverPlugin } from "./plugin.js";
import { anonMap, fillPages, testMachine, testPlugins } from "./testing/test-util.js";

const PAGE = 4096;
const BLOCK = 2 * 1024 * 1024;

function pages(addr: number, n: number, write = false) {
  return Array.from({ length: n }, (_, i) => ({ addr: addr + i * PAGE, write }));
}

/** A plugin that taps the policy hooks in apply() (a kind of its own: it provides no name). */
function tapPlugin(name: string, fn: (m: Parameters<MachinePlugin["apply"]>[0]) => void): MachinePlugin {
  return { name, kind: "test", apply: fn };
}

async function runOn(machine: ReturnType<typeof testMachine>["machine"], fn: () => Promise<void> | void): Promise<void> {
  machine.spawn("app", fn);
  await machine.run();
}

describe("on-demand migration", () => {
  it("a device read of CPU-written pages migrates them; CPU reads bring every byte back", async () => {
    const { machine, gpu } = testMachine();
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 16 * PAGE);
    fillPages(mm, addr, 16);
    let res;
    await runOn(machine, async () => void (res = await gpu.runKernel(mm, pages(addr, 16), { warps: 16 })));
    expect(res!.accesses).toBe(16);
    expect(gpu.stats.migratedPages).toBe(16);
    for (let i = 0; i < 16; i++) {
      expect(gpu.isResident(mm, addr + i * PAGE)).toBe(true);
      const e = gpu.entry(mm, addr + i * PAGE)!;
      expect(e).toMatchObject({ valid: true, remote: false, write: true }); // hmm reports the writable device-private entry
      expect(e.pfn).toBeGreaterThanOrEqual(gpu.startPfn);
    }
    const st = getMachineStats(machine);
    expect(st.deviceFaults).toBe(16);
    expect(st.migrated.h2d.pages).toBe(16);
    expect(st.migrated.h2d.bytes).toBe(16 * PAGE);
    expect(st.links.l0!.h2d.bytes).toBe(16 * PAGE);
    expect(gpu.stats.invalidatedPtes).toBe(0); // own MMU_NOTIFY_MIGRATE ignored
    let back: Uint8Array[] = [];
    await runOn(machine, () => void (back = Array.from({ length: 16 }, (_, i) => mm.read(addr + i * PAGE, PAGE))));
    for (let i = 0; i < 16; i++) expect(back[i]!.every((b) => b === ((1 + i) & 0xff))).toBe(true);
    expect(gpu.stats.cpuFaultPages).toBe(16);
    // migrate_to_ram's copies went over the real link (ledger.chargeTransfer), one 4 KiB DMA each
    expect(getMachineStats(machine).links.l0!.d2h).toMatchObject({ bytes: 16 * PAGE, transfers: 16 });
    expect(getMachineStats(machine).migrated.d2h).toEqual({ count: 16, pages: 16, bytes: 16 * PAGE });
    expect(gpu.isResident(mm, addr)).toBe(false);
    expect(gpu.entry(mm, addr)).toBeNull();
    expect(gpu.chunks.usedPages).toBe(0);
  });

  it("device writes to untouched memory fill holes with zeroed device pages; the CPU then reads zeroes", async () => {
    const { machine, gpu } = testMachine();
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 8 * PAGE);
    await runOn(machine, async () => void (await gpu.runKernel(mm, pages(addr, 8, true), { warps: 8 })));
    // holes: populated (cleared) on the device, no DMA, not counted as migrated
    expect(gpu.stats).toMatchObject({ migratedPages: 0, populatedPages: 8 });
    expect(getMachineStats(machine).links.l0!.h2d.bytes).toBe(0);
    expect(gpu.entry(mm, addr)!.write).toBe(true);
    let r: Uint8Array | undefined;
    await runOn(machine, () => void (r = mm.read(addr + 3 * PAGE, PAGE)));
    expect(r!.every((b) => b === 0)).toBe(true);
  });

  it("a second kernel over resident pages hits the device TLB/page table without faulting", async () => {
    const { machine, gpu } = testMachine();
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 4 * PAGE);
    await runOn(machine, async () => void (await gpu.runKernel(mm, pages(addr, 4), { warps: 4 })));
    let res;
    await runOn(machine, async () => void (res = await gpu.runKernel(mm, [...pages(addr, 4), ...pages(addr, 4)], { warps: 1 })));
    expect(res!).toMatchObject({ accesses: 8, faults: 0, tlbHits: 8, tlbMisses: 0 });
  });

  it("a fully resident 2 MiB block is mapped by one TLB entry", async () => {
    const { machine, gpu } = testMachine();
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 2 * BLOCK);
    const base = Math.ceil(addr / BLOCK) * BLOCK;
    await runOn(machine, async () => void (await gpu.runKernel(mm, pages(base, 512), { warps: 256 })));
    expect(gpu.blocks.localMapped[gpu.blocks.find(0, base)]).toBe(512);
    gpu.tlb.flushAll();
    let res;
    await runOn(machine, async () => void (res = await gpu.runKernel(mm, pages(base, 512), { warps: 1 })));
    expect(res!).toMatchObject({ faults: 0, tlbMisses: 1, tlbHits: 511 });
  });
});

describe("fault batching", () => {
  it("N faults raised together are serviced as one batch", async () => {
    const { machine, gpu } = testMachine();
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 100 * PAGE);
    const batches: DeviceFaultBatchEvent[] = [];
    MachineTrace.getHooks(machine).deviceFaultBatch.tap("t", (e) => void batches.push(e));
    await runOn(machine, async () => void (await gpu.runKernel(mm, pages(addr, 100), { warps: 100 })));
    expect(batches).toHaveLength(1);
    expect(batches[0]).toMatchObject({ device: "gpu0", faults: 100, pages: 100 });
    expect(gpu.stats.batches).toBe(1);
    expect(gpu.stats.migrateRuns).toBe(1); // 100 contiguous pages of one block: one migrate_vma call
  });

  it("a batch never exceeds the configured size", async () => {
    const { machine, gpu } = testMachine({ gpu: { batchSize: 256 } });
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 600 * PAGE);
    const batches: DeviceFaultBatchEvent[] = [];
    MachineTrace.getHooks(machine).deviceFaultBatch.tap("t", (e) => void batches.push(e));
    await runOn(machine, async () => void (await gpu.runKernel(mm, pages(addr, 600), { warps: 600 })));
    expect(batches.map((b) => b.faults)).toEqual([256, 256, 88]);
    expect(getMachineStats(machine)).toMatchObject({ deviceFaultBatches: 3, batchedFaults: 600, deviceFaults: 600 });
    // BATCH_FLUSH (UVM's default replay policy): after batch 1 the 344 entries behind it are dropped and their warps
    // replayed; their pages are not valid yet, so they fault again (344 new entries); after batch 2, the 88 left.
    expect(gpu.stats).toMatchObject({ faults: 600 + 344 + 88, flushedFaults: 344 + 88, flushes: 3, faultedPages: 600, duplicates: 0, populatedPages: 600 });
  });

  it("replay policy BATCH (no flush): the entries behind a batch wait in the buffer, no warp faults twice", async () => {
    const { machine, gpu } = testMachine({ gpu: { batchSize: 256, replayPolicy: 1 } });
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 600 * PAGE);
    const batches: DeviceFaultBatchEvent[] = [];
    MachineTrace.getHooks(machine).deviceFaultBatch.tap("t", (e) => void batches.push(e));
    await runOn(machine, async () => void (await gpu.runKernel(mm, pages(addr, 600), { warps: 600 })));
    expect(batches.map((b) => b.faults)).toEqual([256, 256, 88]);
    expect(gpu.stats).toMatchObject({ faults: 600, flushedFaults: 0, flushes: 0, faultedPages: 600, duplicates: 0, populatedPages: 600 });
  });

  it("BATCH_FLUSH: warps whose pages an earlier batch prefetched go on after the flush instead of waiting for a batch of stale faults", async () => {
    // 1,024 warps stream through 64 pages (16 accesses per page): a prefetch tap grows every fault to its whole
    // 64-page span, so the first batch makes every page valid. With BATCH the entries queued behind it are then
    // serviced as stale faults, one service round each batch; with BATCH_FLUSH they are dropped and the warps go on.
    const run = async (replayPolicy: number) => {
      const { machine, gpu } = testMachine({ gpu: { batchSize: 256, replayPolicy } });
      Policy.getHooks(machine).prefetchRange.tap("span", (r) => ({ start: Math.floor(r.start / (64 * PAGE)) * 64 * PAGE, end: Math.floor(r.start / (64 * PAGE)) * 64 * PAGE + 64 * PAGE }));
      const mm = machine.kernel!.createMm();
      const addr = anonMap(mm, 64 * PAGE);
      const accesses = Array.from({ length: 1024 }, (_, i) => ({ addr: addr + Math.floor(i / 16) * PAGE, write: false }));
      await runOn(machine, async () => void (await gpu.runKernel(mm, accesses, { warps: 1024 })));
      return { batches: gpu.stats.batches, stale: gpu.stats.staleFaults, flushed: gpu.stats.flushedFaults, now: machine.engine.now };
    };
    const batch = await run(1);
    const flush = await run(2);
    expect(batch.batches).toBe(4); // 1,024 entries, 256 per batch: the last 3 batches are stale faults only
    expect(batch.stale).toBeGreaterThan(0);
    expect(flush).toMatchObject({ batches: 1, stale: 0, flushed: 1024 - 256 });
    expect(flush.now).toBeLessThan(batch.now);
  });

  it("with a batch size of 7, 50 simultaneous faults take 8 batches, none above 7", async () => {
    const { machine, gpu } = testMachine({ gpu: { batchSize: 7 } });
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 50 * PAGE);
    const sizes: number[] = [];
    MachineTrace.getHooks(machine).deviceFaultBatch.tap("t", (e) => void sizes.push(e.faults));
    await runOn(machine, async () => void (await gpu.runKernel(mm, pages(addr, 50), { warps: 50 })));
    expect(sizes).toEqual([7, 7, 7, 7, 7, 7, 7, 1]);
    expect(gpu.stats.populatedPages).toBe(50);
  });
});

describe("duplicate-fault filtering", () => {
  it("two warps faulting the same page give one batch entry per warp and one migration", async () => {
    const { machine, gpu } = testMachine();
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 4 * PAGE);
    fillPages(mm, addr, 4);
    const batches: DeviceFaultBatchEvent[] = [];
    MachineTrace.getHooks(machine).deviceFaultBatch.tap("t", (e) => void batches.push(e));
    let res;
    await runOn(machine, async () => void (res = await gpu.runKernel(mm, [{ addr, write: false }, { addr: addr + 8, write: true }], { warps: 2 })));
    expect(batches).toEqual([expect.objectContaining({ faults: 2, pages: 1 })]);
    expect(gpu.stats).toMatchObject({ faults: 2, faultedPages: 1, duplicates: 1, migratedPages: 1, migrateRuns: 1 });
    expect(getMachineStats(machine).links.l0!.h2d).toMatchObject({ bytes: PAGE, transfers: 1 });
    expect(res!.accesses).toBe(2);
    expect(gpu.entry(mm, addr)!.write).toBe(true); // the write access won
  });
});

describe("eviction under oversubscription", () => {
  it("device memory of 2 root chunks, 4 blocks streamed: LRU victims through selectVictim, data intact", async () => {
    const seen: number[] = [];
    const spy = tapPlugin("spy", (m) => {
      Policy.getHooks(m).selectVictim.tap({ name: "spy", stage: POLICY_STAGE_OVERRIDE }, (q) => {
        seen.push(q.chunkBlockStart(lruVictim(q)));
        return undefined; // let the default answer
      });
    });
    const { machine, gpu } = testMachine({ deviceMemory: "4MiB", plugins: [spy] });
    const mm = machine.kernel!.createMm();
    const raw = anonMap(mm, 5 * BLOCK);
    const base = Math.ceil(raw / BLOCK) * BLOCK;
    const n = 4 * 512;
    fillPages(mm, base, n, 7);
    const evictions: EvictionEvent[] = [];
    MachineTrace.getHooks(machine).eviction.tap("t", (e) => void evictions.push(e));
    await runOn(machine, async () => void (await gpu.runKernel(mm, pages(base, n), { warps: 64 })));
    expect(evictions.map((e) => e.start)).toEqual([base, base + BLOCK]);
    expect(evictions.every((e) => e.npages === 512)).toBe(true);
    expect(seen).toEqual([base, base + BLOCK]);
    expect(gpu.stats.evictions).toBe(2);
    expect(gpu.isResident(mm, base)).toBe(false);
    expect(gpu.entry(mm, base)).toBeNull();
    expect(gpu.isResident(mm, base + 3 * BLOCK)).toBe(true);
    const st = getMachineStats(machine);
    expect(st.evictions).toMatchObject({ count: 2, pages: 1024 });
    expect(st.migrated.d2h.pages).toBe(1024);
    expect(st.links.l0!.d2h.bytes).toBe(1024 * PAGE);
    let bad = -1;
    await runOn(machine, () => {
      for (let i = 0; i < n && bad < 0; i++) {
        const b = mm.read(base + i * PAGE, PAGE);
        if (!b.every((x) => x === ((7 + i) & 0xff))) bad = i;
      }
    });
    expect(bad).toBe(-1);
    expect(gpu.chunks.usedPages).toBe(0);
  });

  it("content tags survive eviction and fault-back in bytes-off mode", async () => {
    const { machine, gpu } = testMachine({ deviceMemory: "2MiB", bytes: false });
    const mm = machine.kernel!.createMm();
    const raw = anonMap(mm, 3 * BLOCK);
    const base = Math.ceil(raw / BLOCK) * BLOCK;
    const tags: number[] = [];
    for (let i = 0; i < 1024; i += 37) {
      mm.touch(base + i * PAGE, true);
      tags.push(mm.readTag(base + i * PAGE));
    }
    expect(new Set(tags).size).toBe(tags.length);
    await runOn(machine, async () => void (await gpu.runKernel(mm, pages(base, 1024), { warps: 32 })));
    expect(gpu.stats.evictions).toBe(1);
    const got: number[] = [];
    await runOn(machine, () => {
      for (let i = 0; i < 1024; i += 37) got.push(mm.readTag(base + i * PAGE));
    });
    expect(got).toEqual(tags);
  });

  it("a selectVictim answer that is not an evictable chunk is a GpuPolicyError", async () => {
    const bad = tapPlugin("bad", (m) => void Policy.getHooks(m).selectVictim.tap("bad", () => 12345));
    const { machine, gpu } = testMachine({ deviceMemory: "2MiB", plugins: [bad] });
    const mm = machine.kernel!.createMm();
    const raw = anonMap(mm, 3 * BLOCK);
    const base = Math.ceil(raw / BLOCK) * BLOCK;
    machine.spawn("app", async () => void (await gpu.runKernel(mm, [{ addr: base, write: false }, { addr: base + BLOCK, write: false }], { warps: 1 })));
    await expect(machine.run()).rejects.toThrow(GpuPolicyError);
  });
});

describe("invalidation", () => {
  it("MADV_DONTNEED on mirrored pages clears the device entries (notifier) and the next access faults again", async () => {
    const { machine, gpu } = testMachine();
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 4 * PAGE);
    await runOn(machine, async () => void (await gpu.runKernel(mm, pages(addr, 4), { warps: 4 })));
    expect(gpu.entry(mm, addr)).not.toBeNull();
    await runOn(machine, () => void mm.madvise(addr, 2 * PAGE, MADV_DONTNEED));
    expect(gpu.entry(mm, addr)).toBeNull();
    expect(gpu.entry(mm, addr + PAGE)).toBeNull();
    expect(gpu.entry(mm, addr + 2 * PAGE)).not.toBeNull();
    expect(gpu.stats.invalidatedPtes).toBe(2);
    expect(gpu.chunks.usedPages).toBe(2); // zapping the device-private entries freed the device pages
    let res;
    await runOn(machine, async () => void (res = await gpu.runKernel(mm, pages(addr, 4), { warps: 1 })));
    expect(res!.faults).toBe(2);
  });

  it("a CPU write to a page the device maps read-only remotely clears the entry (COW, MMU_NOTIFY_CLEAR)", async () => {
    const remote = tapPlugin("remote", (m) => void Policy.getHooks(m).shouldMigrate.tap("remote", () => false));
    const { machine, gpu } = testMachine({ plugins: [remote] });
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, PAGE);
    await runOn(machine, async () => void (await gpu.runKernel(mm, [{ addr, write: false }], { warps: 1 })));
    const e = gpu.entry(mm, addr)!;
    expect(e).toMatchObject({ remote: true, write: false, pfn: machine.kernel!.zeroPfn }); // the zero page, read-only
    await runOn(machine, () => void mm.write(addr, new Uint8Array([42])));
    expect(gpu.entry(mm, addr)).toBeNull();
    expect(gpu.stats.invalidatedPtes).toBe(1);
    let res;
    await runOn(machine, async () => void (res = await gpu.runKernel(mm, [{ addr, write: false }], { warps: 1 })));
    expect(res!.faults).toBe(1);
    expect(gpu.entry(mm, addr)!.pfn).not.toBe(machine.kernel!.zeroPfn);
  });

  it("a CPU write to a device-resident page migrates it back and clears the device entry", async () => {
    const { machine, gpu } = testMachine();
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, PAGE);
    fillPages(mm, addr, 1, 9);
    await runOn(machine, async () => void (await gpu.runKernel(mm, [{ addr, write: true }], { warps: 1 })));
    await runOn(machine, () => void mm.write(addr + 1, new Uint8Array([1, 2, 3])));
    expect(gpu.entry(mm, addr)).toBeNull();
    expect(gpu.isResident(mm, addr)).toBe(false);
    let r: Uint8Array | undefined;
    await runOn(machine, () => void (r = mm.read(addr, 8)));
    expect([...r!]).toEqual([9, 1, 2, 3, 9, 9, 9, 9]);
    let res;
    await runOn(machine, async () => void (res = await gpu.runKernel(mm, [{ addr, write: false }], { warps: 1 })));
    expect(res!.faults).toBe(1);
  });
});

describe("remote mapping", () => {
  it("shouldMigrate → false maps the system pages in the device page table; accesses cross the link", async () => {
    const remote = tapPlugin("remote", (m) => void Policy.getHooks(m).shouldMigrate.tap({ name: "remote", stage: POLICY_STAGE_OVERRIDE }, () => false));
    const { machine, gpu } = testMachine({ plugins: [remote] });
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 8 * PAGE);
    fillPages(mm, addr, 8);
    await runOn(machine, async () => void (await gpu.runKernel(mm, pages(addr, 8, true), { warps: 8 })));
    expect(gpu.stats.migratedPages).toBe(0);
    for (let i = 0; i < 8; i++) {
      expect(gpu.isResident(mm, addr + i * PAGE)).toBe(false);
      const e = gpu.entry(mm, addr + i * PAGE)!;
      expect(e).toMatchObject({ remote: true, write: true });
      expect(e.pfn).toBeLessThan(machine.kernel!.nrRamPages);
    }
    const l0 = () => getMachineStats(machine).links.l0!;
    const d2h0 = l0().d2h.bytes;
    expect(d2h0).toBe(8 * 128); // the replayed writes went over the link
    let res;
    await runOn(machine, async () => void (res = await gpu.runKernel(mm, pages(addr, 8), { warps: 2 })));
    expect(res!).toMatchObject({ faults: 0, remoteAccesses: 8 });
    expect(l0().h2d.bytes).toBe(8 * 128);
    expect(l0().h2d.transfers).toBe(8);
  });
});

describe("policy hooks", () => {
  it("are @hmmsim/policy's hooks of the machine, one frozen object per machine, handed to the driver", () => {
    const { machine, gpu } = testMachine();
    expect(gpu.policy).toBe(Policy.getHooks(machine));
    expect(Object.isFrozen(gpu.policy)).toBe(true);
    expect(Policy.getHooks(testMachine().machine)).not.toBe(gpu.policy);
  });

  it("a test plugin's prefetchRange grows a fault to its 2 MiB block (one migrate_vma call)", async () => {
    const seen: { address: number; blockStart: number; blockResident: number; faulted: boolean }[] = [];
    const block = tapPlugin("block", (m) => {
      Policy.getHooks(m).prefetchRange.tap("block", (r, f) => {
        seen.push({ address: f.address, blockStart: f.blockStart, blockResident: f.blockResident, faulted: f.isFaulted(f.pageIndex) });
        r.start = f.blockStart;
        r.end = f.blockStart + BLOCK;
        return r;
      });
    });
    const { machine, gpu } = testMachine({ plugins: [block] });
    const mm = machine.kernel!.createMm();
    const raw = anonMap(mm, 2 * BLOCK);
    const base = Math.ceil(raw / BLOCK) * BLOCK;
    let res;
    await runOn(machine, async () => void (res = await gpu.runKernel(mm, [{ addr: base + 5 * PAGE, write: false }, ...pages(base, 512)], { warps: 1 })));
    expect(seen).toEqual([{ address: base + 5 * PAGE, blockStart: base, blockResident: 0, faulted: true }]);
    expect(gpu.stats).toMatchObject({ migratedPages: 0, populatedPages: 512, migrateRuns: 1 });
    expect(res!.faults).toBe(1); // the prefetched pages were mapped too
  });

  it("an override-stage shouldMigrate answer wins over the default policy", async () => {
    const calls: boolean[] = [];
    const p = tapPlugin("p", (m) => {
      const h = Policy.getHooks(m);
      h.shouldMigrate.tap({ name: "default-like", stage: 100 }, () => (calls.push(true), true));
      h.shouldMigrate.tap({ name: "override", stage: POLICY_STAGE_OVERRIDE }, (f) => f.pageIndex % 2 === 0 ? undefined : false);
    });
    const { machine, gpu } = testMachine({ plugins: [p] });
    const mm = machine.kernel!.createMm();
    const raw = anonMap(mm, 2 * BLOCK);
    const base = Math.ceil(raw / BLOCK) * BLOCK;
    fillPages(mm, base, 4);
    await runOn(machine, async () => void (await gpu.runKernel(mm, pages(base, 4), { warps: 4 })));
    expect(calls).toHaveLength(2);
    expect([0, 1, 2, 3].map((i) => gpu.isResident(mm, base + i * PAGE))).toEqual([true, false, true, false]);
    expect(gpu.entry(mm, base + PAGE)!.remote).toBe(true);
  });

  it("selectVictim can choose the most recent chunk instead of the LRU one", async () => {
    const mru = tapPlugin("mru", (m) => {
      Policy.getHooks(m).selectVictim.tap("mru", (q) => {
        let last = -1;
        for (let c = q.first(); c !== -1; c = q.next(c)) if (q.isEvictable(c)) last = c;
        return last;
      });
    });
    const { machine, gpu } = testMachine({ deviceMemory: "4MiB", plugins: [mru] });
    const mm = machine.kernel!.createMm();
    const raw = anonMap(mm, 4 * BLOCK);
    const base = Math.ceil(raw / BLOCK) * BLOCK;
    const ev: number[] = [];
    MachineTrace.getHooks(machine).eviction.tap("t", (e) => void ev.push(e.start));
    const acc = [0, 1, 2].map((b) => ({ addr: base + b * BLOCK, write: true }));
    await runOn(machine, async () => void (await gpu.runKernel(mm, acc, { warps: 1 })));
    expect(ev).toEqual([base + BLOCK]);
    expect(gpu.isResident(mm, base)).toBe(true);
  });
});

describe("determinism", () => {
  async function run(seed: number) {
    const { machine, gpu } = testMachine({ seed, deviceMemory: "4MiB", bytes: false });
    const mm = machine.kernel!.createMm();
    const raw = anonMap(mm, 5 * BLOCK);
    const base = Math.ceil(raw / BLOCK) * BLOCK;
    const rng = machine.engine.rng.derive("test-workload");
    const acc = Array.from({ length: 1000 }, () => ({ addr: base + rng.int(4 * 512) * PAGE, write: rng.int(4) === 0, computePs: rng.int(2000) }));
    await runOn(machine, async () => void (await gpu.runKernel(mm, acc, { warps: 128 })));
    return { stats: getMachineStats(machine), gpu: { ...gpu.stats }, now: machine.now };
  }

  it("same seed → identical stats; another seed differs", async () => {
    const a = await run(5);
    const b = await run(5);
    expect(b).toEqual(a);
    expect(a.gpu.evictions).toBeGreaterThan(0);
    const c = await run(6);
    expect(c.now).not.toBe(a.now);
  });
});

describe("coherent device memory", () => {
  it("DEVICE_COHERENT pages are mapped by normal PTEs: the CPU reads them in place, no migrate_to_ram", async () => {
    const { machine, gpu } = testMachine({ coherent: true });
    expect(gpu.memoryType).toBe("coherent");
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 4 * PAGE);
    fillPages(mm, addr, 4, 3);
    await runOn(machine, async () => void (await gpu.runKernel(mm, pages(addr, 4), { warps: 4 })));
    expect(gpu.stats.migratedPages).toBe(4);
    let r: Uint8Array[] = [];
    await runOn(machine, () => void (r = [0, 1, 2, 3].map((i) => mm.read(addr + i * PAGE, PAGE))));
    expect(r.map((b) => b[100])).toEqual([3, 4, 5, 6]);
    expect(gpu.stats.cpuFaultPages).toBe(0);
    expect(gpu.isResident(mm, addr)).toBe(true);
  });
});

describe("bad input", () => {
  it("an access outside any VMA fails the kernel with GpuFaultError (-EFAULT)", async () => {
    const { machine, gpu } = testMachine();
    const mm = machine.kernel!.createMm();
    machine.spawn("app", async () => void (await gpu.runKernel(mm, [{ addr: 0x7000_0000, write: false }], { warps: 1 })));
    const err = await machine.run().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GpuFaultError);
    expect((err as GpuFaultError).errno).toBe(-14);
  });

  it("runKernel validates warps and accesses; the spec lists every bad field", async () => {
    const { machine, gpu } = testMachine();
    const mm: Mm = machine.kernel!.createMm();
    await expect(gpu.runKernel(mm, [], { warps: 0 })).rejects.toThrow(GpuInputError);
    await expect(gpu.runKernel(mm, 42 as never)).rejects.toThrow(/accesses/);
    expect(() => resolveGpuSpec({ batchSize: 0, tlbWays: 3 })).toThrow(GpuSpecError);
    try {
      resolveGpuSpec({ batchSize: 0, replayPs: -1, bogus: 1 } as never);
    } catch (e) {
      expect((e as GpuSpecError).issues.map((i) => i.field).sort()).toEqual(["batchSize", "bogus", "replayPs"]);
    }
    expect(() => GpuDriver.of(machine, "nope")).toThrow(GpuInputError);
  });
});

describe("the driver plugin and its DI", () => {
  const nullDriverPlugin: MachinePlugin = {
    name: "NullDriverPlugin",
    kind: "driver",
    provides: ["null"],
    register(c) {
      c.register(MachineComponent, {
        useFactory: (r) => {
          const drivers = r.resolve(DeviceDrivers);
          for (const d of r.resolve(MachineSpecToken).devices) {
            if (d.driver !== "null") continue;
            drivers.add({
              device: d.name,
              driverName: "null",
              pgmap: null,
              runKernel: async () => ({ accesses: 0, faults: 0, remoteAccesses: 0, tlbHits: 0, tlbMisses: 0 }),
              counters: () => ({ batches: 0, faultedPages: 0, migratedPages: 0, populatedPages: 0 }),
            });
          }
          return {};
        },
      });
    },
    apply() {},
  };
  const spec = (devices: object[]) => ({
    cpus: { count: 2 },
    ram: { size: "64MiB" },
    links: [{ name: "l0", kind: "custom", h2dBandwidth: "16GB/s", d2hBandwidth: "16GB/s", alpha: "1us" }],
    devices,
  });

  it("is a driver plugin providing gpu, with its package's version", () => {
    const p = new GpuDriverPlugin();
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    expect(p).toMatchObject({ name: "GpuDriverPlugin", kind: "driver", provides: ["gpu"], version: pkg.version });
  });

  it("the container builds GpuDevices; each GpuDriver is the machine's DeviceDriver of its device", async () => {
    const { machine, gpu } = testMachine();
    expect(machine.driver("gpu0")).toBe(gpu);
    expect(machine.drivers).toEqual([gpu]);
    expect(machine.component(GpuDevices)!.drivers.get("gpu0")).toBe(gpu);
    expect(GpuDriver.of(machine)).toBe(gpu);
    expect(gpu).toMatchObject({ device: "gpu0", name: "gpu0", driverName: "gpu" });
    expect(gpu.pgmap.type).toBe(MEMORY_DEVICE_PRIVATE);
    const dd: DeviceDriver = gpu;
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 8 * PAGE);
    fillPages(mm, addr, 4);
    await runOn(machine, async () => void (await dd.runKernel(mm, { fill: listFill(pages(addr, 8)) }, { warps: 8 })));
    expect(dd.counters()).toEqual({ batches: 1, faultedPages: 8, migratedPages: 4, populatedPages: 4 });
  });

  it("taps no policy hook itself: with no policy answering it takes @hmmsim/policy's defaults", () => {
    const { machine } = testMachine();
    const h = Policy.getHooks(machine);
    expect([h.shouldMigrate.taps.length, h.prefetchRange.taps.length, h.selectVictim.taps.length]).toEqual([0, 0, 0]);
  });

  it("GpuDriver.of names the device when it has no GPU driver", () => {
    const machine = createMachine({
      spec: spec([
        { kind: "gpu", name: "g", memory: "4MiB", link: "l0" },
        { kind: "fpga", name: "f", memory: "4MiB", link: "l0", driver: "null" },
      ]),
      plugins: [...defaultPlugins(), ...testPlugins(), new GpuDriverPlugin(), nullDriverPlugin],
    });
    expect(GpuDriver.of(machine).device).toBe("g");
    expect(() => GpuDriver.of(machine, "f")).toThrow(/device "f" is run by driver "null", not the GPU driver \(GPU devices: g\)/);
    expect(() => GpuDriver.of(machine, "zz")).toThrow(GpuInputError);
    expect(() => GpuDriver.of(machine, "zz")).toThrow(/no GPU driver for device "zz"/);
  });

  it("device memory below one 2 MiB root chunk is a spec issue the driver reports at the device's memory", () => {
    let err: unknown;
    try {
      createMachine({ spec: spec([{ kind: "gpu", name: "g", memory: "1MiB", link: "l0", driverSpec: { batchSize: 0 } }]), plugins: [...defaultPlugins(), ...testPlugins(), new GpuDriverPlugin()] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).issues).toEqual([
      { path: "devices[0].driverSpec.batchSize", message: "must be a positive integer, got 0" },
      { path: "devices[0].memory", message: expect.stringMatching(/in 2 MiB root chunks: it must be a whole number of them \(at least one\), got 1048576 B/) },
    ]);
  });

  it("without the machine's kernel the driver cannot be built (GpuInputError naming the device)", () => {
    expect(() =>
      createMachine({ spec: spec([{ kind: "gpu", name: "g", memory: "4MiB", link: "l0" }]), plugins: [...defaultPlugins(), ...testPlugins(), new GpuDriverPlugin()], createKernel: () => null }),
    ).toThrow(/devices\.g: the GPU driver needs the machine's kernel/);
  });

  it("the queries carry the page's mapping, each chunk's mm and allocation time", async () => {
    const mapped: boolean[] = [];
    const chunks: { mm: unknown; alloc: number; last: number; start: number }[] = [];
    const spy = tapPlugin("spy", (m) => {
      const h = Policy.getHooks(m);
      h.shouldMigrate.tap("spy", (f) => void mapped.push(f.isMapped(0)));
      h.selectVictim.tap("spy", (q) => {
        for (let c = q.first(); c !== -1; c = q.next(c)) chunks.push({ mm: q.chunkMm(c), alloc: q.chunkAllocPs(c), last: q.chunkLastUsePs(c), start: q.chunkBlockStart(c) });
        return undefined;
      });
    });
    const { machine, gpu } = testMachine({ deviceMemory: "4MiB", plugins: [spy] });
    const mm = machine.kernel!.createMm();
    const raw = anonMap(mm, 4 * BLOCK);
    const base = Math.ceil(raw / BLOCK) * BLOCK;
    // block 0 page 0, then page 1 of block 0 (page 0 mapped by then), a write into block 0 again, block 1, block 2 evicts
    const acc = [base, base + PAGE, base + BLOCK, base + 2 * PAGE, base + 2 * BLOCK].map((addr) => ({ addr, write: true }));
    await runOn(machine, async () => void (await gpu.runKernel(mm, acc, { warps: 1 })));
    expect(mapped.slice(0, 2)).toEqual([false, true]);
    expect(chunks.map((c) => (c.start - base) / BLOCK)).toEqual([1, 0]); // block 0 was migrated into last
    expect(chunks.every((c) => c.mm === mm)).toBe(true);
    expect(chunks[1]!.alloc).toBeLessThan(chunks[1]!.last); // allocated, then migrated into again
    expect(chunks[0]!.alloc).toBe(chunks[0]!.last);
  });
});

/** An AccessSource fill over a list (what @hmmsim/workloads patterns are). */
function listFill(list: { addr: number; write: boolean }[]) {
  let i = 0;
  return (b: { capacity: number; addr: Float64Array; write: Uint8Array; computePs: Float64Array }): number => {
    let n = 0;
    for (; n < b.capacity && i < list.length; n++, i++) {
      b.addr[n] = list[i]!.addr;
      b.write[n] = list[i]!.write ? 1 : 0;
      b.computePs[n] = 0;
    }
    return n;
  };
}
