// `npm run reproduce`: the figures of docs/reproduce-policies.md. Builds UVMSmart-like machines (one GPU on PCIe 3.0
// x16, hmmsim's 45 µs DEVICE_FAULT service round [S14]), runs each workload under each policy, and prints the tables
// in Markdown on stdout (progress on stderr). Every figure is simulated; the wall time of each run goes to stderr.
//
//   npm run reproduce                                  # builds (turbo), then: node scripts/reproduce-policies.mjs
//   node scripts/reproduce-policies.mjs --json         # the raw results as JSON instead of the tables
//   node scripts/reproduce-policies.mjs --quick        # the reduced matrix apps/machines' test runs (smaller sets)
//
// It imports the compiled packages (dist/), as bench.mjs does: run `npm run build` first (`npm run reproduce` does).
// apps/machines/src/reproduce-policies.test.ts imports this module (through vitest, from the sources) and asserts the
// directions docs/reproduce-policies.md claims, on the --quick matrix.
import "reflect-metadata";
import { pathToFileURL } from "node:url";
import { GpuDriverPlugin } from "@hmmsim/driver-gpu";
import { PciePlugin } from "@hmmsim/interconnect-pcie";
import { defaultPlugins, simulate } from "@hmmsim/machine";
import { AccessCountersPolicyPlugin } from "@hmmsim/policy-access-counters";
import { AdvisePolicyPlugin } from "@hmmsim/policy-advise";
import { EvictionPolicyPlugin } from "@hmmsim/policy-eviction";
import { OnDemandPolicyPlugin } from "@hmmsim/policy-on-demand";
import { ThrashingPolicyPlugin } from "@hmmsim/policy-thrashing";
import { TreePrefetchPolicyPlugin } from "@hmmsim/policy-tree-prefetch";
import { UvmDefaultPolicyPlugin } from "@hmmsim/policy-uvm-default";

const MiB = 2 ** 20;
const CHUNK = 2 * MiB;
const PAGE = 4096;

export const plugins = () => [
  ...defaultPlugins(),
  new PciePlugin(),
  new GpuDriverPlugin(),
  new OnDemandPolicyPlugin(),
  new AdvisePolicyPlugin(),
  new TreePrefetchPolicyPlugin(),
  new ThrashingPolicyPlugin(),
  new AccessCountersPolicyPlugin(),
  new EvictionPolicyPlugin(),
  new UvmDefaultPolicyPlugin(),
];

/** The prefetchers of table 1: hmmsim policy (+ policySpec) per row. */
export const PREFETCHERS = Object.freeze({
  "on-demand": { policy: "on-demand" },
  "tree-prefetch (UVM)": { policy: "tree-prefetch" },
  "tbn (UVMSmart)": { policy: "tree-prefetch", policySpec: { variant: "tbn" } },
  "sequential-local (SL-64K)": { policy: "tree-prefetch", policySpec: { variant: "sequential-local" } },
  "random (Random-4K)": { policy: "tree-prefetch", policySpec: { variant: "random" } },
});

/** The evictions of table 2, each with prefetch off (on-demand) and with UVM's tree prefetcher. */
export const EVICTIONS = Object.freeze(["evict-lru", "evict-tree", "evict-lru-access"]);
export const PREFETCH_SETTINGS = Object.freeze({ "prefetch off": "on-demand", "tree prefetch": "tree-prefetch" });

/**
 * The workloads. Each GPU phase follows a host phase that writes the whole working set (so every page the GPU
 * touches is migrated over the link, as in UVMSmart, where the data starts in host memory). `bytes` is the
 * working set (the span the GPU touches), rounded up to whole 4 KiB pages for the host phase.
 * `scale` 1 is the page's matrix; --quick uses 1/4 (the test's reduced matrix).
 */
