import { describe, expect, it } from "vitest";
import { createPattern } from "./workload.js";
import { WorkloadParamError } from "./workload-param-error.js";

describe("strided", () => {
  it("walks lanes of the stride and covers every granule exactly once per pass", () => {
    const p = createPattern("strided", { bytes: 8 * 4096, stride: 4 * 4096 });
    const pages = [...p].map((a) => a.addr / 4096);
    expect(pages).toEqual([0, 4, 1, 5, 2, 6, 3, 7]);
  });

  it("rejects a stride that is not a multiple of the granularity, naming the field", () => {
    expect(() => createPattern("strided", { bytes: "1MiB", stride: 1000 })).toThrowError(WorkloadParamError);
    try {
      createPattern("strided", { bytes: "1MiB", stride: 1000 });
    } catch (e) {
      expect((e as WorkloadParamError).field).toBe("stride");
      expect((e as WorkloadParamError).message).toBe("strided.stride: must be a multiple of granularity (4096), got 1000");
    }
  });
});
