/** Test helpers (not exported from index.ts): fake queries. */
import { BLOCK_SIZE, type FaultQuery } from "../fault-query.js";
import type { VictimQuery } from "../victim-query.js";

/** A VictimQuery over `lru` (chunk numbers, least recent first) with the given non-evictable chunks. */
export function victimQuery(lru: number[], pinned: number[] = [], device = "gpu0"): VictimQuery {
  return {
    device,
    forBlockStart: 0,
    timePs: 0,
    chunks: 8,
    usedChunks: lru.length,
    first: () => lru[0] ?? -1,
    next: (c) => lru[lru.indexOf(c) + 1] ?? -1,
    isEvictable: (c) => lru.includes(c) && !pinned.includes(c),
    chunkBlockStart: (c) => (lru.includes(c) ? c * 2 * 1024 * 1024 : -1),
    chunkMm: () => null,
    chunkResidentPages: () => 512,
    chunkLastUsePs: (c) => lru.indexOf(c),
    chunkAllocPs: (c) => lru.indexOf(c),
    chunkLastAccessPs: (c) => lru.indexOf(c),
    chunkAccesses: () => 0,
  };
}

/** A FaultQuery of `device` for the page at `address` (the fields the tests read). */
export function faultQuery(device: string, address = 0x20_0000): FaultQuery {
  return {
    device,
    mm: {},
    address,
    access: 0,
    write: false,
    duplicates: 1,
    batch: 0,
    batchPages: 1,
    timePs: 0,
    blockStart: Math.floor(address / BLOCK_SIZE) * BLOCK_SIZE,
    pageIndex: Math.floor((address % BLOCK_SIZE) / 4096),
    blockResident: 0,
    blockMapped: 0,
    blockFaulted: 1,
    vmaStart: 0,
    vmaEnd: 2 ** 40,
    deviceFreePages: 512,
    devicePages: 512,
    isResident: () => false,
    isFaulted: (i) => i === Math.floor((address % BLOCK_SIZE) / 4096),
    isMapped: () => false,
    isThrashing: () => false,
    preferredLocation: null,
    accessedBy: false,
    readMostly: false,
  };
}
