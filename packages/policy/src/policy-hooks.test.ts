import { describe, expect, it } from "vitest";
import { SyncBailHook, SyncHook, SyncWaterfallHook } from "tapable";
import { BLOCK_SIZE, type FaultQuery } from "./fault-query.js";
import { PrefetchPageMask } from "./prefetch-page-mask.js";
import { POLICY_STAGE_DEFAULT, POLICY_STAGE_OVERRIDE, POLICY_STAGE_POLICY, Policy } from "./policy-hooks.js";

describe("Policy.getHooks", () => {
  it("is one frozen object per machine with the eight typed hooks; machines share no taps", () => {
    const a = {};
    const b = {};
    const h = Policy.getHooks(a);
    expect(Policy.getHooks(a)).toBe(h);
    expect(Object.isFrozen(h)).toBe(true);
    expect(Object.keys(h).sort()).toEqual(["accessCounterConfig", "accessCounterNotification", "prefetchPages", "prefetchRange", "selectVictim", "shouldMigrate", "thrashingHint", "thrashingPages"]);
    expect(h.shouldMigrate.constructor).toBe(SyncBailHook); // tapable sets the factory as constructor
    expect(h.selectVictim.constructor).toBe(SyncBailHook);
    expect(h.prefetchRange.constructor).toBe(SyncWaterfallHook);
    expect(h.prefetchPages.constructor).toBe(SyncHook);
    h.shouldMigrate.tap("t", () => false);
    expect(Policy.getHooks(b)).not.toBe(h);
    expect(Policy.getHooks(b).shouldMigrate.taps).toHaveLength(0);
    expect(Object.isFrozen(Policy)).toBe(true);
  });

  it("stages order the taps: override < policy < default, first answer wins", () => {
    const h = Policy.getHooks({});
    const q = { device: "gpu0" } as FaultQuery;
    h.shouldMigrate.tap({ name: "default", stage: POLICY_STAGE_DEFAULT }, () => true);
    expect(h.shouldMigrate.call(q)).toBe(true);
    h.shouldMigrate.tap({ name: "policy", stage: POLICY_STAGE_POLICY }, () => false);
    expect(h.shouldMigrate.call(q)).toBe(false);
    h.shouldMigrate.tap({ name: "override", stage: POLICY_STAGE_OVERRIDE }, () => undefined);
    expect(h.shouldMigrate.call(q)).toBe(false);
    expect(h.shouldMigrate.taps.map((t) => t.name)).toEqual(["override", "policy", "default"]);
    expect(POLICY_STAGE_OVERRIDE < POLICY_STAGE_POLICY && POLICY_STAGE_POLICY < POLICY_STAGE_DEFAULT).toBe(true);
  });

  it("prefetchRange is a waterfall: each tap transforms the range the last returned", () => {
    const h = Policy.getHooks({});
    h.prefetchRange.tap("grow", (r) => ({ start: r.start - 4096, end: r.end + 4096 }));
    h.prefetchRange.tap("keep", () => undefined as never);
    expect(h.prefetchRange.call({ start: 8192, end: 12288 }, {} as FaultQuery)).toEqual({ start: 4096, end: 16384 });
  });

  it("prefetchPages: every tap sets pages in the one mask (their union), anywhere in the block", () => {
    const h = Policy.getHooks({});
    h.prefetchPages.tap("far", (f, m) => m.setPage(f.blockStart + 300 * 4096));
    h.prefetchPages.tap("own", (f, m) => m.set(f.pageIndex));
    const mask = new PrefetchPageMask();
    mask.zero(BLOCK_SIZE);
    h.prefetchPages.call({ blockStart: BLOCK_SIZE, pageIndex: 37 } as FaultQuery, mask);
    expect([mask.weight, mask.test(37), mask.test(300), mask.first, mask.outer]).toEqual([2, true, true, 37, 301]);
  });
});
