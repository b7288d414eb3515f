/**
 * The summary of one `hmmsim run`: what the machine was and what happened (simulated time, faults, pages and
 * bytes migrated each way, evictions, link utilisation). Built from @hmmsim/machine's stats plugin
 * (getMachineStats) and the RunResult; printed as a table or, with --json, as this object. It holds no host
 * (wall-clock) figure, so the same spec and seed give the identical summary.
 */
import type { WorkloadSpec } from "@hmmsim/workloads";
import { COST_KINDS } from "./cost-model.js";
import { formatPolicy } from "./device-policies.js";
import { type Interconnect, type LinkDirection, isCoherentInterconnect } from "./interconnect.js";
import type { Machine, RunResult } from "./machine.js";
import type { RunStop } from "./run-stop.js";
import type { PhaseSummary } from "./run-workload.js";
import type { MachineStats, PageTotals } from "./stats-plugin.js";
import { parseSize } from "./units.js";

export interface LinkDirectionSummary {
  /**
   * Time with at least one transfer in its data phase, ps. The per-transfer setup α is not part of it (during α
   * no data moves and another transfer may use the link); transfers × α is the setup time on top.
   */
  busyPs: number;
  bytes: number;
  transfers: number;
  /** busyPs / simulatedPs (0 when nothing was simulated). */
  utilisation: number;
  /**
   * Peer links only: the device the direction carries data from and the device it carries it to ("h2d" is
   * peers[0] → peers[1], "d2h" peers[1] → peers[0]). Absent on host links (host → device, device → host).
   */
  from?: string;
  to?: string;
}

export interface RunSummary {
  machine: {
    name: string;
    /** The preset's name, or null for a spec file. */
    preset: string | null;
    /** The spec file (absolute path). */
    specFile: string;
    seed: number;
    /** Page bytes kept (true) or timing-only mode (false). */
    bytes: boolean;
    cpus: { count: number; frequencyHz: number };
    ramBytes: number;
    devices: { name: string; kind: string; memoryBytes: number; memoryType: "private" | "coherent"; link: string; driver: string; /** The device's `policy` as written; a list joined with " + ". */ policy: string }[];
    /**
     * Every link, host and peer, in spec order. A peer link has `peers` (the two devices it joins; its
     * h2dBandwidth is peers[0] → peers[1], d2hBandwidth peers[1] → peers[0]); a host link has none.
     */
    links: { name: string; kind: string; h2dBandwidth: number; d2hBandwidth: number; alphaPs: number; coherent: boolean; peers?: [string, string] }[];
  };
  workload: WorkloadSpec | null;
  /** Each workload phase, in order: where it ran, its accesses, when it started and ended (ps). */
  phases: PhaseSummary[];
  /** Simulated time of the run, ps. */
  simulatedPs: number;
  /** Engine events processed. */
  events: number;
  faults: {
    cpu: number;
    device: number;
    /** Device fault batches serviced and the faults they held. */
    deviceBatches: number;
    batchedFaults: number;
  };
  /** Completed migrations towards the device (h2d) and towards system memory (d2h). */
  migrated: Record<LinkDirection, PageTotals>;
  /**
   * CPU loads/stores served in place from DEVICE_COHERENT device memory over a coherent link (no fault, no
   * migration), summed over the CPU phases, and the time they cost the CPU threads, ps.
   */
  coherentCpuAccess: { accesses: number; ps: number };
  evictions: PageTotals;
  invalidations: number;
  /** Per link, per direction (a peer link's directions name their devices: `from`, `to`). */
  links: Record<string, Record<LinkDirection, LinkDirectionSummary>>;
  /**
   * Cost charged by the cost models, per kind (CPU_FAULT, PAGE_ZERO, PAGE_COPY, PTE_UPDATE, TLB_SHOOTDOWN,
   * DEVICE_FAULT, DMA): total ps (summed over tasks, which may overlap) and the count charged.
   */
  cost: Record<string, { ps: number; count: number }>;
  /** Cost charged but never slept by a task (should be 0), ps. */
  unsettledPs: number;
  /** Every plugin the machine ran, in order, with its kind and version (loaded third-party code included). */
  plugins: { name: string; kind: string; version: string }[];
  /** Bytes the workload's phases span together (its working set; 0 without a workload). */
  workingSetBytes: number;
  /**
   * How much the run moved memory back and forth (README "Thrash"): device-memory evictions per device fault
   * entry, and pages migrated (both ways, evictions included) per page of the working set. Past
   * THRASH_THRESHOLDS each adds a warning.
   */
  thrash: { evictionsPerDeviceFault: number; pagesMovedPerWorkingSetPage: number };
  /** What deserves a look (thrash past its threshold, …), one sentence each; empty when nothing does. */
  warnings: string[];
  /**
   * null when the workload ran to its end; else why and when the run stopped (the summary is then partial: the
   * last phase is cut at the stop and marked `partial`).
   */
  stopped: RunStop | null;
}

