// Seeded pseudo-random generator owned by the engine: xoshiro128** (Blackman & Vigna, 2018), seeded by splitmix32.
//
// xoshiro128** keeps 128 bits of state in four uint32 words s0..s3. One step:
//     result = rotl(s1 * 5, 7) * 9
//     t = s1 << 9
//     s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 11)
// (all arithmetic mod 2^32; Math.imul for the multiplies). Period 2^128 - 1; passes BigCrush. The state must
// not be all zero, which the seeding never produces (it is checked anyway).
//
// Seeding: a seed is any safe integer. Its low and high 32-bit halves are folded into a 32-bit key, and the four
// state words are the first four outputs of splitmix32 started at that key. splitmix32 (a Weyl sequence with the
// golden-ratio increment 0x9e3779b9, finished by a 32-bit avalanche mixer with the multipliers 0x21f0aaad and
// 0x735a2d97) turns close seeds (1, 2, 3...) into unrelated states.
//
// Determinism rule of hmmsim: every random choice draws from an Rng that comes from the engine's seed
// (engine.rng, or a stream derived from it with derive(label)); never Math.random.

const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;

/** One splitmix32 step on a 32-bit Weyl state; returns [next state, output]. */
function splitmix32(state: number): [number, number] {
  const s = (state + 0x9e3779b9) | 0;
  let z = s;
  z ^= z >>> 16;
  z = Math.imul(z, 0x21f0aaad);
  z ^= z >>> 15;
  z = Math.imul(z, 0x735a2d97);
  z ^= z >>> 15;
  return [s, z >>> 0];
}

/** Folds a safe-integer seed into a 32-bit key. */
function seedKey(seed: number): number {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / TWO_POW_32) >>> 0;
  return (lo ^ splitmix32(hi)[1]) >>> 0;
}

/** FNV-1a 32-bit hash of a label (UTF-16 code units). */
function fnv1a(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  /** 32-bit key this generator was seeded from; derive() builds child keys from it. */
  readonly key: number;

  /** @param seed any safe integer (negative values use their two's-complement bits). */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`Rng seed = ${seed}: must be a safe integer`);
    this.key = seedKey(seed);
    this.seedFromKey(this.key);
  }

  /** A generator with the given raw xoshiro128** state (for reference vectors); not all zero. */
  static fromState(a: number, b: number, c: number, d: number): Rng {
    const r = new Rng(0);
    r.s0 = a >>> 0;
    r.s1 = b >>> 0;
    r.s2 = c >>> 0;
    r.s3 = d >>> 0;
    if ((r.s0 | r.s1 | r.s2 | r.s3) === 0) throw new RangeError("Rng state must not be all zero");
    return r;
  }

  private seedFromKey(key: number): void {
    let st = key | 0;
    let out: number;
    [st, out] = splitmix32(st);
    this.s0 = out;
    [st, out] = splitmix32(st);
    this.s1 = out;
    [st, out] = splitmix32(st);
    this.s2 = out;
    [, out] = splitmix32(st);
    this.s3 = out;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next uniform uint32 in [0, 2^32). */
  nextU32(): number {
    const s1 = this.s1;
    const m = Math.imul(s1, 5);
    const result = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= s1;
    this.s1 = s1 ^ this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    return result;
  }

  /** Uniform float in [0, 1) with 53 random bits (two draws). */
  nextFloat(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / TWO_POW_53;
  }

  /**
   * Unbiased uniform integer in [0, n), n a safe integer in [1, 2^53]. Rejection sampling: draws above the
   * largest multiple of n are redrawn, so every value has exactly the same probability.
   */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_53) {
      throw new RangeError(`Rng.int(n = ${n}): n must be an integer in [1, 2^53]`);
    }
    if (n <= TWO_POW_32) {
      const limit = TWO_POW_32 - (TWO_POW_32 % n);
      for (;;) {
        const x = this.nextU32();
        if (x < limit) return x % n;
      }
    }
    const limit = TWO_POW_53 - (TWO_POW_53 % n);
    for (;;) {
      const x = (this.nextU32() >>> 11) * TWO_POW_32 + this.nextU32(); // 21 + 32 bits
      if (x < limit) return x % n;
    }
  }

  /** Uniform pick of one element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("Rng.pick(items): items must not be empty");
    return items[this.int(items.length)]!;
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i]!;
      items[i] = items[j]!;
      items[j] = t;
    }
    return items;
  }

  /** An independent generator seeded from this one's next draws (advances this generator). */
  fork(): Rng {
    const r = new Rng(0);
    const key = (this.nextU32() ^ Math.imul(this.nextU32(), 0x9e3779b9)) >>> 0;
    (r as { key: number }).key = key;
    r.seedFromKey(key);
    return r;
  }

  /**
   * A named child stream that depends only on this generator's seed key and the label, not on how many values
   * were drawn so far (does not advance this generator). Components take their stream at setup with
   * `engine.rng.derive("gpu0.tlb")`, so adding draws in one component never shifts another's numbers.
   */
  derive(label: string): Rng {
    const r = new Rng(0);
    const key = (splitmix32(this.key ^ fnv1a(label))[1] ^ fnv1a(label + "\u0000")) >>> 0;
    (r as { key: number }).key = key;
    r.seedFromKey(key);
    return r;
  }
}
