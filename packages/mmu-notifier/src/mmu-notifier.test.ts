import { describe, expect, it } from "vitest";
import {
  MMU_NOTIFIER_RANGE_BLOCKABLE,
  MMU_NOTIFIER_RANGE_MAX,
  MMU_NOTIFY_MIGRATE,
  MMU_NOTIFY_RELEASE,
  MMU_NOTIFY_UNMAP,
  MmuIntervalNotifier,
  MmuNotifier,
  MmuNotifierSubscriptions,
  WouldBlockError,
  mmuIntervalCheckRetry,
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalNotifierRemoveWait,
  mmuIntervalReadBeginWait,
  mmuIntervalReadBegin,
  mmuIntervalReadRetry,
  mmuIntervalSetSeq,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
  mmuNotifierRangeInit,
  mmuNotifierRegister,
  type MmuIntervalNotifierOps,
  type MmuNotifierRange,
  type NotifierMm,
} from "./index.js";
import { EAGAIN, EINVAL, EOVERFLOW } from "@hmmsim/core";
import { Engine } from "@hmmsim/engine";

function fakeMm(): NotifierMm & { mmUsers: number } {
  return { notifierSubscriptions: null, mmUsers: 1 };
}

interface Seen {
  sub: MmuIntervalNotifier;
  event: number;
  start: number;
  end: number;
  owner: unknown;
  curSeq: number;
}

/** A driver-like callback: records, then set_seq (or ignores its own MIGRATE events, as dmirror does). */
function recorder(seen: Seen[], opts: { owner?: unknown; refuseNonBlocking?: boolean } = {}): MmuIntervalNotifierOps {
  return {
    invalidate(sub, range, curSeq) {
      if (opts.refuseNonBlocking && !(range.flags & MMU_NOTIFIER_RANGE_BLOCKABLE)) return false;
      seen.push({ sub, event: range.event, start: range.start, end: range.end, owner: range.owner, curSeq });
      if (range.event === MMU_NOTIFY_MIGRATE && opts.owner !== undefined && range.owner === opts.owner) return true;
      mmuIntervalSetSeq(sub, curSeq);
      return true;
    },
  };
}

function invalidate(mm: NotifierMm, start: number, end: number, event = MMU_NOTIFY_UNMAP, owner: unknown = null, flags = MMU_NOTIFIER_RANGE_BLOCKABLE) {
  const range = mmuNotifierRangeInit(event as 0, flags, mm, start, end, owner) as MmuNotifierRange<NotifierMm>;
  const ret = mmuNotifierInvalidateRangeStart(range);
  return { range, ret, end: () => mmuNotifierInvalidateRangeEnd(range) };
}

describe("mmu_interval_notifier_insert (mm/mmu_notifier.c: __mmu_interval_notifier_insert)", () => {
  it("installs subscriptions with seq 2 and gives the interval an odd seq one below", () => {
    const mm = fakeMm();
    const sub = new MmuIntervalNotifier();
    expect(mmuIntervalNotifierInsert(sub, mm, 0x1000, 0x4000, recorder([]))).toBe(0);
    const subs = mm.notifierSubscriptions as MmuNotifierSubscriptions;
    expect(subs).toBeInstanceOf(MmuNotifierSubscriptions);
    expect(subs.invalidateSeq).toBe(2);
    expect(sub.invalidateSeq).toBe(1);
    expect(sub.start).toBe(0x1000);
    expect(sub.last).toBe(0x4fff);
  });

  it("returns -EOVERFLOW for length 0 or an overflowing end and -EINVAL for an exited mm, changing nothing", () => {
    const mm = fakeMm();
    expect(mmuIntervalNotifierInsert(new MmuIntervalNotifier(), mm, 0x1000, 0, recorder([]))).toBe(-EOVERFLOW);
    expect(mmuIntervalNotifierInsert(new MmuIntervalNotifier(), mm, MMU_NOTIFIER_RANGE_MAX, 2, recorder([]))).toBe(-EOVERFLOW);
    expect(mm.notifierSubscriptions).toBeNull();
    mm.mmUsers = 0;
    const sub = new MmuIntervalNotifier();
    expect(mmuIntervalNotifierInsert(sub, mm, 0, 4096, recorder([]))).toBe(-EINVAL);
    expect(sub.mm).toBeNull();
  });

  it("rejects bad arguments with a typed error naming them", () => {
    const mm = fakeMm();
    expect(() => mmuIntervalNotifierInsert(new MmuIntervalNotifier(), mm, -1, 4096, recorder([]))).toThrow(expect.objectContaining({ name: "InvalidArgumentError", field: "start" }));
    expect(() => mmuIntervalNotifierInsert(new MmuIntervalNotifier(), mm, 0, 1.5, recorder([]))).toThrow(expect.objectContaining({ name: "InvalidArgumentError", field: "length" }));
    const sub = new MmuIntervalNotifier();
    mmuIntervalNotifierInsert(sub, mm, 0, 4096, recorder([]));
    expect(() => mmuIntervalNotifierInsert(sub, mm, 0, 4096, recorder([]))).toThrow(/already inserted/);
  });
});

