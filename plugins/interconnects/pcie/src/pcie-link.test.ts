import { describe, expect, it } from "vitest";
import { PS_PER_US } from "@hmmsim/engine";
import { type Machine, createMachine, defaultPlugins, getMachineStats } from "@hmmsim/machine";
import { PciePlugin } from "./plugin.js";

const GiB = 2 ** 30;

function machine(kind = "pcie4x16", sharing: "ps" | "fifo" = "ps", extra: object = {}): Machine {
  return createMachine({
    spec: {
      cpus: { count: 4 },
      ram: { size: "64MiB" },
      links: [{ name: "pcie0", kind, ...extra }],
    },
    plugins: [...defaultPlugins(), new PciePlugin({ sharing })],
    createKernel: () => null,
  });
}

describe("PCIe calibration (exact simulated time)", () => {
  it("1 GiB over pcie4x16 as one transfer = α + 2^30 B / 25 GB/s", async () => {
    const m = machine();
    const link = m.link("pcie0");
    // 25 GB/s = 40 ps per byte, so 2^30 B = 42,949,672,960 ps exactly; α = 1.5 µs
    const expected = 1.5 * PS_PER_US + 42_949_672_960;
    expect(link.transferTime("h2d", GiB)).toBe(expected);
    m.spawn("copy", () => link.transfer("h2d", GiB));
    const r = await m.run();
    expect(r.simulatedPs).toBe(expected);
    expect(link.busyTime("h2d")).toBe(42_949_672_960);
    expect(link.bytesMoved("h2d")).toBe(GiB);
    expect(link.supportsCoherentAccess).toBe(false);
  });

  it("N chunked transfers = N·α + bytes/β", async () => {
    const m = machine();
    const link = m.link("pcie0");
    const N = 512; // 2 MiB chunks
    m.spawn("copy", async () => {
      for (let i = 0; i < N; i++) await link.transfer("h2d", GiB / N);
    });
    const r = await m.run();
    expect(r.simulatedPs).toBe(N * 1.5 * PS_PER_US + 42_949_672_960);
    expect(link.stats("h2d")).toEqual({ busyPs: 42_949_672_960, bytes: GiB, transfers: N });
  });

  it("rounds each transfer up to a whole ps: ⌈bytes·10^12/β⌉", () => {
    const link = machine("pcie3x16").link("pcie0");
    // 12 GB/s: 4096 B → 341,333.33… ps → 341,334
    expect(link.transferTime("h2d", 4096)).toBe(1.5 * PS_PER_US + 341_334);
    expect(machine("pcie5x16").link("pcie0").transferTime("d2h", 52_000)).toBe(1.5 * PS_PER_US + 1_000_000);
  });

  it("two concurrent transfers in the same direction share the bandwidth (processor sharing)", async () => {
    const m = machine();
    const link = m.link("pcie0");
    const ends: number[] = [];
    for (let i = 0; i < 2; i++) m.spawn(`c${i}`, async () => (await link.transfer("h2d", GiB), void ends.push(m.now)));
    await m.run();
    const both = 1.5 * PS_PER_US + 2 * 42_949_672_960;
    expect(ends).toEqual([both, both]);
    expect(link.busyTime("h2d")).toBe(2 * 42_949_672_960);
  });

  it("fifo sharing serves one after the other", async () => {
    const m = machine("pcie4x16", "fifo");
    const link = m.link("pcie0");
    const ends: number[] = [];
    for (let i = 0; i < 2; i++) m.spawn(`c${i}`, async () => (await link.transfer("h2d", GiB), void ends.push(m.now)));
    await m.run();
    expect(ends).toEqual([1.5 * PS_PER_US + 42_949_672_960, 1.5 * PS_PER_US + 2 * 42_949_672_960]);
  });

  it("opposite directions don't interfere", async () => {
    const m = machine();
    const link = m.link("pcie0");
    const ends: number[] = [];
    m.spawn("up", async () => (await link.transfer("h2d", GiB), void ends.push(m.now)));
    m.spawn("down", async () => (await link.transfer("d2h", GiB), void ends.push(m.now)));
    await m.run();
    expect(ends).toEqual([1.5 * PS_PER_US + 42_949_672_960, 1.5 * PS_PER_US + 42_949_672_960]);
    const s = getMachineStats(m).links.pcie0!;
    expect(s.h2d.busyPs).toBe(42_949_672_960);
    expect(s.d2h.busyPs).toBe(42_949_672_960);
  });

  it("lanes scale the preset bandwidth; spec fields override it", () => {
    expect(machine("pcie4x16", "ps", { lanes: 8 }).link("pcie0").params).toEqual({ h2dBandwidth: 12_500_000_000, d2hBandwidth: 12_500_000_000, alpha: 1_500_000, sharing: "ps" });
    expect(machine("pcie4x16", "ps", { alpha: "2us", d2hBandwidth: "20GB/s" }).link("pcie0").params).toEqual({ h2dBandwidth: 25e9, d2hBandwidth: 20e9, alpha: 2_000_000, sharing: "ps" });
  });

  it("rejects bad transfer arguments and a bad plugin spec, naming the field", () => {
    const link = machine().link("pcie0");
    expect(() => link.transferTime("up" as "h2d", 1)).toThrowError('pcie0.transfer: dir must be "h2d" or "d2h", got up');
    expect(() => link.transferTime("h2d", -1)).toThrowError("pcie0.transfer: bytes must be a non-negative safe integer, got -1");
    expect(() => new PciePlugin({ sharing: "lottery" as "ps" })).toThrowError(/spec.sharing/);
  });

  it("does not provide coherent link kinds", () => {
    expect(() =>
      createMachine({
        spec: { cpus: { count: 1 }, ram: { size: "2MiB" }, links: [{ name: "c", kind: "nvlink-c2c" }] },
        plugins: [...defaultPlugins(), new PciePlugin()],
        createKernel: () => null,
      }),
    ).toThrowError('links[0].kind: no plugin provides link kind "nvlink-c2c" (available: custom, pcie-p2p, pcie3x16, pcie4x16, pcie5x16;');
  });
});
