import { AccessPattern, type AccessBatch, type Common, type CommonParams, checkAccessCount, checkWholePages, isWriteAt, readCommon } from "./access-pattern.js";
import { type PatternDefinition, readSeed } from "./pattern-definition.js";
import { Rng } from "@hmmsim/engine";

export interface RandomParams extends CommonParams {
  /** Working-set size (required). */
  bytes: number | string;
  /** Access size and alignment (default 4KiB). */
  granularity?: number | string;
  /** Accesses per pass (default: one per granule, bytes/granularity). */
  count?: number;
  /** PRNG seed (default: the caller's seed or rng; see PatternContext). */
  seed?: number;
}

/** Uniformly random granule-aligned accesses, drawn from the engine's seeded Rng (xoshiro128**, @hmmsim/engine). */
export class RandomPattern extends AccessPattern {
  readonly kind = "random";
  readonly base: number;
  readonly workingSetBytes: number;
  readonly expectedLength: number;
  private readonly granules: number;
  private rng: Rng;
  private done = 0;
  private seq = 0;

  constructor(
    bytes: number,
    private readonly granularity: number,
    private readonly count: number,
    readonly seed: number,
    private readonly common: Common,
  ) {
    super();
    this.base = common.base;
    this.workingSetBytes = bytes;
    this.granules = Math.floor(bytes / granularity);
    this.expectedLength = count * common.passes;
    this.rng = new Rng(seed);
  }

  fill(b: AccessBatch): number {
    const { base, computePs, writeFraction: f } = this.common;
    const g = this.granularity;
    const n = Math.min(b.capacity, this.expectedLength - this.done);
    for (let i = 0; i < n; i++) {
      b.addr[i] = base + this.rng.int(this.granules) * g;
      b.write[i] = isWriteAt(this.seq++, f) ? 1 : 0;
      b.computePs[i] = computePs;
    }
    this.done += n;
    return n;
  }

  reset(): void {
    this.rng = new Rng(this.seed);
    this.done = this.seq = 0;
  }
}

export const random: PatternDefinition = {
  kind: "random",
  read(r, ctx) {
    const bytes = r.size("bytes", { min: 1 });
    checkWholePages(r, bytes);
    const granularity = r.size("granularity", { default: 4096, min: 1 });
    if (bytes > 0 && granularity > bytes) r.issue("granularity", `must be <= bytes (${bytes}), got ${granularity}`);
    const count = r.int("count", { default: Math.max(1, Math.floor(bytes / granularity) || 1), min: 0 });
    const seed = readSeed(r, ctx);
    const common = readCommon(r);
    checkAccessCount(r, count, common.passes, r.has("count") ? "count" : "bytes");
    return () => new RandomPattern(bytes, granularity, count, seed, common);
  },
};
