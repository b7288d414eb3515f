import { describe, expect, it } from "vitest";
import { createAccessBatch } from "./access-pattern.js";
import { createPattern } from "./workload.js";

describe("streaming", () => {
  it("sweeps the working set in order, pass after pass, with exact write fraction and compute time", () => {
    const p = createPattern("streaming", { bytes: "16KiB", passes: 2, writeFraction: 0.25, computeNs: 1.5, base: "1MiB" });
    const all = [...p];
    expect(all.map((a) => a.addr - 2 ** 20)).toEqual([0, 4096, 8192, 12288, 0, 4096, 8192, 12288]);
    expect(all.filter((a) => a.write)).toHaveLength(2);
    expect(all.every((a) => a.computePs === 1500)).toBe(true);
    expect(p.expectedLength).toBe(8);
    expect(p.workingSetBytes).toBe(16384);
  });

  it("reset() replays the same sequence", () => {
    const p = createPattern("streaming", { bytes: 40960, granularity: 4096, writeFraction: 0.3 });
    const a = [...p];
    expect([...p]).toEqual([]);
    p.reset();
    expect([...p]).toEqual(a);
  });

  it("scales to 16 M pages (64 GiB at 4 KiB) through fill() without per-access objects", () => {
    const p = createPattern("streaming", { bytes: "64GiB" });
    const batch = createAccessBatch(1 << 16);
    let count = 0;
    let last = -1;
    for (let n = p.fill(batch); n > 0; n = p.fill(batch)) {
      count += n;
      last = batch.addr[n - 1]!;
    }
    expect(count).toBe(16 * 1024 * 1024);
    expect(last).toBe(64 * 2 ** 30 - 4096);
  });
});
