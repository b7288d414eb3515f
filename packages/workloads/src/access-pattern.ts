import type { ParamReader } from "./param-reader.js";

/** One memory access of a workload phase. `addr` is a byte address (the pattern's `base` plus an offset). */
export interface Access {
  addr: number;
  write: boolean;
  /** Compute time spent before this access, in integer picoseconds. */
  computePs: number;
}

/**
 * A reusable buffer of accesses (struct of typed arrays) so that generating 16 M accesses allocates nothing
 * per access. `write[i]` is 1 for a write, 0 for a read.
 */
export interface AccessBatch {
  readonly capacity: number;
  readonly addr: Float64Array;
  readonly write: Uint8Array;
  readonly computePs: Float64Array;
}

export function createAccessBatch(capacity = 4096): AccessBatch {
  if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`createAccessBatch: capacity must be a positive integer, got ${capacity}`);
  return {
    capacity,
    addr: new Float64Array(capacity),
    write: new Uint8Array(capacity),
    computePs: new Float64Array(capacity),
  };
}

/**
 * An access-pattern generator. The fast interface is `fill(batch)` (returns how many accesses it wrote, 0 when
 * the pattern is exhausted); `forEach` and iteration are conveniences over it. `reset()` restarts the pattern
 * from its first access and reproduces the same sequence (random patterns re-seed).
 */
export abstract class AccessPattern implements Iterable<Access> {
  /** Generator kind ("streaming", "strided", "random", "stencil", "bfs", "trace"). */
  abstract readonly kind: string;
  /** Bytes spanned by the pattern's addresses (from `base`). */
  abstract readonly workingSetBytes: number;
  /** Total number of accesses, when known before generation (BFS: undefined). */
  abstract readonly expectedLength: number | undefined;
  /** Address of the first byte of the working set; every access lies in [base, base + workingSetBytes). */
  abstract readonly base: number;

  abstract fill(batch: AccessBatch): number;
  abstract reset(): void;

  /** Calls `cb` for every remaining access; returns how many were visited. */
  forEach(cb: (addr: number, write: boolean, computePs: number) => void, batch: AccessBatch = createAccessBatch()): number {
    let total = 0;
    for (let n = this.fill(batch); n > 0; n = this.fill(batch)) {
      for (let i = 0; i < n; i++) cb(batch.addr[i]!, batch.write[i] === 1, batch.computePs[i]!);
      total += n;
    }
    return total;
  }

  *[Symbol.iterator](): Iterator<Access> {
    const batch = createAccessBatch(1024);
    for (let n = this.fill(batch); n > 0; n = this.fill(batch)) {
      for (let i = 0; i < n; i++) yield { addr: batch.addr[i]!, write: batch.write[i] === 1, computePs: batch.computePs[i]! };
    }
  }
}

/** Parameters every synthetic pattern accepts (besides its own). */
export interface CommonParams {
  /** Added to every generated offset (default 0). */
  base?: number | string;
  /** Compute time before each access, in ns (default 0). Converted to integer ps (rounded). */
  computeNs?: number;
  /** Fraction of accesses that are writes, 0..1 (default 0). Spread evenly and deterministically (error diffusion). */
  writeFraction?: number;
  /** How many times the pattern repeats (default 1). */
  passes?: number;
}

export interface Common {
  base: number;
  computePs: number;
  writeFraction: number;
  passes: number;
}

export function readCommon(r: ParamReader, opts: { writeFraction?: boolean } = {}): Common {
  const base = r.size("base", { default: 0 });
  const computeNs = r.number("computeNs", { default: 0, min: 0 });
  const writeFraction = opts.writeFraction === false ? 0 : r.number("writeFraction", { default: 0, min: 0, max: 1 });
  const passes = r.int("passes", { default: 1, min: 1 });
  return { base, computePs: Math.round(computeNs * 1000), writeFraction, passes };
}

/**
 * The most accesses one pattern may make: 2^40 (≈ 1.1 × 10^12). The simulator runs on the order of 10^6–10^7
 * accesses a second, so 2^40 is already days of wall time; a larger count (`passes: 1e15`) is a typo or a unit
 * mistake, and past 2^53 the counters would no longer be exact. A pattern whose parameters give more is refused
 * (WorkloadParamError naming the field that makes it so big).
 */
export const MAX_ACCESSES = 2 ** 40;

/** A page: `bytes` of streaming, strided and random is a whole number of them (as the CLI's --size demands). */
export const WORKLOAD_PAGE_BYTES = 4096;

/**
 * Report `total` accesses over MAX_ACCESSES, naming `field` (the parameter that makes it so big): "passes" when the
 * pattern repeats, else the per-pass one. NaN totals (a bad field already reported) are skipped.
 */
export function checkAccessCount(r: ParamReader, perPass: number, passes: number, perPassField: string): void {
  const total = perPass * passes;
  if (!(total > MAX_ACCESSES)) return;
  const field = passes > 1 ? "passes" : perPassField;
  const detail = passes > 1 ? `${perPass} per pass × ${passes} passes` : `${perPass} in one pass`;
  r.issue(field, `gives ${total} accesses (${detail}); a pattern makes at most 2^40 (${MAX_ACCESSES}), days of simulation already`);
}

/** `bytes` must be a whole number of 4 KiB pages (streaming, strided, random; the CLI's --size rule). */
export function checkWholePages(r: ParamReader, bytes: number): void {
  if (bytes > 0 && bytes % WORKLOAD_PAGE_BYTES !== 0) {
    r.issue("bytes", `must be a whole number of 4KiB pages (a multiple of ${WORKLOAD_PAGE_BYTES}), got ${bytes}`);
  }
}

/** Error diffusion: access i (0-based) is a write iff floor((i+1)·f) > floor(i·f); exactly ⌊n·f⌋ writes in n. */
export function isWriteAt(i: number, f: number): boolean {
  return f > 0 && Math.floor((i + 1) * f) > Math.floor(i * f);
}
