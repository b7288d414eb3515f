import { describe, expect, it } from "vitest";
import { MAX_ACCESSES } from "./access-pattern.js";
import { createPattern, createWorkload, validatePattern, validateWorkload } from "./workload.js";
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
      { path: "params.phases[0].kind", message: "expected one of streaming, strided, random, stencil, bfs, trace, advise, prefetch, got \"zigzag\"" },
      { path: "params.phases[1].extra", message: "unknown field" },
      { path: "params.phases[1].params.stride", message: "must be a multiple of granularity (4096), got 3" },
    ]);
    expect(() => createWorkload({ kind: "streaming", params: {} })).toThrowError(WorkloadParamError);
    expect(() => createWorkload({ kind: "streaming", params: {} })).toThrowError("workload.params.bytes: required");
  });

  it("bytes of streaming, strided and random is whole 4KiB pages, as the CLI's --size (issue #15)", () => {
    for (const kind of ["streaming", "strided", "random"] as const) {
      const params = kind === "strided" ? { bytes: 5000, stride: 4096, granularity: 8 } : kind === "random" ? { bytes: 5000, seed: 1 } : { bytes: 5000 };
      let err: WorkloadParamError | undefined;
      try {
        createPattern(kind, params);
      } catch (e) {
        err = e as WorkloadParamError;
      }
      expect(err).toBeInstanceOf(WorkloadParamError);
      expect([err!.field, err!.rule]).toEqual(["bytes", "must be a whole number of 4KiB pages (a multiple of 4096), got 5000"]);
      expect(err!.message).toBe(`${kind}.bytes: must be a whole number of 4KiB pages (a multiple of 4096), got 5000`);
    }
    expect(validateWorkload({ kind: "streaming", params: { bytes: "4.5KiB" } })).toEqual([{ path: "params.bytes", message: "must be a whole number of 4KiB pages (a multiple of 4096), got 4608" }]);
    expect(createPattern("streaming", { bytes: 8192, granularity: 64 }).expectedLength).toBe(128); // sub-page granularity is fine
  });

  it("parameters giving more than 2^40 accesses are refused, naming the field and the bound (issue #15)", () => {
    expect(MAX_ACCESSES).toBe(2 ** 40);
    let err: WorkloadParamError | undefined;
    try {
      createPattern("streaming", { bytes: "64KiB", passes: 1e15 });
    } catch (e) {
      err = e as WorkloadParamError;
    }
    expect(err).toBeInstanceOf(WorkloadParamError);
    expect(err!.field).toBe("passes");
    expect(err!.message).toBe(
      "streaming.passes: gives 16000000000000000 accesses (16 per pass × 1000000000000000 passes); a pattern makes at most 2^40 (1099511627776), days of simulation already",
    );
    expect(validatePattern("random", { bytes: "1MiB", count: 2 ** 41 })).toEqual([
      { path: "count", message: `gives ${2 ** 41} accesses (${2 ** 41} in one pass); a pattern makes at most 2^40 (1099511627776), days of simulation already` },
    ]);
    expect(validatePattern("strided", { bytes: "4TiB", stride: "1MiB", granularity: 1 }).map((i) => i.path)).toEqual(["bytes"]);
    expect(validatePattern("stencil", { bytes: "1GiB", rowBytes: "64KiB", passes: 1e6 }).map((i) => i.path)).toEqual(["passes"]);
    expect(validatePattern("bfs", { vertices: 2 ** 31 - 1, degree: 1000 }).map((i) => i.path)).toEqual(["degree"]);
    // at the bound is fine: 2^28 pages × 2^12 passes = 2^40
    expect(validatePattern("streaming", { bytes: "1TiB", passes: 4096 })).toEqual([]);
    expect(validatePattern("streaming", { bytes: "1TiB", passes: 4097 }).map((i) => i.path)).toEqual(["passes"]);
    // in a workload spec the path is the spec's
    expect(validateWorkload({ kind: "phases", params: { phases: [{ on: "cpu", kind: "streaming", params: { bytes: 4096, passes: 1e15 } }] } }).map((i) => i.path)).toEqual([
      "params.phases[0].params.passes",
    ]);
  });
});
