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
