/**
 * Victim choices over a device's root chunks (the 2 MiB allocation units of @hmmsim/policy's VictimQuery), each a
 * pure function of the query (and, for the random one, a random source):
 *
 *  - `lruVictim` (re-exported from @hmmsim/policy): NVIDIA UVM's order, least recently *allocated or migrated
 *    into* first (uvm_pmm_gpu.c `pick_root_chunk_to_evict`, `chunk_update_lists_locked` [S5]);
 *  - `lruAccessVictim`: UVMSmart's LRU (`-eviction_policy 0`): least recently *accessed* 2 MiB large page first —
 *    gpu-sim.cc `refresh_valid_pages` moves a large page's entry on every TLB hit and fill, `sort_valid_pages`
 *    sorts by that cycle, `page_eviction_procedure` evicts the first evictable one whole (`evict_whole_tree`) [S90];
 *  - `lfuVictim`: UVMSmart's LFU (`-eviction_policy 4`): fewest accesses first (`access_counter` of the large
 *    page's tree root, `inc_bb_access_counter` on every access), ties by least recent access (`cycle`) [S90];
 *  - `randomVictim`: UVMSmart's random (`-eviction_policy 3`) picks a random *4 KiB valid page*; projected on root
 *    chunks that is a chunk with probability proportional to its resident pages [S90];
 *  - `treeVictim`: UVMSmart's tree-based neighbourhood eviction (`-eviction_policy 1`, TBN): `sort_valid_pages`
 *    groups the 64 KiB basic-block entries by large page and orders the groups by their *most recent* access, so
 *    the victim large page is the one whose last access is oldest [S90].
 *
 * Every answer is an evictable chunk or -1 (none), as the hook requires. Ties fall to the query's LRU order.
 */
import { lruVictim, type VictimQuery } from "@hmmsim/policy";

export { lruVictim };

/** The evictable chunk with the smallest `key`, ties to the earliest in the query's LRU order; -1 when none. */
export function minVictim(q: VictimQuery, key: (c: number) => number): number {
  let best = -1;
  let bestKey = Infinity;
  for (let c = q.first(); c !== -1; c = q.next(c)) {
    if (!q.isEvictable(c)) continue;
    const k = key(c);
    if (best === -1 || k < bestKey) {
      best = c;
      bestKey = k;
    }
  }
  return best;
}

/** UVMSmart LRU: the evictable chunk least recently accessed by the device (`chunkLastAccessPs`). */
export function lruAccessVictim(q: VictimQuery): number {
  return minVictim(q, (c) => q.chunkLastAccessPs(c));
}

/**
 * UVMSmart LFU: the evictable chunk with the fewest device accesses (`chunkAccesses`), ties to the least recently
 * accessed (UVMSmart's third sort key, `cycle`; its second, read-only before written, is not in the query).
 */
export function lfuVictim(q: VictimQuery): number {
  let best = -1;
  let bestN = Infinity;
  let bestT = Infinity;
  for (let c = q.first(); c !== -1; c = q.next(c)) {
    if (!q.isEvictable(c)) continue;
    const n = q.chunkAccesses(c);
    if (best !== -1 && n > bestN) continue;
    const t = q.chunkLastAccessPs(c);
    if (best === -1 || n < bestN || t < bestT) {
      best = c;
      bestN = n;
      bestT = t;
    }
  }
  return best;
}

/**
 * UVMSmart TBN eviction at root-chunk granularity: the chunk (large page) whose most recent access is the oldest.
 * A chunk's `chunkLastAccessPs` is the latest access to any of its pages — the `cycle` of its most recent basic
 * block, the key UVMSmart sorts its groups by — so the victim is the same as `lruAccessVictim`'s. What TBN changes
 * beyond the choice (evicting one 64 KiB basic block and then every tree node less than half valid,
 * `traverse_and_remove_lp_tree`) is inside the chunk, which a root-chunk driver evicts whole (see the README).
 */
export function treeVictim(q: VictimQuery): number {
  return minVictim(q, (c) => q.chunkLastAccessPs(c));
}

/** The random draws `randomVictim` needs (the machine's seeded Rng, @hmmsim/engine, satisfies it). */
export interface RandomSource {
  int(n: number): number;
}

/**
 * UVMSmart random eviction projected on root chunks: one uniformly random resident 4 KiB page among the evictable
 * chunks, and its chunk is the victim (probability ∝ `chunkResidentPages`); uniform over the evictable chunks when
 * none has a resident page. One draw per call.
 */
export function randomVictim(q: VictimQuery, rng: RandomSource): number {
  let total = 0;
  let count = 0;
  for (let c = q.first(); c !== -1; c = q.next(c)) {
    if (!q.isEvictable(c)) continue;
    total += q.chunkResidentPages(c);
    count++;
  }
  if (count === 0) return -1;
  const uniform = total === 0;
  let r = rng.int(uniform ? count : total);
  for (let c = q.first(); c !== -1; c = q.next(c)) {
    if (!q.isEvictable(c)) continue;
    const w = uniform ? 1 : q.chunkResidentPages(c);
    if (r < w) return c;
    r -= w;
  }
  return -1; // unreachable: r < total
}
