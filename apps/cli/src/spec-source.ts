/**
 * Resolves `hmmsim run [spec]`'s argument to a validated machine spec and the plugins that run it: a preset name
 * (apps/machines) or a YAML/JSON spec file; the plugins are the built-ins, the `--plugin` modules and the modules
 * the spec's `plugins:` names (loaded from the spec's folder: loadPlugins); then the command-line overrides
 * (--seed, --workload, --size, --trace, --policy, --policy-spec) are applied. Every problem of the spec — the schema's, the plugins' (a
 * driver, policy or link kind no plugin provides, a driverSpec / policySpec / link field the provider rejects) and
 * a missing trace file — is reported at once with its path. Relative trace paths in a spec file are resolved
 * against the spec file's directory, --trace paths against the current directory.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import {
  type MachinePlugin,
  type MachineSpec,
  PluginRegistry,
  SPEC_LIMITS,
  SpecError,
  type SpecIssue,
  loadPluginModule,
  loadPlugins,
  parseDuration,
  parseSize,
  parseSpecText,
  validateMachineSpec,
} from "@hmmsim/machine";
import { PRESETS_DIR, isPresetName, presetNames, presetPath, readPresetText } from "@hmmsim/machines";
import { PATTERN_KINDS } from "@hmmsim/workloads";
import { builtinPlugins } from "./builtin-plugins.js";
import { CliError, CliUsageError } from "./cli-error.js";
import { traceFileIssues } from "./trace-file-issues.js";

export const DEFAULT_PRESET = "a100-pcie4";
/** Workload kinds `--workload` builds from `--size` alone. */
export const CLI_WORKLOAD_KINDS = Object.freeze(["streaming", "strided", "random"] as const);

