import { describe, expect, it } from "vitest";
import { StencilPattern } from "./stencil.js";
import { createPattern } from "./workload.js";

describe("stencil", () => {
  it("reads the 5-point neighbourhood from the input grid and writes the output grid", () => {
    // 3x3 grid of 8-byte elements
    const p = createPattern("stencil", { bytes: 72, rowBytes: 24 }) as StencilPattern;
    expect([p.rows, p.cols]).toEqual([3, 3]);
    const all = [...p];
    expect(all).toHaveLength(p.expectedLength);
    // centre cell (index 4): up 1, left 3, centre 4, right 5, down 7, write B[4]
    const el = (a: { addr: number; write: boolean }) => `${a.write ? "W" : "R"}${a.addr / 8}`;
    const seq = all.map(el);
    const w4 = seq.indexOf("W13"); // B starts at element 9
    expect(seq.slice(w4 - 5, w4 + 1)).toEqual(["R1", "R3", "R4", "R5", "R7", "W13"]);
    // corner cell 0: centre, right, down
    expect(seq.slice(0, 4)).toEqual(["R0", "R1", "R3", "W9"]);
    expect(all.filter((a) => a.write)).toHaveLength(9);
  });

  it("alternates grids between time steps", () => {
    const p = createPattern("stencil", { bytes: 64, rowBytes: 32, passes: 2 });
    const writes = [...p].filter((a) => a.write).map((a) => a.addr);
    expect(writes.slice(0, 8).every((a) => a >= 64)).toBe(true);
    expect(writes.slice(8).every((a) => a < 64)).toBe(true);
  });
});
