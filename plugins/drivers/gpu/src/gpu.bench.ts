// Benchmarks of @hmmsim/driver-gpu (`npm run bench -- drivers/gpu`): device faults serviced per host second by
// the GPU driver with no policy answering (the driver takes @hmmsim/policy's defaults: on-demand), bytes-off mode, on a 16 M-page (64 GiB) working set,
// and the host memory it takes (bytes per page). Goal: ≥ 1 M faults/s.
//
// HMMSIM_GPU_BENCH_FAULTS sets the number of random accesses (default 1,000,000; each first touch of a page is a
// fault). The workload is @hmmsim/workloads' `random` pattern over 64 GiB at 4 KiB granularity, built from the
// machine spec, run by 1024 warps; device memory holds the whole working set (no eviction), so every fault is a
// hole filled with a zeroed device page (no DMA). A second entry streams through the whole 16 M-page working set
// once, three times in three processes, reported at the median (HMMSIM_GPU_BENCH_STREAM_PAGES sets fewer pages).
// An entry point (the bench runner imports it, and each variant runs it as a child's main module): it loads the
// reflect polyfill tsyringe needs, as composition roots do (libraries, @hmmsim/machine included, do not).
import "reflect-metadata";
import { spawnSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { createMachine, defaultPlugins, getMachineStats, type AccessSource } from "@hmmsim/machine";
import { MAP_ANONYMOUS, MAP_FIXED, MAP_NORESERVE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "@hmmsim/core";
import { GpuDriver } from "./gpu-driver.js";
import { GpuDriverPlugin } from "./plugin.js";
import { testPlugins } from "./testing/test-util.js";

interface BenchEntry {
  name: string;
  opsPerSec: number;
  unit?: string;
  baseline?: string;
  ratio?: number;
  goal?: string;
  pass?: boolean;
  extra?: Record<string, number>;
}

const GiB = 2 ** 30;
const PAGES = 16 * 2 ** 20; // 64 GiB of 4 KiB pages
const BASE = 0x100000000000; // 16 TiB: a 2 MiB-aligned user address

async function gc(): Promise<void> {
  await new Promise((r) => setImmediate(r)); // let finished promise chains go
  (globalThis as { gc?: () => void }).gc?.();
}

function heapBytes(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

async function one(kind: "random" | "streaming", accesses: number): Promise<BenchEntry> {
  const params = kind === "random" ? { bytes: 64 * GiB, count: accesses, seed: 7, base: BASE } : { bytes: accesses * 4096, base: BASE };
  await gc();
  const mem0 = heapBytes();
  const machine = createMachine({
    spec: {
      seed: 1,
      bytes: false,
      cpus: { count: 8 },
      ram: { size: "256MiB" },
      links: [{ name: "pcie0", kind: "custom", h2dBandwidth: "25GB/s", d2hBandwidth: "25GB/s", alpha: "1.5us", coherent: false }],
      devices: [{ kind: "gpu", name: "gpu0", memory: "64GiB", link: "pcie0" }],
      workload: { kind, on: "gpu0", params },
    },
    plugins: [...defaultPlugins(), ...testPlugins(), new GpuDriverPlugin()],
  });
  const gpu = GpuDriver.of(machine, "gpu0");
  const mm = machine.kernel!.createMm();
  const addr = mm.mmap({ addr: BASE, length: 64 * GiB, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE });
  if (addr !== BASE) throw new Error(`mmap: ${addr}`);
  const pattern = machine.createWorkload()!.phases[0]!.pattern as unknown as AccessSource;
  machine.spawn("gpu-phase", async () => void (await gpu.runKernel(mm, pattern)));
  const t0 = performance.now();
  const r = await machine.run();
  const ms = performance.now() - t0;
  const st = getMachineStats(machine);
  const faults = st.deviceFaults;
  const touched = gpu.chunks.usedPages;
  const mem1 = heapBytes();
  await gc();
  const mem2 = heapBytes();
  const rate = (faults * 1000) / ms;
  const hostBytes = Math.max(0, mem2 - mem0);
  await machine.dispose();
  return {
    name: `gpu on-demand faults/s (${kind}, ${(accesses / 1e6).toFixed(1)} M accesses over a 16 M-page / 64 GiB working set, bytes off)`,
    opsPerSec: rate,
    unit: "faults/s",
    goal: "≥ 1,000,000 faults/s",
    pass: rate >= 1e6,
    extra: {
      faults,
      batches: st.deviceFaultBatches,
      faultEntries: gpu.stats.faults,
      flushedFaults: gpu.stats.flushedFaults,
      pagesTouched: touched,
      hostMs: Math.round(ms),
      simulatedMs: Math.round(r.simulatedPs / 1e9),
      events: r.events,
      hostBytesRetained: hostBytes,
      hostBytesPeakDelta: Math.max(0, mem1 - mem0),
      bytesPerTouchedPage: +(hostBytes / Math.max(1, touched)).toFixed(2),
      bytesPerWorkingSetPage: +(hostBytes / PAGES).toFixed(3),
      driverBytesPerWorkingSetPage: +(gpu.hostBytes / PAGES).toFixed(3),
    },
  };
}

/** Runs one variant in a fresh node process (so the memory figures are this variant's own). */
function inChild(kind: "random" | "streaming", accesses: number): BenchEntry {
  const r = spawnSync(process.execPath, ["--expose-gc", fileURLToPath(import.meta.url), kind, String(accesses)], {
    encoding: "utf8",
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) throw new Error(`gpu.bench child (${kind}) failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as BenchEntry;
}

export default async (): Promise<BenchEntry[]> => {
  const n = Number(process.env.HMMSIM_GPU_BENCH_FAULTS ?? 1_000_000);
  const only = process.env.HMMSIM_GPU_BENCH_ONLY;
  const out: BenchEntry[] = [];
  if (only !== "streaming") out.push(inChild("random", n));
  const stream = Number(process.env.HMMSIM_GPU_BENCH_STREAM_PAGES ?? PAGES);
  if (only !== "random") {
    // The goal's figure: three runs (each its own process), the median reported with the spread beside it — one
    // run on a shared VM varies by ±20 %.
    const runs = [0, 1, 2].map(() => inChild("streaming", Math.min(stream, PAGES)));
    const rates = runs.map((r) => r.opsPerSec).sort((a, b) => a - b);
    const median = runs.find((r) => r.opsPerSec === rates[1])!;
    out.push({
      ...median,
      name: median.name + ", median of 3 runs",
      pass: rates[1]! >= 1e6,
      extra: { ...median.extra, minFaultsPerSec: rates[0]!, maxFaultsPerSec: rates[2]! },
    });
  }
  return out;
};

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const kind = process.argv[2] === "streaming" ? "streaming" : "random";
  process.stdout.write(JSON.stringify(await one(kind, Number(process.argv[3]))) + "\n");
}
