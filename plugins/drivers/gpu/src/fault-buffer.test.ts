import { describe, expect, it } from "vitest";
import { FaultBatch, FaultBuffer } from "./fault-buffer.js";

const P = 4096;

describe("FaultBuffer (the GPU's replayable fault buffer)", () => {
  it("is a ring: push until full (false), fetch in arrival order, wrap around", () => {
    const buf = new FaultBuffer(4);
    const b = new FaultBatch(4);
    for (let i = 0; i < 4; i++) expect(buf.push(i * P, 0, 0, i, 1)).toBe(true);
    expect(buf.push(9 * P, 0, 0, 9, 1)).toBe(false);
    expect(buf.fetch(b, 3)).toBe(3);
    expect([...b.warp.subarray(0, 3)]).toEqual([0, 1, 2]);
    expect(buf.count).toBe(1);
    expect(buf.push(5 * P, 1, 2, 5, 7)).toBe(true); // wraps to slot 0
    expect(buf.fetch(b, 8)).toBe(2);
    expect(b.n).toBe(2);
    expect([...b.addr.subarray(0, 2)]).toEqual([3 * P, 5 * P]);
    expect([b.access[1], b.space[1], b.warp[1], b.gen[1]]).toEqual([1, 2, 5, 7]);
    expect(buf.count).toBe(0);
  });

  it("unflush puts back the entries the last flush dropped, across the wrap, in order; never over entries", () => {
    const buf = new FaultBuffer(4);
    const b = new FaultBatch(4);
    for (let i = 0; i < 3; i++) buf.push(i * P, 0, 0, i, 1);
    buf.fetch(b, 2); // head at slot 2
    buf.push(3 * P, 1, 0, 3, 1);
    buf.push(4 * P, 0, 0, 4, 1); // slot 0 (wrapped)
    const warps = new Int32Array(4);
    const gens = new Int32Array(4);
    expect(buf.flush(3, warps, gens)).toBe(3);
    expect([...warps.subarray(0, 3)]).toEqual([2, 3, 4]);
    expect(buf.count).toBe(0);
    const pushes = buf.pushes;
    buf.unflush(3);
    expect(buf.pushes).toBe(pushes); // nothing written
    expect(buf.fetch(b, 4)).toBe(3);
    expect([...b.warp.subarray(0, 3)]).toEqual([2, 3, 4]);
    expect([...b.addr.subarray(0, 3)]).toEqual([2 * P, 3 * P, 4 * P]);
    expect(b.access[1]).toBe(1);
    buf.push(5 * P, 0, 0, 5, 1);
    expect(() => buf.unflush(1)).toThrow(RangeError);
  });

  it("fetch takes at most the batch's capacity", () => {
    const buf = new FaultBuffer(8);
    for (let i = 0; i < 8; i++) buf.push(i * P, 0, 0, i, 1);
    expect(buf.fetch(new FaultBatch(5), 100)).toBe(5);
    expect(buf.count).toBe(3);
  });
});

describe("FaultBatch.preprocess (preprocess_fault_batch: sort by (space, page), fold duplicates)", () => {
  it("folds duplicates into one distinct page, the write access winning, entries in arrival order per page", () => {
    const buf = new FaultBuffer(8);
    const b = new FaultBatch(8);
    // arrival: (space 1, page 3) r, (0, 7) r, (0, 3) r, (1, 3) w, (0, 3) r
    buf.push(3 * P, 0, 1, 10, 1);
    buf.push(7 * P, 0, 0, 11, 1);
    buf.push(3 * P, 0, 0, 12, 1);
    buf.push(3 * P, 1, 1, 13, 1);
    buf.push(3 * P, 0, 0, 14, 1);
    const n = buf.fetch(b, 8);
    expect(n).toBe(5);
    expect(b.preprocess()).toBe(3);
    expect(b.npages).toBe(3);
    expect([...b.pageSpace.subarray(0, 3)]).toEqual([0, 0, 1]);
    expect([...b.pageAddr.subarray(0, 3)]).toEqual([3 * P, 7 * P, 3 * P]);
    expect([...b.pageDup.subarray(0, 3)]).toEqual([2, 1, 2]);
    expect([...b.pageAccess.subarray(0, 3)]).toEqual([0, 0, 1]); // the write folded into (1, 3) wins
    expect([...b.pageErr.subarray(0, 3)]).toEqual([0, 0, 0]);
    // order: entry indices by (space, page, arrival)
    const warpsOf = (p: number) => [...b.order.subarray(b.pageFirst[p]!, b.pageFirst[p]! + b.pageDup[p]!)].map((i) => b.warp[i]);
    expect(warpsOf(0)).toEqual([12, 14]);
    expect(warpsOf(1)).toEqual([11]);
    expect(warpsOf(2)).toEqual([10, 13]);
  });

  it("keys stay exact at the top of the VA space and the largest VA-space id", () => {
    const b = new FaultBatch(2048);
    const buf = new FaultBuffer(2048);
    const top = 2 ** 47 - P;
    buf.push(top, 0, 62, 0, 1);
    buf.push(top - P, 0, 62, 1, 1);
    buf.push(top, 1, 62, 2, 1);
    buf.fetch(b, 2048);
    expect(b.preprocess()).toBe(2);
    expect([b.pageAddr[0], b.pageAddr[1]]).toEqual([top - P, top]);
    expect(b.pageDup[1]).toBe(2);
    expect(b.pageAccess[1]).toBe(1);
  });
});
