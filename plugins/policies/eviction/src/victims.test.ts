// Worked examples of each victim choice, from its source's sort order.
import { describe, expect, it } from "vitest";
import { lfuVictim, lruAccessVictim, lruVictim, randomVictim, treeVictim } from "./victims.js";
import { chunksQuery } from "./testing/chunks-query.js";

// Chunks in UVM's LRU order (allocation / migration-in): 5 is the oldest, but the device read it last.
const reuse = () =>
  chunksQuery([
    { chunk: 5, lastAccessPs: 900, accesses: 40 },
    { chunk: 2, lastAccessPs: 300, accesses: 10 },
    { chunk: 7, lastAccessPs: 600, accesses: 10 },
    { chunk: 1, lastAccessPs: 800, accesses: 3, pinned: true },
  ]);

describe("evict-lru (UVM: pick_root_chunk_to_evict, head of va_block_used)", () => {
  it("takes the least recently allocated / migrated-into evictable chunk, whatever the accesses", () => {
    expect(lruVictim(reuse())).toBe(5);
    expect(lruVictim(chunksQuery([{ chunk: 5, pinned: true }, { chunk: 2 }]))).toBe(2);
    expect(lruVictim(chunksQuery([{ chunk: 5, pinned: true }]))).toBe(-1);
  });
});

describe("evict-lru-access (UVMSmart LRU: refresh_valid_pages on every access, sort by cycle)", () => {
  it("takes the chunk the device accessed least recently: 2 (300 ps), not the LRU head 5 (accessed at 900)", () => {
    expect(lruAccessVictim(reuse())).toBe(2);
  });
  it("ties fall to the LRU order; pinned chunks are skipped; none → -1", () => {
    expect(lruAccessVictim(chunksQuery([{ chunk: 3, lastAccessPs: 5 }, { chunk: 4, lastAccessPs: 5 }]))).toBe(3);
    expect(lruAccessVictim(chunksQuery([{ chunk: 3, lastAccessPs: 1, pinned: true }, { chunk: 4, lastAccessPs: 5 }]))).toBe(4);
    expect(lruAccessVictim(chunksQuery([]))).toBe(-1);
  });
});

describe("evict-lfu (UVMSmart LFU: access_counter, then cycle)", () => {
  it("takes the fewest accesses; the pinned chunk 1 (3 accesses) is not a candidate", () => {
    // 2 and 7 have 10 accesses each: the older access (2 at 300 ps) goes
    expect(lfuVictim(reuse())).toBe(2);
    expect(lfuVictim(chunksQuery([{ chunk: 2, accesses: 10, lastAccessPs: 300 }, { chunk: 7, accesses: 9, lastAccessPs: 999 }]))).toBe(7);
    expect(lfuVictim(chunksQuery([{ chunk: 2, accesses: 10, lastAccessPs: 700 }, { chunk: 7, accesses: 10, lastAccessPs: 300 }]))).toBe(7);
  });
});

describe("evict-tree (UVMSmart TBN: large pages ordered by their most recent access)", () => {
  it("at root-chunk granularity it picks the chunk whose last access is oldest, as LRU-by-access does", () => {
    expect(treeVictim(reuse())).toBe(2);
    expect(treeVictim(reuse())).toBe(lruAccessVictim(reuse()));
  });
});

describe("evict-random (UVMSmart random 4 KiB page, projected on chunks)", () => {
  it("a draw r in [0, resident pages) picks the chunk holding the r-th resident page", () => {
    const q = chunksQuery([{ chunk: 5, resident: 10 }, { chunk: 2, resident: 1, pinned: true }, { chunk: 7, resident: 30 }]);
    const at = (r: number) => randomVictim(q, { int: (n) => (expect(n).toBe(40), r) });
    expect([at(0), at(9), at(10), at(39)]).toEqual([5, 5, 7, 7]);
  });
  it("uniform over evictable chunks when none has a resident page; -1 when none is evictable", () => {
    const q = chunksQuery([{ chunk: 5, resident: 0 }, { chunk: 7, resident: 0 }]);
    expect(randomVictim(q, { int: (n) => (expect(n).toBe(2), 1) })).toBe(7);
    expect(randomVictim(chunksQuery([{ chunk: 5, pinned: true }]), { int: () => 0 })).toBe(-1);
  });
});
