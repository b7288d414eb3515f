/**
 * migrateRange (hint migration, uvm_migrate): range checks, errors, eviction, interplay with running kernels,
 * per-device driverSpec overlays, and begin/end pairing of the migrate trace points.
 */
import { describe, expect, it } from "vitest";
import { EFAULT, ENOMEM, MADV_DONTNEED, PAGE_SIZE } from "@hmmsim/core";
import { MachineTrace, SpecError, createMachine, defaultPlugins, getMachineStats, type MigrateEvent } from "@hmmsim/machine";
import { Policy } from "@hmmsim/policy";
import { GpuInputError } from "./errors.js";
import { GpuDriver } from "./gpu-driver.js";
import { gpuDriverSpecIssues } from "./gpu-spec.js";
import { GpuDriverPlugin } from "./plugin.js";
import { anonMap, fillPages, testMachine, testPlugins } from "./testing/test-util.js";
import { VA_BLOCK_SIZE } from "./va-block.js";

const BLOCK = VA_BLOCK_SIZE;

function aligned(mm: Parameters<typeof anonMap>[0], blocks: number): number {
  const raw = anonMap(mm, (blocks + 1) * BLOCK);
  return Math.ceil(raw / BLOCK) * BLOCK;
}

async function inTask<T>(machine: ReturnType<typeof testMachine>["machine"], fn: () => Promise<T>): Promise<T> {
  let out: T | undefined;
  machine.spawn("app", async () => void (out = await fn()));
  await machine.run();
  return out as T;
}