describe("invalidation and the sequence protocol", () => {
  it("calls every overlapping interval with an odd cur_seq, then makes the seq even again", () => {
    const mm = fakeMm();
    const seen: Seen[] = [];
    const a = new MmuIntervalNotifier();
    const b = new MmuIntervalNotifier();
    const c = new MmuIntervalNotifier();
    mmuIntervalNotifierInsert(a, mm, 0x0000, 0x2000, recorder(seen));
    mmuIntervalNotifierInsert(b, mm, 0x1000, 0x2000, recorder(seen));
    mmuIntervalNotifierInsert(c, mm, 0x8000, 0x1000, recorder(seen));
    const subs = mm.notifierSubscriptions as MmuNotifierSubscriptions;
    const inv = invalidate(mm, 0x1000, 0x2000);
    expect(inv.ret).toBe(0);
    expect(seen.map((s) => s.sub)).toEqual([a, b]);
    expect(seen[0]!.curSeq).toBe(3);
    expect(subs.isInvalidating()).toBe(true);
    inv.end();
    expect(subs.invalidateSeq).toBe(4);
    expect(a.invalidateSeq).toBe(3);
    expect(c.invalidateSeq).toBe(1); // untouched: did not overlap
  });

  it("end is exclusive, last is inclusive: [0x2000,0x3000) does not touch an interval ending at 0x1fff", () => {
    const mm = fakeMm();
    const seen: Seen[] = [];
    mmuIntervalNotifierInsert(new MmuIntervalNotifier(), mm, 0x1000, 0x1000, recorder(seen));
    invalidate(mm, 0x2000, 0x3000).end();
    invalidate(mm, 0x0000, 0x1001).end();
    expect(seen).toHaveLength(1);
    expect(seen[0]!.start).toBe(0);
  });

  it("a range touching no interval leaves the seq even and does not bump it at end", () => {
    const mm = fakeMm();
    mmuIntervalNotifierInsert(new MmuIntervalNotifier(), mm, 0x10000, 0x1000, recorder([]));
    const subs = mm.notifierSubscriptions as MmuNotifierSubscriptions;
    const inv = invalidate(mm, 0, 0x1000);
    expect(subs.invalidateSeq).toBe(2);
    expect(subs.activeInvalidateRanges).toBe(1);
    inv.end();
    expect(subs.invalidateSeq).toBe(2);
    expect(subs.activeInvalidateRanges).toBe(0);
  });

  it("read_begin / read_retry: retry is true exactly when an invalidation hit the interval after read_begin", () => {
    const mm = fakeMm();
    const sub = new MmuIntervalNotifier();
    mmuIntervalNotifierInsert(sub, mm, 0, 0x10000, recorder([]));
    const seq = mmuIntervalReadBegin(sub);
    expect(mmuIntervalReadRetry(sub, seq)).toBe(false);
    invalidate(mm, 0x20000, 0x30000).end(); // elsewhere
    expect(mmuIntervalReadRetry(sub, seq)).toBe(false);
    invalidate(mm, 0x4000, 0x5000).end();
    expect(mmuIntervalReadRetry(sub, seq)).toBe(true);
    expect(mmuIntervalCheckRetry(sub, seq)).toBe(true);
    const seq2 = mmuIntervalReadBegin(sub);
    expect(mmuIntervalReadRetry(sub, seq2)).toBe(false);
  });

  it("read_begin during an invalidation of the interval would sleep: a typed WouldBlockError in sync code", () => {
    const mm = fakeMm();
    const sub = new MmuIntervalNotifier();
    mmuIntervalNotifierInsert(sub, mm, 0, 0x10000, recorder([]));
    const inv = invalidate(mm, 0, 0x1000);
    expect(() => mmuIntervalReadBegin(sub)).toThrow(WouldBlockError);
    inv.end();
    expect(() => mmuIntervalReadBegin(sub)).not.toThrow();
  });

  it("nested invalidations: the seq becomes even only when the last one ends", () => {
    const mm = fakeMm();
    const sub = new MmuIntervalNotifier();
    mmuIntervalNotifierInsert(sub, mm, 0, 0x10000, recorder([]));
    const subs = mm.notifierSubscriptions as MmuNotifierSubscriptions;
    const i1 = invalidate(mm, 0, 0x1000);
    const i2 = invalidate(mm, 0x1000, 0x2000);
    i1.end();
    expect(subs.isInvalidating()).toBe(true);
    i2.end();
    expect(subs.invalidateSeq).toBe(4);
  });

  it("owner filtering: a driver ignoring its own MMU_NOTIFY_MIGRATE keeps its seq; another owner's migrate bumps it", () => {
    const mm = fakeMm();
    const me = { name: "dev0" };
    const other = { name: "dev1" };
    const seen: Seen[] = [];
    const sub = new MmuIntervalNotifier();
    mmuIntervalNotifierInsert(sub, mm, 0, 0x10000, recorder(seen, { owner: me }));
    const seq = mmuIntervalReadBegin(sub);
    invalidate(mm, 0, 0x1000, MMU_NOTIFY_MIGRATE, me).end();
    expect(mmuIntervalReadRetry(sub, seq)).toBe(false);
    invalidate(mm, 0, 0x1000, MMU_NOTIFY_MIGRATE, other).end();
    expect(mmuIntervalReadRetry(sub, seq)).toBe(true);
    expect(seen.map((s) => s.owner)).toEqual([me, other]);
  });

  it("a callback refusing a non-blockable range makes start return -EAGAIN and the range ends itself", () => {
    const mm = fakeMm();
    mmuIntervalNotifierInsert(new MmuIntervalNotifier(), mm, 0, 0x10000, recorder([], { refuseNonBlocking: true }));
    const subs = mm.notifierSubscriptions as MmuNotifierSubscriptions;
    const inv = invalidate(mm, 0, 0x1000, MMU_NOTIFY_UNMAP, null, 0);
    expect(inv.ret).toBe(-EAGAIN);
    expect(subs.activeInvalidateRanges).toBe(0);
    expect(subs.isInvalidating()).toBe(false);
  });

  it("a callback returning false for a blockable range is a kernel rule violation", () => {
    const mm = fakeMm();
    mmuIntervalNotifierInsert(new MmuIntervalNotifier(), mm, 0, 0x10000, { invalidate: () => false });
    expect(() => invalidate(mm, 0, 0x1000)).toThrow(/blockable/);
  });
});

