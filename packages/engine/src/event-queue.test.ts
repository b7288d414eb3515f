import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EventQueue } from "./event-queue.js";

describe("EventQueue (4-ary typed-array heap)", () => {
  it("pops in (time, ord) order for any insertion order, growing past its capacity", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 1e6 })), { maxLength: 300 }), (items) => {
        const q = new EventQueue<number>(4);
        items.forEach(([t, o], i) => q.push(t, o * 1000 + i, i));
        const out: number[] = [];
        while (q.size > 0) out.push(q.pop());
        const expected = items
          .map(([t, o], i) => ({ t, o: o * 1000 + i, i }))
          .sort((a, b) => a.t - b.t || a.o - b.o)
          .map((x) => x.i);
        expect(out).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });

  it("reuses payload slots and reports lastTime/lastOrd; peekTime is Infinity when empty", () => {
    const q = new EventQueue<string>(4);
    expect(q.peekTime()).toBe(Infinity);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 10; i++) q.push(100 - i, i, `e${i}`);
      expect(q.peekTime()).toBe(91);
      expect(q.pop()).toBe("e9");
      expect([q.lastTime, q.lastOrd]).toEqual([91, 9]);
      while (q.size) q.pop();
    }
    expect([...q.pending()]).toEqual([]);
  });
});
