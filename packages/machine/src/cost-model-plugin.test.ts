import { describe, expect, it } from "vitest";
import { PS_PER_US } from "@hmmsim/engine";
import { COST_KINDS } from "./cost-model.js";
import { createMachine, defaultPlugins } from "./create-machine.js";
import { getMachineStats } from "./stats-plugin.js";
import { testPlugins } from "./testing/test-link.js";

/** Two devices, each on its own link, with different bandwidths each way, so the link a DMA uses is visible. */
const SPEC = {
  cpus: { count: 1 },
  ram: { size: "64MiB" },
  links: [
    { name: "slow", kind: "custom", h2dBandwidth: "1GB/s", d2hBandwidth: "2GB/s", alpha: "1us", coherent: false },
    { name: "fast", kind: "custom", h2dBandwidth: "4GB/s", d2hBandwidth: "8GB/s", alpha: "2us", coherent: false },
  ],
  devices: [
    { kind: "gpu", name: "gpu0", memory: "16MiB", link: "slow" },
    { kind: "gpu", name: "gpu1", memory: "16MiB", link: "fast" },
  ],
};


const machine = () => createMachine({ spec: SPEC, plugins: [...defaultPlugins(), ...testPlugins()], createKernel: () => null });

describe("DMA in the default cost models", () => {
  it("machine.dma times and performs a DMA on the device's own link, in the direction asked", async () => {
    const m = machine();
    // α + bytes / β of that device's link and direction (1000 B: 1 µs at 1 GB/s, 0.5 µs at 2 GB/s, ...).
    expect(m.dma.dmaTime("gpu0", "h2d", 1000)).toBe(1 * PS_PER_US + 1 * PS_PER_US);
    expect(m.dma.dmaTime("gpu0", "d2h", 1000)).toBe(1 * PS_PER_US + 0.5 * PS_PER_US);
    expect(m.dma.dmaTime("gpu1", "h2d", 1000)).toBe(2 * PS_PER_US + 0.25 * PS_PER_US);
    expect(m.dma.dmaTime("gpu1", "d2h", 1000)).toBe(2 * PS_PER_US + 0.125 * PS_PER_US);
    m.spawn("dma", async () => {
      await m.dma.dma("gpu1", "d2h", 1000);
    });
    await m.run();
    expect(m.now).toBe(2 * PS_PER_US + 0.125 * PS_PER_US);
    expect(m.link("fast").stats("d2h")).toEqual({ busyPs: 0.125 * PS_PER_US, bytes: 1000, transfers: 1 });
    expect(m.link("slow").stats("h2d").transfers).toBe(0);
    await m.dispose();
  });

  it("DMA is not a ledger cost kind: cost/charge(DMA) throw saying how to do a DMA, and the DMA totals stay 0 while the links count every transfer", async () => {
    const m = machine();
    expect(COST_KINDS).toContain("DMA");
    expect(() => m.costs.cost("DMA", 4096)).toThrowError(RangeError);
    expect(() => m.costs.cost("DMA", 4096)).toThrowError(/not charged as a cost kind; it runs on the device's own link[\s\S]*machine\.dma\.dma\(device, dir, bytes\)[\s\S]*ledger\.chargeTransfer/);
    m.spawn("driver", async () => {
      expect(() => m.ledger.charge("DMA", 4096)).toThrowError(/machine\.dma\.dma/);
      expect(m.ledger.hasPending).toBe(false); // the throw charged nothing
      m.ledger.chargeTransfer(m.link("slow"), "d2h", 2000); // synchronous code's DMA: on the link at settle()
      await m.settle();
      await m.dma.dma("gpu0", "h2d", 1000);
    });
    await m.run();
    const s = getMachineStats(m);
    expect(s.costCount.DMA).toBe(0);
    expect(s.costPs.DMA).toBe(0);
    expect(s.links.slow).toEqual({ h2d: { busyPs: PS_PER_US, bytes: 1000, transfers: 1 }, d2h: { busyPs: PS_PER_US, bytes: 2000, transfers: 1 } });
    expect(s.dma).toEqual({ h2d: { transfers: 1, bytes: 1000 }, d2h: { transfers: 1, bytes: 2000 } });
    expect(m.now).toBe(2 * PS_PER_US + 2 * PS_PER_US);
    await m.dispose();
  });

  it("the other kinds are unchanged", async () => {
    const m = machine();
    expect(m.costs.cost("CPU_FAULT", 2)).toBe(2 * PS_PER_US);
    expect(m.costs.cost("PTE_UPDATE", 3)).toBe(30_000);
    expect(() => m.costs.cost("BOGUS" as never, 1)).toThrowError(/unknown kind BOGUS/);
    await m.dispose();
  });
});
