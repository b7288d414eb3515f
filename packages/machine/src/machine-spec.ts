/**
 * The machine spec: what a simulated machine is made of (CPUs, RAM, devices, links, workload, seed, bytes
 * mode), written in YAML or JSON and validated by a zod schema that reports every problem at once, each with
 * its path (`devices[0].memory: expected a size like "16GiB"`). Unknown keys are errors. Quantities are
 * normalized to base units (bytes, ps, B/s, Hz); a normalized spec parses to itself.
 */
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { type WorkloadSpec, validateWorkload } from "@hmmsim/workloads";
import { parseBandwidth, parseDuration, parseFrequency, parseSize } from "./units.js";

/**
 * A device kind: a name (gpu, fpga, dmirror, or a third-party kind). The kind names the device's driver unless
 * `driver` says otherwise; the driver must be provided by a driver plugin (see plugin-registry.ts).
 */
export type DeviceKind = string;

/** A link kind: a name provided by an interconnect plugin (pcie3x16, pcie4x16, pcie5x16, nvlink-c2c, cxl, …). */
export type LinkKind = string;

/** The link fields every link may carry, validated (with units) by the machine schema; any other field belongs to the link's plugin. */
export const COMMON_LINK_FIELDS = Object.freeze(["name", "kind", "lanes", "alpha", "h2dBandwidth", "d2hBandwidth", "coherent", "cpuAccessLatency", "cpuAccessBandwidth"] as const);

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
  /** Migration policy plugin (default "on-demand"). */
  policy: string;
  /**
   * The device's policy spec: plain JSON the policy plugin validates (its componentSpecIssues) and lays over its
   * defaults for this device. Absent: the policy's defaults.
   */
  policySpec?: Record<string, unknown>;
  /** Name of the link the device sits behind. */
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
}

export interface SpecIssue {
  /** e.g. "devices[0].memory" ("" for the whole spec). */
  path: string;
  message: string;
}

/** A machine spec with problems; `issues` lists every one, each with its path. */
export class SpecError extends Error {
  override readonly name = "SpecError";
  constructor(readonly issues: readonly SpecIssue[]) {
    super(`invalid machine spec (${issues.length} problem${issues.length === 1 ? "" : "s"}):\n` + issues.map((i) => `  ${i.path || "(spec)"}: ${i.message}`).join("\n"));
  }
}

function unit<T>(parse: (v: unknown) => T | undefined, expected: string) {
  return z.unknown().transform((v, ctx): T => {
    const r = v === undefined ? undefined : parse(v);
    if (r === undefined) {
      ctx.addIssue({ code: "custom", message: v === undefined ? "required" : `${expected}, got ${show(v)}` });
      return z.NEVER;
    }
    return r;
  });
}

const size = unit(parseSize, 'expected a size like "16GiB"');
const duration = unit(parseDuration, 'expected a duration like "1.5us" (whole ps)');
const bandwidth = unit(parseBandwidth, 'expected a bandwidth like "25GB/s"');
const frequency = unit(parseFrequency, 'expected a frequency like "3GHz"');
const name = z.string({ error: "expected a name (string)" }).regex(/^[A-Za-z0-9_.-]+$/, "expected a name of letters, digits, '_', '.', '-'");

const linkFields = {
  name,
  lanes: z.union([z.literal(1), z.literal(2), z.literal(4), z.literal(8), z.literal(16)], { error: "expected 1, 2, 4, 8 or 16 lanes" }).optional(),
  alpha: duration.optional(),
  h2dBandwidth: bandwidth.optional(),
  d2hBandwidth: bandwidth.optional(),
  cpuAccessLatency: duration.optional(),
  cpuAccessBandwidth: bandwidth.optional(),
};

// A link's other fields are its plugin's: kept as written (z.looseObject) and validated by the plugin.
const link = z.looseObject({
  ...linkFields,
  kind: name,
  coherent: z.boolean({ error: "expected true or false" }).optional(),
});

const componentSpec = (what: string) => z.record(z.string(), z.unknown(), { error: `expected a mapping of the ${what}'s spec fields` }).optional();

