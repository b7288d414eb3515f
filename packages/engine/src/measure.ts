// Benchmark helpers for src/*.bench.ts (wall-clock measurement; never used by simulation logic or tests' asserts).
import { performance } from "node:perf_hooks";

export interface MeasureOptions {
  /** Minimum measured time, ms (default 300). A warm-up of about a third of it runs first. */
  minMs?: number;
}

export interface Measurement {
  name: string;
  opsPerSec: number;
}

/** Repeats fn until minMs elapsed (after a warm-up); fn returns the number of ops it did (default 1). */
export function measure(name: string, fn: () => number | void, opts: MeasureOptions = {}): Measurement {
  const minMs = opts.minMs ?? 300;
  const warm = performance.now();
  do fn();
  while (performance.now() - warm < minMs / 3);
  let ops = 0;
  const t0 = performance.now();
  let t: number;
  do {
    const n = fn();
    ops += typeof n === "number" ? n : 1;
    t = performance.now();
  } while (t - t0 < minMs);
  return { name, opsPerSec: (ops * 1000) / (t - t0) };
}

/** measure() for an async fn. */
export async function measureAsync(
  name: string,
  fn: () => Promise<number | void>,
  opts: MeasureOptions = {},
): Promise<Measurement> {
  const minMs = opts.minMs ?? 300;
  const warm = performance.now();
  do await fn();
  while (performance.now() - warm < minMs / 3);
  let ops = 0;
  const t0 = performance.now();
  let t: number;
  do {
    const n = await fn();
    ops += typeof n === "number" ? n : 1;
    t = performance.now();
  } while (t - t0 < minMs);
  return { name, opsPerSec: (ops * 1000) / (t - t0) };
}

export interface InterleavedCase {
  name: string;
  /** One sample: does some work and returns the number of ops it did. */
  fn: () => number;
}

export interface InterleavedOptions {
  /** Measured rounds (default 41); each round runs every case once, in a rotating order. */
  rounds?: number;
  /** Unmeasured warm-up rounds first (default 8). */
  warmupRounds?: number;
}

export interface InterleavedMeasurement extends Measurement {
  /** ops/s of the fastest sample (least disturbed by other load on the machine). */
  bestOpsPerSec: number;
  /** Number of measured samples. */
  samples: number;
}

/**
 * Measures several cases against each other on a shared, noisy machine: rounds of one sample per case, the case
 * order rotating each round, so that a burst of outside load hits every case alike. `opsPerSec` is from the
 * median sample (robust to load spikes), `bestOpsPerSec` from the fastest. Ratios between cases of one call are
 * comparable; each sample should take a few ms or more.
 */
export function measureInterleaved(cases: readonly InterleavedCase[], opts: InterleavedOptions = {}): InterleavedMeasurement[] {
  const [rounds, warm] = roundsOf("measureInterleaved", opts);
  const rates: number[][] = cases.map(() => []);
  for (let r = 0; r < warm + rounds; r++) {
    for (let k = 0; k < cases.length; k++) {
      const i = (r + k) % cases.length;
      const t0 = performance.now();
      const ops = cases[i]!.fn();
      const ms = performance.now() - t0;
      if (r >= warm) rates[i]!.push((ops * 1000) / Math.max(ms, 1e-6));
    }
  }
  return summarize(cases, rates);
}

export interface InterleavedAsyncCase {
  name: string;
  /** One sample: does some work and resolves to the number of ops it did. */
  fn: () => Promise<number>;
}

/** measureInterleaved() for async cases (tasks on an engine); same rounds, rotation and median. */
export async function measureInterleavedAsync(
  cases: readonly InterleavedAsyncCase[],
  opts: InterleavedOptions = {},
): Promise<InterleavedMeasurement[]> {
  const [rounds, warm] = roundsOf("measureInterleavedAsync", opts);
  const rates: number[][] = cases.map(() => []);
  for (let r = 0; r < warm + rounds; r++) {
    for (let k = 0; k < cases.length; k++) {
      const i = (r + k) % cases.length;
      const t0 = performance.now();
      const ops = await cases[i]!.fn();
      const ms = performance.now() - t0;
      if (r >= warm) rates[i]!.push((ops * 1000) / Math.max(ms, 1e-6));
    }
  }
  return summarize(cases, rates);
}

function roundsOf(fn: string, opts: InterleavedOptions): [number, number] {
  const rounds = opts.rounds ?? 41;
  const warm = opts.warmupRounds ?? 8;
  if (!Number.isSafeInteger(rounds) || rounds < 1) throw new RangeError(`${fn} opts.rounds = ${rounds}: must be a positive integer`);
  if (!Number.isSafeInteger(warm) || warm < 0) throw new RangeError(`${fn} opts.warmupRounds = ${warm}: must be a non-negative integer`);
  return [rounds, warm];
}

function summarize(cases: readonly { name: string }[], rates: number[][]): InterleavedMeasurement[] {
  return cases.map((c, i) => {
    const s = rates[i]!.sort((a, b) => a - b);
    return { name: c.name, opsPerSec: s[s.length >> 1]!, bestOpsPerSec: s[s.length - 1]!, samples: s.length };
  });
}