/**
 * When the summary warns of thrash (each a documented judgement, not a kernel figure):
 *  - evictionsPerDeviceFault > 0.05: one eviction (a whole 2 MiB root chunk for the GPU driver) per 20 fault
 *    entries. Oversubscription that streams through memory evicts one chunk per 512 pages faulted (≈ 0.002 per
 *    entry); a working set that does not fit what the warps touch at once evicts for nearly every fault batch's
 *    block, far above it.
 *  - pagesMovedPerWorkingSetPage > 4 × phases: each phase moves a page at most to where it runs and, when
 *    memory is oversubscribed, once out again (2 moves), and a CPU/device round trip moves it both ways; twice
 *    that leaves room for a prefetcher. The presets move 2 pages per working-set page over 3 phases.
 */
export const THRASH_THRESHOLDS = Object.freeze({ evictionsPerDeviceFault: 0.05, pagesMovedPerWorkingSetPagePerPhase: 4 });

/** Extra inputs of buildSummary for a summary of a workload run (simulate fills them). */
export interface SummaryExtras {
  /** Bytes the workload's phases span (WorkloadRun.workingSetBytes). */
  workingSetBytes?: number;
  /** How the run stopped early, if it did. */
  stopped?: RunStop | null;
}

const ratio = (busy: number, total: number): number => (total > 0 ? busy / total : 0);

function linkInfo(l: Interconnect, ends: readonly [string, string] | null): RunSummary["machine"]["links"][number] {
  const info: RunSummary["machine"]["links"][number] = { name: l.name, kind: l.kind, h2dBandwidth: l.params.h2dBandwidth, d2hBandwidth: l.params.d2hBandwidth, alphaPs: l.params.alpha, coherent: isCoherentInterconnect(l) };
  if (ends) info.peers = [ends[0], ends[1]];
  return info;
}

