/**
 * Calibration (simulated time, exact). Every component is named where it is added up:
 *
 *  1. one 4 KiB page fault of a CPU-written page, from the stream's beat to the beat completing;
 *  2. a job-scoped pre-migration of 1 GiB of CPU-written memory over pcie4x16 (the U55C-class preset's link).
 */
import { describe, expect, it } from "vitest";
import { MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from "@hmmsim/core";
import { COST_KINDS, createMachine, defaultCostSpec, defaultPlugins, type CostKind, type Machine } from "@hmmsim/machine";
import { PciePlugin } from "@hmmsim/interconnect-pcie";
import { BLOCK_SIZE } from "./device-mappings.js";
import { FpgaDriver } from "./fpga-driver.js";
import type { FpgaJobResult } from "./fpga-job.js";
import { cyclesToPs, defaultSpec } from "./fpga-spec.js";
import { FpgaDriverPlugin } from "./plugin.js";
import { TestPolicyPlugin, anonMap, fillPages, testMachine } from "./testing/test-util.js";

const GiB = 2 ** 30;

function counts(machine: Machine): (k: CostKind) => number {
  const before = Object.fromEntries(COST_KINDS.map((k) => [k, machine.ledger.chargedCount[k]])) as Record<CostKind, number>;
  return (k) => machine.ledger.chargedCount[k] - before[k];
}

describe("FPGA fault latency calibration", () => {
  it("one page fault = TLB lookup + interrupt + service round + kernel costs + DMA + mapping + TLB fill + restart + TLB lookup + beat", async () => {
    const { machine, fpga } = testMachine();
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, PAGE_SIZE);
    fillPages(mm, addr, 1);
    const count = counts(machine);
    let res: FpgaJobResult | undefined;
    machine.spawn("app", async () => {
      res = await fpga.runJob(mm, [{ addr, write: false }]);
    });
    await machine.run();

    // The stream: both TLBs looked up (2 cycles at 250 MHz, Coyote ACLK_F [S62]) and missed.
    const lookup = cyclesToPs(defaultSpec.tlbHitCycles, defaultSpec.clockHz);
    expect(lookup).toBe(8_000);
    // The interrupt (MSI-X → vfpga_isr → vfpga_pfault_handler running): 1 µs (assumption).
    const interrupt = defaultSpec.faultInterruptPs;
    // One device-fault service round per fault (the machine's DEVICE_FAULT cost, 45 µs [S14]): no batch to share it.
    expect(count("DEVICE_FAULT")).toBe(1);
    const serviceRound = defaultCostSpec.deviceFaultPs;
    // migrate_vma_setup: 1 migration entry (1 PTE) + 1 CPU TLB shootdown (one-thread process: α only); finalize: the
    // device-private entry (1 PTE); the driver's mapping-table write (1 PTE).
    expect(count("PTE_UPDATE")).toBe(3);
    expect(count("TLB_SHOOTDOWN")).toBe(1);
    expect(count("PAGE_COPY") + count("PAGE_ZERO") + count("CPU_FAULT")).toBe(0);
    const kernelCpu = 3 * defaultCostSpec.pteUpdatePs + defaultCostSpec.tlbShootdownAlphaPs;
    // The PageDMA / XDMA H2C copy of the page over the test link: α 1 µs + 4096 B at 16 GB/s.
    const dma = machine.link("l0").transferTime("h2d", PAGE_SIZE);
    expect(dma).toBe(1_000_000 + 256_000);
    // One 4 KiB TLB entry written over MMIO (add_tlb_entry): 250 ns (assumption); the restart (restart_mmu): 1 µs.
    expect(fpga.stats.tlbFills).toBe(1);
    const fill = defaultSpec.tlbFillPs;
    const restart = defaultSpec.restartPs;
    // The beat again: a TLB hit, then 64 B of card memory at 77 GB/s [S64].
    const beat = Math.ceil((64 * 1e12) / 77e9);
    expect(beat).toBe(832);

    const stall = interrupt + serviceRound + kernelCpu + dma + fill + restart;
    const expected = lookup + stall + lookup + beat;
    expect(res!.endPs - res!.startPs).toBe(expected);
    expect(expected).toBe(49_552_832); // ≈ 49.6 µs, 45 µs of it the service round
    // The stream stood still from its miss to its restart.
    expect(res!.streams[0]!.stallPs).toBe(stall);
    expect(fpga.stats).toMatchObject({ interrupts: 1, pageFaults: 1, migratedPages: 1 });
    expect(machine.ledger.unsettledPs).toBe(0);
  });
});

