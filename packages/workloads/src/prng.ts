/**
 * A small seeded PRNG for access-pattern generators: xoshiro128** (Blackman & Vigna), seeded through
 * splitmix32 so that nearby seeds give unrelated streams. Never Math.random: a run is reproducible from its seed.
 *
 * Generators take either a seed or any object with `nextU32()` (e.g. the engine's Rng).
 */

/** Anything that yields uniformly distributed unsigned 32-bit integers. */
export interface RandomSource {
  nextU32(): number;
}

export class Xoshiro128 implements RandomSource {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`Xoshiro128: seed must be a safe integer, got ${seed}`);
    // splitmix32 over the low and high halves of the seed
    let s = (seed >>> 0) ^ Math.imul(Math.floor(seed / 2 ** 32) >>> 0, 0x9e3779b9);
    const next = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1;
  }

  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * A uniform integer in [0, n) for 1 <= n <= 2^53. Exact (rejection, no modulo bias) for n <= 2^21, where
 * x·n stays below 2^53; above that from a 53-bit draw (bias below 2^-31).
 */
export function uniformInt(rng: RandomSource, n: number): number {
  if (n <= 0x20_0000) {
    const threshold = (0x1_0000_0000 - n) % n;
    for (;;) {
      const m = rng.nextU32() * n; // exact: < 2^53
      if (m % 0x1_0000_0000 >= threshold) return Math.floor(m / 0x1_0000_0000);
    }
  }
  const x = (rng.nextU32() >>> 11) * 0x1_0000_0000 + rng.nextU32(); // uniform in [0, 2^53)
  return Math.min(n - 1, Math.floor((x / 2 ** 53) * n));
}