export function workloads(scale = 1) {
  const s = (n) => Math.max(1, Math.round(n * scale));
  const stencilGrid = s(8) * MiB; // one grid; the working set is two
  const vertices = s(100_000);
  const bfsBytes = (vertices + 1) * 8 + vertices * 8 * 8 + vertices * 4;
  return {
    // A warp's coalesced 128-byte loads, every 4th a store, through the buffer once.
    streaming: { bytes: s(32) * MiB, gpu: { kind: "streaming", params: { bytes: s(32) * MiB, granularity: 128, writeFraction: 0.25 } } },
    // 5-point Jacobi over two grids, a warp's 128 bytes per element access, 2 time steps.
    stencil: { bytes: 2 * stencilGrid, gpu: { kind: "stencil", params: { bytes: stencilGrid, rowBytes: 64 * 1024, elementBytes: 128, passes: 2 } } },
    // Uniform random 128-byte accesses, one pass worth (bytes/128): dense, every page is touched ~32 times (GUPS-like, UVMSmart's "ra").
    random: { bytes: s(32) * MiB, gpu: { kind: "random", params: { bytes: s(32) * MiB, granularity: 128, writeFraction: 0.25, seed: 1 } } },
    // The same over 8× the span with 1/8 of a page's accesses per page: sparse, most pages are never touched.
    "random (sparse)": { bytes: s(256) * MiB, gpu: { kind: "random", params: { bytes: s(256) * MiB, granularity: 128, count: s(8192), writeFraction: 0.25, seed: 1 } } },
    // Top-down BFS on a random graph in CSR layout, degree 8 (UVMSmart's bfs is 9.75 MB).
    bfs: { bytes: bfsBytes, gpu: { kind: "bfs", params: { vertices, degree: 8, seed: 1 } } },
  };
}

/** The oversubscription workloads: a regular one (streaming, 3 passes) and an irregular one (dense random, 2 passes worth). */
export function oversubWorkloads(scale = 1) {
  // 40 MiB: 36 MiB at 110 % (18 chunks), 32 MiB at 125 % (16); --quick: 20 MiB, 18 MiB and 16 MiB. (Below 20 MiB the
  // two ratios round to the same number of chunks.)
  const bytes = Math.max(20, Math.round(40 * scale)) * MiB;
  return {
    "streaming ×3": { bytes, gpu: { kind: "streaming", params: { bytes, granularity: 128, passes: 3, writeFraction: 0.25 } } },
    random: { bytes, gpu: { kind: "random", params: { bytes, granularity: 128, count: (2 * bytes) / 128, writeFraction: 0.25, seed: 1 } } },
  };
}

/** Device memory for an oversubscription ratio: working set / ratio, rounded down to whole 2 MiB root chunks. */
export const deviceMemoryFor = (workingSetBytes, ratio) => Math.max(1, Math.floor(workingSetBytes / ratio / CHUNK)) * CHUNK;

/** The machine: UVMSmart's setup as hmmsim models it (PCIe 3.0 x16 preset, 45 µs per fault service round). */
export function spec({ name, workload, memory, policy, policySpec, driverSpec }) {
  const hostBytes = Math.ceil(workload.bytes / PAGE) * PAGE;
  return {
    name,
    seed: 1,
    bytes: false,
    cpus: { count: 4 },
    ram: { size: Math.ceil((2 * hostBytes) / CHUNK) * CHUNK + 256 * MiB },
    links: [{ name: "pcie0", kind: "pcie3x16" }], // 12 GB/s, α 1.5 µs [S14]
    devices: [{ kind: "gpu", name: "gpu0", memory, link: "pcie0", policy, ...(policySpec ? { policySpec } : {}), ...(driverSpec ? { driverSpec } : {}) }],
    workload: {
      kind: "phases",
      params: { phases: [{ on: "cpu", kind: "streaming", params: { bytes: hostBytes, writeFraction: 1 } }, { on: "gpu0", ...workload.gpu }] },
    },
  };
}

/** One run: the GPU phase's simulated time and what moved. A run stopped by a limit is reported, not thrown. */
export async function runOne(args) {
  const t0 = Date.now();
  let s;
  let stopped = null;
  try {
    s = await simulate({ spec: spec(args), plugins: plugins(), ...(args.maxSimulatedPs ? { maxSimulatedPs: args.maxSimulatedPs } : {}) });
  } catch (e) {
    if (!e || typeof e !== "object" || !("summary" in e)) throw e;
    s = e.summary;
    stopped = e.message;
  }
  const gpu = s.phases[1];
  return {
    gpuPs: gpu ? gpu.endPs - gpu.startPs : NaN,
    batches: gpu?.gpu?.batches ?? 0,
    faultedPages: gpu?.gpu?.faultedPages ?? 0,
    migrations: s.migrated.h2d.count,
    migratedPages: s.migrated.h2d.pages,
    evictedPages: s.evictions.pages,
    stopped: stopped ?? (s.stopped ? s.stopped.message : null),
    wallMs: Date.now() - t0,
  };
}