describe("insert and remove racing an invalidation (deferred list)", () => {
  it("insert during an invalidation of the tree is deferred to the final end, with seq = the odd subscriptions seq", () => {
    const mm = fakeMm();
    const seen: Seen[] = [];
    mmuIntervalNotifierInsert(new MmuIntervalNotifier(), mm, 0, 0x1000, recorder(seen));
    const subs = mm.notifierSubscriptions as MmuNotifierSubscriptions;
    const inv = invalidate(mm, 0, 0x1000);
    const late = new MmuIntervalNotifier();
    expect(mmuIntervalNotifierInsert(late, mm, 0, 0x1000, recorder(seen))).toBe(0);
    expect(late.invalidateSeq).toBe(3);
    expect(subs.itree).not.toContain(late);
    expect(() => mmuIntervalReadBegin(late)).toThrow(WouldBlockError);
    inv.end();
    expect(subs.itree).toContain(late);
    const seq = mmuIntervalReadBegin(late);
    expect(seq).toBe(3);
    expect(mmuIntervalReadRetry(late, seq)).toBe(false);
  });

  it("insert while a range not covering any interval is active sets seq |= 1 and inserts at once", () => {
    const mm = fakeMm();
    mmuIntervalNotifierInsert(new MmuIntervalNotifier(), mm, 0x100000, 0x1000, recorder([]));
    const subs = mm.notifierSubscriptions as MmuNotifierSubscriptions;
    const inv = invalidate(mm, 0, 0x1000);
    const late = new MmuIntervalNotifier();
    mmuIntervalNotifierInsert(late, mm, 0, 0x1000, recorder([]));
    expect(subs.invalidateSeq).toBe(3);
    expect(late.invalidateSeq).toBe(3);
    expect(subs.itree).toContain(late);
    inv.end();
    expect(subs.invalidateSeq).toBe(4);
  });

  it("remove outside an invalidation unlinks at once: no callback afterwards", () => {
    const mm = fakeMm();
    const seen: Seen[] = [];
    const sub = new MmuIntervalNotifier();
    mmuIntervalNotifierInsert(sub, mm, 0, 0x1000, recorder(seen));
    mmuIntervalNotifierRemove(sub);
    invalidate(mm, 0, 0x1000).end();
    expect(seen).toHaveLength(0);
    expect(sub.mm).toBeNull();
  });

  it("remove during an invalidation would sleep in sync code; remove of a still-deferred insert does not", () => {
    const mm = fakeMm();
    const sub = new MmuIntervalNotifier();
    mmuIntervalNotifierInsert(sub, mm, 0, 0x1000, recorder([]));
    const inv = invalidate(mm, 0, 0x1000);
    expect(() => mmuIntervalNotifierRemove(sub)).toThrow(WouldBlockError);
    const late = new MmuIntervalNotifier();
    mmuIntervalNotifierInsert(late, mm, 0, 0x1000, recorder([]));
    mmuIntervalNotifierRemove(late);
    inv.end();
    expect((mm.notifierSubscriptions as MmuNotifierSubscriptions).itree).toEqual([sub]);
  });
});

