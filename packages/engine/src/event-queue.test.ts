import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EventQueue } from "./event-queue.js";
import { propertyConfig, propertyParameters, withPropertyReport } from "./seed-config.js";

// fast-check: HMMSIM_PROPERTY_RUNS overrides the 200 / 300 runs; the seed derives from the commit (seed-config.ts).
const ORDER = propertyConfig(process.env, { defaultRuns: 200 });
const FIFO = propertyConfig(process.env, { defaultRuns: 300 });

describe("EventQueue (4-ary typed-array heap)", () => {
  it("pops in (time, ord) order for any insertion order, growing past its capacity", () => {
    withPropertyReport(ORDER, { file: import.meta.url, test: "pops in (time, ord) order" }, () =>
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
        propertyParameters(ORDER),
      ),
    );
  }, ORDER.timeoutMs);

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

  it("is FIFO among equal times when ord is the insertion sequence (as the engine's fifo mode does), under interleaved push/pop and growth", () => {
    withPropertyReport(FIFO, { file: import.meta.url, test: "is FIFO among equal times" }, () =>
      fc.assert(
        fc.property(
          fc.array(fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constant(-1)), { minLength: 1, maxLength: 400 }),
          (ops) => {
            // Reference: a list kept in (time, insertion order); a stable model of the queue.
            const q = new EventQueue<number>(4);
            const model: { t: number; id: number }[] = [];
            let now = 0;
            let seq = 0;
            for (const op of ops) {
              if (op === -1) {
                if (model.length === 0) continue;
                model.sort((a, b) => a.t - b.t || a.id - b.id);
                const want = model.shift()!;
                expect(q.pop()).toBe(want.id);
                expect(q.lastTime).toBe(want.t);
                now = want.t;
              } else {
                const id = seq++;
                q.push(now + op, id, id); // never in the past, many ties
                model.push({ t: now + op, id });
              }
              expect(q.size).toBe(model.length);
            }
            model.sort((a, b) => a.t - b.t || a.id - b.id);
            const rest: number[] = [];
            while (q.size > 0) rest.push(q.pop());
            expect(rest).toEqual(model.map((m) => m.id));
          },
        ),
        propertyParameters(FIFO),
      ),
    );
  }, FIFO.timeoutMs);

  it("10 000 entries at one time pop in insertion order (stable at scale, across several grows)", () => {
    const q = new EventQueue<number>(4);
    for (let i = 0; i < 10_000; i++) q.push(i % 2 === 0 ? 7 : 5, i, i);
    const out: number[] = [];
    while (q.size > 0) out.push(q.pop());
    const odds = Array.from({ length: 5000 }, (_, k) => 2 * k + 1);
    const evens = Array.from({ length: 5000 }, (_, k) => 2 * k);
    expect(out).toEqual([...odds, ...evens]);
  });

  it("stores entries in typed arrays (Float64 time and order key, Int32 payload slot)", () => {
    const q = new EventQueue<string>(8) as unknown as Record<string, unknown>;
    expect(q["times"]).toBeInstanceOf(Float64Array);
    expect(q["ords"]).toBeInstanceOf(Float64Array);
    expect(q["slots"]).toBeInstanceOf(Int32Array);
  });
});
