import { describe, expect, it } from "vitest";
import { measureInterleaved, measureInterleavedAsync } from "./measure.js";

describe("measureInterleaved", () => {
  it("runs warm-up + measured rounds of one sample per case, rotating the order, and reports the median and best", () => {
    const calls: string[] = [];
    const spin = (name: string, n: number) => () => {
      calls.push(name);
      let x = 0;
      for (let i = 0; i < n; i++) x += i;
      return x >= 0 ? n : 0;
    };
    const res = measureInterleaved(
      [
        { name: "a", fn: spin("a", 20_000) },
        { name: "b", fn: spin("b", 20_000) },
        { name: "c", fn: spin("c", 20_000) },
      ],
      { rounds: 5, warmupRounds: 2 },
    );
    expect(calls).toHaveLength(3 * 7);
    // Round r starts with case r % 3.
    for (let r = 0; r < 7; r++) expect(calls.slice(3 * r, 3 * r + 3)).toEqual(["abc", "bca", "cab"][r % 3]!.split(""));
    expect(res.map((m) => m.name)).toEqual(["a", "b", "c"]);
    for (const m of res) {
      expect(m.samples).toBe(5);
      expect(m.opsPerSec).toBeGreaterThan(0);
      expect(m.bestOpsPerSec).toBeGreaterThanOrEqual(m.opsPerSec);
    }
  });

  it("the async variant rotates and counts the same way", async () => {
    const calls: string[] = [];
    const res = await measureInterleavedAsync(
      ["x", "y"].map((name) => ({
        name,
        fn: async () => {
          calls.push(name);
          await Promise.resolve();
          return 10;
        },
      })),
      { rounds: 3, warmupRounds: 1 },
    );
    expect(calls.join("")).toBe("xyyxxyyx");
    expect(res.map((m) => [m.name, m.samples])).toEqual([
      ["x", 3],
      ["y", 3],
    ]);
  });

  it("validates rounds", async () => {
    expect(() => measureInterleaved([{ name: "a", fn: () => 1 }], { rounds: 0 })).toThrow(/opts.rounds = 0/);
    expect(() => measureInterleaved([{ name: "a", fn: () => 1 }], { warmupRounds: -1 })).toThrow(/opts.warmupRounds = -1/);
    await expect(measureInterleavedAsync([{ name: "a", fn: async () => 1 }], { rounds: 1.5 })).rejects.toThrow(/opts.rounds = 1.5/);
  });
});