export function buildSummary(
  machine: Machine,
  stats: MachineStats,
  result: RunResult,
  source: { preset: string | null; file: string },
  phases: readonly PhaseSummary[] = [],
  extras: SummaryExtras = {},
): RunSummary {
  const s = machine.spec;
  const links: RunSummary["links"] = {};
  const endsOf = (name: string): readonly [string, string] | null => {
    try {
      return machine.links.ends(name);
    } catch {
      return null; // a link the stats know and the registry does not: shown as a host link
    }
  };
  for (const [name, dirs] of Object.entries(stats.links)) {
    const ends = endsOf(name);
    links[name] = {
      h2d: { ...dirs.h2d, utilisation: ratio(dirs.h2d.busyPs, result.simulatedPs), ...(ends ? { from: ends[0], to: ends[1] } : {}) },
      d2h: { ...dirs.d2h, utilisation: ratio(dirs.d2h.busyPs, result.simulatedPs), ...(ends ? { from: ends[1], to: ends[0] } : {}) },
    };
  }
  const workingSetBytes = extras.workingSetBytes ?? 0;
  const wsPages = Math.ceil(workingSetBytes / 4096);
  const moved = stats.migrated.h2d.pages + stats.migrated.d2h.pages;
  const thrash = {
    evictionsPerDeviceFault: stats.deviceFaults > 0 ? stats.evictions.count / stats.deviceFaults : 0,
    pagesMovedPerWorkingSetPage: wsPages > 0 ? moved / wsPages : 0,
  };
  const nPhases = Math.max(1, s.workload?.kind === "phases" ? ((s.workload.params as { phases?: unknown[] })?.phases?.length ?? 1) : 1);
  const warnings: string[] = [];
  if (thrash.evictionsPerDeviceFault > THRASH_THRESHOLDS.evictionsPerDeviceFault) {
    warnings.push(
      `device memory thrashes: ${ratioText(thrash.evictionsPerDeviceFault)} evictions per device fault (${count(stats.evictions.count)} evictions for ${count(stats.deviceFaults)} fault entries; ` +
        `warned above ${THRASH_THRESHOLDS.evictionsPerDeviceFault}): what the device touches at once does not fit its memory — give it more memory, fewer warps, or a smaller working set`,
    );
  }
  const movedLimit = THRASH_THRESHOLDS.pagesMovedPerWorkingSetPagePerPhase * nPhases;
  if (thrash.pagesMovedPerWorkingSetPage > movedLimit) {
    warnings.push(
      `pages move back and forth: ${ratioText(thrash.pagesMovedPerWorkingSetPage)} pages migrated per working-set page (${count(moved)} pages for ${count(wsPages)}; ` +
        `warned above ${movedLimit}, ${THRASH_THRESHOLDS.pagesMovedPerWorkingSetPagePerPhase} per phase)`,
    );
  }
  return {
    machine: {
      name: s.name,
      preset: source.preset,
      specFile: source.file,
      seed: s.seed,
      bytes: s.bytes,
      cpus: { count: s.cpus.count, frequencyHz: s.cpus.frequency },
      ramBytes: s.ram.size,
      devices: s.devices.map((d) => ({ name: d.name, kind: d.kind, memoryBytes: d.memory, memoryType: d.memoryType, link: d.link, driver: d.driver, policy: formatPolicy(d.policy) })),
      links: machine.links.all().map((l) => linkInfo(l, endsOf(l.name))),
    },
    workload: s.workload,
    phases: phases.map((p) => ({ ...p, ...(p.gpu ? { gpu: { ...p.gpu } } : {}), ...(p.cpu ? { cpu: { ...p.cpu } } : {}) })),
    simulatedPs: result.simulatedPs,
    events: result.events,
    faults: { cpu: stats.cpuFaults, device: stats.deviceFaults, deviceBatches: stats.deviceFaultBatches, batchedFaults: stats.batchedFaults },
    migrated: { h2d: { ...stats.migrated.h2d }, d2h: { ...stats.migrated.d2h } },
    coherentCpuAccess: {
      accesses: phases.reduce((n, p) => n + (p.cpu?.coherentAccesses ?? 0), 0),
      ps: phases.reduce((n, p) => n + (p.cpu?.coherentPs ?? 0), 0),
    },
    evictions: { ...stats.evictions },
    invalidations: stats.invalidations,
    links,
    cost: Object.fromEntries(COST_KINDS.map((k) => [k, { ps: stats.costPs[k], count: stats.costCount[k] }])),
    unsettledPs: result.unsettledPs,
    plugins: machine.plugins.plugins.map((p) => ({ name: p.name, kind: String(p.kind), version: p.version ?? "unknown" })),
    workingSetBytes,
    thrash,
    warnings,
    stopped: extras.stopped ? { ...extras.stopped } : null,
  };
}

// ---- formatting ------------------------------------------------------------------------------------------

/** "12.3 ms", "45 µs", "800 ps": three significant digits. */
export function formatTime(ps: number): string {
  const units: [number, string][] = [
    [1e12, "s"],
    [1e9, "ms"],
    [1e6, "µs"],
    [1e3, "ns"],
  ];
  for (const [mul, u] of units) if (ps >= mul) return `${sig(ps / mul)} ${u}`;
  return `${ps} ps`;
}