describe("migrateRange (hint migration)", () => {
  it("migrates the CPU-written pages of a range and maps them; untouched pages are populated on the device", async () => {
    const { machine, gpu } = testMachine();
    const mm = machine.kernel!.createMm();
    const addr = aligned(mm, 1);
    fillPages(mm, addr, 10);
    expect(await inTask(machine, () => gpu.migrateRange(mm, addr, addr + 16 * PAGE_SIZE))).toBe(0);
    expect(gpu.stats).toMatchObject({ migratedPages: 10, populatedPages: 6, hintMigrations: 1, hintPages: 16, migrateRuns: 1, faults: 0 });
    expect(getMachineStats(machine).links.l0!.h2d).toMatchObject({ bytes: 10 * PAGE_SIZE, transfers: 1 });
    for (let i = 0; i < 16; i++) expect(gpu.entry(mm, addr + i * PAGE_SIZE)).toMatchObject({ valid: true, remote: false });
    expect(gpu.entry(mm, addr + 16 * PAGE_SIZE)).toBeNull();
    // a kernel over the range then runs without a single fault
    const res = await inTask(machine, () => gpu.runKernel(mm, Array.from({ length: 16 }, (_, i) => ({ addr: addr + i * PAGE_SIZE, write: true })), { warps: 4 }));
    expect(res.faults).toBe(0);
    // the CPU gets its bytes back
    const back = await inTask(machine, async () => mm.read(addr + 3 * PAGE_SIZE, PAGE_SIZE));
    expect(back.every((b) => b === 4)).toBe(true);
  });

  it("a second call over resident pages moves nothing", async () => {
    const { machine, gpu } = testMachine();
    const mm = machine.kernel!.createMm();
    const addr = aligned(mm, 1);
    fillPages(mm, addr, 8);
    await inTask(machine, () => gpu.migrateRange(mm, addr, addr + 8 * PAGE_SIZE));
    const runs = gpu.stats.migrateRuns;
    expect(await inTask(machine, () => gpu.migrateRange(mm, addr, addr + 8 * PAGE_SIZE))).toBe(0);
    expect(gpu.stats.migrateRuns).toBe(runs);
    expect(getMachineStats(machine).links.l0!.h2d.transfers).toBe(1);
  });

  it("stops with -EFAULT at the first unmapped page; blocks before it stay migrated", async () => {
    const { machine, gpu } = testMachine({ deviceMemory: "16MiB" });
    const mm = machine.kernel!.createMm();
    const addr = aligned(mm, 3);
    fillPages(mm, addr, 3 * 512);
    expect(mm.madvise(addr, BLOCK, MADV_DONTNEED)).toBe(0);
    expect(mm.munmap(addr + BLOCK + 4 * PAGE_SIZE, PAGE_SIZE)).toBe(0);
    expect(await inTask(machine, () => gpu.migrateRange(mm, addr, addr + 3 * BLOCK))).toBe(-EFAULT);
    expect(gpu.isResident(mm, addr)).toBe(true);
    expect(gpu.isResident(mm, addr + BLOCK + 3 * PAGE_SIZE)).toBe(true); // the hole's block: up to the hole
    expect(gpu.isResident(mm, addr + BLOCK + 5 * PAGE_SIZE)).toBe(false);
    expect(gpu.isResident(mm, addr + 2 * BLOCK)).toBe(false);
    expect(gpu.stats.populatedPages).toBe(512); // the DONTNEED block had no pages left
  });

  it("evicts LRU root chunks through selectVictim when device memory is full; data survives", async () => {
    const { machine, gpu } = testMachine({ deviceMemory: "4MiB" }); // 2 root chunks
    const mm = machine.kernel!.createMm();
    const addr = aligned(mm, 3);
    fillPages(mm, addr, 3 * 512, 7);
    const ev: number[] = [];
    MachineTrace.getHooks(machine).eviction.tap("t", (e) => void ev.push((e.start - addr) / BLOCK));
    expect(await inTask(machine, () => gpu.migrateRange(mm, addr, addr + 3 * BLOCK))).toBe(0);
    expect(ev).toEqual([0]);
    expect(gpu.isResident(mm, addr)).toBe(false);
    expect(gpu.isResident(mm, addr + 2 * BLOCK)).toBe(true);
    const back = await inTask(machine, async () => [mm.read(addr + 5 * PAGE_SIZE, PAGE_SIZE), mm.read(addr + 2 * BLOCK, PAGE_SIZE)]);
    expect(back[0]!.every((b) => b === ((7 + 5) & 0xff))).toBe(true);
    expect(back[1]!.every((b) => b === ((7 + 1024) & 0xff))).toBe(true);
  });

  it("-ENOMEM when selectVictim has no victim", async () => {
    const block: Parameters<typeof testMachine>[0] = {
      deviceMemory: "2MiB",
      plugins: [{ name: "none", kind: "test", apply: (m) => void Policy.getHooks(m).selectVictim.tap("none", () => -1) }],
    };
    const { machine, gpu } = testMachine(block);
    const mm = machine.kernel!.createMm();
    const addr = aligned(mm, 2);
    fillPages(mm, addr, 1024);
    expect(await inTask(machine, () => gpu.migrateRange(mm, addr, addr + 2 * BLOCK))).toBe(-ENOMEM);
    expect(gpu.isResident(mm, addr)).toBe(true);
    expect(gpu.isResident(mm, addr + BLOCK)).toBe(false);
  });

  it("bad ranges throw GpuInputError naming the field, with nothing changed", async () => {
    const { machine, gpu } = testMachine();
    const mm = machine.kernel!.createMm();
    const addr = aligned(mm, 1);
    fillPages(mm, addr, 1);
    await expect(gpu.migrateRange(mm, addr + 1, addr + PAGE_SIZE)).rejects.toMatchObject({ name: "GpuInputError", field: "start" });
    await expect(gpu.migrateRange(mm, addr, addr)).rejects.toMatchObject({ field: "end" });
    await expect(gpu.migrateRange(mm, addr, addr + 100)).rejects.toThrow(GpuInputError);
    await expect(gpu.migrateRange(mm, Number.NaN, addr)).rejects.toMatchObject({ field: "start" });
    expect(gpu.stats.hintMigrations).toBe(0);
    expect(gpu.isResident(mm, addr)).toBe(false);
  });

  it("runs beside a faulting kernel on the same blocks without corrupting either (block lock)", async () => {
    const { machine, gpu } = testMachine({ deviceMemory: "16MiB" });
    const mm = machine.kernel!.createMm();
    const addr = aligned(mm, 4);
    fillPages(mm, addr, 4 * 512, 3);
    let hint = 1;
    machine.spawn("kernel", async () => void (await gpu.runKernel(mm, Array.from({ length: 2048 }, (_, i) => ({ addr: addr + ((i * 37) % 2048) * PAGE_SIZE, write: false })), { warps: 256 })));
    machine.spawn("hint", async () => void (hint = await gpu.migrateRange(mm, addr, addr + 4 * BLOCK)));
    await machine.run();
    expect(hint).toBe(0);
    for (let i = 0; i < 2048; i++) expect(gpu.isResident(mm, addr + i * PAGE_SIZE)).toBe(true);
    // every page moved exactly once, by one of the two
    expect(gpu.stats.migratedPages).toBe(2048);
    expect(getMachineStats(machine).links.l0!.h2d.bytes).toBe(2048 * PAGE_SIZE);
    const back = await inTask(machine, async () => mm.read(addr + 1500 * PAGE_SIZE, PAGE_SIZE));
    expect(back.every((b) => b === ((3 + 1500) & 0xff))).toBe(true);
  });
});

