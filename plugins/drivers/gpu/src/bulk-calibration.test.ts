/**
 * Calibration (simulated time, exact): 1 GiB of CPU-written memory migrated to the GPU with one migrateRange call
 * (uvm_migrate / cudaMemPrefetchAsync) over pcie4x16 takes 2^30 B / 25 GB/s of link time plus the per-transfer
 * costs: one DMA per 2 MiB VA block (α = 1.5 µs each, [S28] via @hmmsim/interconnect-pcie) and the kernel's
 * counted CPU costs of migrate_vma_setup / finalize and the device page-table writes.
 */
import { describe, expect, it } from "vitest";
import { MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from "@hmmsim/core";
import { COST_KINDS, MachineTrace, createMachine, defaultCostSpec, defaultPlugins, getMachineStats, type CostKind } from "@hmmsim/machine";
import { PciePlugin } from "@hmmsim/interconnect-pcie";
import { GpuDriver } from "./gpu-driver.js";
import { GpuDriverPlugin } from "./plugin.js";
import { TestPolicyPlugin } from "./testing/test-util.js";
import { VA_BLOCK_SIZE } from "./va-block.js";

const GiB = 2 ** 30;
const PAGES = GiB / PAGE_SIZE;
const BLOCKS = GiB / VA_BLOCK_SIZE;

function bulkMachine(deviceMemory = "2GiB") {
  const machine = createMachine({
    spec: {
      seed: 1,
      bytes: false,
      cpus: { count: 8 },
      ram: { size: "2GiB" },
      links: [{ name: "pcie0", kind: "pcie4x16" }],
      devices: [{ kind: "gpu", name: "gpu0", memory: deviceMemory, link: "pcie0" }],
    },
    plugins: [...defaultPlugins(), new PciePlugin(), new GpuDriverPlugin(), new TestPolicyPlugin()],
  });
  return { machine, gpu: GpuDriver.of(machine, "gpu0") };
}

/** A 2 MiB-aligned anonymous mapping of `bytes`, every page written by the CPU (so every page has data to copy). */
function cpuWritten(machine: ReturnType<typeof bulkMachine>["machine"], bytes: number) {
  const mm = machine.kernel!.createMm();
  const raw = mm.mmap({ length: bytes + VA_BLOCK_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  const addr = Math.ceil(raw / VA_BLOCK_SIZE) * VA_BLOCK_SIZE;
  for (let i = 0; i < bytes / PAGE_SIZE; i++) mm.touch(addr + i * PAGE_SIZE, true);
  return { mm, addr };
}

describe("bulk migration calibration (pcie4x16)", () => {
  it("1 GiB with migrateRange = 2^30 B / 25 GB/s + 512 × α + the counted kernel costs", async () => {
    const { machine, gpu } = bulkMachine();
    const { mm, addr } = cpuWritten(machine, GiB);
    const ledger = machine.ledger;
    const link = machine.link("pcie0");
    const before = Object.fromEntries(COST_KINDS.map((k) => [k, ledger.chargedCount[k]])) as Record<CostKind, number>;
    const tlbPs0 = ledger.chargedPs.TLB_SHOOTDOWN;
    const ends: number[] = [];
    MachineTrace.getHooks(machine).migrateEnd.tap("t", (e) => void ends.push(e.npages));
    let t0 = 0;
    let t1 = 0;
    let ret = 1;
    machine.spawn("prefetch", async () => {
      t0 = machine.now;
      ret = await gpu.migrateRange(mm, addr, addr + GiB);
      await ledger.settle();
      t1 = machine.now;
    });
    await machine.run();
    expect(ret).toBe(0);
    const count = (k: CostKind) => ledger.chargedCount[k] - before[k];

    // The data phase: 25 GB/s = 40 ps per byte [S28], so 2^30 B is 42,949,672,960 ps; one DMA per 2 MiB block.
    const dataPs = 42_949_672_960;
    expect(link.stats("h2d")).toEqual({ busyPs: dataPs, bytes: GiB, transfers: BLOCKS });
    const alpha = link.transferTime("h2d", 0);
    expect(alpha).toBe(1_500_000);

    // migrate_vma_setup unmaps each page into a migration entry (1 PTE) with one flush_tlb_range per run (one run
    // per block: TLB_SHOOTDOWN counts the pages flushed, its time is one α per flush with a one-CPU cpumask);
    // finalize installs the device-private entry (1 PTE); the driver writes one device PTE per page.
    expect(count("PTE_UPDATE")).toBe(3 * PAGES);
    expect(count("TLB_SHOOTDOWN")).toBe(PAGES);
    expect(ledger.chargedPs.TLB_SHOOTDOWN - tlbPs0).toBe(BLOCKS * defaultCostSpec.tlbShootdownAlphaPs);
    expect(count("PAGE_COPY") + count("PAGE_ZERO") + count("CPU_FAULT") + count("DEVICE_FAULT")).toBe(0);
    const kernelPs = 3 * PAGES * defaultCostSpec.pteUpdatePs + BLOCKS * defaultCostSpec.tlbShootdownAlphaPs;

    expect(t1 - t0).toBe(dataPs + BLOCKS * alpha + kernelPs);
    // 52.1 ms in all: the link's data phase 42.9 ms, α 0.77 ms, the CPU's PTE writes and flushes 8.4 ms.
    expect(t1 - t0).toBe(52_093_992_960);

    expect(gpu.stats).toMatchObject({ migratedPages: PAGES, populatedPages: 0, hintMigrations: 1, hintPages: PAGES, migrateRuns: BLOCKS, faults: 0 });
    expect(ends).toHaveLength(BLOCKS);
    expect(ends.every((n) => n === 512)).toBe(true);
    expect(getMachineStats(machine).migrated.h2d).toEqual({ count: BLOCKS, pages: PAGES, bytes: GiB });
    for (const a of [addr, addr + GiB / 2, addr + GiB - PAGE_SIZE]) {
      expect(gpu.isResident(mm, a)).toBe(true);
      expect(gpu.entry(mm, a)).toMatchObject({ valid: true, write: true, remote: false });
    }
    expect(ledger.unsettledPs).toBe(0);
  });
});
