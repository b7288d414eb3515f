import { describe, expect, it } from "vitest";
import { DEFAULT_PROPERTY_SEED, propertyConfig } from "./property-config.js";

describe("propertyConfig", () => {
  it("defaults to 2000 runs with the fixed seed, so npm test replays the same sequences", () => {
    expect(propertyConfig({})).toEqual({ numRuns: 2000, seed: DEFAULT_PROPERTY_SEED, timeoutMs: 300_000 });
  });
  it("reads runs and seed; 'random' lets fast-check draw the seed", () => {
    expect(propertyConfig({ HMMSIM_PROPERTY_RUNS: "50", HMMSIM_PROPERTY_SEED: "-1371124346" })).toEqual({ numRuns: 50, seed: -1371124346, timeoutMs: 60_000 });
    expect(propertyConfig({ HMMSIM_PROPERTY_SEED: "random" }).seed).toBeUndefined();
  });
  it("rejects bad values naming the variable", () => {
    expect(() => propertyConfig({ HMMSIM_PROPERTY_RUNS: "lots" })).toThrowError('HMMSIM_PROPERTY_RUNS: expected a whole number >= 1, got "lots"');
    expect(() => propertyConfig({ HMMSIM_PROPERTY_RUNS: "0" })).toThrowError(/HMMSIM_PROPERTY_RUNS/);
    expect(() => propertyConfig({ HMMSIM_PROPERTY_SEED: "1.5" })).toThrowError('HMMSIM_PROPERTY_SEED: expected a 32-bit integer or "random", got "1.5"');
  });
});
