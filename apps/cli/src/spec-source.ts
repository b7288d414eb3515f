/**
 * Resolves `hmmsim run [spec]`'s argument to a validated machine spec: a preset name (apps/machines) or a YAML/JSON
 * spec file, then applies the command-line overrides (--seed, --workload, --size, --trace). Relative trace paths in
 * a spec file are resolved against the spec file's directory, --trace paths against the current directory.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { type MachineSpec, SpecError, type SpecIssue, parseMachineSpec, parseSize } from "@hmmsim/machine";
import { PRESETS_DIR, isPresetName, loadPreset, presetNames, presetPath } from "@hmmsim/machines";
import { PATTERN_KINDS } from "@hmmsim/workloads";
import { CliError, CliUsageError } from "./cli-error.js";
import { runSpecIssues } from "./run-spec-issues.js";

export const DEFAULT_PRESET = "a100-pcie4";
/** Workload kinds `--workload` builds from `--size` alone. */
export const CLI_WORKLOAD_KINDS = Object.freeze(["streaming", "strided", "random"] as const);

export interface SpecSource {
  spec: MachineSpec;
  /** The preset's name when the spec is a preset, else null. */
  preset: string | null;
  /** Absolute path of the spec file read. */
  file: string;
}

export interface SpecOverrides {
  seed?: number;
  /** A pattern kind (streaming, strided, random, stencil, bfs, trace). */
  workload?: string;
  /** Working-set size for --workload / the spec's workload (`params.bytes`). */
  size?: number;
  /** A trace file to replay (the workload becomes `trace`). */
  trace?: string;
}

/**
 * A spec file that cannot run: one SpecError listing every problem with its path (the schema's, and what this
 * build needs: drivers, policies, GPU driverSpec fields, trace files; see run-spec-issues.ts), prefixed by the file.
 */
export class SpecFileError extends SpecError {
  constructor(
    readonly file: string,
    issues: readonly SpecIssue[],
  ) {
    super(issues);
    this.message = `${file}: ${this.message}`;
  }
}

/** Parses the --seed, --size, --workload and --trace option values (usage errors name the option). */
export function readOverrides(opts: { seed?: unknown; workload?: unknown; size?: unknown; trace?: unknown }, cwd: string): SpecOverrides {
  const o: SpecOverrides = {};
  if (opts.seed !== undefined) {
    const n = typeof opts.seed === "number" ? opts.seed : Number(opts.seed);
    if (opts.seed === true || opts.seed === "" || !Number.isSafeInteger(n) || n < 0) {
      // The spec's own rule (machine spec `seed`: an integer >= 0), so a seed given here is one a spec file could hold.
      throw new CliUsageError(`--seed: expected a non-negative integer (0, 1, 2, …, like the spec's seed), got ${JSON.stringify(opts.seed)}`, "run");
    }
    o.seed = n;
  }
  if (opts.workload !== undefined) {
    const k = String(opts.workload);
    if (k === "trace") throw new CliUsageError("--workload trace: give the trace file with --trace <file> instead", "run");
    if (!(CLI_WORKLOAD_KINDS as readonly string[]).includes(k)) {
      throw new CliUsageError(
        `--workload: expected one of ${CLI_WORKLOAD_KINDS.join(", ")}, got ${JSON.stringify(opts.workload)}` +
          (PATTERN_KINDS.includes(k as never) ? ` (write ${k} workloads in a spec file: they need more parameters than --size)` : ""),
        "run",
      );
    }
    o.workload = k;
  }
  if (opts.size !== undefined) {
    const s = parseSize(opts.size === true ? undefined : opts.size);
    if (s === undefined || s <= 0 || s % 4096 !== 0) throw new CliUsageError(`--size: expected a positive size in whole 4KiB pages like "256MiB", got ${JSON.stringify(opts.size)}`, "run");
    o.size = s;
  }
  if (opts.trace !== undefined) {
    if (typeof opts.trace !== "string" || opts.trace === "") throw new CliUsageError("--trace: expected a trace file path", "run");
    if (o.workload !== undefined || o.size !== undefined) throw new CliUsageError("--trace replays a trace file: do not combine it with --workload or --size", "run");
    o.trace = resolve(cwd, opts.trace);
    if (!existsSync(o.trace)) throw new CliError(`--trace: trace file not found: ${o.trace}`);
    if (statSync(o.trace).isDirectory()) throw new CliError(`--trace: ${o.trace} is a directory, not a trace file`);
  }
  return o;
}

/** Loads the spec named by `arg` (default: the a100-pcie4 preset) and applies `overrides`. */
export function loadSpecSource(arg: string | undefined, overrides: SpecOverrides, cwd: string): SpecSource {
  const name = arg ?? DEFAULT_PRESET;
  const asPath = resolve(cwd, name);
  let spec: MachineSpec;
  let preset: string | null = null;
  let file: string;
  if (isPresetName(name) && !existsSync(asPath)) {
    preset = name;
    file = presetPath(name);
    spec = loadPreset(name); // a PresetSpecError here is a broken shipped preset: main() reports it like any SpecError
  } else {
    file = asPath;
    if (!existsSync(file)) {
      throw new CliError(`spec file not found: ${file}\n  give a machine spec file (YAML or JSON) or a preset: ${presetNames.join(", ")} (in ${PRESETS_DIR})`);
    }
    if (statSync(file).isDirectory()) throw new CliError(`spec path is a directory, not a file: ${file}`);
    spec = validateSpec(readFileSync(file, "utf8"), file, dirname(file));
  }
  spec = { ...spec, workload: resolveTraceFiles(spec.workload, dirname(file)) as MachineSpec["workload"] };
  return { spec: applyOverrides(spec, overrides, file), preset, file };
}

