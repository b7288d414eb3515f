import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SpecError, parseMachineSpec, parseSize } from "@hmmsim/machine";
import { PRESETS_DIR, PresetSpecError, UnknownPresetError, isPresetName, loadPreset, presetNames, presetPath, readPresetText } from "./index.js";

const GiB = 2 ** 30;
/** One fault batch: uvm_perf_fault_batch_count = 256 faults of 4 KiB pages ([S1], docs/references.md). */
const FAULT_BATCH_BYTES = 256 * 4096;
/** The GPU presets (the FPGA presets have their own checks in fpga-presets.test.ts). */
const gpuPresets = presetNames.filter((n) => !n.startsWith("fpga-"));

describe("presets", () => {
  it("presetNames lists exactly the spec files in PRESETS_DIR", () => {
    const files = readdirSync(PRESETS_DIR).filter((f) => f.endsWith(".yaml")).map((f) => f.replace(/\.yaml$/, ""));
    expect([...files].sort()).toEqual([...presetNames].sort());
    for (const n of presetNames) expect(presetPath(n)).toBe(join(PRESETS_DIR, `${n}.yaml`));
  });

  it.each(gpuPresets)("%s parses and validates, names itself, and has a seed and a default workload larger than one fault batch", (name) => {
    const spec = loadPreset(name);
    expect(spec.name).toBe(name);
    expect(Number.isInteger(spec.seed)).toBe(true);
    expect(spec.devices.length).toBeGreaterThan(0);
    expect(spec.workload).not.toBeNull();
    // Host writes the buffer, a GPU streams through it, the host reads it back: each over more than one batch.
    const phases = (spec.workload!.params as { phases: { on: string; kind: string; params: { bytes: unknown } }[] }).phases;
    expect(spec.workload!.kind).toBe("phases");
    expect(phases.map((p) => `${p.on}:${p.kind}`)).toEqual(["cpu:streaming", "gpu0:streaming", "cpu:streaming"]);
    for (const p of phases) expect(parseSize(p.params.bytes)).toBeGreaterThan(FAULT_BATCH_BYTES);
    // Every device sits behind a declared link; a normalized spec parses to itself.
    for (const d of spec.devices) expect(spec.links.map((l) => l.name)).toContain(d.link);
    expect(parseMachineSpec(spec)).toEqual(spec);
  });

  it.each(presetNames)("%s cites its figures with source keys [Sx] (resolved in docs/references.md)", (name) => {
    const text = readPresetText(name);
    const keys = new Set(text.match(/\[S\d+\]/g) ?? []);
    expect(keys.size).toBeGreaterThanOrEqual(2);
  });

  it("a100-pcie4: A100 40 GB behind PCIe 4 x16 at 25 GB/s effective per direction, α 1.5 µs, device-private", () => {
    const s = loadPreset("a100-pcie4");
    expect(s.links).toEqual([{ name: "pcie0", kind: "pcie4x16", h2dBandwidth: 25e9, d2hBandwidth: 25e9, alpha: 1.5e6 }]);
    expect(s.devices).toEqual([
      { kind: "gpu", name: "gpu0", memory: 40 * GiB, memoryType: "private", driver: "gpu", policy: "uvm-default", link: "pcie0", driverSpec: { deviceMemoryBandwidth: 1555e9 } },
    ]);
    expect(s.workload).toEqual({
      kind: "phases",
      params: {
        phases: [
          { on: "cpu", kind: "streaming", params: { bytes: "64MiB", writeFraction: 1 } },
          { on: "gpu0", kind: "streaming", params: { bytes: "64MiB", granularity: 128, writeFraction: 0.25 } },
          { on: "cpu", kind: "streaming", params: { bytes: "64MiB" } },
        ],
      },
    });
  });

  it("h100-pcie5: H100 80 GB behind PCIe 5 x16 at 52 GB/s effective per direction, device-private", () => {
    const s = loadPreset("h100-pcie5");
    expect(s.links[0]).toMatchObject({ kind: "pcie5x16", h2dBandwidth: 52e9, d2hBandwidth: 52e9 });
    expect(s.devices[0]).toMatchObject({ kind: "gpu", memory: 80 * GiB, memoryType: "private" });
    expect(s.devices[0]!.driverSpec).toEqual({ deviceMemoryBandwidth: 3.35e12 }); // H100 SXM HBM3 3.35 TB/s [S38]
  });

  it("gh200-c2c: GH200 96 GB HBM3 as DEVICE_COHERENT memory over NVLink-C2C at 375 GB/s h2d / 297 GB/s d2h", () => {
    const s = loadPreset("gh200-c2c");
    expect(s.links[0]).toMatchObject({ kind: "nvlink-c2c", h2dBandwidth: 375e9, d2hBandwidth: 297e9 });
    expect(s.devices[0]).toMatchObject({ kind: "gpu", memory: 96 * GiB, memoryType: "coherent", link: "c2c" });
    expect(s.devices[0]!.driverSpec).toEqual({ deviceMemoryBandwidth: 4.0e12 }); // GH200 HBM3 4.0 TB/s nominal [S35]
    expect(s.cpus).toEqual({ count: 72, frequency: 3.1e9, activeCores: 1 });
  });

  it.each(gpuPresets)("%s: the comments state the default workload's measured fault figures under uvm-default (BATCH_FLUSH entries, tree-prefetch migrations), not one fault per page", (name) => {
    const text = readPresetText(name);
    const prose = text.replace(/\n#\s*/g, " "); // the comment as one paragraph (its lines are wrapped)
    expect(loadPreset(name).devices[0]!.policy).toBe("uvm-default");
    expect(text).not.toMatch(/64 fault\s*(#\s*)?batches/);
    // Measured by running the preset (apps/cli run.test.ts asserts the same figures on a100-pcie4):
    expect(prose).toContain("raise 196,608 fault-buffer entries");
    expect(prose).toContain("147,456 of the entries are such flushed-then-raised-again repeats");
    expect(prose).toContain("The other 49,152 entries are serviced in 192 batches of 256 [S1]");
    expect(prose).toContain("1,536 faulted pages");
    expect(prose).toContain("6 migrations per block, 192 migrations");
    // The arithmetic behind them: 64 MiB in 128-byte accesses, 32 per 4 KiB page; 32 blocks of 2 MiB, each moved by
    // the tree in 6 nodes ([0,16) [16,32) [32,64) [64,128) [128,256) [256,512) pages), one batch of 8 pages each.
    expect((64 * 2 ** 20) / 128).toBe(524_288);
    expect(32 * 6).toBe(192);
    expect(192 * 256).toBe(49_152);
    expect(192 * 8).toBe(1_536);
    expect(196_608 - 49_152).toBe(147_456);
    // Each cited device-memory bandwidth is its source's figure for that GPU (docs/references.md).
    const bw = loadPreset(name).devices[0]!.driverSpec!.deviceMemoryBandwidth;
    expect(bw).toBe(({ "a100-pcie4": 1555e9, "h100-pcie5": 3.35e12, "gh200-c2c": 4.0e12 } as Record<string, number>)[name]);
  });

  it("an unknown preset name throws UnknownPresetError listing the valid names", () => {
    expect(isPresetName("a100-pcie4")).toBe(true);
    expect(isPresetName("a100")).toBe(false);
    let err: unknown;
    try {
      loadPreset("a100");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnknownPresetError);
    expect((err as UnknownPresetError).validNames).toEqual(["a100-pcie4", "h100-pcie5", "gh200-c2c", "fpga-u250-pcie3", "fpga-u55c-pcie4", "fpga-cxl-coherent"]);
    expect((err as Error).message).toBe('unknown preset "a100": expected one of a100-pcie4, h100-pcie5, gh200-c2c, fpga-u250-pcie3, fpga-u55c-pcie4, fpga-cxl-coherent');
  });

  it("a bad edit of a preset is reported with the file and every problem's path", () => {
    const dir = mkdtempSync(join(tmpdir(), "hmmsim-presets-"));
    const bad = readPresetText("a100-pcie4")
      .replace("memory: 40GiB", "memory: 40 gigs")
      .replace("params: { bytes: 64MiB }", "params: { bytes: 64MiB, stride: 3 }");
    expect(bad).toContain("stride: 3");
    writeFileSync(join(dir, "a100-pcie4.yaml"), bad);
    let err: unknown;
    try {
      loadPreset("a100-pcie4", { dir });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PresetSpecError);
    expect(err).toBeInstanceOf(SpecError);
    const e = err as PresetSpecError;
    expect(e.file).toBe(join(dir, "a100-pcie4.yaml"));
    const paths = e.issues.map((i) => i.path);
    expect(paths).toContain("devices[0].memory");
    expect(paths).toContain("workload.params.phases[2].params.stride");
    expect(e.issues.find((i) => i.path === "devices[0].memory")!.message).toMatch(/expected a size like "16GiB", got "40 gigs"/);
    expect(e.message).toContain(join(dir, "a100-pcie4.yaml"));
    expect(e.message).toContain("devices[0].memory");
    // The shipped file is untouched.
    expect(loadPreset("a100-pcie4").devices[0]!.memory).toBe(40 * GiB);
  });
});
