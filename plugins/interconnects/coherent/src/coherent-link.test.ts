import { describe, expect, it } from "vitest";
import { PS_PER_NS, PS_PER_US } from "@hmmsim/engine";
import { type CoherentInterconnect, type Machine, createMachine, defaultPlugins, isCoherentInterconnect } from "@hmmsim/machine";
import { CoherentLink } from "./coherent-link.js";
import { CoherentPlugin } from "./plugin.js";

function machine(links: object[]): Machine {
  return createMachine({
    spec: { cpus: { count: 72 }, ram: { size: "64MiB" }, links },
    plugins: [...defaultPlugins(), new CoherentPlugin()],
    createKernel: () => null,
  });
}

describe("coherent links", () => {
  it("nvlink-c2c: 375 GB/s H2D, 297 GB/s D2H, exact ps", async () => {
    const m = machine([{ name: "c2c", kind: "nvlink-c2c" }]);
    const link = m.link("c2c");
    expect(link.supportsCoherentAccess).toBe(true);
    expect(isCoherentInterconnect(link)).toBe(true);
    expect(link.transferTime("h2d", 375_000)).toBe(PS_PER_US + 1_000_000);
    expect(link.transferTime("d2h", 297_000)).toBe(PS_PER_US + 1_000_000);
    const ends: number[] = [];
    m.spawn("up", async () => (await link.transfer("h2d", 375_000_000), void ends.push(m.now)));
    m.spawn("down", async () => (await link.transfer("d2h", 297_000_000), void ends.push(m.now)));
    await m.run();
    expect(ends).toEqual([PS_PER_US + 1_000_000_000, PS_PER_US + 1_000_000_000]); // directions independent
  });

  it("cxl: CPU loads pay +80 ns over local DRAM", async () => {
    const m = machine([{ name: "cxl0", kind: "cxl" }]);
    const link = m.link("cxl0") as CoherentLink & CoherentInterconnect;
    expect(link.cpuAccessLatency).toBe(80 * PS_PER_NS);
    expect(link.cpuAccessTime(64)).toBe(80_000 + Math.ceil((64 * 1e12) / 50.4e9));
    m.spawn("cpu", () => link.cpuAccess(64));
    const r = await m.run();
    expect(r.simulatedPs).toBe(link.cpuAccessTime(64));
  });

  it("custom-coherent links take their figures from the spec", () => {
    const m = machine([{ name: "x", kind: "custom-coherent", h2dBandwidth: "100GB/s", d2hBandwidth: "50GB/s", alpha: "500ns", coherent: true, cpuAccessLatency: "200ns" }]);
    const link = m.link("x") as CoherentLink;
    expect(link.kind).toBe("custom-coherent");
    expect(link.supportsCoherentAccess).toBe(true);
    expect(link.params).toEqual({ h2dBandwidth: 100e9, d2hBandwidth: 50e9, alpha: 500_000, sharing: "ps", cpuAccessLatency: 200_000, cpuAccessBandwidth: 50e9 });
    expect(link.cpuAccessBandwidth).toBe(50e9);
  });

  it("custom-coherent links without CPU-access figures: CXL's +80 ns and their d2h bandwidth", () => {
    const link = machine([{ name: "x", kind: "custom-coherent", h2dBandwidth: "100GB/s", d2hBandwidth: "40GB/s", alpha: "1us" }]).link("x") as CoherentLink;
    expect(link.cpuAccessLatency).toBe(80 * PS_PER_NS);
    expect(link.cpuAccessBandwidth).toBe(40e9);
  });

  it("presets take spec overrides", () => {
    const link = machine([{ name: "c", kind: "cxl", alpha: "2us", cpuAccessLatency: "90ns" }]).link("c") as CoherentLink;
    expect(link.params).toEqual({ h2dBandwidth: 50.4e9, d2hBandwidth: 50.4e9, alpha: 2_000_000, sharing: "ps", cpuAccessLatency: 90_000, cpuAccessBandwidth: 50.4e9 });
  });

  it("two concurrent same-direction transfers share the bandwidth", async () => {
    const m = machine([{ name: "c2c", kind: "nvlink-c2c" }]);
    const link = m.link("c2c");
    const ends: number[] = [];
    for (let i = 0; i < 2; i++) m.spawn(`t${i}`, async () => (await link.transfer("h2d", 375_000_000), void ends.push(m.now)));
    await m.run();
    expect(ends).toEqual([PS_PER_US + 2_000_000_000, PS_PER_US + 2_000_000_000]);
  });

  it("does not provide PCIe link kinds, nor custom", () => {
    expect(() => machine([{ name: "p", kind: "pcie4x16" }])).toThrowError('links[0].kind: no plugin provides link kind "pcie4x16" (available: custom-coherent, cxl, nvlink-c2c, nvlink3, nvlink4;');
    expect(() => machine([{ name: "p", kind: "custom", h2dBandwidth: "1GB/s", d2hBandwidth: "1GB/s", alpha: "1us" }])).toThrowError(
      'links[0].kind: no plugin provides link kind "custom"',
    );
  });
});
