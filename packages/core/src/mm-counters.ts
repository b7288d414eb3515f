/**
 * rss counters (include/linux/mm_types_task.h enum, include/linux/mm.h get/add/inc/dec_mm_counter,
 * mm_counter / mm_counter_file).
 */
import type { Kernel } from "./kernel.js";
import type { Mm } from "./mm.js";
import { PG_anon, PG_swapbacked } from "./page-flags.js";

export const MM_FILEPAGES = 0;
export const MM_ANONPAGES = 1;
export const MM_SWAPENTS = 2;
export const MM_SHMEMPAGES = 3;
export const NR_MM_COUNTERS = 4;
export type MmCounter = 0 | 1 | 2 | 3;
export const MM_COUNTER_NAMES = ["MM_FILEPAGES", "MM_ANONPAGES", "MM_SWAPENTS", "MM_SHMEMPAGES"] as const;

/** mm_counter_file(folio): shmem (swap-backed) or file. */
export function mmCounterFile(k: Kernel, pfn: number): MmCounter {
  return k.store.test(k.store.folioHead(pfn), PG_swapbacked) ? MM_SHMEMPAGES : MM_FILEPAGES;
}
/** mm_counter(folio): anon, else shmem/file. */
export function mmCounter(k: Kernel, pfn: number): MmCounter {
  return k.store.test(k.store.folioHead(pfn), PG_anon) ? MM_ANONPAGES : mmCounterFile(k, pfn);
}
export function getMmCounter(mm: Mm, member: MmCounter): number {
  return mm.rss[member]!;
}
export function addMmCounter(mm: Mm, member: MmCounter, value: number): void {
  mm.rss[member] = mm.rss[member]! + value;
}
export function incMmCounter(mm: Mm, member: MmCounter): void {
  mm.rss[member] = mm.rss[member]! + 1;
}
export function decMmCounter(mm: Mm, member: MmCounter): void {
  mm.rss[member] = mm.rss[member]! - 1;
}
/** get_mm_rss(): file + anon + shmem pages. */
export function getMmRss(mm: Mm): number {
  return mm.rss[MM_FILEPAGES]! + mm.rss[MM_ANONPAGES]! + mm.rss[MM_SHMEMPAGES]!;
}
