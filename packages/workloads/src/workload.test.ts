import { describe, expect, it } from "vitest";
import { createWorkload, validateWorkload } from "./workload.js";
import { WorkloadParamError } from "./workload-param-error.js";

describe("workload specs", () => {
  it("builds CPU and device phases", () => {
    const w = createWorkload({
      kind: "phases",
      params: {
        phases: [
          { on: "cpu", kind: "streaming", params: { bytes: "64KiB", writeFraction: 1 } },
          { on: "gpu0", kind: "random", params: { bytes: "64KiB", count: 4 } },
        ],
      },
    }, { seed: 1 });
    expect(w.phases.map((p) => [p.on, p.pattern.kind])).toEqual([["cpu", "streaming"], ["gpu0", "random"]]);
    expect([...w.phases[0]!.pattern].every((a) => a.write)).toBe(true);
    expect(createWorkload({ kind: "streaming", params: { bytes: 4096 } }).phases[0]!.on).toBe("device");
  });

  it("lists every issue with its path", () => {
    const issues = validateWorkload({
      kind: "phases",
      params: {
        phases: [
          { on: "cpu", kind: "zigzag", params: {} },
          { kind: "strided", params: { bytes: "1MiB", stride: 3 }, extra: 1 },
        ],
      },
    });
    expect(issues).toEqual([
      { path: "params.phases[0].kind", message: "expected one of streaming, strided, random, stencil, bfs, trace, got \"zigzag\"" },
      { path: "params.phases[1].extra", message: "unknown field" },
      { path: "params.phases[1].params.stride", message: "must be a multiple of granularity (4096), got 3" },
    ]);
    expect(() => createWorkload({ kind: "streaming", params: {} })).toThrowError(WorkloadParamError);
    expect(() => createWorkload({ kind: "streaming", params: {} })).toThrowError("workload.params.bytes: required");
  });
});
