import { describe, expect, it } from "vitest";
import { defaultPrefetchRange, defaultShouldMigrate, lruVictim } from "./defaults.js";
import type { FaultQuery } from "./fault-query.js";
import { victimQuery } from "./testing/test-util.js";

describe("defaults", () => {
  it("defaultShouldMigrate migrates; defaultPrefetchRange keeps the faulted page", () => {
    const q = { address: 0x1000 } as FaultQuery;
    expect(defaultShouldMigrate(q)).toBe(true);
    const r = { start: 0x1000, end: 0x2000 };
    expect(defaultPrefetchRange(r, q)).toBe(r);
    expect(r).toEqual({ start: 0x1000, end: 0x2000 });
  });

  it("lruVictim takes the head of the LRU order that is evictable, or -1", () => {
    expect(lruVictim(victimQuery([3, 1, 5]))).toBe(3);
    expect(lruVictim(victimQuery([3, 1, 5], [3]))).toBe(1);
    expect(lruVictim(victimQuery([3, 1, 5], [3, 1, 5]))).toBe(-1);
    expect(lruVictim(victimQuery([]))).toBe(-1);
  });
});
