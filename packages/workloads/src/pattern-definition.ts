import type { AccessPattern } from "./access-pattern.js";
import type { ParamReader } from "./param-reader.js";

/** Anything that yields uniformly distributed unsigned 32-bit integers: the engine's Rng (`engine.rng.derive(…)`). */
export interface RandomSource {
  nextU32(): number;
}

/** What a generator may need besides its parameters. */
export interface PatternContext {
  /** Seed for random patterns when their params carry no `seed` (e.g. the machine spec's seed). */
  seed?: number;
  /** Alternative to `seed`: a seed is drawn from it once, at creation (so `reset()` still replays). */
  rng?: RandomSource;
  /** Reads a trace file named by a "trace" pattern's `file` param (default: node:fs readFileSync, utf8). */
  readText?: (file: string) => string;
}

/**
 * A generator kind: `read` validates the params through the reader (collecting every issue) and returns a
 * thunk that builds the pattern; the thunk is only called when there were no issues.
 */
export interface PatternDefinition {
  readonly kind: string;
  read(r: ParamReader, ctx: PatternContext): () => AccessPattern;
}

/** Resolves the seed of a random pattern: params.seed, then ctx.seed, then one draw from ctx.rng. */
export function readSeed(r: ParamReader, ctx: PatternContext): number {
  if (r.has("seed")) return r.int("seed", { min: 0 });
  r.raw("seed");
  if (ctx.seed !== undefined) return ctx.seed;
  if (ctx.rng) return ctx.rng.nextU32();
  r.issue("seed", "required (no seed in the params and none given by the caller)");
  return NaN;
}
