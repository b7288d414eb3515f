/**
 * The documented answers when no policy answers: a driver calls each hook and falls back on these
 * (`hooks.shouldMigrate.call(q) ?? defaultShouldMigrate(q)`), so it has no hidden policy of its own; the on-demand
 * policy plugin taps them at POLICY_STAGE_DEFAULT.
 */
import type { FaultQuery, PrefetchRange } from "./fault-query.js";
import type { AccessCounterQuery } from "./hints.js";
import type { VictimQuery } from "./victim-query.js";

/** On-demand migration: migrate the faulted page to device memory (UVM's default for a replayable fault). */
export function defaultShouldMigrate(_q: FaultQuery): boolean {
  return true;
}

/** No prefetch: the range stays the faulted page (UVM with uvm_perf_prefetch_enable = 0). */
export function defaultPrefetchRange(range: PrefetchRange, _q: FaultQuery): PrefetchRange {
  return range;
}

/**
 * The head of the LRU list that is evictable — the least recently allocated / migrated-into root chunk not being
 * serviced (uvm_pmm_gpu.c `pick_root_chunk_to_evict`: first of `va_block_used` [S5]) — or -1 when none is. UVM takes a chunk of `va_block_unused` (no resident page) first: a
 * driver that keeps empty chunks allocated lists them at the head of its LRU order.
 */
export function lruVictim(q: VictimQuery): number {
  for (let c = q.first(); c !== -1; c = q.next(c)) if (q.isEvictable(c)) return c;
  return -1;
}

/**
 * An access-counter notification migrates its region to the accessing device (uvm_gpu_access_counters.c
 * `service_va_block_locked`: the notified pages move to the processor that accessed them) [S4].
 */
export function defaultAccessCounterMigrate(_q: AccessCounterQuery): boolean {
  return true;
}
