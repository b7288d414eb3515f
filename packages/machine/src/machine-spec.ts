/**
 * The machine spec: what a simulated machine is made of (CPUs, RAM, devices, links, workload, seed, bytes
 * mode), written in YAML or JSON and validated by a zod schema that reports every problem at once, each with
 * its path (`devices[0].memory: expected a size like "16GiB"`). Unknown keys are errors. Quantities are
 * normalized to base units (bytes, ps, B/s, Hz); a normalized spec parses to itself.
 */
import { z } from "zod";
import { type WorkloadSpec, validateWorkload } from "@hmmsim/workloads";
import { SpecError, type SpecIssue } from "./spec-error.js";
import { SPEC_LIMITS, firstDeviceOverPfnLimit, firstDevicePfn } from "./spec-limits.js";
import { parseSpecText } from "./spec-text.js";
import { formatDuration, parseBandwidth, parseDuration, parseFrequency, parseSize } from "./units.js";

export { SpecError, type SpecIssue };

/**
 * A device kind: a name (gpu, fpga, dmirror, or a third-party kind). The kind names the device's driver unless
 * `driver` says otherwise; the driver must be provided by a driver plugin (see plugin-registry.ts).
 */
export type DeviceKind = string;

/** A link kind: a name provided by an interconnect plugin (pcie3x16, pcie4x16, pcie5x16, nvlink-c2c, cxl, …). */
export type LinkKind = string;

/** The link fields every link may carry, validated (with units) by the machine schema; any other field belongs to the link's plugin. */
export const COMMON_LINK_FIELDS = Object.freeze(["name", "kind", "lanes", "alpha", "h2dBandwidth", "d2hBandwidth", "coherent", "cpuAccessLatency", "cpuAccessBandwidth", "peers"] as const);

/** MEMORY_DEVICE_PRIVATE (behind any link) or MEMORY_DEVICE_COHERENT (needs a coherent link). */
export type DeviceMemoryType = "private" | "coherent";

export interface CpuSpec {
  count: number;
  /** Hz. */
  frequency: number;
  /**
   * CPUs that run the simulated process (its mm_cpumask): a TLB shootdown IPIs these, not every CPU of the
   * machine (arch/x86/mm/tlb.c flush_tlb_mm_range → native_flush_tlb_multi over mm_cpumask). Default 1: the
   * workload runs its CPU phases as one thread.
   */
  activeCores: number;
}

export interface DeviceSpec {
  kind: DeviceKind;
  name: string;
  /** Device memory, bytes (> 0, a multiple of 4 KiB). */
  memory: number;
  memoryType: DeviceMemoryType;
  /** Driver plugin that runs the device (default: the kind). */
  driver: string;
  /**
   * The device's policy (default "on-demand"), or the policies it runs together, as written: a name provided by a
   * policy plugin, a bundle name (a name a plugin expands to a list of policies, e.g. "uvm-default"), or a list of
   * such names (`[tree-prefetch, thrashing, evict-lru]`). The plugin registry expands bundles
   * (`PluginRegistry.devicePolicies`, see device-policies.ts); the order of the list decides nothing.
   */
  policy: string | string[];
  /**
   * The device's policy spec: plain JSON each policy plugin validates (its componentSpecIssues) and lays over its
   * defaults for this device. For a single policy name, the fields of that policy (`{ threshold: 60 }`); for a list
   * or a bundle, a mapping keyed by member policy name (`{ thrashing: { lapseUs: 250 } }`). Absent: the defaults.
   */
  policySpec?: Record<string, unknown>;
  /** Name of the device's host link: the link between it and the host (never a peer link). */
  link: string;
  /**
   * The device's driver spec: plain JSON the driver plugin validates and lays over its own defaults for this
   * device (e.g. the GPU driver's `deviceMemoryBandwidth`, `gpuClockHz`). Absent: the plugin's spec as is.
   */
  driverSpec?: Record<string, unknown>;
}

/**
 * A link. Its kind names the interconnect plugin that builds it; preset kinds take their figures from that
 * plugin's presets, and any field given here overrides the preset. The common fields below are validated (and
 * their units normalized) by the machine schema; any other field is kept as written for the link's plugin, which
 * validates it (and rejects the fields it does not know).
 *
 * Without `peers` a link is a **host link**: devices name it as their `link`. With `peers: [a, b]` it is a
 * **peer link** joining devices a and b directly (interconnect.ts, PeerInterconnect): no device names it as its
 * `link`; its h2d figures are the direction a → b, its d2h figures b → a.
 */
