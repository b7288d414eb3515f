import { describe, expect, it } from "vitest";
import { Rng } from "@hmmsim/engine";
import { createPattern, validatePattern } from "./workload.js";
import { WorkloadParamError } from "./workload-param-error.js";

const addrs = (p: Iterable<{ addr: number }>) => [...p].map((a) => a.addr);

describe("random", () => {
  it("is deterministic by seed and differs across seeds", () => {
    const a = addrs(createPattern("random", { bytes: "1GiB", count: 1000, seed: 42 }));
    const b = addrs(createPattern("random", { bytes: "1GiB", count: 1000, seed: 42 }));
    const c = addrs(createPattern("random", { bytes: "1GiB", count: 1000, seed: 43 }));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a.every((x) => x % 4096 === 0 && x >= 0 && x < 2 ** 30)).toBe(true);
    expect(new Set(a).size).toBeGreaterThan(990); // 1000 draws from 262144 pages: few repeats
  });

  it("covers a small set roughly uniformly", () => {
    const counts = new Array(8).fill(0);
    for (const x of addrs(createPattern("random", { bytes: 8 * 4096, count: 8000, seed: 1 }))) counts[x / 4096]++;
    for (const c of counts) {
      expect(c).toBeGreaterThan(850);
      expect(c).toBeLessThan(1150);
    }
  });

  it("takes the seed from the caller's context or rng, and reset() replays", () => {
    const p = createPattern("random", { bytes: "1MiB", count: 50 }, { seed: 7 });
    const q = createPattern("random", { bytes: "1MiB", count: 50, seed: 7 });
    const first = addrs(p);
    expect(first).toEqual(addrs(q));
    p.reset();
    expect(addrs(p)).toEqual(first);
    const r1 = addrs(createPattern("random", { bytes: "1MiB", count: 50 }, { rng: new Rng(5) }));
    const r2 = addrs(createPattern("random", { bytes: "1MiB", count: 50 }, { rng: new Rng(5) }));
    expect(r1).toEqual(r2);
  });

  it("without any seed is an error naming the field", () => {
    expect(() => createPattern("random", { bytes: "1MiB" })).toThrowError(/random.seed: required/);
  });

  it("lists every bad field at once, and unknown fields", () => {
    const issues = validatePattern("random", { bytes: "lots", granularity: -1, writeFraction: 2, colour: "red" });
    expect(issues.map((i) => i.path).sort()).toEqual(["bytes", "colour", "granularity", "writeFraction"]);
    expect(issues.find((i) => i.path === "bytes")!.message).toMatch(/expected a size like "16GiB"/);
    expect(issues.find((i) => i.path === "colour")!.message).toBe("unknown field");
    expect(() => createPattern("random", { bytes: "lots", seed: 1 })).toThrowError(WorkloadParamError);
  });
});
