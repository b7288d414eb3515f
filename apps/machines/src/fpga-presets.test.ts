// The FPGA presets: they parse, cite their figures, list in the presets, and a run of each prints the FPGA's
// picture — one interrupt per fault serviced alone (as many "batches" as fault entries), and the per-stream stall
// time — where a GPU preset shows a few batches of 256.
import { describe, expect, it } from "vitest";
import { FpgaDriverPlugin } from "@hmmsim/driver-fpga";
import { GpuDriverPlugin } from "@hmmsim/driver-gpu";
import { type MachinePlugin, defaultPlugins, formatSummary, simulate } from "@hmmsim/machine";
import { CoherentPlugin } from "@hmmsim/interconnect-coherent";
import { PciePlugin } from "@hmmsim/interconnect-pcie";
import { OnDemandPolicyPlugin } from "@hmmsim/policy-on-demand";
import { loadPreset, presetNames, readPresetText } from "./index.js";

const GiB = 2 ** 30;
const FPGA_PRESETS = ["fpga-u250-pcie3", "fpga-u55c-pcie4", "fpga-cxl-coherent"] as const;

/** The plugins `hmmsim run` composes a machine from (apps/cli builtinPlugins), with this test's FPGA plugin. */
function plugins(fpga: FpgaDriverPlugin): MachinePlugin[] {
  return [...defaultPlugins(), new PciePlugin(), new CoherentPlugin(), new GpuDriverPlugin(), fpga, new OnDemandPolicyPlugin()];
}

describe("FPGA presets", () => {
  it("are listed with the presets (the list `hmmsim run` shows)", () => {
    for (const n of FPGA_PRESETS) expect(presetNames).toContain(n);
  });

  it.each(FPGA_PRESETS)("%s: one fpga0 on its link, driver fpga, 4 streams; the round-trip workload; figures cited [Sx]", (name) => {
    const s = loadPreset(name);
    expect(s.name).toBe(name);
    expect(s.devices).toHaveLength(1);
    expect(s.devices[0]).toMatchObject({ kind: "fpga", name: "fpga0", driver: "fpga", policy: "on-demand" });
    expect(s.devices[0]!.driverSpec).toMatchObject({ streams: 4 });
    const phases = (s.workload!.params as { phases: { on: string; kind: string }[] }).phases;
    expect(phases.map((p) => `${p.on}:${p.kind}`)).toEqual(["cpu:streaming", "fpga0:streaming", "cpu:streaming"]);
    expect(new Set(readPresetText(name).match(/\[S\d+\]/g) ?? []).size).toBeGreaterThanOrEqual(3);
  });

  it("the three cards: U250-class DDR4 on PCIe 3 x16, U55C-class HBM on PCIe 4, a CXL-attached coherent card", () => {
    const u250 = loadPreset("fpga-u250-pcie3");
    expect(u250.links[0]).toMatchObject({ kind: "pcie3x16", h2dBandwidth: 12e9 });
    expect(u250.devices[0]).toMatchObject({ memory: 64 * GiB, memoryType: "private", driverSpec: { deviceMemoryBandwidth: 77e9 } });
    const u55c = loadPreset("fpga-u55c-pcie4");
    expect(u55c.links[0]).toMatchObject({ kind: "pcie4x16", h2dBandwidth: 25e9 });
    expect(u55c.devices[0]).toMatchObject({ memory: 16 * GiB, memoryType: "private", driverSpec: { deviceMemoryBandwidth: 460e9 } });
    const cxl = loadPreset("fpga-cxl-coherent");
    expect(cxl.links[0]).toMatchObject({ kind: "cxl", h2dBandwidth: 50.4e9 });
    expect(cxl.devices[0]).toMatchObject({ memoryType: "coherent" });
  });

  it.each(FPGA_PRESETS)("%s (4 MiB): every fault is its own interrupt and batch, and the run reports each stream's stall time", async (name) => {
    const fpga = new FpgaDriverPlugin();
    const spec = readPresetText(name).replaceAll("bytes: 64MiB", "bytes: 4MiB");
    const s = await simulate({ spec, plugins: plugins(fpga), source: { preset: name, file: `${name}.yaml` } });
    const p = s.phases[1]!;
    expect(p.on).toBe("fpga0");
    // 4 MiB = 1,024 pages: each first touch a page fault; the 4 streams share each page, the 3 others refill.
    expect(p.gpu!.faults).toBe(4 * 1024);
    expect(p.gpu!.batches).toBe(p.gpu!.faults); // no batching: one interrupt, one service
    expect(s.faults.device).toBe(s.faults.deviceBatches);
    expect(p.gpu!.migratedPages).toBe(1024);
    expect(s.migrated.h2d.count).toBe(1024); // 1,024 migrations of 4 KiB
    if (name === "fpga-cxl-coherent") expect(s.coherentCpuAccess.accesses).toBeGreaterThan(0);
    else expect(s.migrated.d2h.pages).toBe(1024);
    // The summary (JSON and text) carries each stream's stall time: 4 streams, each stalled most of the phase.
    const streams = p.gpu!.streams!;
    expect(streams).toHaveLength(4);
    expect(streams.reduce((n, x) => n + x.faults, 0)).toBe(p.gpu!.faults);
    for (const x of streams) expect(x.stallPs / (p.endPs - p.startPs)).toBeGreaterThan(0.9);
    expect(formatSummary(s)).toMatch(/phase 2 \(fpga0\) +streaming: .*; 4 streams stalled .* on average \((9\d|100)\.\d % of the phase\), at most /);
  }, 60_000);
});