/** "64 MiB", "1.5 GiB", "512 B". */
export function formatBytes(bytes: number): string {
  const units: [number, string][] = [
    [2 ** 40, "TiB"],
    [2 ** 30, "GiB"],
    [2 ** 20, "MiB"],
    [2 ** 10, "KiB"],
  ];
  for (const [mul, u] of units) if (bytes >= mul) return `${sig(bytes / mul)} ${u}`;
  return `${bytes} B`;
}

/** "25 GB/s" (10^9). */
export function formatBandwidth(bps: number): string {
  return bps >= 1e9 ? `${sig(bps / 1e9)} GB/s` : bps >= 1e6 ? `${sig(bps / 1e6)} MB/s` : `${bps} B/s`;
}

/** A ratio: three significant digits at most, small ones kept ("0.0021"). */
function ratioText(x: number): string {
  if (x === 0 || !Number.isFinite(x)) return String(x);
  return x >= 1 ? sig(x) : String(Number(x.toPrecision(2)));
}

function sig(x: number): string {
  const s = x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
  return s.includes(".") ? s.replace(/\.?0+$/, "") : s;
}

const count = (n: number): string => n.toLocaleString("en-US");
const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;

function describeWorkload(w: WorkloadSpec | null): string {
  if (!w) return "none (the spec has no workload)";
  if (w.kind === "phases") {
    const phases = (w.params as { phases: WorkloadSpec[] }).phases;
    return `${phases.length} phases: ` + phases.map((p) => `${p.kind}${sizeOf(p)} on ${p.on ?? "device"}`).join(", ");
  }
  const params = w.params && typeof w.params === "object" ? Object.entries(w.params as Record<string, unknown>) : [];
  const shown = params.map(([k, v]) => `${k} ${k === "bytes" && typeof v === "number" ? formatBytes(v) : typeof v === "string" ? v : JSON.stringify(v)}`);
  return `${w.kind} on ${w.on ?? "device"}${shown.length ? ` (${shown.join(", ")})` : ""}`;
}

/** " 64 MiB" for a phase whose params give its working-set size, else "". */
function sizeOf(p: WorkloadSpec): string {
  const b = p.params && typeof p.params === "object" ? (p.params as Record<string, unknown>).bytes : undefined;
  const n = typeof b === "number" ? b : typeof b === "string" ? parseSize(b) : undefined;
  return n === undefined ? "" : ` ${formatBytes(n)}`;
}