export interface LinkSpec {
  name: string;
  kind: LinkKind;
  /** A field of the link's plugin. */
  readonly [field: string]: unknown;
  /** PCIe lanes (default 16): bandwidth scales by lanes/16. */
  lanes?: number;
  /** Per-transfer fixed cost, ps. */
  alpha?: number;
  /** B/s. */
  h2dBandwidth?: number;
  d2hBandwidth?: number;
  /** Custom links: does the CPU access device memory coherently? */
  coherent?: boolean;
  /** Coherent links: added latency of a CPU load from device memory, ps. */
  cpuAccessLatency?: number;
  /** Coherent links: CPU load/store bandwidth to device memory, B/s. */
  cpuAccessBandwidth?: number;
  /**
   * A peer link: the two (distinct, declared) devices it joins; at most one peer link per pair of devices.
   * Absent: a host link.
   */
  peers?: readonly [string, string];
}

export interface MachineSpec {
  name: string;
  seed: number;
  /** Keep page bytes (true) or timing-only mode with content tags (false). */
  bytes: boolean;
  cpus: CpuSpec;
  ram: { size: number };
  devices: DeviceSpec[];
  links: LinkSpec[];
  workload: WorkloadSpec | null;
  /**
   * Plugin modules the spec needs (package names, or paths relative to the spec file inside its folder); loaded by
   * loadPlugins (the CLI does it), never by parseMachineSpec or createMachine.
   */
  plugins: string[];
  /**
   * Virtual time after which a run stops (ps, > 0): simulate() ends the run there with a partial summary that says
   * so (`stopped.reason: "max-simulated-time"`). Absent: the run goes to the end of its workload.
   */
  maxSimulatedTime?: number;
}

/** A unit-bearing field: `parse` reads it, `check` (optional) returns the rule a parsed value breaks. */
function unit<T>(parse: (v: unknown) => T | undefined, expected: string, check?: (v: T) => string | undefined) {
  return z.unknown().transform((v, ctx): T => {
    const r = v === undefined ? undefined : parse(v);
    if (r === undefined) {
      ctx.addIssue({ code: "custom", message: v === undefined ? "required" : `${expected}, got ${show(v)}` });
      return z.NEVER;
    }
    const broken = check?.(r);
    if (broken !== undefined) {
      ctx.addIssue({ code: "custom", message: broken });
      return z.NEVER;
    }
    return r;
  });
}

const L = SPEC_LIMITS;
const size = unit(parseSize, 'expected a size like "16GiB"');
/** A link latency (alpha, cpuAccessLatency): at most SPEC_LIMITS.maxLatencyPs. */
const latency = unit(parseDuration, 'expected a duration like "1.5us" (whole ps)', (ps) =>
  ps > L.maxLatencyPs ? `must be at most 1s (PCIe's per-transfer cost is about 1.5us; a second per transfer is a unit mistake), got ${formatDuration(ps)}` : undefined,
);
/** A link bandwidth: SPEC_LIMITS.minBandwidth..maxBandwidth. */
const bandwidth = unit(parseBandwidth, 'expected a bandwidth like "25GB/s"', (bps) =>
  bps < L.minBandwidth
    ? `must be at least 1MB/s (1000000 B/s): slower, the whole 2^53 ps (≈ 9007 s) virtual-time horizon moves less than 9 GB; got ${bps} B/s`
    : bps > L.maxBandwidth
      ? `must be at most 1PB/s (10^15 B/s; real links run at 1-1000 GB/s), got ${bps} B/s`
      : undefined,
);
const frequency = unit(parseFrequency, 'expected a frequency like "3GHz"', (hz) =>
  hz < L.minFrequencyHz || hz > L.maxFrequencyHz ? `must be between 1MHz and 100GHz (a CPU clock, e.g. "3GHz"), got ${hz} Hz` : undefined,
);
/** A run's time limit: a duration > 0. */
const timeLimit = unit(parseDuration, 'expected a duration like "10ms" or "2s" (whole ps)', (ps) => (ps <= 0 ? "must be > 0" : undefined));
const name = z.string({ error: "expected a name (string)" }).regex(/^[A-Za-z0-9_.-]+$/, "expected a name of letters, digits, '_', '.', '-'");