/**
 * parseMachineSpec(input), plus what this build needs to run it (runSpecIssues, with the workload's relative trace
 * files resolved against `dir`): every problem of both, with its path, in one SpecFileError naming `file`.
 */
function validateSpec(input: string | object, file: string, dir: string): MachineSpec {
  const issues: SpecIssue[] = [];
  let spec: MachineSpec | undefined;
  try {
    spec = parseMachineSpec(input);
  } catch (e) {
    if (!(e instanceof SpecError)) throw e;
    issues.push(...e.issues);
  }
  let raw: unknown = input;
  if (typeof input === "string") {
    try {
      raw = parseYaml(input);
    } catch {
      raw = undefined; // parseMachineSpec has reported it
    }
  }
  if (typeof raw === "object" && raw !== null && !Array.isArray(raw)) {
    const r = raw as Record<string, unknown>;
    issues.push(...runSpecIssues({ ...r, workload: resolveTraceFiles(r.workload, dir) }));
  }
  if (issues.length > 0 || spec === undefined) throw new SpecFileError(file, dedupe(issues));
  return spec;
}

function dedupe(issues: SpecIssue[]): SpecIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = `${i.path}\0${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function applyOverrides(spec: MachineSpec, o: SpecOverrides, file: string): MachineSpec {
  const out: MachineSpec = { ...spec };
  if (o.seed !== undefined) out.seed = o.seed;
  const on = spec.workload && spec.workload.kind !== "phases" ? (spec.workload.on ?? spec.devices[0]?.name) : spec.devices[0]?.name;
  if (o.trace !== undefined) {
    out.workload = { kind: "trace", on: on ?? "cpu", params: { file: o.trace } };
  } else if (o.workload === undefined && o.size !== undefined && spec.workload?.kind === "phases") {
    // --size alone on a phases workload: every phase gets the new size.
    const phases = (spec.workload.params as { phases: { kind: string; on?: string; params?: Record<string, unknown> }[] }).phases;
    out.workload = {
      kind: "phases",
      params: {
        phases: phases.map((ph, i) => {
          if (!(CLI_WORKLOAD_KINDS as readonly string[]).includes(ph.kind)) {
            throw new CliUsageError(`--size: phase ${i + 1} of the spec's workload is ${ph.kind}; --size resizes only ${CLI_WORKLOAD_KINDS.join(", ")} phases`, "run");
          }
          const params: Record<string, unknown> = { ...(ph.params ?? {}), bytes: o.size };
          if (ph.kind === "random") delete params.count;
          return { ...ph, params };
        }),
      },
    };
  } else if (o.workload !== undefined || o.size !== undefined) {
    const kind = o.workload ?? spec.workload?.kind;
    if (!(CLI_WORKLOAD_KINDS as readonly (string | undefined)[]).includes(kind)) {
      throw new CliUsageError(`--size: the spec's workload is ${kind ?? "missing"}; give --workload ${CLI_WORKLOAD_KINDS.join("|")} with --size`, "run");
    }
    const oldParams = spec.workload && spec.workload.kind === kind && typeof spec.workload.params === "object" ? (spec.workload.params as Record<string, unknown>) : {};
    const params: Record<string, unknown> = { ...oldParams };
    if (o.size !== undefined) params.bytes = o.size;
    if (params.bytes === undefined) throw new CliUsageError(`--workload ${kind}: give the working-set size with --size`, "run");
    if (kind === "random" && o.size !== undefined) delete params.count; // default: one pass worth of accesses
    if (kind === "strided" && params.stride === undefined) params.stride = 64 * 1024;
    out.workload = { kind: kind!, on: on ?? "cpu", params };
  }
  // Validate the result as a whole (an override can make the spec invalid, e.g. a stride larger than --size), with
  // what this build needs to run it (a preset's driver names and driverSpec are checked here too).
  // (A normalized spec without a workload has `workload: null`, which the schema does not take back: omit it.)
  const { workload, ...rest } = out;
  const changed = o.seed !== undefined || o.trace !== undefined || o.workload !== undefined || o.size !== undefined;
  return validateSpec(workload === null ? rest : out, changed ? `${file} (with command-line overrides)` : file, dirname(file));
}

/** Makes relative `file` params of trace patterns absolute (relative to the spec file's directory). */
function resolveTraceFiles(w: unknown, dir: string): unknown {
  if (typeof w !== "object" || w === null || Array.isArray(w)) return w;
  const wl = w as Record<string, unknown>;
  const fix = (kind: unknown, params: unknown): unknown => {
    if (kind !== "trace" || typeof params !== "object" || params === null) return params;
    const p = params as Record<string, unknown>;
    return typeof p.file === "string" && !isAbsolute(p.file) ? { ...p, file: resolve(dir, p.file) } : params;
  };
  if (wl.kind === "phases" && typeof wl.params === "object" && wl.params !== null) {
    const ps = (wl.params as { phases?: unknown }).phases;
    if (Array.isArray(ps)) {
      return { ...wl, params: { ...wl.params, phases: ps.map((ph: Record<string, unknown>) => ({ ...ph, params: fix(ph.kind, ph.params) })) } };
    }
    return wl;
  }
  return { ...wl, params: fix(wl.kind, wl.params) };
}