describe("migrate trace points", () => {
  it("every migrateBegin has its migrateEnd (fault, hint, eviction, cpu-fault)", async () => {
    const { machine, gpu } = testMachine({ deviceMemory: "4MiB" });
    const mm = machine.kernel!.createMm();
    const addr = aligned(mm, 3);
    fillPages(mm, addr, 3 * 512);
    const begins: MigrateEvent[] = [];
    const ends: MigrateEvent[] = [];
    const t = MachineTrace.getHooks(machine);
    t.migrateBegin.tap("t", (e) => void begins.push({ ...e }));
    t.migrateEnd.tap("t", (e) => void ends.push({ ...e }));
    await inTask(machine, async () => {
      await gpu.runKernel(mm, [{ addr, write: true }], { warps: 1 });
      await gpu.migrateRange(mm, addr + BLOCK, addr + 3 * BLOCK);
      mm.read(addr + 2 * BLOCK, 8);
    });
    const key = (e: MigrateEvent) => `${e.reason}:${e.dir}:${e.start}`;
    expect(ends.map(key)).toEqual(begins.map(key));
    expect(new Set(begins.map((e) => e.reason))).toEqual(new Set(["fault", "hint", "eviction", "cpu-fault"]));
    for (let i = 0; i < ends.length; i++) expect(ends[i]!.timePs).toBeGreaterThanOrEqual(begins[i]!.timePs);
  });
});

describe("per-device driverSpec", () => {
  const spec = (devices: object[]) => ({
    cpus: { count: 2 },
    ram: { size: "64MiB" },
    links: [{ name: "l0", kind: "custom", h2dBandwidth: "16GB/s", d2hBandwidth: "16GB/s", alpha: "1us", coherent: false }],
    devices,
  });

  it("lays each device's driverSpec over the plugin's spec for that device only", () => {
    const machine = createMachine({
      spec: spec([
        { kind: "gpu", name: "a", memory: "4MiB", link: "l0", driverSpec: { batchSize: 64, deviceMemoryBandwidth: 3_350_000_000_000 } },
        { kind: "gpu", name: "b", memory: "4MiB", link: "l0" },
      ]),
      plugins: [...defaultPlugins(), ...testPlugins(), new GpuDriverPlugin({ replayPs: 2_000_000 })],
    });
    const a = GpuDriver.of(machine, "a");
    const b = GpuDriver.of(machine, "b");
    expect(a.spec).toMatchObject({ batchSize: 64, deviceMemoryBandwidth: 3_350_000_000_000, replayPs: 2_000_000 });
    expect(b.spec).toMatchObject({ batchSize: 256, deviceMemoryBandwidth: 1_555_000_000_000, replayPs: 2_000_000 });
    expect(a.memAccessPs).toBe(Math.ceil((128 * 1e12) / 3.35e12));
  });

  it("every bad field of every device is one SpecError with its path; no machine is built", () => {
    let err: unknown;
    try {
      createMachine({
        spec: spec([
          { kind: "gpu", name: "a", memory: "4MiB", link: "l0", driverSpec: { batchSize: 0, bogus: 1 } },
          { kind: "gpu", name: "b", memory: "4MiB", link: "l0", driverSpec: { replayPs: "1us" } },
        ]),
        plugins: [...defaultPlugins(), ...testPlugins(), new GpuDriverPlugin()],
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpecError);
    const byPath = Object.fromEntries((err as SpecError).issues.map((i) => [i.path, i.message]));
    expect(Object.keys(byPath).sort()).toEqual(["devices[0].driverSpec.batchSize", "devices[0].driverSpec.bogus", "devices[1].driverSpec.replayPs"]);
    expect(byPath["devices[0].driverSpec.batchSize"]).toBe("must be a positive integer, got 0");
    expect(byPath["devices[1].driverSpec.replayPs"]).toBe('must be a non-negative integer, got "1us"');
    expect(byPath["devices[0].driverSpec.bogus"]).toMatch(/^unknown field \(known: batchSize, /);
  });

  it("gpuDriverSpecIssues checks plain JSON without building anything", () => {
    expect(gpuDriverSpecIssues({ batchSize: 128 })).toEqual([]);
    expect(gpuDriverSpecIssues([1])).toEqual([{ field: "spec", rule: "must be an object (a mapping of spec fields), got an array" }]);
    expect(gpuDriverSpecIssues({ batchSize: 4096 })).toEqual([{ field: "batchSize", rule: expect.stringMatching(/at most 2048/) }]);
  });
});
