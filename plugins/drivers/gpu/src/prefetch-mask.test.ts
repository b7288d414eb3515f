// The prefetchPages hook as the GPU driver carries it out (fault-service.ts serviceBlock): UVM's prefetch answer is a
// page mask over the 2 MiB VA block (uvm_perf_prefetch.c uvm_perf_prefetch_get_hint_va_block → prefetch_pages_mask;
// uvm_va_block.c uvm_va_block_get_prefetch_hint adds its pages to what the block migrates). The driver zeroes the
// mask before each faulted page it migrates, migrates the union of the range and the mask, clamps the mask's pages to
// the VMA and skips resident ones, as for the range.
import { describe, expect, it } from "vitest";
import { MachineTrace, type MachinePlugin, type MigrateEvent } from "@hmmsim/machine";
import { POLICY_STAGE_OVERRIDE, Policy, PrefetchPageMask, type FaultQuery } from "@hmmsim/policy";
import { GpuPolicyError } from "./errors.js";
import { anonMap, fillPages, testMachine } from "./testing/test-util.js";

const PAGE = 4096;
const BLOCK = 2 * 1024 * 1024;

function tapPlugin(name: string, fn: (m: Parameters<MachinePlugin["apply"]>[0]) => void): MachinePlugin {
  return { name, kind: "test", apply: fn };
}
/** A plugin tapping prefetchPages with `fn` at the override stage. */
const pagesTap = (fn: (f: FaultQuery, mask: PrefetchPageMask) => void) =>
  tapPlugin("mask", (m) => void Policy.getHooks(m).prefetchPages.tap({ name: "mask", stage: POLICY_STAGE_OVERRIDE }, fn));

/** A machine with `plugin`, an mm with `blocks` 2 MiB blocks mapped (block-aligned base, every page filled). */
function setup(plugin: MachinePlugin, blocks = 1) {
  const { machine, gpu } = testMachine({ plugins: [plugin] });
  const mm = machine.kernel!.createMm();
  const raw = anonMap(mm, (blocks + 1) * BLOCK);
  const base = Math.ceil(raw / BLOCK) * BLOCK;
  fillPages(mm, base, blocks * 512);
  const h2d: MigrateEvent[] = [];
  MachineTrace.getHooks(machine).migrateEnd.tap("t", (e) => void (e.dir === "h2d" && h2d.push(e)));
  const run = async (accesses: { addr: number; write: boolean }[], warps = accesses.length) => {
    let res: Awaited<ReturnType<typeof gpu.runKernel>> | undefined;
    machine.spawn("app", async () => void (res = await gpu.runKernel(mm, accesses, { warps })));
    await machine.run();
    return res!;
  };
  return { machine, gpu, mm, base, h2d, run };
}

