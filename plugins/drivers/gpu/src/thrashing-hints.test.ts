// The thrashing hooks as the GPU driver carries them out (fault-service.ts; uvm_gpu_replayable_faults.c
// service_fault_batch_block_locked): thrashingPages once per serviced block → FaultQuery.isThrashing, thrashingHint per
// distinct faulted page before shouldMigrate (PIN: map remotely, no migration; THROTTLE: skip the page, replay its
// warps once the throttle ended, without counting against maxFaultsPerAccess).
import { describe, expect, it } from "vitest";
import { MachineTrace, type DeviceFaultBatchEvent, type MachinePlugin } from "@hmmsim/machine";
import { POLICY_STAGE_OVERRIDE, Policy, THRASHING_HINT_PIN, THRASHING_HINT_THROTTLE, type ThrashingHint } from "@hmmsim/policy";
import { GpuPolicyError } from "./errors.js";
import { anonMap, fillPages, testMachine } from "./testing/test-util.js";

const PAGE = 4096;
const BLOCK = 2 * 1024 * 1024;
const US = 1_000_000;

function tapPlugin(name: string, fn: (m: Parameters<MachinePlugin["apply"]>[0]) => void): MachinePlugin {
  return { name, kind: "test", apply: fn };
}
const pages = (addr: number, n: number, write = false) => Array.from({ length: n }, (_, i) => ({ addr: addr + i * PAGE, write }));

describe("thrashingPages → FaultQuery.isThrashing", () => {
  it("is asked once per block serviced with a cleared mask; prefetchRange and shouldMigrate read it", async () => {
    let calls = 0;
    let maskWasClear = true;
    const seen: boolean[][] = [];
    const spy = tapPlugin("spy", (m) => {
      const h = Policy.getHooks(m);
      h.thrashingPages.tap("spy", (q, mask) => {
        calls++;
        if (mask.some((x) => x !== 0)) maskWasClear = false;
        expect(mask.length).toBe(512);
        expect(q.blockStart % BLOCK).toBe(0);
        for (let i = 0; i < 4; i++) mask[i] = 1;
      });
      h.shouldMigrate.tap("spy", (q) => void seen.push([0, 3, 4, 511].map((i) => q.isThrashing(i))));
    });
    const { machine, gpu } = testMachine({ plugins: [spy] });
    const mm = machine.kernel!.createMm();
    const raw = anonMap(mm, 3 * BLOCK);
    const base = Math.ceil(raw / BLOCK) * BLOCK;
    machine.spawn("app", async () => void (await gpu.runKernel(mm, [...pages(base, 2), ...pages(base + BLOCK, 1)], { warps: 3 })));
    await machine.run();
    expect(gpu.stats.batches).toBe(1);
    expect(calls).toBe(2); // two blocks in the one batch
    expect(maskWasClear).toBe(true);
    expect(seen).toEqual([[true, true, false, false], [true, true, false, false], [true, true, false, false]]);
  });

  it("with no tap every page answers false", async () => {
    const seen: boolean[] = [];
    const spy = tapPlugin("spy", (m) => void Policy.getHooks(m).shouldMigrate.tap("spy", (q) => void seen.push(q.isThrashing(q.pageIndex))));
    const { machine, gpu } = testMachine({ plugins: [spy] });
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 4 * PAGE);
    machine.spawn("app", async () => void (await gpu.runKernel(mm, pages(addr, 4), { warps: 4 })));
    await machine.run();
    expect(seen).toEqual([false, false, false, false]);
  });
});

