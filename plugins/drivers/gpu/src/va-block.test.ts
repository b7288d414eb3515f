import { describe, expect, it } from "vitest";
import { CHUNK_PAGES } from "./root-chunks.js";
import { BlockIndex, VA_BLOCK_SIZE, VaBlocks } from "./va-block.js";

const B = VA_BLOCK_SIZE;

describe("VaBlocks (the device page table by 2 MiB VA block)", () => {
  it("get creates one slot per (space, block), find and findKey return it, other spaces are distinct", () => {
    const t = new VaBlocks(2);
    const s0 = t.get(0, 5 * B + 4096);
    expect(t.get(0, 5 * B + B - 1)).toBe(s0);
    expect(t.find(0, 5 * B)).toBe(s0);
    expect(t.findKey(VaBlocks.key(0, 5 * B + 123))).toBe(s0);
    expect(t.find(1, 5 * B)).toBe(-1);
    const s1 = t.get(1, 5 * B);
    expect(s1).not.toBe(s0);
    expect(t.start[s0]).toBe(5 * B);
    expect(t.space[s1]).toBe(1);
    expect(t.chunk[s0]).toBe(-1);
  });

  it("grows past its initial capacity keeping every slot's state (chunk -1 for new slots)", () => {
    const t = new VaBlocks(2);
    const a = t.get(0, 0);
    t.chunk[a] = 7;
    t.pte[a * CHUNK_PAGES + 511] = 5;
    t.mapped[a] = 1;
    for (let i = 1; i < 10; i++) t.get(0, i * B);
    expect(t.size).toBe(10);
    expect(t.chunk[a]).toBe(7);
    expect(t.pte[a * CHUNK_PAGES + 511]).toBe(5);
    expect(t.mapped[a]).toBe(1);
    expect(t.chunk[t.find(0, 9 * B)]).toBe(-1);
    expect(t.pte.length).toBe(16 * CHUNK_PAGES);
  });

  it("forEachIn visits the blocks of one space overlapping [start, end), by lookup or by scan", () => {
    const t = new VaBlocks();
    for (const b of [1, 2, 3, 100]) t.get(0, b * B);
    t.get(1, 2 * B);
    const seen = (s: number, e: number) => {
      const out: number[] = [];
      t.forEachIn(0, s, e, (slot) => out.push(t.start[slot]! / B));
      return out.sort((x, y) => x - y);
    };
    expect(seen(2 * B - 1, 3 * B + 1)).toEqual([1, 2, 3]); // few blocks: lookups
    expect(seen(0, 2 ** 47)).toEqual([1, 2, 3, 100]); // a huge range: a scan of the table
    expect(seen(4 * B, 100 * B)).toEqual([]);
  });

  it("remote pfns are allocated per slot on first use and counted in hostBytes", () => {
    const t = new VaBlocks(4);
    const s = t.get(0, 0);
    const before = t.hostBytes;
    const a = t.remotePfns(s);
    expect(t.remotePfns(s)).toBe(a);
    expect(a.length).toBe(CHUNK_PAGES);
    expect(t.hostBytes - before).toBe(CHUNK_PAGES * 8);
  });
});

describe("BlockIndex (the block key → slot table)", () => {
  it("finds every key it stored, across growth, and no other, for keys up to 2^44", () => {
    const ix = new BlockIndex(4);
    const keys: number[] = [];
    for (let i = 0; i < 5000; i++) keys.push(((i * 7919) % 65536) * 2 ** 27 + ((i * 104729) % 2 ** 27));
    const uniq = [...new Set(keys)];
    uniq.forEach((k, slot) => ix.add(k, slot));
    expect(ix.size).toBe(uniq.length);
    uniq.forEach((k, slot) => expect(ix.get(k)).toBe(slot));
    expect(ix.get(2 ** 43 + 12345)).toBe(-1);
    expect(ix.get(0)).toBe(uniq.indexOf(0));
  });
});
