/**
 * Calibration (simulated time, exact): one 4 KiB on-demand fault of a CPU-written page, from the warp issuing
 * the access to the access completing, is the sum of the modelled components (README "Fault latency").
 */
import { describe, expect, it } from "vitest";
import { COST_KINDS, defaultCostSpec, type CostKind } from "@hmmsim/machine";
import { cyclesToPs, defaultSpec } from "./gpu-spec.js";
import { anonMap, fillPages, testMachine } from "./testing/test-util.js";

describe("fault latency calibration", () => {
  it("a single 4 KiB on-demand fault = walk + interrupt + service round + kernel costs + DMA + PTE + TLB invalidate + replay + walk + access", async () => {
    const { machine, gpu } = testMachine();
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 4096);
    fillPages(mm, addr, 1);
    const ledger = machine.ledger;
    const before = Object.fromEntries(COST_KINDS.map((k) => [k, ledger.chargedCount[k]])) as Record<CostKind, number>;
    let res: { startPs: number; endPs: number } | undefined;
    machine.spawn("app", async () => {
      res = await gpu.runKernel(mm, [{ addr, write: false }], { warps: 1 });
    });
    await machine.run();
    const count = (k: CostKind) => ledger.chargedCount[k] - before[k];

    const walk = cyclesToPs(defaultSpec.pageWalk4kCycles, defaultSpec.gpuClockHz); // 100 cycles @ 1481 MHz [S14]
    expect(walk).toBe(67_522);
    const serviceRound = defaultCostSpec.deviceFaultPs; // 45 µs [S14]
    // migrate_vma_setup installs 1 migration entry (1 PTE + 1 TLB shootdown of the CPU page), finalize maps the
    // device-private entry (1 PTE); the driver writes 1 device PTE.
    expect(count("PTE_UPDATE")).toBe(3);
    expect(count("TLB_SHOOTDOWN")).toBe(1);
    expect(count("DEVICE_FAULT")).toBe(1);
    expect(count("PAGE_COPY") + count("PAGE_ZERO") + count("CPU_FAULT")).toBe(0);
    // The shootdown IPIs the other CPUs of the mm's cpumask: a one-thread process (cpus.activeCores = 1) has none.
    const kernelCpu = 3 * defaultCostSpec.pteUpdatePs + defaultCostSpec.tlbShootdownAlphaPs;
    const dma = 1_000_000 + 256_000; // α 1 µs + 4096 B / 16 GB/s
    expect(machine.link("l0").transferTime("h2d", 4096)).toBe(dma);
    const access = Math.ceil((128 * 1e12) / 1_555e9); // 128 B at 1,555 GB/s [S33]
    const expected =
      walk + defaultSpec.faultInterruptPs + serviceRound + kernelCpu + dma + defaultSpec.tlbInvalidatePs + defaultSpec.replayPs + walk + access;
    expect(res!.endPs - res!.startPs).toBe(expected);
    expect(expected).toBe(50_421_127); // ≈ 50.4 µs
    expect(gpu.stats.migratedPages).toBe(1);
    expect(machine.ledger.unsettledPs).toBe(0);
  });
});