const log = (m) => process.stderr.write(m + "\n");

/** Table 1: every prefetcher on every workload, no oversubscription (device memory ≥ the working set). */
export async function prefetchMatrix({ scale = 1, only } = {}) {
  const out = {};
  for (const [w, workload] of Object.entries(workloads(scale))) {
    if (only && !only.workloads.includes(w)) continue;
    out[w] = { bytes: workload.bytes, runs: {} };
    const memory = Math.ceil((workload.bytes + CHUNK) / CHUNK) * CHUNK * 2; // room to spare
    for (const [p, pol] of Object.entries(PREFETCHERS)) {
      if (only && !only.prefetchers.includes(p)) continue;
      const r = await runOne({ name: `${w}-${p}`, workload, memory, ...pol });
      log(`  ${w} / ${p}: GPU ${fmtMs(r.gpuPs)}, ${r.migrations} migrations (${r.wallMs} ms wall)`);
      out[w].runs[p] = r;
    }
  }
  return out;
}

/**
 * Table 1b: on-demand against the tree prefetcher when a service round holds one page's faults: driverSpec.batchSize
 * 32 = the 32 fault entries of one 4 KiB page in 128-byte accesses (UVMSmart pays its 45 µs per far fault; UVM, and
 * hmmsim by default, per batch of 256 entries, 8 pages of a streaming kernel).
 */
export async function onePageRoundMatrix({ scale = 1 } = {}) {
  const out = {};
  const all = workloads(scale);
  for (const w of ["streaming", "stencil"]) {
    const workload = all[w];
    out[w] = { bytes: workload.bytes, runs: {} };
    const memory = Math.ceil((workload.bytes + CHUNK) / CHUNK) * CHUNK * 2;
    for (const p of ["on-demand", "tree-prefetch (UVM)"]) {
      const r = await runOne({ name: `${w}-${p}-bs32`, workload, memory, ...PREFETCHERS[p], driverSpec: { batchSize: 32 } });
      log(`  ${w} / ${p} / batchSize 32: GPU ${fmtMs(r.gpuPs)}, ${r.batches} batches (${r.wallMs} ms wall)`);
      out[w].runs[p] = r;
    }
  }
  return out;
}

/** Table 3: delayed migration (access counters, UVM's rule) and UVM's default bundle at 125 %, beside table 2's rows. */
export const DELAYED = Object.freeze({
  "access-counters + evict-lru": { policy: ["access-counters", "evict-lru"] },
  "uvm-default": { policy: "uvm-default" },
});
export async function delayedMatrix({ scale = 1, ratio = 1.25 } = {}) {
  const out = {};
  for (const [w, workload] of Object.entries(oversubWorkloads(scale))) {
    const memory = deviceMemoryFor(workload.bytes, ratio);
    out[w] = { bytes: workload.bytes, memory, runs: {} };
    for (const [p, pol] of Object.entries(DELAYED)) {
      const r = await runOne({ name: `${w}-${p}-${ratio}`, workload, memory, ...pol });
      log(`  ${w} / ${p} / ${Math.round(ratio * 100)} %: GPU ${fmtMs(r.gpuPs)}, ${r.migratedPages} pages in, ${r.evictedPages} evicted (${r.wallMs} ms wall)`);
      out[w].runs[p] = r;
    }
  }
  return out;
}

