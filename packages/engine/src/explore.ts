// Schedule explorer: reruns a scenario under many seeds; the seed decides which ready task proceeds at each yield
// point (and at every other same-time choice). Stops at the first failure and reports the seed that replays it.
//
// Strategies:
//  - "random": every same-time event gets a seeded random order key (Engine tieBreak "random").
//  - "pct": Probabilistic Concurrency Testing (Burckhardt et al., ASPLOS 2010). Each task gets a random priority
//    at spawn; among ready tasks at the same time the highest priority runs; `depth - 1` change points, drawn
//    uniformly from the first `steps` task steps, drop the running task's priority below every initial priority.
//    A bug of depth d is found with probability ≥ 1/(n·k^(d-1)) per run (n tasks, k steps).
// Run i uses seed `i === 0 ? opts.seed : runSeed(opts.seed, i)`, so a failure's seed replays on its own with
// `replay(scenario, failure.seed, sameOpts)` or `explore(scenario, { ...sameOpts, runs: 1, seed: failure.seed })`.
import { Engine, errorMessage, type EngineOptions } from "./engine.js";
import { DeadlockError, EngineOptionError, EngineUsageError, ForeignAwaitError, LivelockError } from "./errors.js";

export type ExploreStrategy = "random" | "pct";

export interface ExploreOptions {
  /** Number of runs (≥ 1). */
  runs: number;
  /** Seed of the first run; later runs derive theirs from it. */
  seed: number;
  /** "random" (default) or "pct". */
  strategy?: ExploreStrategy;
  /** PCT bug depth (default 2). */
  depth?: number;
  /** PCT: estimated task steps per run; change points are drawn from [1, steps] (default 64). */
  steps?: number;
  /** livelockBound of each run's engine (default 100_000). */
  livelockBound?: number;
  /** Record each run's event trace (default true; the failure carries it). */
  trace?: boolean;
}

export type FailureKind = "deadlock" | "livelock" | "foreign-await" | "error";

export interface ExploreFailure {
  /** Seed that replays this failure exactly. */
  seed: number;
  /** Index of the failing run. */
  run: number;
  kind: FailureKind;
  error: unknown;
  message: string;
  /** Name of the task whose error failed the run, if a task threw. */
  task: string | null;
  /** The failing run's event trace. */
  trace: readonly string[];
}

export interface ExploreResult {
  ok: boolean;
  /** Runs executed (stops at the first failure). */
  runs: number;
  failure: ExploreFailure | null;
  /** Seeds of the runs executed, in order. */
  seeds: number[];
  /** Number of distinct event traces seen (a measure of interleavings covered; 0 when trace is off). */
  distinctTraces: number;
}

export type Scenario = (engine: Engine) => Promise<void> | void;

/** Seed of run i ≥ 1 derived from the base seed (a uint32). */
export function runSeed(seed: number, i: number): number {
  let z = (Math.imul(seed >>> 0, 0x85ebca6b) ^ Math.imul(i, 0x9e3779b9) ^ Math.floor(seed / 4294967296)) | 0;
  z = (z + 0x9e3779b9) | 0;
  z ^= z >>> 16;
  z = Math.imul(z, 0x21f0aaad);
  z ^= z >>> 15;
  z = Math.imul(z, 0x735a2d97);
  z ^= z >>> 15;
  return z >>> 0;
}

function classify(e: unknown): FailureKind {
  if (e instanceof DeadlockError) return "deadlock";
  if (e instanceof LivelockError) return "livelock";
  if (e instanceof ForeignAwaitError) return "foreign-await";
  return "error";
}

function engineOptions(seed: number, opts: Omit<ExploreOptions, "runs" | "seed">): EngineOptions {
  const strategy = opts.strategy ?? "random";
  const base: EngineOptions = { seed, livelockBound: opts.livelockBound ?? 100_000, trace: opts.trace ?? true };
  if (strategy === "pct") return { ...base, pct: { depth: opts.depth ?? 2, steps: opts.steps ?? 64 } };
  if (strategy === "random") return { ...base, tieBreak: "random" };
  throw new EngineOptionError("explore opts", "strategy", strategy, 'must be "random" or "pct"');
}

/** Runs the scenario once on a fresh engine with the given seed; returns the failure or null, and the trace. */
async function runOnce(
  scenario: Scenario,
  seed: number,
  opts: Omit<ExploreOptions, "runs" | "seed">,
): Promise<{ error: unknown; failed: boolean; engine: Engine }> {
  const engine = new Engine(engineOptions(seed, opts));
  try {
    await scenario(engine);
    if (!engine.isRunning && (engine.pendingEvents > 0 || engine.liveTasks > 0)) await engine.run();
    return { error: undefined, failed: false, engine };
  } catch (e) {
    return { error: e, failed: true, engine };
  }
}

/** Reruns `scenario` under `runs` seeds; stops at the first failure (a throw, a failed assertion, a deadlock...). */
export async function explore(scenario: Scenario, opts: ExploreOptions): Promise<ExploreResult> {
  if (typeof opts !== "object" || opts === null) throw new EngineUsageError(`explore opts = ${String(opts)}: must be an object`);
  const { runs, seed } = opts;
  if (!Number.isSafeInteger(runs) || runs < 1) throw new EngineOptionError("explore opts", "runs", runs, "must be an integer >= 1");
  if (!Number.isSafeInteger(seed) || seed < 0) throw new EngineOptionError("explore opts", "seed", seed, "must be an integer >= 0 (at most 2^53 - 1)");
  for (const field of ["depth", "steps"] as const) {
    const v = opts[field];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 1)) throw new EngineOptionError("explore opts", field, v, "must be an integer >= 1");
  }
  // The engine checks the rest (strategy, livelockBound, trace, depth < 2^20) before the first run, outside its catch.
  new Engine(engineOptions(seed, opts));
  const seeds: number[] = [];
  const traces = new Set<string>();
  for (let i = 0; i < runs; i++) {
    const s = i === 0 ? seed : runSeed(seed, i);
    seeds.push(s);
    const r = await runOnce(scenario, s, opts);
    if (r.engine.eventTrace.length > 0) traces.add(r.engine.eventTrace.join("\n"));
    if (r.failed) {
      return {
        ok: false,
        runs: i + 1,
        seeds,
        distinctTraces: traces.size,
        failure: {
          seed: s,
          run: i,
          kind: classify(r.error),
          error: r.error,
          message: errorMessage(r.error),
          task: r.engine.failedTask?.name ?? null,
          trace: r.engine.eventTrace,
        },
      };
    }
  }
  return { ok: true, runs, seeds, distinctTraces: traces.size, failure: null };
}

/** Runs the scenario once with exactly this seed (same strategy options as the exploration that found it). */
export function replay(
  scenario: Scenario,
  seed: number,
  opts: Omit<ExploreOptions, "runs" | "seed"> = {},
): Promise<ExploreResult> {
  return explore(scenario, { ...opts, runs: 1, seed });
}