const linkFields = {
  name,
  lanes: z.union([z.literal(1), z.literal(2), z.literal(4), z.literal(8), z.literal(16)], { error: "expected 1, 2, 4, 8 or 16 lanes" }).optional(),
  alpha: latency.optional(),
  h2dBandwidth: bandwidth.optional(),
  d2hBandwidth: bandwidth.optional(),
  cpuAccessLatency: latency.optional(),
  cpuAccessBandwidth: bandwidth.optional(),
};

const PEERS_RULE = "expected the two devices a peer link joins: [<device>, <device>]";
/** A peer link's `peers`: a list of two names (that they are distinct, declared devices is a cross-field check). */
const peersField = z
  .array(z.string({ error: "expected a device name (string)" }), { error: PEERS_RULE })
  .length(2, PEERS_RULE)
  .optional();

// A link's other fields are its plugin's: kept as written (z.looseObject) and validated by the plugin.
const link = z.looseObject({
  ...linkFields,
  kind: name,
  coherent: z.boolean({ error: "expected true or false" }).optional(),
  peers: peersField,
});

const NAME_RE = /^[A-Za-z0-9_.-]+$/;
const NAME_RULE = "expected a name of letters, digits, '_', '.', '-'";

/** A device's `policy`: a name or a non-empty list of names (at most SPEC_LIMITS.maxDevicePolicies); absent: "on-demand". */
const policyField = z.unknown().optional().transform((v, ctx): string | string[] => {
  if (v === undefined) return "on-demand";
  if (typeof v === "string") {
    if (NAME_RE.test(v)) return v;
    ctx.addIssue({ code: "custom", message: NAME_RULE });
    return z.NEVER;
  }
  if (!Array.isArray(v)) {
    ctx.addIssue({ code: "custom", message: `expected a policy name or a list of policy names, got ${show(v)}` });
    return z.NEVER;
  }
  if (v.length === 0) ctx.addIssue({ code: "custom", message: "expected at least one policy name (leave policy out for on-demand)" });
  else if (v.length > L.maxDevicePolicies) ctx.addIssue({ code: "custom", message: `at most ${L.maxDevicePolicies} policies per device, got ${v.length}` });
  else {
    let ok = true;
    v.forEach((x: unknown, j) => {
      if (typeof x === "string" && NAME_RE.test(x)) return;
      ok = false;
      ctx.addIssue({ code: "custom", message: typeof x === "string" ? NAME_RULE : "expected a name (string)", path: [j] });
    });
    if (ok) return [...(v as string[])];
  }
  return z.NEVER;
});

const componentSpec = (what: string) => z.record(z.string(), z.unknown(), { error: `expected a mapping of the ${what}'s spec fields` }).optional();

const device = z.strictObject({
  kind: name,
  name,
  memory: size,
  memoryType: z.enum(["private", "coherent"], { error: 'expected "private" or "coherent"' }).default("private"),
  driver: name.optional(),
  policy: policyField,
  link: z.string({ error: "required: the name of a declared link" }),
  driverSpec: componentSpec("driver"),
  policySpec: componentSpec("policy"),
});

const pluginSpecifier = z
  .string({ error: "expected a plugin module: an installed package name or a relative path" })
  .min(1, "expected a plugin module: an installed package name or a relative path");

const bytesMode = z
  .union([z.boolean(), z.enum(["on", "off"])], { error: 'expected true/false or "on"/"off"' })
  .default(true)
  .transform((v) => v === true || v === "on");

const specSchema = z.strictObject({
  name: z.string().default("machine"),
  seed: z.number({ error: "expected a non-negative integer seed" }).int("expected a non-negative integer seed (at most 2^53 - 1)").min(0, "must be >= 0").default(0),
  bytes: bytesMode,
  cpus: z.strictObject({
    count: z.number().int("expected a whole number of CPUs").min(1, "must be >= 1").max(4096, "must be <= 4096"),
    frequency: frequency.optional(),
    activeCores: z.number().int("expected a whole number of CPUs").min(1, "must be >= 1").optional(),
  }),
  ram: z.strictObject({ size }),
  devices: z.array(device).max(L.maxDevices, `at most ${L.maxDevices} devices (a real machine has a few dozen)`).default([]),
  links: z.array(link).max(L.maxLinks, `at most ${L.maxLinks} links (a real machine has a few dozen)`).default([]),
  workload: z.unknown().optional(),
  plugins: z.array(pluginSpecifier, { error: "expected a list of plugin modules" }).default([]),
  maxSimulatedTime: timeLimit.optional(),
});