describe("thrashingHint", () => {
  it("PIN maps the system page remotely with no migration and skips shouldMigrate", async () => {
    let asked = 0;
    const pin = tapPlugin("pin", (m) => {
      const h = Policy.getHooks(m);
      h.thrashingHint.tap({ name: "pin", stage: POLICY_STAGE_OVERRIDE }, () => ({ type: THRASHING_HINT_PIN, untilPs: 0 }));
      h.shouldMigrate.tap("count", () => void asked++);
    });
    const { machine, gpu } = testMachine({ plugins: [pin] });
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 8 * PAGE);
    fillPages(mm, addr, 8);
    machine.spawn("app", async () => void (await gpu.runKernel(mm, pages(addr, 8, true), { warps: 8 })));
    await machine.run();
    expect(asked).toBe(0);
    expect(gpu.stats).toMatchObject({ thrashingPins: 8, migratedPages: 0, remoteMapped: 8, throttledPages: 0 });
    for (let i = 0; i < 8; i++) expect(gpu.entry(mm, addr + i * PAGE)).toMatchObject({ remote: true, write: true });
  });

  it("THROTTLE skips the page in its batch and replays its warps at untilPs; the wait is counted; maxFaultsPerAccess is not hit", async () => {
    const batches: DeviceFaultBatchEvent[] = [];
    let until = -1;
    const throttle = tapPlugin("throttle", (m) => {
      MachineTrace.getHooks(m).deviceFaultBatch.tap("t", (e) => void batches.push({ ...e }));
      Policy.getHooks(m).thrashingHint.tap("throttle", (q): ThrashingHint | undefined => {
        if (until >= 0) return undefined; // once
        until = q.timePs + 50 * US;
        return { type: THRASHING_HINT_THROTTLE, untilPs: until };
      });
    });
    // One fault per access allowed: the throttled fault must not count.
    const { machine, gpu } = testMachine({ plugins: [throttle], gpu: { maxFaultsPerAccess: 1 } });
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 2 * PAGE);
    fillPages(mm, addr, 2);
    let res: Awaited<ReturnType<typeof gpu.runKernel>> | undefined;
    machine.spawn("app", async () => void (res = await gpu.runKernel(mm, pages(addr, 2), { warps: 2 })));
    await machine.run();
    expect(batches.length).toBe(2);
    expect([batches[0]!.faults, batches[0]!.pages, batches[1]!.faults, batches[1]!.pages]).toEqual([2, 2, 1, 1]);
    const at = batches[0]!.endPs + gpu.spec.replayPs; // the batch's own replay
    // The throttled warp re-issues at untilPs: a page walk, its fault, the interrupt, then the second batch.
    expect(batches[1]!.startPs).toBe(until + gpu.walk4kPs + gpu.spec.faultInterruptPs);
    expect(gpu.stats).toMatchObject({ throttledPages: 1, throttledFaults: 1, faults: 3, migratedPages: 2 });
    expect(gpu.stats.throttleNs).toBe((until - at) / 1000);
    expect(res!.faults).toBe(3);
    expect(res!.endPs).toBeGreaterThan(until);
    for (let i = 0; i < 2; i++) expect(gpu.isResident(mm, addr + i * PAGE)).toBe(true);
  });

  it("a THROTTLE whose untilPs has passed is no hint: the page is serviced in its batch", async () => {
    const past = tapPlugin("past", (m) => void Policy.getHooks(m).thrashingHint.tap("past", () => ({ type: THRASHING_HINT_THROTTLE, untilPs: 0 })));
    const { machine, gpu } = testMachine({ plugins: [past] });
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 4 * PAGE);
    machine.spawn("app", async () => void (await gpu.runKernel(mm, pages(addr, 4), { warps: 4 })));
    await machine.run();
    expect(gpu.stats).toMatchObject({ batches: 1, throttledPages: 0, throttleNs: 0, populatedPages: 4 });
  });

  it("an answer that is not a hint is a GpuPolicyError naming the hook", async () => {
    const bad = tapPlugin("bad", (m) => void Policy.getHooks(m).thrashingHint.tap("bad", () => ({ type: 7, untilPs: 0 }) as unknown as ThrashingHint));
    const { machine, gpu } = testMachine({ plugins: [bad] });
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, PAGE);
    machine.spawn("app", async () => void (await gpu.runKernel(mm, pages(addr, 1), { warps: 1 })));
    const err = (await machine.run().catch((e: unknown) => e)) as GpuPolicyError;
    expect(err).toBeInstanceOf(GpuPolicyError);
    expect(err.hook).toBe("thrashingHint");
    expect(err.message).toMatch(/^thrashingHint: must answer \{ type: THRASHING_HINT_THROTTLE \| THRASHING_HINT_PIN, untilPs \}/);
  });
});