const device = z.strictObject({
  kind: name,
  name,
  memory: size,
  memoryType: z.enum(["private", "coherent"], { error: 'expected "private" or "coherent"' }).default("private"),
  driver: name.optional(),
  policy: name.default("on-demand"),
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
  seed: z.number().int("expected a non-negative integer seed").min(0, "must be >= 0").default(0),
  bytes: bytesMode,
  cpus: z.strictObject({
    count: z.number().int("expected a whole number of CPUs").min(1, "must be >= 1").max(4096, "must be <= 4096"),
    frequency: frequency.optional(),
    activeCores: z.number().int("expected a whole number of CPUs").min(1, "must be >= 1").optional(),
  }),
  ram: z.strictObject({ size }),
  devices: z.array(device).default([]),
  links: z.array(link).default([]),
  workload: z.unknown().optional(),
  plugins: z.array(pluginSpecifier, { error: "expected a list of plugin modules" }).default([]),
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
type Raw = Record<string, unknown>;
const isObj = (v: unknown): v is Raw => typeof v === "object" && v !== null && !Array.isArray(v);

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
  const deviceNames = new Set<string>();
  devices.forEach((d, i) => {
    if (!isObj(d)) return;
    if (typeof d.name === "string") {
      if (deviceNames.has(d.name)) out.push({ path: `devices[${i}].name`, message: `duplicate device name ${JSON.stringify(d.name)}` });
      deviceNames.add(d.name);
    }
    const mem = parseSize(d.memory);
    if (mem !== undefined && mem === 0) out.push({ path: `devices[${i}].memory`, message: "must be > 0" });
    else if (mem !== undefined && mem % 4096 !== 0) out.push({ path: `devices[${i}].memory`, message: `must be a multiple of 4KiB, got ${mem}` });
    if (typeof d.link === "string") {
      const l = linkByName.get(d.link);
      if (!l) {
        const declared = [...linkByName.keys()];
        out.push({ path: `devices[${i}].link`, message: `no link named ${JSON.stringify(d.link)} (declared: ${declared.length ? declared.join(", ") : "none"})` });
      }
    }
  });
  if (isObj(raw.ram)) {
    const ram = parseSize(raw.ram.size);
    if (ram !== undefined && (ram === 0 || ram % MiB2 !== 0)) out.push({ path: "ram.size", message: `must be a positive multiple of 2MiB, got ${ram}` });
  }
  if (isObj(raw.cpus) && typeof raw.cpus.activeCores === "number" && typeof raw.cpus.count === "number" && raw.cpus.activeCores > raw.cpus.count) {
    out.push({ path: "cpus.activeCores", message: `must be <= cpus.count (${raw.cpus.count}), got ${raw.cpus.activeCores}` });
  }
  if (raw.workload !== undefined && raw.workload !== null) {
    const seed = typeof raw.seed === "number" ? raw.seed : 0;
    for (const i of validateWorkload(raw.workload, { seed })) out.push({ path: formatPath(["workload"]) + (i.path ? (i.path.startsWith("[") ? "" : ".") + i.path : ""), message: i.message });
    const targets = workloadTargets(raw.workload);
    for (const { path, on } of targets) {
      if (on === "cpu") continue;
      if (on === "device") {
        if (devices.length === 0) out.push({ path, message: '"device" needs at least one device in devices' });
      } else if (!deviceNames.has(on)) {
        out.push({ path, message: `expected "cpu", "device" or a device name (${[...deviceNames].join(", ") || "no devices declared"}), got ${JSON.stringify(on)}` });
      }
    }
  }
  return out;
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
  let raw: unknown = input;
  if (typeof input === "string") {
    try {
      raw = parseYaml(input, { prettyErrors: true }); // YAML 1.2 is a superset of JSON
    } catch (e) {
      throw new SpecError([{ path: "", message: `not valid YAML/JSON: ${(e as Error).message}` }]);
    }
  }
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
    links: s.links.map((l) => stripUndefined({ ...l }) as LinkSpec),
    workload: (s.workload as WorkloadSpec | undefined) ?? null,
    plugins: [...s.plugins],
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