export interface SpecSource {
  spec: MachineSpec;
  /** The plugins that run it: the built-ins, then --plugin modules, then the spec's `plugins:`. */
  plugins: MachinePlugin[];
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
  /** Plugin modules from --plugin (paths relative to the current directory, or package names). */
  plugins?: string[];
  /** --max-simulated-time, ps: stop the run after this much virtual time (overrides the spec's maxSimulatedTime). */
  maxSimulatedTime?: number;
  /**
   * --policy: every device's `policy` becomes this name (one element) or list (several), and its `policySpec` is
   * dropped unless --policy-spec gives one.
   */
  policy?: string[];
  /** --policy-spec: every device's `policySpec` becomes this object (with --policy or alone). */
  policySpec?: Record<string, unknown>;
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
export function readOverrides(
  opts: { seed?: unknown; workload?: unknown; size?: unknown; trace?: unknown; plugin?: unknown; maxSimulatedTime?: unknown; policy?: unknown; policySpec?: unknown },
  cwd: string,
): SpecOverrides {
  const o: SpecOverrides = {};
  if (opts.policy !== undefined) {
    // Not a string: no value (`--policy` alone: true), or one the parser read as a number ("", "0"): no policy's name.
    const v = opts.policy;
    const names = typeof v === "string" ? v.split(",").map((n) => n.trim()) : [];
    if (names.length === 0 || names.some((n) => n === "")) {
      throw new CliUsageError(`--policy: expected a policy name or a comma-separated list like "uvm-default" or "on-demand,evict-tree", got ${JSON.stringify(opts.policy)}`, "run");
    }
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice !== undefined) throw new CliUsageError(`--policy: ${JSON.stringify(twice)} is listed twice in ${JSON.stringify(v)}`, "run");
    o.policy = names;
  }
  if (opts.policySpec !== undefined) {
    let parsed: unknown;
    try {
      parsed = typeof opts.policySpec === "string" ? JSON.parse(opts.policySpec) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!isObj(parsed)) {
      throw new CliUsageError(
        `--policy-spec: expected a JSON object like '{"variant":"tbn"}' (one policy) or '{"tree-prefetch":{"threshold":60}}' (keyed by member, for a list or a bundle), got ${JSON.stringify(opts.policySpec)}`,
        "run",
      );
    }
    o.policySpec = parsed;
  }
  if (opts.maxSimulatedTime !== undefined) {
    const v = opts.maxSimulatedTime;
    // A bare number is read as ps by the spec's units; on the command line "10" is more likely a mistake: a unit is required.
    const ps = typeof v === "string" && /[a-zµ]\s*$/i.test(v) ? parseDuration(v) : undefined;
    if (ps === undefined || ps <= 0) {
      throw new CliUsageError(`--max-simulated-time: expected a duration > 0 with its unit like "10ms", "500us" or "2s", got ${JSON.stringify(v)}`, "run");
    }
    o.maxSimulatedTime = ps;
  }
  if (opts.plugin !== undefined) {
    const list = Array.isArray(opts.plugin) ? opts.plugin : [opts.plugin];
    if (list.some((m) => typeof m !== "string" || m === "")) throw new CliUsageError("--plugin: expected a plugin module (a path or an installed package name)", "run");
    o.plugins = list as string[];
  }
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

/**
 * Loads the spec named by `arg` (default: the a100-pcie4 preset), loads its plugins and the --plugin modules, and
 * applies `overrides`. The spec text is parsed once.
 */
export async function loadSpecSource(arg: string | undefined, overrides: SpecOverrides, cwd: string): Promise<SpecSource> {
  const name = arg ?? DEFAULT_PRESET;
  const asPath = resolve(cwd, name);
  let preset: string | null = null;
  let file: string;
  let text: string;
  if (isPresetName(name) && !existsSync(asPath)) {
    preset = name;
    file = presetPath(name);
    text = readPresetText(name);
  } else {
    file = asPath;
    if (!existsSync(file)) {
      throw new CliError(`spec file not found: ${file}\n  give a machine spec file (YAML or JSON) or a preset: ${presetNames.join(", ")} (in ${PRESETS_DIR})`);
    }
    const st = statSync(file);
    if (st.isDirectory()) throw new CliError(`spec path is a directory, not a file: ${file}`);
    if (st.size > SPEC_LIMITS.maxSpecTextBytes) {
      throw new SpecFileError(file, [
        { path: "", message: `the file is ${(st.size / 2 ** 20).toFixed(1)} MiB; a machine spec is at most ${SPEC_LIMITS.maxSpecTextBytes / 2 ** 20} MiB (4096 devices and 4096 links come to about 2 MiB)` },
      ]);
    }
    text = readFileSync(file, "utf8");
  }
  const dir = dirname(file);
  const raw = parseSpecFile(text, file);
  const plugins = [...builtinPlugins()];
  for (const m of overrides.plugins ?? []) plugins.push(...(await loadPluginModule(m, { baseDir: cwd, trust: "command-line", where: () => "--plugin" })).map((l) => l.plugin));
  const listed = isObj(raw) && Array.isArray(raw.plugins) ? raw.plugins.filter((m): m is string => typeof m === "string" && m !== "") : [];
  plugins.push(...(await loadPlugins(listed, { baseDir: dir, trust: "spec" })).map((l) => l.plugin));
  const registry = new PluginRegistry(plugins);
  let spec = validateSpec(raw, file, dir, registry);
  spec = { ...spec, workload: resolveTraceFiles(spec.workload, dir) as MachineSpec["workload"] };
  return { spec: applyOverrides(spec, overrides, file, registry), plugins: [...registry.plugins], preset, file };
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The spec text as a YAML/JSON value (parsed once, in linear time); a syntax error is a SpecFileError naming the file. */
function parseSpecFile(text: string, file: string): unknown {
  try {
    return parseSpecText(text); // YAML 1.2 is a superset of JSON
  } catch (e) {
    if (e instanceof SpecError) throw new SpecFileError(file, e.issues);
    throw e;
  }
}

/**
 * validateMachineSpec(raw, registry): the schema's and the plugins' problems, plus the workload's trace files (with
 * relative trace files resolved against `dir`): every problem, with its path, in one SpecFileError naming `file`.
 */
function validateSpec(raw: unknown, file: string, dir: string, registry: PluginRegistry): MachineSpec {
  const issues: SpecIssue[] = [];
  let spec: MachineSpec | undefined;
  try {
    spec = validateMachineSpec(raw as object, registry);
  } catch (e) {
    if (!(e instanceof SpecError)) throw e;
    issues.push(...e.issues);
  }
  if (isObj(raw)) issues.push(...traceFileIssues(resolveTraceFiles(raw.workload, dir)));
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

function applyOverrides(spec: MachineSpec, o: SpecOverrides, file: string, registry: PluginRegistry): MachineSpec {
  const out: MachineSpec = { ...spec };
  if (o.seed !== undefined) out.seed = o.seed;
  if (o.policy !== undefined || o.policySpec !== undefined) {
    if (spec.devices.length === 0) throw new CliUsageError(`--policy${o.policy === undefined ? "-spec" : ""}: the spec has no devices to give a policy to`, "run");
    out.devices = spec.devices.map((d) => {
      const { policySpec: _dropped, ...rest } = d;
      const policy = o.policy === undefined ? d.policy : o.policy.length === 1 ? o.policy[0]! : o.policy;
      return { ...(o.policy === undefined ? d : rest), policy, ...(o.policySpec !== undefined ? { policySpec: o.policySpec } : {}) } as typeof d;
    });
  }
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
  const changed = o.seed !== undefined || o.trace !== undefined || o.workload !== undefined || o.size !== undefined || o.policy !== undefined || o.policySpec !== undefined;
  if (!changed) return spec;
  return validateSpec(workload === null ? rest : out, `${file} (with command-line overrides)`, dirname(file), registry);
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
      // A phase that is not a mapping (`phases: [null]`) is left as written: the schema reports it with its path.
      const isPhase = (ph: unknown): ph is Record<string, unknown> => typeof ph === "object" && ph !== null && !Array.isArray(ph);
      return { ...wl, params: { ...wl.params, phases: ps.map((ph: unknown) => (isPhase(ph) ? { ...ph, params: fix(ph.kind, ph.params) } : ph)) } };
    }
    return wl;
  }
  return { ...wl, params: fix(wl.kind, wl.params) };
}
