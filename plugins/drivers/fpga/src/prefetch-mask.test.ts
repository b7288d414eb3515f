// The prefetchPages hook on the FPGA driver (fpga-driver.ts handlePageFault): a policy's page-mask answer over the
// faulted page's 2 MiB block (UVM's prefetch_pages_mask, uvm_perf_prefetch.c uvm_perf_prefetch_get_hint_va_block)
// migrates with the fault wherever its pages lie, each contiguous run one migrateVma call, clamped to the VMA,
// resident pages skipped. After every test: the kernel's invariant checker, no byte lost, no card page left.
import { describe, expect, it } from "vitest";
import { PAGE_SIZE, type Mm } from "@hmmsim/core";
import { MachineTrace, type Machine, type MachinePlugin, type MigrateEvent } from "@hmmsim/machine";
import { POLICY_STAGE_OVERRIDE, Policy, type FaultQuery, type PrefetchPageMask } from "@hmmsim/policy";
import { checkInvariants, compareContents, snapshotContents } from "@hmmsim/testing";
import { FpgaPolicyError } from "./errors.js";
import type { FpgaDriver } from "./fpga-driver.js";
import { anonMap, beats, fillPages, testMachine } from "./testing/test-util.js";

const BLOCK = 2 * 1024 * 1024;

const pagesTap = (fn: (f: FaultQuery, mask: PrefetchPageMask) => void): MachinePlugin => ({
  name: "mask",
  kind: "test",
  apply: (m) => void Policy.getHooks(m).prefetchPages.tap({ name: "mask", stage: POLICY_STAGE_OVERRIDE }, fn),
});

function setup(plugin: MachinePlugin, pages = 512) {
  const { machine, fpga } = testMachine({ plugins: [plugin] });
  const mm = machine.kernel!.createMm();
  const base = anonMap(mm, BLOCK);
  fillPages(mm, base, pages);
  const snap = snapshotContents(mm, base, base + pages * PAGE_SIZE);
  const h2d: MigrateEvent[] = [];
  MachineTrace.getHooks(machine).migrateEnd.tap("t", (e) => void (e.dir === "h2d" && h2d.push(e)));
  const job = async (acc: { addr: number; write: boolean }[]) => {
    let res: Awaited<ReturnType<FpgaDriver["runJob"]>> | undefined;
    let err: unknown;
    machine.spawn("app", async () => {
      try {
        res = await fpga.runJob(mm, acc);
      } catch (e) {
        err = e;
      }
    });
    await machine.run();
    if (err) throw err;
    return res!;
  };
  const runs = () => h2d.map((e) => [(e.start - base) / PAGE_SIZE, e.npages]);
  return { machine, fpga, mm, base, snap, job, runs };
}

function conformance(machine: Machine, fpga: FpgaDriver, mm: Mm, snap: ReturnType<typeof snapshotContents>): void {
  expect(checkInvariants(machine.kernel!)).toEqual([]);
  expect(compareContents(mm, snap)).toEqual([]);
  mm.exit();
  expect(fpga.card.usedPages).toBe(0);
  expect(checkInvariants(machine.kernel!)).toEqual([]);
}

describe("FPGA driver: prefetchPages", () => {
  it("a page far from the fault migrates with it (one interrupt, two migrateVma runs) and is mapped: touching it does not fault", async () => {
    const { machine, fpga, mm, base, snap, job, runs } = setup(pagesTap((f, mask) => mask.setPage(f.blockStart + 300 * PAGE_SIZE)));
    const r = await job(beats(base + 37 * PAGE_SIZE, 1, 1));
    expect(r.faults).toBe(1);
    expect(runs()).toEqual([[37, 1], [300, 1]]);
    expect(fpga.stats).toMatchObject({ pageFaults: 1, migratedPages: 2, migrateRuns: 2 });
    expect([36, 37, 38, 299, 300, 301].map((i) => fpga.isResident(mm, base + i * PAGE_SIZE))).toEqual([false, true, false, false, true, false]);
    expect(fpga.entry(mm, base + 300 * PAGE_SIZE)).toMatchObject({ host: false });
    expect((await job(beats(base + 300 * PAGE_SIZE, 1, 1))).faults).toBe(0);
    conformance(machine, fpga, mm, snap);
  });

  it("the mask reaches the tap zeroed over the fault's block, once per page fault migrated; clamped to the VMA, resident pages skipped", async () => {
    const seen: [number, number][] = [];
    const { machine, fpga, mm, base, snap, job, runs } = setup(
      pagesTap((f, mask) => {
        seen.push([f.pageIndex, mask.blockStart === f.blockStart ? mask.weight : -1]);
        mask.set(2); // resident after the first fault: skipped then
        mask.set(40);
        mask.set(300); // beyond the VMA's end (page 256): skipped
      }),
      256,
    );
    expect(mm.munmap(base + 256 * PAGE_SIZE, 256 * PAGE_SIZE)).toBe(0);
    await job([...beats(base + 2 * PAGE_SIZE, 1, 1), ...beats(base + 100 * PAGE_SIZE, 1, 1)]);
    expect(seen).toEqual([[2, 0], [100, 0]]);
    expect(runs()).toEqual([[2, 1], [40, 1], [100, 1]]);
    expect(fpga.isResident(mm, base + 300 * PAGE_SIZE)).toBe(false);
    conformance(machine, fpga, mm, snap);
  });

  it("a tap that moves the mask to another block is an FpgaPolicyError naming the hook", async () => {
    const { base, job } = setup(pagesTap((f, mask) => mask.zero(f.blockStart + BLOCK)), 1);
    await expect(job(beats(base, 1, 1))).rejects.toThrow(FpgaPolicyError);
  });
});