/** Table 2: every eviction × prefetch setting on the two oversubscription workloads, at 100 %, 110 % and 125 %. */
export async function evictionMatrix({ scale = 1, ratios = [1.1, 1.25], only } = {}) {
  const out = {};
  for (const [w, workload] of Object.entries(oversubWorkloads(scale))) {
    if (only && !only.workloads.includes(w)) continue;
    out[w] = { bytes: workload.bytes, memory: {}, runs: {} };
    for (const [pf, policy] of Object.entries(PREFETCH_SETTINGS)) {
      // The baseline: the same run with memory to spare (no eviction).
      const base = await runOne({ name: `${w}-${pf}-fit`, workload, memory: Math.ceil(workload.bytes / CHUNK + 1) * CHUNK, policy });
      log(`  ${w} / ${pf} / fits: GPU ${fmtMs(base.gpuPs)} (${base.wallMs} ms wall)`);
      out[w].runs[`${pf}|fits`] = base;
      for (const ratio of ratios) {
        const memory = deviceMemoryFor(workload.bytes, ratio);
        out[w].memory[ratio] = memory;
        for (const ev of EVICTIONS) {
          if (only && !only.evictions.includes(ev)) continue;
          // A bound on simulated time, so a pathological case ends: 200 × the fitting run's GPU phase.
          const r = await runOne({ name: `${w}-${pf}-${ev}-${ratio}`, workload, memory, policy: [policy, ev], maxSimulatedPs: Math.round(base.gpuPs * 200) + 1e9 });
          log(`  ${w} / ${pf} / ${ev} / ${Math.round(ratio * 100)} %: GPU ${fmtMs(r.gpuPs)}, ${r.migratedPages} pages in, ${r.evictedPages} evicted (${r.wallMs} ms wall)`);
          out[w].runs[`${pf}|${ev}|${ratio}`] = r;
        }
      }
    }
  }
  return out;
}

const fmtMs = (ps) => (ps >= 1e9 ? `${(ps / 1e9).toFixed(ps >= 1e11 ? 0 : ps >= 1e10 ? 1 : 2)} ms` : `${(ps / 1e6).toFixed(0)} µs`);
const fmtX = (x) => (x >= 10 ? `${x.toFixed(0)}×` : `${x.toFixed(1)}×`);
const fmtMiB = (b) => `${+(b / MiB).toFixed(2)} MiB`;
const n = (x) => x.toLocaleString("en-US");

