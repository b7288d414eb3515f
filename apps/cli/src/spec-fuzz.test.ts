// Fuzzing the spec loader and the trace parser through main() (issue 15): arbitrary mutations of the presets and of a
// valid trace must end in exit 0, 1 or 2 with a clear message — never a stack frame (only SpecError, TraceParseError,
// WorkloadParamError, PluginLoadError, CliError-class errors and stopped runs reach the user) — within a wall-clock
// bound, and a spec that is accepted must hold only values within the documented bounds (SPEC_LIMITS, GPU_SPEC_BOUNDS,
// the workload and trace formats): a huge, negative or NaN number is refused, never run silently.
//
// Each case runs with --max-simulated-time 2ms and a wall-clock limit (CliIo.maxWallMs), so an accepted mutation
// runs briefly. Knobs: HMMSIM_FUZZ_RUNS (cases per property; default 150 each), HMMSIM_FUZZ_SEED (default:
// derived from the commit, as the property tests' seeds), HMMSIM_FUZZ_PATH (fast-check's counterexample path). A
// failure prints the seed and the command that replays it. (Not a propertyConfig() suite: `npm run soak` would run
// it at 10^5 sequences, hours of CLI runs.)
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { derivedSeed } from "@hmmsim/engine";
import { GPU_SPEC_BOUNDS } from "@hmmsim/driver-gpu";
import { FPGA_JOB_MODES, FPGA_SPEC_BOUNDS } from "@hmmsim/driver-fpga";
import { SPEC_LIMITS, parseBandwidth, parseDuration, parseFrequency, parseSize, parseSpecText } from "@hmmsim/machine";
import { presetNames, readPresetText } from "@hmmsim/machines";
import { bufferIo } from "./cli-io.js";
import { main } from "./main.js";

const env = process.env;
const seed = env.HMMSIM_FUZZ_SEED !== undefined ? Number(env.HMMSIM_FUZZ_SEED) | 0 : derivedSeed().seed;
const seedSource = env.HMMSIM_FUZZ_SEED !== undefined ? "HMMSIM_FUZZ_SEED" : derivedSeed().source;
const runs = (fallback: number): number => (env.HMMSIM_FUZZ_RUNS !== undefined ? Number(env.HMMSIM_FUZZ_RUNS) : fallback);
const params = (numRuns: number) => ({ seed, numRuns, ...(env.HMMSIM_FUZZ_PATH ? { path: env.HMMSIM_FUZZ_PATH } : {}) });

