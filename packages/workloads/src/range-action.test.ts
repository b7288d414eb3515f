import { describe, expect, it } from "vitest";
import { RangeActionPattern, isRangeAction } from "./range-action.js";
import { createWorkload, validateWorkload } from "./workload.js";

describe("advise and prefetch phases", () => {
  it("carry the range and the hints and make no access", () => {
    const w = createWorkload({
      kind: "phases",
      params: {
        phases: [
          { on: "gpu0", kind: "advise", params: { base: "2MiB", bytes: "4MiB", preferredLocation: "host", accessedBy: true } },
          { on: "gpu0", kind: "advise", params: { bytes: "4KiB", preferredLocation: "none", readMostly: false } },
          { on: "gpu1", kind: "prefetch", params: { bytes: "8MiB" } },
        ],
      },
    });
    const [a, b, p] = w.phases.map((ph) => ph.pattern);
    expect(isRangeAction(a!) && isRangeAction(b!) && isRangeAction(p!)).toBe(true);
    const ra = a as RangeActionPattern;
    expect([ra.kind, ra.base, ra.workingSetBytes, ra.expectedLength]).toEqual(["advise", 2 << 20, 4 << 20, 0]);
    expect(ra.advice).toEqual({ preferredLocation: "host", accessedBy: true });
    expect((b as RangeActionPattern).advice).toEqual({ preferredLocation: null, readMostly: false });
    expect((p as RangeActionPattern).advice).toEqual({});
    expect([...a!]).toEqual([]);
  });

  it("report every bad field with its path, and refuse the cpu", () => {
    expect(
      validateWorkload({
        kind: "phases",
        params: {
          phases: [
            { on: "cpu", kind: "prefetch", params: { bytes: "1MiB" } },
            { on: "gpu0", kind: "advise", params: { bytes: 5000, base: 100, accessedBy: "yes", color: 1 } },
            { on: "gpu0", kind: "advise", params: { bytes: "4KiB" } },
          ],
        },
      }),
    ).toEqual([
      { path: "params.phases[0].on", message: "a prefetch phase runs on a device (its driver's API), not on the cpu" },
      { path: "params.phases[1].params.bytes", message: "must be a whole number of 4KiB pages (a multiple of 4096), got 5000" },
      { path: "params.phases[1].params.base", message: "must be 4KiB-aligned (a multiple of 4096), got 100" },
      { path: "params.phases[1].params.accessedBy", message: "expected true or false, got \"yes\"" },
      { path: "params.phases[1].params.color", message: "unknown field" },
      { path: "params.phases[2].params.preferredLocation", message: "an advise phase sets at least one of preferredLocation, accessedBy, readMostly" },
    ]);
  });
});