/** The human-readable summary (stdout of `hmmsim run` without --json). */
export function formatSummary(s: RunSummary): string {
  const m = s.machine;
  const rows: [string, string][] = [];
  rows.push(["machine", `${m.name}${m.preset ? " (preset)" : ""}, seed ${m.seed}${m.bytes ? "" : ", timing-only (no page bytes)"}`]);
  rows.push(["spec", m.specFile]);
  rows.push(["host", `${m.cpus.count} CPUs @ ${sig(m.cpus.frequencyHz / 1e9)} GHz, ${formatBytes(m.ramBytes)} RAM`]);
  for (const d of m.devices) {
    // A device joined to others by peer links names them after its host link: "peers gpu1 (nvl0), gpu2 (nvl1)".
    const peers = m.links.flatMap((l) => (l.peers?.includes(d.name) ? [`${l.peers[0] === d.name ? l.peers[1] : l.peers[0]} (${l.name})`] : []));
    rows.push([
      `device ${d.name}`,
      `${d.kind}, ${formatBytes(d.memoryBytes)} ${d.memoryType === "coherent" ? "DEVICE_COHERENT" : "DEVICE_PRIVATE"}, link ${d.link}${peers.length ? `, peers ${peers.join(", ")}` : ""}, driver ${d.driver}, policy ${d.policy}`,
    ]);
  }
  for (const l of m.links) {
    if (l.peers) {
      const [a, b] = l.peers;
      rows.push([`link ${l.name}`, `${l.kind}, peer link ${a} ↔ ${b}, ${formatBandwidth(l.h2dBandwidth)} ${a}→${b} / ${formatBandwidth(l.d2hBandwidth)} ${b}→${a}, α ${formatTime(l.alphaPs)}`]);
    } else {
      rows.push([`link ${l.name}`, `${l.kind}${l.coherent ? " (coherent)" : ""}, ${formatBandwidth(l.h2dBandwidth)} h2d / ${formatBandwidth(l.d2hBandwidth)} d2h, α ${formatTime(l.alphaPs)}`]);
    }
  }
  rows.push(["workload", describeWorkload(s.workload)]);
  if (s.plugins?.length) rows.push(["plugins", s.plugins.map((p) => `${p.name} ${p.version}`).join(", ")]);
  const head = table(rows);

  const res: [string, string][] = [];
  res.push(["simulated time", formatTime(s.simulatedPs) + (s.stopped ? " (stopped early: see below)" : "")]);
  if (s.stopped) {
    const st = s.stopped;
    const of = st.accessesTotal === null ? "" : ` of ${count(st.accessesTotal)}`;
    res.push(["stopped", `${st.reason} at ${formatTime(st.atPs)}, after ${count(st.accessesDone)}${of} accesses: ${st.message}`]);
  }
  s.phases.forEach((p, i) => {
    let detail = "";
    if (p.gpu) {
      const g = p.gpu;
      const flushed = g.flushedFaults ? ` (${count(g.flushedFaults)} of them flushed unserviced after a batch, then raised again)` : "";
      detail = `; ${count(g.faults)} fault entries${flushed} for ${count(g.faultedPages)} pages in ${count(g.batches)} batches; TLB ${count(g.tlbHits)} hits / ${count(g.tlbMisses)} misses`;
      if (g.remoteAccesses) detail += `; ${count(g.remoteAccesses)} remote accesses`;
      if (g.streams && g.streams.length > 0) {
        // Streams stall one by one (an FPGA shell): how long each stood still, the share of the phase, its faults.
        const span = p.endPs - p.startPs;
        const worst = g.streams.reduce((a, b) => (b.stallPs > a.stallPs ? b : a));
        const total = g.streams.reduce((n, x) => n + x.stallPs, 0);
        const pct = (ps: number) => (span > 0 ? ((100 * ps) / span).toFixed(1) : "0.0");
        detail += `; ${count(g.streams.length)} stream${g.streams.length === 1 ? "" : "s"} stalled ${formatTime(total / g.streams.length)} on average (${pct(total / g.streams.length)} % of the phase), at most ${formatTime(worst.stallPs)} (${pct(worst.stallPs)} %)`;
      }
    } else if (p.cpu && p.cpu.coherentAccesses > 0) {
      detail = `; ${count(p.cpu.coherentAccesses)} of them read/written in place in device memory (${formatTime(p.cpu.coherentPs)})`;
    }
    res.push([`phase ${i + 1} (${p.on})`, `${p.kind}: ${count(p.accesses)} accesses in ${formatTime(p.endPs - p.startPs)}${detail}${p.partial ? " (cut short by the stop)" : ""}`]);
  });
  res.push(["CPU faults", count(s.faults.cpu)]);
  const gpuPhases = s.phases.filter((p) => p.gpu);
  const faultedPages = gpuPhases.reduce((n, p) => n + p.gpu!.faultedPages, 0);
  res.push([
    "device faults",
    // A run stopped in the middle of a batch: its entries were fetched (counted) but the batch never completed.
    (s.stopped && s.faults.batchedFaults < s.faults.device
      ? `${count(s.faults.device)} fault entries: ${count(s.faults.batchedFaults)} in ${count(s.faults.deviceBatches)} completed batch${s.faults.deviceBatches === 1 ? "" : "es"}, ${count(s.faults.device - s.faults.batchedFaults)} in the batch being serviced at the stop`
      : `${count(s.faults.device)} fault entries in ${count(s.faults.deviceBatches)} batches`) +
      (gpuPhases.length > 0 && faultedPages !== s.faults.device ? ` (${count(faultedPages)} pages: the other entries repeat a page already in their batch)` : ""),
  ]);
  const zeroFilled = gpuPhases.reduce((n, p) => n + p.gpu!.populatedPages, 0);
  for (const dir of ["h2d", "d2h"] as const) {
    const t = s.migrated[dir];
    let row = `${count(t.pages)} pages, ${formatBytes(t.bytes)} copied (${count(t.count)} migrations)`;
    if (dir === "h2d" && zeroFilled > 0) row += `; ${count(zeroFilled)} of the pages were never written by the CPU, so the driver zero-filled them on the device instead of copying`;
    res.push([`migrated ${dir === "h2d" ? "to device" : "to host"}`, row]);
  }
  if (m.devices.some((d) => d.memoryType === "coherent")) {
    const c = s.coherentCpuAccess;
    res.push([
      "CPU coherent access",
      c.accesses > 0
        ? `${count(c.accesses)} CPU accesses to pages left in DEVICE_COHERENT memory, done in place over the link (no fault, no copy back): ${formatTime(c.ps)} of CPU time`
        : "none (no CPU access reached a page in DEVICE_COHERENT memory)",
    ]);
  }
  res.push(["evictions", `${count(s.evictions.pages)} pages, ${formatBytes(s.evictions.bytes)} (${count(s.evictions.count)} evictions)`]);
  const alphaOf = new Map(m.links.map((l) => [l.name, l.alphaPs]));
  for (const [name, dirs] of Object.entries(s.links)) {
    for (const dir of ["h2d", "d2h"] as const) {
      const l = dirs[dir];
      const alpha = alphaOf.get(name) ?? 0;
      res.push([
        l.from !== undefined && l.to !== undefined ? `link ${name} ${l.from}→${l.to}` : `link ${name} ${dir}`,
        `${pct(l.utilisation)} busy (${formatTime(l.busyPs)} moving data), ${formatBytes(l.bytes)} in ${count(l.transfers)} transfers` +
          (l.transfers > 0 && alpha > 0 ? ` (+ ${formatTime(alpha)} setup each, not in busy)` : ""),
      ]);
    }
  }
  for (const dir of ["h2d", "d2h"] as const) {
    // Host links, and for h2d the peer links too: a device → device migration is reported as a migration to the
    // device (migrateEnd with dir "h2d" and `from`, the source device), its bytes crossing a peer link either way.
    const onLinks = Object.values(s.links).reduce(
      (sum, l) => sum + (l[dir].from === undefined ? l[dir].bytes : dir === "h2d" ? l.h2d.bytes + l.d2h.bytes : 0),
      0,
    );
    const moved = s.migrated[dir].bytes;
    if (moved > onLinks) {
      res.push([
        `note (${dir})`,
        `${formatBytes(moved - onLinks)} of the ${formatBytes(moved)} migrated ${dir === "h2d" ? "to the device" : "to the host"} were copied without a DMA transfer ` +
          `on any link (the CPU or the driver copied them some other way), so the link rows above do not count them`,
      ]);
    }
  }
  const costs = Object.entries(s.cost)
    .filter(([, c]) => c.ps > 0)
    .sort((a, b) => b[1].ps - a[1].ps)
    .map(([k, c]) => `${k} ${formatTime(c.ps)}`);
  if (s.coherentCpuAccess.ps > 0) costs.push(`CPU coherent access ${formatTime(s.coherentCpuAccess.ps)}`);
  res.push(["charged cost", costs.length ? `${costs.join(", ")} (summed over tasks)` : "none"]);
  if (s.unsettledPs > 0) {
    res.push(["unsettled cost", `${formatTime(s.unsettledPs)} ` + (s.stopped ? "(charged by tasks the stop interrupted before they slept it)" : "(a task charged cost it never slept: a driver bug)")]);
  }
  if (s.thrash && s.workingSetBytes > 0) {
    res.push([
      "thrash",
      `${ratioText(s.thrash.evictionsPerDeviceFault)} evictions per device fault, ${ratioText(s.thrash.pagesMovedPerWorkingSetPage)} pages migrated per working-set page (${formatBytes(s.workingSetBytes)} working set)`,
    ]);
  }
  for (const w of s.warnings ?? []) res.push(["warning", w]);
  return `${head}\n\n${table(res)}\n`;
}

function table(rows: [string, string][]): string {
  const w = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join("\n");
}