describe("prefetchPages: a page mask over the faulted page's block", () => {
  it("a page far from the fault migrates with it, as a run of its own, and is mapped: no fault when the GPU touches it", async () => {
    const { gpu, mm, base, h2d, run } = setup(pagesTap((f, mask) => mask.setPage(f.blockStart + 300 * PAGE)));
    const r = await run([{ addr: base + 37 * PAGE, write: false }]);
    expect(r.faults).toBe(1);
    expect([37, 300].map((i) => gpu.isResident(mm, base + i * PAGE))).toEqual([true, true]);
    expect([36, 38, 299, 301].map((i) => gpu.isResident(mm, base + i * PAGE))).toEqual([false, false, false, false]);
    expect(h2d.map((e) => [(e.start - base) / PAGE, e.npages])).toEqual([[37, 1], [300, 1]]); // two migrate_vma runs
    expect(gpu.stats).toMatchObject({ migratedPages: 2, migrateRuns: 2 });
    expect(gpu.entry(mm, base + 300 * PAGE)).toMatchObject({ valid: true, remote: false });
    expect((await run([{ addr: base + 300 * PAGE, write: false }])).faults).toBe(0);
    expect(mm.read(base + 300 * PAGE, 1)[0]).toBe((1 + 300) & 0xff); // the data came along
  });

  it("the mask reaches the tap zeroed, over the fault's block, once per faulted page migrated; the union of the taps migrates", async () => {
    const seen: [number, number, number][] = [];
    const p = tapPlugin("two", (m) => {
      const h = Policy.getHooks(m);
      h.prefetchPages.tap("a", (f, mask) => {
        seen.push([f.pageIndex, mask.weight, mask.blockStart === f.blockStart ? 1 : 0]);
        mask.set(f.pageIndex + 100);
      });
      h.prefetchPages.tap("b", (f, mask) => mask.setRegion(f.pageIndex + 200, f.pageIndex + 202));
    });
    const { gpu, mm, base, run } = setup(p, 2);
    await run([{ addr: base + 3 * PAGE, write: false }, { addr: base + 4 * PAGE, write: true }, { addr: base + BLOCK + 10 * PAGE, write: false }]);
    expect(seen).toEqual([[3, 0, 1], [4, 0, 1], [10, 0, 1]]);
    const resident = (b: number) => Array.from({ length: 512 }, (_, i) => i).filter((i) => gpu.isResident(mm, base + b * BLOCK + i * PAGE));
    expect(resident(0)).toEqual([3, 4, 103, 104, 203, 204, 205]);
    expect(resident(1)).toEqual([10, 110, 210, 211]);
  });

  it("the mask's pages are clamped to the VMA: pages of the block outside it are skipped, not faulted", async () => {
    const { gpu, mm, base, h2d, run } = setup(pagesTap((_f, mask) => (mask.set(5), mask.set(250), mask.set(300))));
    expect(mm.munmap(base, 10 * PAGE)).toBe(0); // the VMA now starts at page 10 …
    expect(mm.munmap(base + 256 * PAGE, 256 * PAGE)).toBe(0); // … and ends at page 256 of the block
    await run([{ addr: base + 20 * PAGE, write: false }]);
    expect(h2d.map((e) => [(e.start - base) / PAGE, e.npages])).toEqual([[20, 1], [250, 1]]);
    expect([5, 20, 250, 300].map((i) => gpu.isResident(mm, base + i * PAGE))).toEqual([false, true, true, false]);
  });

  it("resident pages are skipped (never migrated twice); a mask over a range's pages adds nothing", async () => {
    const p = tapPlugin("both", (m) => {
      const h = Policy.getHooks(m);
      h.prefetchRange.tap("range", (r) => ({ start: r.start, end: r.start + 4 * PAGE }));
      h.prefetchPages.tap("mask", (f, mask) => mask.setRegion(f.pageIndex, f.pageIndex + 6));
    });
    const { gpu, base, h2d, run } = setup(p);
    await run([{ addr: base, write: false }]);
    expect(h2d.map((e) => [(e.start - base) / PAGE, e.npages])).toEqual([[0, 6]]); // range [0, 4) ∪ mask [0, 6): one run
    await run([{ addr: base + 8 * PAGE, write: false }, { addr: base + 4 * PAGE, write: false }], 1);
    // the second fault (page 4, resident) is not serviced as a migration; page 8's mask [8, 14) migrates
    expect(h2d.slice(1).map((e) => [(e.start - base) / PAGE, e.npages])).toEqual([[8, 6]]);
    expect(gpu.stats.migratedPages).toBe(12);
  });

  it("no tap: the hook is not called and the driver migrates the range alone", async () => {
    const { machine, gpu, base, run } = setup(tapPlugin("none", () => {}));
    expect(Policy.getHooks(machine).prefetchPages.isUsed()).toBe(false);
    await run([{ addr: base + 7 * PAGE, write: false }]);
    expect(gpu.stats).toMatchObject({ migratedPages: 1, migrateRuns: 1 });
  });

  it("a tap that moves the mask to another block is a GpuPolicyError naming the hook; a bad page a PrefetchMaskError", async () => {
    const moved = setup(pagesTap((f, mask) => mask.zero(f.blockStart + BLOCK)));
    await expect(moved.run([{ addr: moved.base, write: false }])).rejects.toThrow(GpuPolicyError);
    const bad = setup(pagesTap((f, mask) => mask.setPage(f.blockStart + BLOCK)));
    await expect(bad.run([{ addr: bad.base, write: false }])).rejects.toThrow(/prefetchPages: address must lie in the fault's 2 MiB VA block/);
  });
});
