import { describe, expect, it } from "vitest";
import { BFS_LEVEL_BYTES, BfsPattern } from "./bfs.js";
import { createPattern } from "./workload.js";

describe("bfs", () => {
  it("writes each reached vertex's level exactly once and reads offsets of every dequeued vertex", () => {
    const p = createPattern("bfs", { vertices: 1000, degree: 4, seed: 3 }) as BfsPattern;
    const all = [...p];
    const levelAt = p.workingSetBytes - 1000 * BFS_LEVEL_BYTES;
    const writes = all.filter((a) => a.write);
    expect(writes.every((a) => a.addr >= levelAt && a.addr < p.workingSetBytes)).toBe(true);
    expect(new Set(writes.map((a) => a.addr)).size).toBe(writes.length);
    expect(writes.length).toBe(p.reached - 1); // the source is marked without a write
    expect(p.reached).toBeGreaterThan(900); // a random 4-regular digraph is mostly reachable
    // accesses per dequeued vertex: 2 offsets + per edge (edge read + level read) + writes
    expect(all.length).toBe(p.reached * (2 + 2 * 4) + writes.length);
  });

  it("is deterministic by seed", () => {
    const a = [...createPattern("bfs", { vertices: 500, degree: 3, seed: 9 })];
    const b = [...createPattern("bfs", { vertices: 500, degree: 3, seed: 9 })];
    const c = [...createPattern("bfs", { vertices: 500, degree: 3, seed: 10 })];
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it("validates source against vertices", () => {
    expect(() => createPattern("bfs", { vertices: 10, degree: 2, source: 10, seed: 1 })).toThrowError(
      "bfs.source: must be < vertices (10), got 10",
    );
  });
});