/** "devices[0].memory" from ["devices", 0, "memory"]. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "an object";
  return String(v);
}

function zodIssues(error: z.ZodError): SpecIssue[] {
  const out: SpecIssue[] = [];
  for (const i of error.issues) {
    if (i.code === "unrecognized_keys") {
      for (const k of i.keys) out.push({ path: formatPath([...i.path, k]), message: "unknown key" });
    } else if (i.code === "invalid_type" && i.input === undefined) {
      out.push({ path: formatPath(i.path), message: "required" });
    } else {
      out.push({ path: formatPath(i.path), message: i.message });
    }
  }
  return out;
}

const MiB2 = 2 * 1024 * 1024;
const PAGE = 4096;
type Raw = Record<string, unknown>;
const isObj = (v: unknown): v is Raw => typeof v === "object" && v !== null && !Array.isArray(v);

/** "a, b, c" for the first `max` names, then "… (N in all)". */
function someNames(names: readonly string[], max = 20): string {
  return names.length <= max ? names.join(", ") : `${names.slice(0, max).join(", ")}, … (${names.length} in all)`;
}

/** Checks that need several fields, run on the raw input (guarded) so they are reported with the shape errors. */
function crossFieldIssues(raw: Raw): SpecIssue[] {
  const out: SpecIssue[] = [];
  const links = Array.isArray(raw.links) ? raw.links : [];
  const devices = Array.isArray(raw.devices) ? raw.devices : [];
  const linkByName = new Map<string, Raw>();
  links.forEach((l, i) => {
    if (!isObj(l) || typeof l.name !== "string") return;
    if (linkByName.has(l.name)) out.push({ path: `links[${i}].name`, message: `duplicate link name ${JSON.stringify(l.name)}` });
    else linkByName.set(l.name, l);
  });
  const declaredDevices = new Set<string>();
  for (const d of devices) if (isObj(d) && typeof d.name === "string") declaredDevices.add(d.name);
  out.push(...peerLinkIssues(links, declaredDevices));
  const deviceNames = new Set<string>();
  const deviceBytes: number[] = [];
  const devicePaths: string[] = [];
  devices.forEach((d, i) => {
    if (!isObj(d)) return;
    if (typeof d.name === "string") {
      if (deviceNames.has(d.name)) out.push({ path: `devices[${i}].name`, message: `duplicate device name ${JSON.stringify(d.name)}` });
      deviceNames.add(d.name);
    }
    const mem = parseSize(d.memory);
    if (mem !== undefined && mem === 0) out.push({ path: `devices[${i}].memory`, message: "must be > 0" });
    else if (mem !== undefined && mem % PAGE !== 0) out.push({ path: `devices[${i}].memory`, message: `must be a multiple of 4KiB, got ${mem}` });
    else if (mem !== undefined) {
      deviceBytes.push(mem);
      devicePaths.push(`devices[${i}].memory`);
    }
    if (typeof d.link === "string") {
      const l = linkByName.get(d.link);
      if (!l) {
        const declared = [...linkByName.keys()].filter((n) => !isPeerLink(linkByName.get(n)!));
        out.push({ path: `devices[${i}].link`, message: `no link named ${JSON.stringify(d.link)} (declared: ${declared.length ? someNames(declared) : "none"})` });
      } else if (isPeerLink(l)) {
        const ends = Array.isArray(l.peers) && l.peers.length === 2 ? ` (it joins ${JSON.stringify(l.peers[0])} and ${JSON.stringify(l.peers[1])})` : "";
        out.push({
          path: `devices[${i}].link`,
          message: `${JSON.stringify(d.link)} is a peer link${ends}; a device's link is its host link, a link without peers`,
        });
      }
    }
  });
  let ram: number | undefined;
  if (isObj(raw.ram)) {
    ram = parseSize(raw.ram.size);
    if (ram !== undefined && (ram === 0 || ram % MiB2 !== 0)) {
      out.push({ path: "ram.size", message: `must be a positive multiple of 2MiB, got ${ram}` });
      ram = undefined;
    } else if (ram !== undefined && ram > SPEC_LIMITS.maxRamBytes) {
      out.push({
        path: "ram.size",
        message: `must be at most 8TiB - 2MiB (${SPEC_LIMITS.maxRamBytes} B): RAM takes at most half of the 2^32 page frames (16 TiB of 4 KiB pages) the page store addresses, got ${ram}`,
      });
      ram = undefined;
    }
  }
  if (ram !== undefined && deviceBytes.length > 0) {
    const over = firstDeviceOverPfnLimit(ram, deviceBytes);
    if (over >= 0) {
      out.push({
        path: devicePaths[over]!,
        message:
          `does not fit: RAM (${formatBytesShort(ram)}) and the device memory up to this device need more than the 2^32 page frames (16 TiB of 4 KiB pages) ` +
          `the page store addresses; with this RAM the devices' memory may add up to about ${formatBytesShort((SPEC_LIMITS.maxPfn - firstDevicePfn(ram)) * PAGE)}, got ${formatBytesShort(deviceBytes[over]!)} for this device`,
      });
    }
  }
  if (isObj(raw.cpus) && typeof raw.cpus.activeCores === "number" && typeof raw.cpus.count === "number" && raw.cpus.activeCores > raw.cpus.count) {
    out.push({ path: "cpus.activeCores", message: `must be <= cpus.count (${raw.cpus.count}), got ${raw.cpus.activeCores}` });
  }
  if (raw.workload !== undefined && raw.workload !== null) {
    const seed = typeof raw.seed === "number" ? raw.seed : 0;
    const wIssues = validateWorkload(raw.workload, { seed });
    for (const i of wIssues) out.push({ path: formatPath(["workload"]) + (i.path ? (i.path.startsWith("[") ? "" : ".") + i.path : ""), message: i.message });
    const targets = workloadTargets(raw.workload);
    for (const { path, on } of targets) {
      if (on === "cpu") continue;
      if (on === "device") {
        if (devices.length === 0) out.push({ path, message: '"device" needs at least one device in devices' });
      } else if (!deviceNames.has(on)) {
        out.push({ path, message: `expected "cpu", "device" or a device name (${someNames([...deviceNames]) || "no devices declared"}), got ${JSON.stringify(on)}` });
      }
    }
    if (wIssues.length === 0 && ram !== undefined) {
      const capacity = ram + deviceBytes.reduce((a, b) => a + b, 0);
      const w = largestWrittenSet(raw.workload);
      if (w !== null && w.bytes > capacity) {
        out.push({
          path: w.path,
          message:
            `writes every page of its working set (${formatBytesShort(w.bytes)}), but RAM (${formatBytesShort(ram)}) and device memory ` +
            `(${formatBytesShort(capacity - ram)}) hold only ${formatBytesShort(capacity)}: a written page needs a page frame somewhere ` +
            `for the rest of the run, so it would run out of memory`,
        });
      }
    }
  }
  return out;
}