describe("job-scoped pre-migration calibration (pcie4x16)", () => {
  it("1 GiB pre-migrated before launch = 2^30 B / 25 GB/s + 512 × α + the kernel's PTE writes and flushes + 512 × one 2 MiB TLB entry", async () => {
    const machine = createMachine({
      spec: {
        seed: 1,
        bytes: false,
        cpus: { count: 8 },
        ram: { size: "2GiB" },
        links: [{ name: "pcie0", kind: "pcie4x16" }],
        devices: [{ kind: "fpga", name: "fpga0", memory: "2GiB", link: "pcie0" }],
      },
      plugins: [...defaultPlugins(), new PciePlugin(), new FpgaDriverPlugin(), new TestPolicyPlugin()],
    });
    const fpga = FpgaDriver.of(machine);
    const mm = machine.kernel!.createMm();
    const raw = mm.mmap({ length: GiB + BLOCK_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const addr = Math.ceil(raw / BLOCK_SIZE) * BLOCK_SIZE;
    const PAGES = GiB / PAGE_SIZE;
    const BLOCKS = GiB / BLOCK_SIZE;
    for (let i = 0; i < PAGES; i++) mm.touch(addr + i * PAGE_SIZE, true);
    const count = counts(machine);
    const tlbPs0 = machine.ledger.chargedPs.TLB_SHOOTDOWN;
    const link = machine.link("pcie0");
    let res: FpgaJobResult | undefined;
    machine.spawn("app", async () => {
      res = await fpga.runJob(mm, [{ addr, write: false }], { mode: "premigrate", buffers: [{ start: addr, end: addr + GiB }] });
    });
    await machine.run();
    const r = res!;

    // The data phase of the H2C DMAs: 25 GB/s = 40 ps per byte [S28]; one DMA per 2 MiB block (one migrateVma run).
    const dataPs = 42_949_672_960;
    expect(link.stats("h2d")).toEqual({ busyPs: dataPs, bytes: GiB, transfers: BLOCKS });
    const alpha = link.transferTime("h2d", 0);
    expect(alpha).toBe(1_500_000);
    // migrate_vma_setup: a migration entry per page (1 PTE) and one flush per run (α, one-CPU cpumask); finalize: the
    // device-private entry (1 PTE); the driver's mapping table (1 PTE per page).
    expect(count("PTE_UPDATE")).toBe(3 * PAGES);
    expect(count("TLB_SHOOTDOWN")).toBe(PAGES);
    expect(machine.ledger.chargedPs.TLB_SHOOTDOWN - tlbPs0).toBe(BLOCKS * defaultCostSpec.tlbShootdownAlphaPs);
    expect(count("DEVICE_FAULT") + count("PAGE_COPY") + count("PAGE_ZERO") + count("CPU_FAULT")).toBe(0);
    const kernelPs = 3 * PAGES * defaultCostSpec.pteUpdatePs + BLOCKS * defaultCostSpec.tlbShootdownAlphaPs;
    // Each block whole in card memory: one 2 MiB TLB entry (TaPaSCo add_al_tlb_entry; Coyote's large TLB), 250 ns each.
    expect(fpga.stats.tlbFills).toBe(BLOCKS);
    const tlbPs = BLOCKS * defaultSpec.tlbFillPs;

    expect(r.prepare.pages).toBe(PAGES);
    expect(r.prepare.endPs - r.prepare.startPs).toBe(dataPs + BLOCKS * alpha + kernelPs + tlbPs);
    // 52.2 ms: the link's data phase 42.9 ms, α 0.77 ms, the CPU's PTE writes and flushes 8.4 ms, TLB fills 0.13 ms.
    expect(r.prepare.endPs - r.prepare.startPs).toBe(52_221_992_960);
    // Then the job runs without a single fault: its one beat hits the 2 MiB TLB.
    expect(r.faults).toBe(0);
    expect(r.tlbHits).toBe(1);
    expect(fpga.stats).toMatchObject({ migratedPages: PAGES, populatedPages: 0, migrateRuns: BLOCKS, interrupts: 0 });
    expect(machine.ledger.unsettledPs).toBe(0);
  });
});
