import { describe, expect, it } from "vitest";
import { bufferIo } from "./cli-io.js";
import { main } from "./main.js";
import type { RunSummary } from "@hmmsim/machine";

async function cli(argv: string[], opts: { stderrIsTTY?: boolean } = {}) {
  const io = bufferIo(opts);
  const code = await main(argv, io);
  return { code, out: io.stdout.text, err: io.stderr.text };
}

async function json(argv: string[]): Promise<RunSummary> {
  const r = await cli(["run", "--json", ...argv]);
  expect(r.err).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.out) as RunSummary;
}

const MiB = 2 ** 20;

describe("hmmsim run --json (default: the a100-pcie4 preset)", () => {
  it("returns 0 and prints only a JSON summary: machine, time, faults, migrations each way, link utilisation, evictions", async () => {
    const r = await cli(["run", "--json"]);
    expect(r.code).toBe(0);
    expect(r.err).toBe("");
    const s = JSON.parse(r.out) as RunSummary;
    // What the machine was.
    expect(s.machine).toMatchObject({ name: "a100-pcie4", preset: "a100-pcie4", seed: 1, bytes: false, cpus: { count: 16, frequencyHz: 3e9 }, ramBytes: 64 * 2 ** 30 });
    expect(s.machine.devices).toEqual([{ name: "gpu0", kind: "gpu", memoryBytes: 40 * 2 ** 30, memoryType: "private", link: "pcie0", driver: "gpu", policy: "uvm-default" }]);
    expect(s.machine.links).toEqual([{ name: "pcie0", kind: "pcie4x16", h2dBandwidth: 25e9, d2hBandwidth: 25e9, alphaPs: 1.5e6, coherent: false }]);
    expect(s.machine.specFile).toMatch(/apps\/machines\/presets\/a100-pcie4\.yaml$/);
    // The default workload: host writes 64 MiB, the GPU streams it, the host reads it back.
    expect(s.phases.map((p) => [p.on, p.kind, p.accesses])).toEqual([
      ["cpu", "streaming", 16384],
      ["gpu0", "streaming", (64 * MiB) / 128],
      ["cpu", "streaming", 16384],
    ]);
    expect(s.phases[1]!.gpu!.faults).toBeGreaterThanOrEqual(16384);
    // Every page the host wrote was migrated to the GPU (over the link) and back by the host's read faults.
    expect(s.migrated.h2d).toMatchObject({ pages: 16384, bytes: 64 * MiB });
    expect(s.migrated.d2h).toMatchObject({ pages: 16384, bytes: 64 * MiB });
    expect(s.faults.cpu).toBe(2 * 16384); // first touch by the writer + the read back of each device-private page
    // The summary's device faults are the entries the batches serviced; the phase's also count the entries UVM's
    // default replay policy (BATCH_FLUSH [S1]) flushed unserviced after a batch and the replayed warps raised again.
    expect(s.faults.device).toBe(s.phases[1]!.gpu!.faults - s.phases[1]!.gpu!.flushedFaults!);
    // The preset's comment (uvm-default, measured): the 524,288 accesses of 128 B raise 196,608 entries, 147,456 of
    // them flushed repeats; 49,152 are serviced in 192 full batches of 256 (8 distinct pages each: 1,536 faulted
    // pages), and the tree prefetcher moves each 2 MiB block in 6 nodes: 192 migrations for the 16,384 pages.
    // (Under on-demand, `--policy on-demand` below: 524,288 serviced entries, 2,048 batches, 2,048 migrations.)
    expect(s.faults).toMatchObject({ device: 49_152, deviceBatches: 192, batchedFaults: 49_152 });
    expect(s.phases[1]!.gpu).toMatchObject({ faults: 196_608, flushedFaults: 147_456, batches: 192, faultedPages: 1_536, migratedPages: 16_384, populatedPages: 0 });
    expect(s.migrated.h2d.count).toBe(192);
    expect(s.evictions).toEqual({ count: 0, pages: 0, bytes: 0 });
    // Link utilisation = busy time / simulated time; 64 MiB at 25 GB/s is ≥ 2.68 ms of busy time.
    const h2d = s.links.pcie0!.h2d;
    expect(h2d.bytes).toBe(64 * MiB);
    expect(h2d.busyPs).toBeGreaterThanOrEqual(Math.floor((64 * MiB * 1e12) / 25e9));
    expect(h2d.utilisation).toBeCloseTo(h2d.busyPs / s.simulatedPs, 12);
    expect(h2d.utilisation).toBeGreaterThan(0);
    expect(h2d.utilisation).toBeLessThanOrEqual(1);
    // Phases run one after another and cover the run.
    expect(s.phases[0]!.startPs).toBe(0);
    expect(s.phases[1]!.startPs).toBe(s.phases[0]!.endPs);
    expect(s.phases[2]!.endPs).toBe(s.simulatedPs);
    expect(s.unsettledPs).toBe(0);
    expect(s.cost.DEVICE_FAULT!.count).toBeGreaterThan(0);
  });

  it("the same seed gives the identical summary; a random workload with another seed differs", async () => {
    // Under on-demand: with the preset's uvm-default the tree prefetcher moves these 4 dense blocks whole after a few
    // batches, and two seeds give the same counts and time (measured), which would prove nothing about the seed.
    const argv = ["--workload", "random", "--size", "8MiB", "--seed", "5", "--policy", "on-demand"];
    const a = await cli(["run", "--json", ...argv]);
    const b = await cli(["run", "--json", ...argv]);
    expect(a.code).toBe(0);
    expect(b.out).toBe(a.out);
    const c = await json(["--workload", "random", "--size", "8MiB", "--seed", "6", "--policy", "on-demand"]);
    const s5 = JSON.parse(a.out) as RunSummary;
    expect(s5.machine.seed).toBe(5);
    expect(c.machine.seed).toBe(6);
    expect(c.faults.device === s5.faults.device && c.simulatedPs === s5.simulatedPs).toBe(false);
  });

  it("two different presets run in one process (one after the other and at the same time) give the same results as each alone", async () => {
    const a100 = ["a100-pcie4", "--size", "4MiB"];
    const gh200 = ["gh200-c2c", "--size", "4MiB"];
    const aloneA = await json(a100);
    const aloneG = await json(gh200);
    expect(aloneG.machine.devices[0]!.memoryType).toBe("coherent");
    expect(aloneG.simulatedPs).not.toBe(aloneA.simulatedPs);
    const [bothA, bothG] = await Promise.all([json(a100), json(gh200)]);
    expect(bothA).toEqual(aloneA);
    expect(bothG).toEqual(aloneG);
    expect(await json(a100)).toEqual(aloneA);
  });

  it("--size resizes every phase of the preset's workload; --workload/--size replace it", async () => {
    const s = await json(["--size", "2MiB"]);
    expect(s.phases.map((p) => p.accesses)).toEqual([512, (2 * MiB) / 128, 512]);
    expect(s.migrated.h2d.pages).toBe(512);
    const t = await json(["h100-pcie5", "--workload", "streaming", "--size", "3MiB"]);
    expect(t.workload).toEqual({ kind: "streaming", on: "gpu0", params: { bytes: 3 * MiB } });
    expect(t.phases).toHaveLength(1);
    expect(t.faults.device).toBe(768); // untouched anonymous memory: one fault per page, no CPU fault
    expect(t.faults.cpu).toBe(0);
    // Never written by the CPU: the driver zero-fills the pages on the device; nothing crosses the link.
    expect(t.migrated.h2d).toMatchObject({ pages: 768, bytes: 0 });
    expect(t.phases[0]!.gpu).toMatchObject({ faultedPages: 768, migratedPages: 0, populatedPages: 768 });
    const table = await cli(["run", "h100-pcie5", "--workload", "streaming", "--size", "3MiB"]);
    expect(table.out).toMatch(/^ {2}migrated to device +768 pages, 0 B copied \(3 migrations\); 768 of the pages were never written by the CPU, so the driver zero-filled them on the device instead of copying$/m);
    expect(table.out).not.toMatch(/note \(/);
  });

  it("the table names the machine and every figure; the progress bar is drawn on a TTY stderr only, erased before the summary", async () => {
    const r = await cli(["run", "--size", "2MiB"], { stderrIsTTY: true });
    expect(r.code).toBe(0);
    for (const row of ["machine", "device gpu0", "link pcie0", "simulated time", "CPU faults", "device faults", "migrated to device", "migrated to host", "evictions", "link pcie0 h2d", "link pcie0 d2h"]) {
      expect(r.out).toMatch(new RegExp(`^  ${row} +\\S`, "m"));
    }
    expect(r.out).toMatch(/^ {2}workload +3 phases: streaming 2 MiB on cpu, streaming 2 MiB on gpu0, streaming 2 MiB on cpu$/m);
    expect(r.out).toMatch(/migrated to device +512 pages, 2 MiB copied \(\d+ migrations\)$/m);
    // Link busy time is data movement only; the per-transfer setup α is said to be on top.
    expect(r.out).toMatch(/^ {2}link pcie0 h2d +\d+\.\d % busy \(\S+ \S+ moving data\), 2 MiB in \d+ transfers \(\+ 1\.5 µs setup each, not in busy\)$/m);
    // uvm-default (measured): the tree prefetcher moves the one 2 MiB block in 6 nodes, one batch each (8 faulted pages
    // per batch of 256 entries); under on-demand the same row reads 16,384 entries in 64 batches (512 pages).
    expect(r.out).toMatch(/^ {2}device faults +1,536 fault entries in 6 batches \(48 pages: the other entries repeat a page already in their batch\)$/m);
    expect(r.out).toMatch(/^ {2}migrated to device +512 pages, 2 MiB copied \(6 migrations\)$/m);
    expect(r.err).toMatch(/\[#+\] 100%/);
    expect(r.err.endsWith("\r\x1b[K")).toBe(true);
    expect((await cli(["run", "--size", "2MiB", "--no-progress"], { stderrIsTTY: true })).err).toBe("");
    expect((await cli(["run", "--size", "2MiB", "--json"], { stderrIsTTY: true })).err).toBe("");
    expect((await cli(["run", "--size", "2MiB"])).err).toBe("");
  });

  it("gh200-c2c: after the GPU phase the CPU reads the DEVICE_COHERENT pages in place, each access costing the link's coherent access time", async () => {
    const { loadPreset } = await import("@hmmsim/machines");
    const { CPU_ACCESS_BYTES } = await import("@hmmsim/machine");
    const s = await json(["gh200-c2c", "--size", "2MiB"]);
    const pages = (2 * MiB) / 4096;
    const [write, gpu, read] = s.phases;
    // The GPU migrated every page into its coherent memory; nothing came back: no CPU fault, no d2h migration or DMA.
    expect(s.migrated.h2d).toMatchObject({ pages, bytes: 2 * MiB });
    expect(s.migrated.d2h).toEqual({ count: 0, pages: 0, bytes: 0 });
    expect(s.links.c2c!.d2h.transfers).toBe(0);
    expect(s.faults.cpu).toBe(pages); // the writer's first touches only
    expect(write!.cpu).toEqual({ coherentAccesses: 0, coherentPs: 0 });
    expect(gpu!.gpu).toMatchObject({ migratedPages: pages, populatedPages: 0 });
    // Each read-back access: cpuAccessLatency + ⌈64 B · 10^12 / cpuAccessBandwidth⌉ ps, charged to the CPU thread.
    const link = loadPreset("gh200-c2c").links[0]!;
    const perAccess = link.cpuAccessLatency! + Math.ceil((CPU_ACCESS_BYTES * 1e12) / link.cpuAccessBandwidth!);
    expect(perAccess).toBe(150_000 + 216); // 150 ns + 64 B at 297 GB/s
    expect(read!.cpu).toEqual({ coherentAccesses: pages, coherentPs: pages * perAccess });
    expect(read!.endPs - read!.startPs).toBe(pages * perAccess); // the phase is nothing but those accesses
    expect(s.coherentCpuAccess).toEqual({ accesses: pages, ps: pages * perAccess });
    expect(s.unsettledPs).toBe(0);
    // The table shows them, per phase and in total.
    const r = await cli(["run", "gh200-c2c", "--size", "2MiB"]);
    expect(r.out).toMatch(/^ {2}phase 3 \(cpu\) +streaming: 512 accesses in 76\.9 µs; 512 of them read\/written in place in device memory \(76\.9 µs\)$/m);
    expect(r.out).toMatch(/^ {2}CPU coherent access +512 CPU accesses to pages left in DEVICE_COHERENT memory, done in place over the link \(no fault, no copy back\): 76\.9 µs of CPU time$/m);
    // A device-private machine has no such row, and its read-back migrates every page back instead.
    const a100 = await json(["a100-pcie4", "--size", "2MiB"]);
    expect(a100.coherentCpuAccess).toEqual({ accesses: 0, ps: 0 });
    expect(a100.migrated.d2h.pages).toBe(pages);
    expect((await cli(["run", "--size", "2MiB"])).out).not.toContain("CPU coherent access");
  });

  it("a BFS workload (its length unknown in advance) draws a count-based progress line, not a percent bar", async () => {
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const { readPresetText } = await import("@hmmsim/machines");
    const dir = mkdtempSync(join(tmpdir(), "hmmsim-bfs-"));
    writeFileSync(join(dir, "bfs.yaml"), readPresetText("a100-pcie4").replace(/^workload:[\s\S]*$/m, "workload: { kind: bfs, on: gpu0, params: { vertices: 20000, degree: 8 } }\n"));
    const io = bufferIo({ cwd: dir, stderrIsTTY: true });
    expect(await main(["run", "bfs.yaml"], io)).toBe(0);
    const frames = io.stderr.text.split("\r\x1b[K").filter((f) => f !== "");
    expect(frames.length).toBeGreaterThan(1);
    for (const f of frames) expect(f).toMatch(/^hmmsim a100-pcie4 \[ *=== *\] +[\d,]+ accesses \S+ \S+ simulated( at \S+ \S+\/s)? *$/);
    expect(new Set(frames.map((f) => f.length)).size).toBe(1);
    expect(io.stderr.text).not.toContain("%");
    expect(io.stdout.text).toMatch(/phase 1 \(gpu0\) +bfs: [\d,]+ accesses/);
  });

  it("a trace replays on the GPU and counts its accesses", async () => {
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(join(tmpdir(), "hmmsim-trace-"));
    writeFileSync(join(dir, "t.trace"), "R 0x0\nW 0x1000 5\nR 0x0\nR 0x2000\n");
    const io = bufferIo({ cwd: dir });
    expect(await main(["run", "--json", "--trace", "t.trace"], io)).toBe(0);
    const s = JSON.parse(io.stdout.text) as RunSummary;
    expect(s.phases).toEqual([expect.objectContaining({ on: "gpu0", kind: "trace", accesses: 4 })]);
    expect(s.faults.device).toBeGreaterThanOrEqual(3);
  });
});