/** Table 1 in Markdown: GPU phase time and migrations per prefetcher; speedup over on-demand. */
export function prefetchTable(m) {
  const ws = Object.keys(m);
  const lines = [];
  lines.push(`| prefetcher | ${ws.map((w) => `${w} (${fmtMiB(m[w].bytes)})`).join(" | ")} |`);
  lines.push(`|---|${ws.map(() => "---").join("|")}|`);
  for (const p of Object.keys(PREFETCHERS)) {
    if (!ws.every((w) => m[w].runs[p])) continue;
    const cells = ws.map((w) => {
      const r = m[w].runs[p];
      const od = m[w].runs["on-demand"];
      const x = p === "on-demand" || !od ? "" : `, **${fmtX(od.gpuPs / r.gpuPs)}**`;
      return `${fmtMs(r.gpuPs)}${x} (${n(r.migrations)} migr., ${n(r.batches)} batches)`;
    });
    lines.push(`| ${p} | ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

/** Table 2 in Markdown: per workload, GPU time (slowdown against the same prefetch setting when the set fits) and pages moved. */
export function evictionTable(m) {
  const lines = [];
  for (const [w, e] of Object.entries(m)) {
    const ratios = Object.keys(e.memory).map(Number);
    lines.push(`**${w}**, working set ${fmtMiB(e.bytes)}; device memory ${ratios.map((r) => `${fmtMiB(e.memory[r])} at ${Math.round(r * 100)} % (${(e.bytes / e.memory[r]).toFixed(3)}×)`).join(", ")}:`);
    lines.push("");
    lines.push(`| prefetch | eviction | fits: GPU time | ${ratios.map((r) => `${Math.round(r * 100)} %: GPU time (slowdown), pages in / evicted`).join(" | ")} |`);
    lines.push(`|---|---|---|${ratios.map(() => "---").join("|")}|`);
    for (const pf of Object.keys(PREFETCH_SETTINGS)) {
      const base = e.runs[`${pf}|fits`];
      for (const ev of EVICTIONS) {
        if (!ratios.every((r) => e.runs[`${pf}|${ev}|${r}`])) continue;
        const cells = ratios.map((r) => {
          const x = e.runs[`${pf}|${ev}|${r}`];
          const t = `${x.stopped ? "> " : ""}${fmtMs(x.gpuPs)} (**${x.stopped ? "> " : ""}${fmtX(x.gpuPs / base.gpuPs)}**)`;
          return `${t}, ${n(x.migratedPages)} / ${n(x.evictedPages)}`;
        });
        lines.push(`| ${pf} | ${ev} | ${fmtMs(base.gpuPs)} | ${cells.join(" | ")} |`);
      }
    }
    lines.push("");
  }
  return lines.join("\n").trimEnd();
}

/** Table 1b in Markdown. */
export function onePageRoundTable(m) {
  const lines = ["| workload | on-demand | tree-prefetch (UVM) | speedup |", "|---|---|---|---|"];
  for (const [w, e] of Object.entries(m)) {
    const od = e.runs["on-demand"];
    const tr = e.runs["tree-prefetch (UVM)"];
    lines.push(`| ${w} (${fmtMiB(e.bytes)}) | ${fmtMs(od.gpuPs)} (${n(od.batches)} batches) | ${fmtMs(tr.gpuPs)} (${n(tr.batches)} batches) | **${fmtX(od.gpuPs / tr.gpuPs)}** |`);
  }
  return lines.join("\n");
}

/** Table 3 in Markdown, with table 2's prefetch-off and tree rows (evict-lru) at the same ratio for reference. */
export function delayedTable(m, eviction, ratio = 1.25) {
  const lines = [`| policy | ${Object.entries(m).map(([w, e]) => `${w} at ${Math.round(ratio * 100)} % (${fmtMiB(e.memory)}): GPU time, pages in`).join(" | ")} |`, `|---|${Object.keys(m).map(() => "---").join("|")}|`];
  const row = (name, get) => {
    const cells = Object.keys(m).map((w) => {
      const r = get(w);
      return r ? `${r.stopped ? "> " : ""}${fmtMs(r.gpuPs)}, ${n(r.migratedPages)}` : "";
    });
    lines.push(`| ${name} | ${cells.join(" | ")} |`);
  };
  row("on-demand + evict-lru (table 2)", (w) => eviction?.[w]?.runs[`prefetch off|evict-lru|${ratio}`]);
  row("tree-prefetch + evict-lru (table 2)", (w) => eviction?.[w]?.runs[`tree prefetch|evict-lru|${ratio}`]);
  for (const p of Object.keys(DELAYED)) row(p, (w) => m[w].runs[p]);
  return lines.join("\n");
}

async function cliMain(argv) {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write("usage: node scripts/reproduce-policies.mjs [--json] [--quick]\n  the tables of docs/reproduce-policies.md (Markdown on stdout, progress on stderr); --json: the raw figures; --quick: the reduced matrix of the test\n");
    return;
  }
  const unknown = argv.filter((a) => !["--json", "--quick"].includes(a));
  if (unknown.length > 0) throw new Error(`reproduce-policies: unknown argument(s) ${unknown.join(" ")} (--json, --quick, --help)`);
  const quick = argv.includes("--quick");
  const asJson = argv.includes("--json");
  const scale = quick ? 0.25 : 1;
  const t0 = Date.now();
  log(`reproduce-policies: table 1 (no oversubscription)${quick ? ", quick" : ""}`);
  const prefetch = await prefetchMatrix({ scale });
  log("reproduce-policies: table 1b (one page per service round)");
  const onePage = await onePageRoundMatrix({ scale });
  log("reproduce-policies: table 2 (oversubscription)");
  const eviction = await evictionMatrix({ scale });
  log("reproduce-policies: table 3 (delayed migration, uvm-default)");
  const delayed = await delayedMatrix({ scale });
  const wallS = (Date.now() - t0) / 1000;
  const runs = [prefetch, onePage, eviction, delayed].reduce((k, m) => k + Object.values(m).reduce((j, w) => j + Object.keys(w.runs).length, 0), 0);
  if (asJson) {
    process.stdout.write(JSON.stringify({ prefetch, onePage, eviction, delayed, runs, wallS }, null, 2) + "\n");
  } else {
    process.stdout.write(`### Table 1: prefetchers, no oversubscription\n\n${prefetchTable(prefetch)}\n\n`);
    process.stdout.write(`### Table 1b: one page per fault service round (driverSpec.batchSize 32)\n\n${onePageRoundTable(onePage)}\n\n`);
    process.stdout.write(`### Table 2: eviction under oversubscription\n\n${evictionTable(eviction)}\n\n`);
    process.stdout.write(`### Table 3: delayed migration and uvm-default at 125 %\n\n${delayedTable(delayed, eviction)}\n\n`);
    process.stdout.write(`(${runs} runs, ${wallS.toFixed(0)} s of wall time)\n`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await cliMain(process.argv.slice(2));
