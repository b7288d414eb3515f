/** Test double (not exported from index.ts): a VictimQuery over explicit chunks, listed in UVM's LRU order. */
import type { VictimQuery } from "@hmmsim/policy";

export interface FakeChunk {
  chunk: number;
  lastAccessPs?: number;
  accesses?: number;
  resident?: number;
  pinned?: boolean;
}

/** `lru` lists the allocated chunks least recently allocated / migrated into first. */
export function chunksQuery(lru: FakeChunk[], device = "gpu0"): VictimQuery {
  const by = new Map(lru.map((c) => [c.chunk, c]));
  const order = lru.map((c) => c.chunk);
  return {
    device,
    forBlockStart: 0,
    timePs: 1_000_000,
    chunks: 16,
    usedChunks: lru.length,
    first: () => order[0] ?? -1,
    next: (c) => order[order.indexOf(c) + 1] ?? -1,
    isEvictable: (c) => by.has(c) && !by.get(c)!.pinned,
    chunkBlockStart: (c) => (by.has(c) ? c * 2 * 1024 * 1024 : -1),
    chunkMm: () => null,
    chunkResidentPages: (c) => by.get(c)?.resident ?? 512,
    chunkLastUsePs: (c) => order.indexOf(c),
    chunkAllocPs: (c) => order.indexOf(c),
    chunkLastAccessPs: (c) => by.get(c)?.lastAccessPs ?? 0,
    chunkAccesses: (c) => by.get(c)?.accesses ?? 0,
  };
}