describe("waiting variants from engine tasks (the kernel's sleeps)", () => {
  it("remove during an invalidation waits for its end; the deferred removal unlinks then, and no callback follows", async () => {
    const engine = new Engine({ seed: 1 });
    const mm = fakeMm();
    const seen: Seen[] = [];
    const sub = new MmuIntervalNotifier();
    mmuIntervalNotifierInsert(sub, mm, 0, 0x1000, recorder(seen));
    const subs = mm.notifierSubscriptions as MmuNotifierSubscriptions;
    const inv = invalidate(mm, 0, 0x1000);
    expect(seen).toHaveLength(1);
    const log: string[] = [];
    engine.spawn("remover", async () => {
      log.push(`remove at ${engine.now}`);
      await mmuIntervalNotifierRemoveWait(sub, engine);
      log.push(`removed at ${engine.now}`);
    });
    engine.spawn("invalidator", async () => {
      await engine.sleep(500);
      expect(subs.itree).toContain(sub); // still linked while the invalidation runs (deferred removal)
      log.push(`end at ${engine.now}`);
      inv.end();
    });
    await engine.run();
    expect(log).toEqual(["remove at 0", "end at 500", "removed at 500"]);
    expect(subs.itree).not.toContain(sub);
    expect(sub.mm).toBeNull();
    invalidate(mm, 0, 0x1000).end();
    expect(seen).toHaveLength(1);
  });

  it("read_begin during a covering invalidation waits for its end and returns the new, even sequence", async () => {
    const engine = new Engine({ seed: 1 });
    const mm = fakeMm();
    const sub = new MmuIntervalNotifier();
    mmuIntervalNotifierInsert(sub, mm, 0, 0x1000, recorder([]));
    const inv = invalidate(mm, 0, 0x1000);
    let got = -1;
    engine.spawn("reader", async () => {
      got = await mmuIntervalReadBeginWait(sub, engine);
    });
    engine.spawn("invalidator", async () => {
      await engine.sleep(7);
      inv.end();
    });
    await engine.run();
    expect(got).toBe(3); // the cur_seq the callback set; the subscriptions' seq is 4 (even) after the end
    expect((mm.notifierSubscriptions as MmuNotifierSubscriptions).invalidateSeq).toBe(4);
    expect(mmuIntervalReadRetry(sub, got)).toBe(false);
  });
});

describe("release (mm teardown) and classic subscriptions", () => {
  it("release sends MMU_NOTIFY_RELEASE over [0, ULONG_MAX] to every interval, blockable", () => {
    const mm = fakeMm();
    const seen: Seen[] = [];
    mmuIntervalNotifierInsert(new MmuIntervalNotifier(), mm, 0x1000, 0x1000, recorder(seen));
    mmuIntervalNotifierInsert(new MmuIntervalNotifier(), mm, 0x800000, 0x1000, recorder(seen));
    (mm.notifierSubscriptions as MmuNotifierSubscriptions).release(mm);
    expect(seen.map((s) => [s.event, s.start, s.end])).toEqual([
      [MMU_NOTIFY_RELEASE, 0, MMU_NOTIFIER_RANGE_MAX],
      [MMU_NOTIFY_RELEASE, 0, MMU_NOTIFIER_RANGE_MAX],
    ]);
    expect((mm.notifierSubscriptions as MmuNotifierSubscriptions).invalidateSeq).toBe(4);
  });

  it("a whole-mm subscription sees start/end of every range and release once", () => {
    const mm = fakeMm();
    const log: string[] = [];
    const sub = new MmuNotifier({
      invalidateRangeStart: (_s, r) => (log.push(`start ${r.start}-${r.end}`), 0),
      invalidateRangeEnd: (_s, r) => void log.push(`end ${r.start}-${r.end}`),
      release: () => void log.push("release"),
    });
    expect(mmuNotifierRegister(sub, mm)).toBe(0);
    invalidate(mm, 0, 4096).end();
    (mm.notifierSubscriptions as MmuNotifierSubscriptions).release(mm);
    expect(log).toEqual(["start 0-4096", "end 0-4096", "release"]);
  });
});