/** A raw link that declares `peers` (in any shape: the schema reports a bad one). */
function isPeerLink(l: Raw): boolean {
  return l.peers !== undefined;
}

/**
 * The rules of peer links that need the devices: the two ends are distinct declared devices, and a pair of
 * devices is joined by at most one peer link (reported at the second).
 */
function peerLinkIssues(links: readonly unknown[], devices: ReadonlySet<string>): SpecIssue[] {
  const out: SpecIssue[] = [];
  const byPair = new Map<string, number>();
  links.forEach((l, i) => {
    if (!isObj(l) || !Array.isArray(l.peers) || l.peers.length !== 2) return;
    const [a, b] = l.peers as unknown[];
    if (typeof a !== "string" || typeof b !== "string") return;
    let ok = true;
    [a, b].forEach((d, j) => {
      if (devices.has(d)) return;
      ok = false;
      out.push({ path: `links[${i}].peers[${j}]`, message: `no device named ${JSON.stringify(d)} (devices: ${devices.size ? someNames([...devices]) : "none declared"})` });
    });
    if (a === b) {
      out.push({ path: `links[${i}].peers`, message: `a peer link joins two different devices, got ${JSON.stringify(a)} twice` });
      return;
    }
    if (!ok) return;
    const key = a < b ? `${a}\0${b}` : `${b}\0${a}`;
    const first = byPair.get(key);
    if (first !== undefined) {
      const firstName = (links[first] as Raw).name;
      out.push({
        path: `links[${i}].peers`,
        message: `${JSON.stringify(a)} and ${JSON.stringify(b)} are already joined by peer link ${JSON.stringify(firstName)} (links[${first}]); at most one peer link per pair of devices`,
      });
    } else byPair.set(key, i);
  });
  return out;
}

function formatBytesShort(b: number): string {
  for (const [mul, u] of [
    [2 ** 40, "TiB"],
    [2 ** 30, "GiB"],
    [2 ** 20, "MiB"],
    [2 ** 10, "KiB"],
  ] as const) {
    if (b >= mul) return `${+(b / mul).toFixed(2)} ${u}`;
  }
  return `${b} B`;
}