/** A failed fuzz case: the seed and the replay command first. */
async function reported(name: string, check: () => Promise<void>): Promise<void> {
  try {
    await check();
  } catch (e) {
    const path = /path: "([\d:]*)"/.exec(String((e as Error)?.message))?.[1];
    const replay = `HMMSIM_FUZZ_SEED=${seed}${path ? ` HMMSIM_FUZZ_PATH=${path}` : ""} npx vitest run src/spec-fuzz.test.ts -t "${name}"   (in apps/cli)`;
    throw new Error(`fuzz "${name}" failed with seed ${seed} (${seedSource}); replay: ${replay}\n${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
}

/** Every run: under this wall time (the CliIo limit stops a simulation sooner; parsing and validation are linear). */
const WALL_MS = 15_000;

async function runCli(argv: string[], cwd: string) {
  const io = { ...bufferIo({ cwd }), maxWallMs: 3_000 };
  const t0 = performance.now();
  const code = await main(argv, io);
  return { code, out: io.stdout.text, err: io.stderr.text, ms: performance.now() - t0 };
}

function expectClean(r: { code: number; out: string; err: string; ms: number }): void {
  expect([0, 1, 2]).toContain(r.code);
  expect(r.err, r.err).not.toMatch(/^\s+at /m);
  expect(r.out).not.toMatch(/^\s+at /m);
  if (r.code !== 0) expect(r.err, r.err).toMatch(/^hmmsim run: \S/);
  expect(r.ms).toBeLessThan(WALL_MS);
}

// ---- spec mutations --------------------------------------------------------------------------------------------

type Json = unknown;
type Path = (string | number)[];
const PRESETS = presetNames.map((n) => parseSpecText(readPresetText(n)) as Record<string, Json>);

/** Every path in v (containers and leaves), root first. */
function paths(v: Json, at: Path = [], out: Path[] = []): Path[] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (v !== null && typeof v === "object") for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
  return out;
}

const NUMBERS = [0, -1, -1e9, 1e-300, 1e300, NaN, Infinity, -Infinity, 2 ** 53, 2 ** 53 + 2, 2 ** 31, 0.5, 4097, 1e15, 1e7, 1e9, 3 * 2 ** 20, 2 ** 47];
const STRINGS = ["", "x", "1PiB", "4PiB", "-5GiB", "NaN", "1e999GB/s", "1e-300GHz", "0ms", "1e300s", "3MiB", "1MiB", "0x10", "1e3", "gpu0", "cpu"];
const value: fc.Arbitrary<Json> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...NUMBERS) },
  { weight: 2, arbitrary: fc.oneof(fc.double(), fc.integer()) },
  { weight: 3, arbitrary: fc.constantFrom(...STRINGS) },
  { weight: 1, arbitrary: fc.constantFrom<Json>(null, true, false, [], {}, [null]) },
);

interface Op {
  kind: "set" | "delete" | "add" | "dup";
  at: number;
  value: Json;
  key: string;
}
const op: fc.Arbitrary<Op> = fc.record({ kind: fc.constantFrom("set", "set", "set", "delete", "add", "dup"), at: fc.nat(), value, key: fc.constantFrom("colour", "extra", "warps", "memory", "k") });

function apply(spec: Json, o: Op): Json {
  const all = paths(spec);
  const p = all[o.at % all.length]!;
  if (p.length === 0) return o.kind === "set" ? o.value : spec;
  const parent = p.slice(0, -1).reduce<Json>((v, k) => (v as Record<string | number, Json>)[k], spec) as Record<string | number, Json> | Json[];
  const key = p[p.length - 1]!;
  if (o.kind === "set") (parent as Record<string | number, Json>)[key] = o.value;
  else if (o.kind === "delete") {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete (parent as Record<string, Json>)[key];
  } else if (o.kind === "add") {
    const target = (parent as Record<string | number, Json>)[key];
    if (target !== null && typeof target === "object" && !Array.isArray(target)) (target as Record<string, Json>)[o.key] = o.value;
  } else if (Array.isArray(parent)) parent.push(structuredClone(parent[key as number]));
  return spec;
}

// ---- the documented bounds an accepted spec must be within ------------------------------------------------------

const isObj = (v: Json): v is Record<string, Json> => v !== null && typeof v === "object" && !Array.isArray(v);
const num = (v: Json): number | undefined => (typeof v === "number" ? v : undefined);

/** Problems of an accepted spec against the documented bounds (empty: every value is within them). */
function outOfBounds(spec: Json): string[] {
  const bad: string[] = [];
  const need = (ok: boolean, what: string) => {
    if (!ok) bad.push(what);
  };
  const keys = (o: Record<string, Json>, allowed: string[], where: string) => {
    for (const k of Object.keys(o)) need(allowed.includes(k), `${where}.${k}: unknown key accepted`);
  };
  need(isObj(spec), "spec is not a mapping");
  if (!isObj(spec)) return bad;
  keys(spec, ["name", "seed", "bytes", "cpus", "ram", "devices", "links", "workload", "plugins", "maxSimulatedTime"], "spec");
  if (spec.seed !== undefined) need(Number.isSafeInteger(spec.seed) && (spec.seed as number) >= 0, `seed ${String(spec.seed)}`);
  const cpus = spec.cpus as Record<string, Json>;
  need(Number.isInteger(cpus.count) && (cpus.count as number) >= 1 && (cpus.count as number) <= 4096, `cpus.count ${String(cpus.count)}`);
  if (cpus.frequency !== undefined) {
    const hz = parseFrequency(cpus.frequency);
    need(hz !== undefined && hz >= SPEC_LIMITS.minFrequencyHz && hz <= SPEC_LIMITS.maxFrequencyHz, `cpus.frequency ${String(cpus.frequency)}`);
  }
  const ram = parseSize((spec.ram as Record<string, Json>).size);
  need(ram !== undefined && ram > 0 && ram <= SPEC_LIMITS.maxRamBytes && ram % 2 ** 21 === 0, `ram.size ${String(ram)}`);
  const links = (spec.links ?? []) as Record<string, Json>[];
  need(links.length <= SPEC_LIMITS.maxLinks, "too many links");
  for (const [i, l] of links.entries()) {
    for (const f of ["h2dBandwidth", "d2hBandwidth", "cpuAccessBandwidth"]) {
      if (l[f] === undefined) continue;
      const b = parseBandwidth(l[f]);
      need(b !== undefined && b >= SPEC_LIMITS.minBandwidth && b <= SPEC_LIMITS.maxBandwidth, `links[${i}].${f} ${String(l[f])}`);
    }
    for (const f of ["alpha", "cpuAccessLatency"]) {
      if (l[f] === undefined) continue;
      const ps = parseDuration(l[f]);
      need(ps !== undefined && ps <= SPEC_LIMITS.maxLatencyPs, `links[${i}].${f} ${String(l[f])}`);
    }
    keys(l, ["name", "kind", "lanes", "alpha", "h2dBandwidth", "d2hBandwidth", "coherent", "cpuAccessLatency", "cpuAccessBandwidth"], `links[${i}]`);
  }
  for (const [i, d] of ((spec.devices ?? []) as Record<string, Json>[]).entries()) {
    const mem = parseSize(d.memory);
    need(mem !== undefined && mem > 0 && ((d.kind !== "gpu" && d.kind !== "fpga") || mem % 2 ** 21 === 0), `devices[${i}].memory ${String(d.memory)}`);
    keys(d, ["kind", "name", "memory", "memoryType", "driver", "policy", "link", "driverSpec", "policySpec"], `devices[${i}]`);
    if (isObj(d.driverSpec)) {
      for (const [k, v] of Object.entries(d.driverSpec)) {
        if (d.kind === "fpga" && k === "jobMode") {
          need((FPGA_JOB_MODES as readonly Json[]).includes(v), `devices[${i}].driverSpec.${k} ${String(v)}`);
          continue;
        }
        const bounds: Record<string, { min: number; max: number }> = d.kind === "fpga" ? FPGA_SPEC_BOUNDS : GPU_SPEC_BOUNDS;
        const b = bounds[k];
        need(b !== undefined && Number.isSafeInteger(v) && (v as number) >= b.min && (v as number) <= b.max, `devices[${i}].driverSpec.${k} ${String(v)}`);
      }
    }
  }
  // The workload's numeric params (the workload formats' rules).
  const phases: Json[] = isObj(spec.workload) && spec.workload.kind === "phases" && isObj(spec.workload.params) ? ((spec.workload.params.phases ?? []) as Json[]) : [spec.workload];
  for (const [i, ph] of phases.entries()) {
    if (!isObj(ph) || !isObj(ph.params)) continue;
    const pr = ph.params;
    const where = `phase ${i} ${String(ph.kind)}`;
    if (pr.bytes !== undefined) {
      const b = parseSize(pr.bytes);
      need(b !== undefined && b > 0 && b % 4096 === 0 && b <= 2 ** 47, `${where}.bytes ${String(pr.bytes)}`);
    }
    if (pr.granularity !== undefined) need((parseSize(pr.granularity) ?? 0) >= 1, `${where}.granularity ${String(pr.granularity)}`);
    if (pr.writeFraction !== undefined) {
      const f = num(pr.writeFraction);
      need(f !== undefined && f >= 0 && f <= 1, `${where}.writeFraction ${String(pr.writeFraction)}`);
    }
    if (pr.passes !== undefined) need(Number.isSafeInteger(pr.passes) && (pr.passes as number) >= 1, `${where}.passes ${String(pr.passes)}`);
    if (pr.computeNs !== undefined) need(Number.isFinite(pr.computeNs) && (pr.computeNs as number) >= 0, `${where}.computeNs ${String(pr.computeNs)}`);
  }
  return bad;
}

describe("spec fuzz", () => {
  it("mutated presets: a clear error or a run within the documented bounds, never a stack", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hmmsim-fuzz-"));
    await reported("mutated presets", () =>
      fc.assert(
        fc.asyncProperty(fc.nat({ max: PRESETS.length - 1 }), fc.array(op, { minLength: 1, maxLength: 3 }), async (which, ops) => {
          let spec: Json = structuredClone(PRESETS[which]!);
          for (const o of ops) spec = apply(spec, o);
          const text = stringify(spec);
          writeFileSync(join(dir, "m.yaml"), text);
          const r = await runCli(["run", "m.yaml", "--json", "--max-simulated-time", "2ms"], dir);
          expectClean(r);
          if (r.code === 0) expect(outOfBounds(spec), `accepted:\n${text}`).toEqual([]);
        }),
        params(runs(150)),
      ),
    );
  });
});

// ---- trace mutations --------------------------------------------------------------------------------------------

const TRACE_LINES = ["R 0x1000", "W 4096 12.5", "R 0x2000 1", "# a comment", "W 0x3000", "R 8192 0.25 # hot"];
const TOKENS = ["R", "W", "X", "r", "0x", "-0x10", "0x800000000000", "0x7fffffffffff", "140737488355328", "18446744073709551616", "1e999", "1e300", "-1", "NaN", "Infinity", "0.5", "12.5", "", "#", "0xZZ", "9007199254740993"];

/** A line of the documented trace format with its bounds (address below 2^47, finite compute ≥ 0), or a blank/comment. */
function validTraceLine(line: string): boolean {
  const l = line.replace(/#.*$/, "").trim();
  if (l === "") return true;
  const f = l.split(/\s+/);
  if (f.length < 2 || f.length > 3 || (f[0] !== "R" && f[0] !== "W")) return false;
  const a = /^0[xX][0-9a-fA-F]+$/.test(f[1]!) ? parseInt(f[1]!.slice(2), 16) : /^\d+$/.test(f[1]!) ? Number(f[1]) : NaN;
  if (!(Number.isSafeInteger(a) && a < 2 ** 47)) return false;
  return f.length === 2 || (/^\d+(\.\d+)?([eE][+-]?\d+)?$/.test(f[2]!) && Number.isFinite(Number(f[2])));
}

describe("trace fuzz", () => {
  it("mutated traces: a clear error naming the line, or a replay of lines within the format's bounds", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hmmsim-fuzz-trace-"));
    const edit = fc.record({ line: fc.nat(), field: fc.nat({ max: 3 }), token: fc.constantFrom(...TOKENS), kind: fc.constantFrom("replace", "insert", "delete", "append") });
    await reported("mutated traces", () =>
      fc.assert(
        fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 4 }), async (edits) => {
          const lines = [...TRACE_LINES];
          for (const e of edits) {
            const i = e.line % Math.max(1, lines.length);
            if (e.kind === "delete") lines.splice(i, 1);
            else if (e.kind === "insert") lines.splice(i, 0, `${e.token} ${e.token}`);
            else if (e.kind === "append") lines[i] = `${lines[i] ?? ""} ${e.token}`;
            else {
              const f = (lines[i] ?? "").split(" ");
              f[e.field % Math.max(1, f.length)] = e.token;
              lines[i] = f.join(" ");
            }
          }
          const text = lines.join("\n");
          writeFileSync(join(dir, "t.trace"), text);
          const r = await runCli(["run", "--trace", "t.trace", "--json", "--max-simulated-time", "2ms"], dir);
          expectClean(r);
          if (r.code === 0) {
            expect(lines.every(validTraceLine), `accepted:\n${text}`).toBe(true);
            expect(lines.some((l) => l.replace(/#.*$/, "").trim() !== ""), "an empty trace was accepted").toBe(true);
          } else if (r.code === 1) {
            // A bad line (named), or a trace the machine cannot replay (named why), or a run stopped at a limit.
            expect(r.err, r.err).toMatch(/bad trace: .*t\.trace(:line \d+|: empty trace)|do not fit in the 47-bit user address space|stopped at/);
          }
        }),
        params(runs(150)),
      ),
    );
  });
});
