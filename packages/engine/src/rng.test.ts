import { describe, expect, it } from "vitest";
import { Rng } from "./rng.js";

describe("Rng (xoshiro128** + splitmix32)", () => {
  it("matches the xoshiro128** reference outputs for state {1, 2, 3, 4}", () => {
    const r = Rng.fromState(1, 2, 3, 4);
    // Hand-computed from the reference algorithm (Blackman & Vigna): rotl(s1*5, 7)*9.
    expect([r.nextU32(), r.nextU32(), r.nextU32()]).toEqual([11520, 0, 5927040]);
  });

  it("rejects an all-zero state and non-integer seeds", () => {
    expect(() => Rng.fromState(0, 0, 0, 0)).toThrow(/all zero/);
    expect(() => new Rng(1.5)).toThrow(/seed = 1.5/);
  });

  it("is deterministic per seed and differs between close seeds", () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const sa = Array.from({ length: 8 }, () => a.nextU32());
    expect(Array.from({ length: 8 }, () => b.nextU32())).toEqual(sa);
    expect(Array.from({ length: 8 }, () => c.nextU32())).not.toEqual(sa);
    expect(new Rng(2 ** 40).nextU32()).not.toBe(new Rng(0).nextU32()); // high seed bits matter
  });

  it("nextFloat stays in [0, 1) with a mean near 1/2", () => {
    const r = new Rng(7);
    let sum = 0;
    for (let i = 0; i < 20000; i++) {
      const f = r.nextFloat();
      expect(f >= 0 && f < 1).toBe(true);
      sum += f;
    }
    expect(Math.abs(sum / 20000 - 0.5)).toBeLessThan(0.01);
  });

  it("int(n) is in range and uniform (chi-square over 6 buckets)", () => {
    const r = new Rng(1);
    const n = 6;
    const counts = new Array<number>(n).fill(0);
    const draws = 60000;
    for (let i = 0; i < draws; i++) counts[r.int(n)]!++;
    const exp = draws / n;
    const chi2 = counts.reduce((s, c) => s + ((c - exp) * (c - exp)) / exp, 0);
    expect(chi2).toBeLessThan(20.5); // p ≈ 0.001 at 5 degrees of freedom
    for (let i = 0; i < 1000; i++) {
      const x = r.int(3 * 2 ** 40);
      expect(Number.isInteger(x) && x >= 0 && x < 3 * 2 ** 40).toBe(true);
    }
    expect(r.int(1)).toBe(0);
  });

  it("int(n) validates n", () => {
    const r = new Rng(1);
    expect(() => r.int(0)).toThrow(/n must be an integer in \[1, 2\^53\]/);
    expect(() => r.int(2.5)).toThrow(/n = 2.5/);
  });

  it("derive(label) depends on seed and label only, not on draws so far; fork() advances the parent", () => {
    const a = new Rng(5);
    const d1 = a.derive("gpu0").nextU32();
    a.nextU32();
    a.nextU32();
    expect(a.derive("gpu0").nextU32()).toBe(d1);
    expect(a.derive("gpu1").nextU32()).not.toBe(d1);
    expect(new Rng(6).derive("gpu0").nextU32()).not.toBe(d1);

    const b = new Rng(5);
    const c = new Rng(5);
    const fb = b.fork();
    expect(fb.nextU32()).toBe(c.fork().nextU32());
    expect(b.nextU32()).toBe(c.nextU32());
    expect(b.nextU32()).not.toBe(new Rng(5).nextU32());
  });
});
