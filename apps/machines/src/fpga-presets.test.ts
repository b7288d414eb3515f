// The FPGA presets: they parse, cite their figures, list in the presets, and a run of each prints the FPGA's
// picture — one interrupt per fault serviced alone (as many "batches" as fault entries), and the per-stream stall
// time — where a GPU preset shows a few batches of 256. They run uvm-default, as the GPU presets do: the tree
// prefetcher answers the FPGA driver's prefetchRange, so a fault moves a whole tree node, not one page.
import { describe, expect, it } from "vitest";
import { FpgaDriverPlugin } from "@hmmsim/driver-fpga";
import { GpuDriverPlugin } from "@hmmsim/driver-gpu";
import { type MachinePlugin, defaultPlugins, formatSummary, simulate } from "@hmmsim/machine";
import { CoherentPlugin } from "@hmmsim/interconnect-coherent";
import { PciePlugin } from "@hmmsim/interconnect-pcie";
import { AdvisePolicyPlugin } from "@hmmsim/policy-advise";
import { EvictionPolicyPlugin } from "@hmmsim/policy-eviction";
import { OnDemandPolicyPlugin } from "@hmmsim/policy-on-demand";
import { ThrashingPolicyPlugin } from "@hmmsim/policy-thrashing";
import { TreePrefetchPolicyPlugin } from "@hmmsim/policy-tree-prefetch";
import { UvmDefaultPolicyPlugin } from "@hmmsim/policy-uvm-default";
import { loadPreset, presetNames, readPresetText } from "./index.js";

const GiB = 2 ** 30;
const FPGA_PRESETS = ["fpga-u250-pcie3", "fpga-u55c-pcie4", "fpga-cxl-coherent"] as const;

/** The plugins `hmmsim run` composes a machine from (apps/cli builtinPlugins), with this test's FPGA plugin. */
function plugins(fpga: FpgaDriverPlugin): MachinePlugin[] {
  return [
    ...defaultPlugins(),
    new PciePlugin(),
    new CoherentPlugin(),
    new GpuDriverPlugin(),
    fpga,
    new OnDemandPolicyPlugin(),
    new AdvisePolicyPlugin(),
    new TreePrefetchPolicyPlugin(),
    new ThrashingPolicyPlugin(),
    new EvictionPolicyPlugin(),
    new UvmDefaultPolicyPlugin(),
  ];
}

describe("FPGA presets", () => {
  it("are listed with the presets (the list `hmmsim run` shows)", () => {
    for (const n of FPGA_PRESETS) expect(presetNames).toContain(n);
  });

  it.each(FPGA_PRESETS)("%s: one fpga0 on its link, driver fpga, 4 streams; the round-trip workload; figures cited [Sx]", (name) => {
    const s = loadPreset(name);
    expect(s.name).toBe(name);
    expect(s.devices).toHaveLength(1);
    expect(s.devices[0]).toMatchObject({ kind: "fpga", name: "fpga0", driver: "fpga", policy: "uvm-default" });
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

  it.each(FPGA_PRESETS)("%s (4 MiB): every fault is its own interrupt and batch, the tree prefetcher moves whole nodes, and the run reports each stream's stall time", async (name) => {
    const fpga = new FpgaDriverPlugin();
    const spec = readPresetText(name).replaceAll("bytes: 64MiB", "bytes: 4MiB");
    const s = await simulate({ spec, plugins: plugins(fpga), source: { preset: name, file: `${name}.yaml` } });
    const p = s.phases[1]!;
    expect(p.on).toBe("fpga0");
    // 4 MiB = 2 blocks of 2 MiB. Under uvm-default the tree prefetcher moves 6 nodes per block ([0,16) [16,32)
    // [32,64) [64,128) [128,256) [256,512) pages): 12 migrations for the 1,024 pages. Each starts with a stream's
    // page fault; the 4 streams share each page (neighbouring beats), so each miss is raised on all 4: 48 interrupts
    // (measured; the preset's comment states the 64 MiB figures, 768 interrupts for 192 migrations).
    expect(p.gpu!.faults).toBe(4 * 12);
    expect(p.gpu!.batches).toBe(p.gpu!.faults); // no batching: one interrupt, one service
    expect(s.faults.device).toBe(s.faults.deviceBatches);
    expect(p.gpu!.migratedPages).toBe(1024);
    expect(s.migrated.h2d.count).toBe(12);
    if (name === "fpga-cxl-coherent") expect(s.coherentCpuAccess.accesses).toBeGreaterThan(0);
    else expect(s.migrated.d2h.pages).toBe(1024);
    // The summary (JSON and text) carries each stream's stall time: 4 streams, each stalled most of the phase —
    // 84-91 % measured (95-100 % under on-demand: prefetching leaves the beats a larger share of the phase).
    const streams = p.gpu!.streams!;
    expect(streams).toHaveLength(4);
    expect(streams.reduce((n, x) => n + x.faults, 0)).toBe(p.gpu!.faults);
    for (const x of streams) expect(x.stallPs / (p.endPs - p.startPs)).toBeGreaterThan(0.8);
    expect(formatSummary(s)).toMatch(/phase 2 \(fpga0\) +streaming: .*; 4 streams stalled .* on average \((8\d|9\d|100)\.\d % of the phase\), at most /);

    // The same preset under on-demand: one page per fault, 4 interrupts per page (1 page fault + 3 refills).
    const od = await simulate({ spec: spec.replace(/^ {4}policy: .*$/m, "    policy: on-demand"), plugins: plugins(new FpgaDriverPlugin()), source: { preset: name, file: `${name}.yaml` } });
    expect(od.phases[1]!.gpu!.faults).toBe(4 * 1024);
    expect(od.migrated.h2d.count).toBe(1024);
    for (const x of od.phases[1]!.gpu!.streams!) expect(x.stallPs / (od.phases[1]!.endPs - od.phases[1]!.startPs)).toBeGreaterThan(0.9);
  }, 60_000);
});
