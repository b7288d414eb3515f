// The advise API (GpuDriver.advise; va-policy.ts after uvm_policy.c / uvm_va_policy.c): per-range hints, validated
// with typed errors naming the field, state unchanged on error, reported in every FaultQuery.
import { describe, expect, it } from "vitest";
import { createKernel } from "@hmmsim/core";
import type { MachinePlugin } from "@hmmsim/machine";
import { Policy } from "@hmmsim/policy";
import { GpuInputError } from "./errors.js";
import { anonMap, testMachine } from "./testing/test-util.js";
import { VaPolicies } from "./va-policy.js";

const P = 4096;
const none = { preferredLocation: null, accessedBy: false, readMostly: false };

describe("VaPolicies (uvm_va_policy nodes)", () => {
  it("splits at the advised boundaries, changes only the named fields, merges equal neighbours, drops empty ranges", () => {
    const v = new VaPolicies();
    const mm = {};
    v.set(mm, 0, 10 * P, { preferredLocation: "host" });
    v.set(mm, 4 * P, 6 * P, { accessedBy: true });
    expect(v.ranges(mm)).toEqual([
      { start: 0, end: 4 * P, preferredLocation: "host", accessedBy: false, readMostly: false },
      { start: 4 * P, end: 6 * P, preferredLocation: "host", accessedBy: true, readMostly: false },
      { start: 6 * P, end: 10 * P, preferredLocation: "host", accessedBy: false, readMostly: false },
    ]);
    v.set(mm, 8 * P, 12 * P, { readMostly: true }); // over a range's tail and the gap after it
    expect(v.ranges(mm).map((r) => [r.start / P, r.end / P, r.preferredLocation, r.readMostly])).toEqual([
      [0, 4, "host", false],
      [4, 6, "host", false],
      [6, 8, "host", false],
      [8, 10, "host", true],
      [10, 12, null, true],
    ]);
    v.set(mm, 4 * P, 6 * P, { accessedBy: false }); // back to equal: merged
    expect(v.ranges(mm).map((r) => [r.start / P, r.end / P])).toEqual([[0, 8], [8, 10], [10, 12]]);
    expect(v.lookup(mm, 9 * P)).toMatchObject({ readMostly: true, preferredLocation: "host" });
    expect(v.lookup(mm, 12 * P)).toBeNull();
    v.set(mm, 0, 12 * P, { preferredLocation: null, readMostly: false }); // nothing left
    expect(v.ranges(mm)).toEqual([]);
    expect(v.size).toBe(0);
    expect(v.lookup(mm, 0)).toBeNull();
  });
});

describe("GpuDriver.advise", () => {
  it("reports the range's hints in every FaultQuery for its pages (and none outside it)", async () => {
    const seen: Record<number, [string | null, boolean, boolean]> = {};
    const spy: MachinePlugin = {
      name: "spy",
      kind: "test",
      apply: (m) => void Policy.getHooks(m).shouldMigrate.tap("spy", (q) => void (seen[q.address] = [q.preferredLocation, q.accessedBy, q.readMostly])),
    };
    const { machine, gpu } = testMachine({ plugins: [spy] });
    const mm = machine.kernel!.createMm();
    const a = anonMap(mm, 8 * P);
    expect(gpu.advise(mm, a + 2 * P, a + 4 * P, { preferredLocation: "gpu0", accessedBy: true })).toBe(0);
    expect(gpu.advise(mm, a + 3 * P, a + 5 * P, { readMostly: true })).toBe(0);
    machine.spawn("app", async () => void (await gpu.runKernel(mm, Array.from({ length: 6 }, (_, i) => ({ addr: a + i * P, write: false })), { warps: 6 })));
    await machine.run();
    expect([0, 1, 2, 3, 4, 5].map((i) => seen[a + i * P])).toEqual([
      [null, false, false],
      [null, false, false],
      ["gpu0", true, false],
      ["gpu0", true, true],
      [null, false, true],
      [null, false, false],
    ]);
    expect(gpu.advisedRanges(mm).map((r) => [(r.start - a) / P, (r.end - a) / P])).toEqual([[2, 3], [3, 4], [4, 5]]);
  });

  it("bad input throws GpuInputError naming the field, and nothing changes", () => {
    const { machine, gpu } = testMachine();
    const mm = machine.kernel!.createMm();
    const a = anonMap(mm, 8 * P);
    gpu.advise(mm, a, a + P, { preferredLocation: "host" });
    const before = gpu.advisedRanges(mm);
    const field = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(GpuInputError);
        return [(e as GpuInputError).field, (e as Error).message];
      }
      return null;
    };
    expect(field(() => gpu.advise(mm, a + 1, a + P, {}))![0]).toBe("start");
    expect(field(() => gpu.advise(mm, a + P, a + P, {}))![0]).toBe("end");
    expect(field(() => gpu.advise(mm, a, 2 ** 48, {}))![0]).toBe("end");
    expect(field(() => gpu.advise({} as never, a, a + P, {}))![0]).toBe("mm");
    expect(field(() => gpu.advise(createKernel({ ramBytes: 16 << 20, bytes: false }).createMm(), a, a + P, {}))![0]).toBe("mm");
    expect(field(() => gpu.advise(mm, a, a + P, { preferredLocation: "gpu7" }))).toEqual([
      "advice.preferredLocation",
      'advice.preferredLocation: must be "host", a device of the machine (gpu0) or null, got "gpu7"',
    ]);
    expect(field(() => gpu.advise(mm, a, a + P, { accessedBy: 1 as never, colour: "red" } as never))).toEqual([
      "advice.colour",
      "advice.colour: unknown field (known: preferredLocation, accessedBy, readMostly); advice.accessedBy: must be a boolean, got 1",
    ]);
    expect(field(() => gpu.advise(mm, a, a + P, null as never))![0]).toBe("advice");
    expect(gpu.advisedRanges(mm)).toEqual(before);
    expect(gpu.advisedRanges(mm)).toEqual([{ start: a, end: a + P, ...none, preferredLocation: "host" }]);
  });
});