/**
 * The largest set of pages some phase of the workload surely writes, or null when no phase's writes are known
 * from its parameters alone: a streaming phase whose granularity (≤ 4 KiB) and writeFraction put a write in every
 * page (error diffusion writes once in every ⌈1/writeFraction⌉ consecutive accesses), or a streaming or strided
 * phase that writes every access. Every such page holds a page frame (RAM or device memory) from its first write to
 * the end of the run (the workload's memory is anonymous and never unmapped), so more of them than RAM + device
 * memory cannot run. Random, stencil, BFS and trace phases are not counted (their pages are known only by running).
 */
function largestWrittenSet(w: unknown): { path: string; bytes: number } | null {
  if (!isObj(w)) return null;
  const phases: [unknown, string][] =
    w.kind === "phases" && isObj(w.params) && Array.isArray(w.params.phases)
      ? w.params.phases.map((p, i): [unknown, string] => [p, `workload.params.phases[${i}].params.bytes`])
      : [[w, "workload.params.bytes"]];
  let best: { path: string; bytes: number } | null = null;
  for (const [p, path] of phases) {
    if (!isObj(p) || !isObj(p.params) || (p.kind !== "streaming" && p.kind !== "strided")) continue;
    const bytes = parseSize(p.params.bytes);
    const g = p.params.granularity === undefined ? PAGE : parseSize(p.params.granularity);
    const f = p.params.writeFraction === undefined ? 0 : p.params.writeFraction;
    if (bytes === undefined || g === undefined || g <= 0 || typeof f !== "number" || !(f > 0)) continue;
    let written: number;
    if (f >= 1) written = g <= PAGE ? Math.ceil(bytes / PAGE) * PAGE : Math.ceil(bytes / g) * PAGE;
    else if (p.kind === "streaming" && g <= PAGE && Math.floor(PAGE / g) >= Math.ceil(1 / f)) written = Math.ceil(bytes / PAGE) * PAGE;
    else continue;
    if (best === null || written > best.bytes) best = { path, bytes: written };
  }
  return best;
}

function workloadTargets(w: unknown): { path: string; on: string }[] {
  if (!isObj(w)) return [];
  if (w.kind === "phases" && isObj(w.params) && Array.isArray(w.params.phases)) {
    return w.params.phases.flatMap((p, i) =>
      isObj(p) && typeof p.on === "string" ? [{ path: `workload.params.phases[${i}].on`, on: p.on }] : [],
    );
  }
  return typeof w.on === "string" ? [{ path: "workload.on", on: w.on }] : [];
}

/**
 * Parses and validates a machine spec given as YAML/JSON text or as an object. Returns the normalized spec
 * (bytes, ps, B/s, Hz); throws SpecError listing every problem with its path.
 */
export function parseMachineSpec(input: string | object): MachineSpec {
  const raw: unknown = typeof input === "string" ? parseSpecText(input) : input; // YAML 1.2 is a superset of JSON
  if (!isObj(raw)) throw new SpecError([{ path: "", message: `expected an object (a mapping), got ${show(raw)}` }]);
  const parsed = specSchema.safeParse(raw, { reportInput: true });
  const issues = parsed.success ? [] : zodIssues(parsed.error);
  issues.push(...crossFieldIssues(raw));
  if (issues.length || !parsed.success) throw new SpecError(dedupe(issues));
  const s = parsed.data;
  return {
    name: s.name,
    seed: s.seed,
    bytes: s.bytes,
    cpus: { count: s.cpus.count, frequency: s.cpus.frequency ?? 3e9, activeCores: s.cpus.activeCores ?? 1 },
    ram: { size: s.ram.size },
    devices: s.devices.map((d) => stripUndefined({ ...d, driver: d.driver ?? d.kind }) as DeviceSpec),
    links: s.links.map((l) => stripUndefined({ ...l, ...(l.peers ? { peers: [l.peers[0]!, l.peers[1]!] as const } : {}) }) as LinkSpec),
    workload: (s.workload as WorkloadSpec | undefined) ?? null,
    plugins: [...s.plugins],
    ...(s.maxSimulatedTime !== undefined ? { maxSimulatedTime: s.maxSimulatedTime } : {}),
  };
}

function dedupe(issues: SpecIssue[]): SpecIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = i.path + "\0" + i.message;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function stripUndefined<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}
