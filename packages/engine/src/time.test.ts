import { describe, expect, it } from "vitest";
import { VirtualTimeError } from "./errors.js";
import { addTime, checkDuration, checkTime, MAX_TIME_PS, PS_PER_MS, PS_PER_NS, PS_PER_S, PS_PER_US } from "./time.js";

describe("virtual time", () => {
  it("units are picoseconds and the bound is 2^53 - 1 ps ≈ 9007 s", () => {
    expect([PS_PER_NS, PS_PER_US, PS_PER_MS, PS_PER_S]).toEqual([1e3, 1e6, 1e9, 1e12]);
    expect(Math.floor(MAX_TIME_PS / PS_PER_S)).toBe(9007);
  });

  it("rejects non-integer, negative and overflowing values with VirtualTimeError naming the field", () => {
    expect(() => checkDuration("dt", 1.5)).toThrow(VirtualTimeError);
    expect(() => checkDuration("dt", 1.5)).toThrow(/dt = 1.5: .*integer/);
    expect(() => checkDuration("dt", -1)).toThrow(/dt = -1: a duration must not be negative/);
    expect(() => checkDuration("dt", NaN)).toThrow(VirtualTimeError);
    expect(() => checkTime("at", 5, 10)).toThrow(/at = 5: .*past \(now = 10 ps\)/);
    expect(() => checkTime("at", 2 ** 53, 0)).toThrow(/exceeds Number.MAX_SAFE_INTEGER/);
    expect(() => addTime("dt", MAX_TIME_PS - 5, 10)).toThrow(/exceeds Number.MAX_SAFE_INTEGER/);
    expect(addTime("dt", MAX_TIME_PS - 10, 10)).toBe(MAX_TIME_PS);
    const e = (() => {
      try {
        checkTime("at", -3, 0);
      } catch (x) {
        return x as VirtualTimeError;
      }
    })()!;
    expect([e.field, e.value]).toEqual(["at", -3]);
  });
});
