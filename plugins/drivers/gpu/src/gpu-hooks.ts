/**
 * The GPU driver's policy hook points, declared once per machine, frozen and typed (DESIGN.md "Wiring: DI + hooks"):
 *
 *  - `shouldMigrate` (SyncBailHook, first answer wins): for one distinct faulted page, `true` = migrate it (and
 *    what prefetchRange adds) to device memory, `false` = map the system page remotely (device accesses then
 *    cross the link). No answer = migrate.
 *  - `prefetchRange` (SyncWaterfallHook): transforms the range to migrate around a faulted page; starts as the
 *    faulted page, each tap returns the (possibly grown) range. The driver clamps it to the 2 MiB VA block and
 *    the VMA and never migrates pages that are already resident.
 *  - `selectVictim` (SyncBailHook): which 2 MiB root chunk of device memory to evict when none is free. No
 *    answer = the head of the LRU list (`lruVictim`: least recently allocated / migrated into, as UVM [S5]).
 *
 * The counterparts in NVIDIA UVM are the perf-module decisions (uvm_perf_prefetch.c compute_prefetch_region,
 * uvm_perf_thrashing.c, uvm_pmm_gpu.c pick_root_chunk_to_evict) [S2, S3, S5]; gpu_ext hooks the same two places
 * [S19]. The arguments carry what those policies read (fault address, access type, duplicates, the 2 MiB
 * block's residency, device memory pressure), so tree prefetch, thrashing and access-counter policies fit later
 * without changing the driver. Per-event history (migrations, evictions, invalidations) is on the machine's
 * trace points (MachineTrace), which a policy taps to keep its own state.
 *
 * Hook arguments are objects the driver reuses for every call (the fault path allocates nothing): read them
 * inside the tap, copy what you keep. Tap at setup (plugin apply), with a stage from GPU_POLICY_STAGE_*.
 */
import { SyncBailHook, SyncWaterfallHook } from "tapable";
import { createHooksRegistry } from "@hmmsim/machine";
import type { Mm } from "@hmmsim/core";
import type { GpuDriver } from "./gpu-driver.js";

/** Access types of a replayable fault (UVM_FAULT_ACCESS_TYPE_*; atomics and prefetch kept for later policies). */
export const GPU_ACCESS_READ = 0;
export const GPU_ACCESS_WRITE = 1;
export const GPU_ACCESS_ATOMIC = 2;
export type GpuAccessType = 0 | 1 | 2;

/** Tap stages (tapable `stage`, lower runs first): a test or experiment overrides the default policy. */
export const GPU_POLICY_STAGE_OVERRIDE = -100;
export const GPU_POLICY_STAGE_POLICY = 0;
/** The default policy plugin (on-demand) taps here so that any other policy answers first. */
export const GPU_POLICY_STAGE_DEFAULT = 100;

/** One distinct faulted page being serviced (a reused object). */
export interface GpuFault {
  readonly driver: GpuDriver;
  /** The device's name in the machine spec. */
  readonly device: string;
  readonly mm: Mm;
  /** Page-aligned faulting address. */
  readonly address: number;
  readonly access: GpuAccessType;
  /** access !== GPU_ACCESS_READ. */
  readonly write: boolean;
  /** Fault-buffer entries for this page in the batch (≥ 1; > 1 when several warps faulted it). */
  readonly duplicates: number;
  /** Sequence number of the batch (0, 1, …) and its distinct pages. */
  readonly batch: number;
  readonly batchPages: number;
  readonly timePs: number;
  /** The 2 MiB VA block: start address and this page's index in it (0..511). */
  readonly blockStart: number;
  readonly pageIndex: number;
  /** Pages of the block resident in this device's memory. */
  readonly blockResident: number;
  /** Pages of the block with a valid device page-table entry (local or remote). */
  readonly blockMapped: number;
  /** Distinct pages of this block faulted in this batch. */
  readonly blockFaulted: number;
  /** Bounds of the VMA holding the address (a prefetch range is clamped to them). */
  readonly vmaStart: number;
  readonly vmaEnd: number;
  /** Device memory: free pages, total pages. */
  readonly deviceFreePages: number;
  readonly devicePages: number;
  /** Is page `index` (0..511) of this block resident on the device? */
  isResident(index: number): boolean;
  /** Was page `index` of this block faulted in this batch? */
  isFaulted(index: number): boolean;
}

/** A virtual address range [start, end) to migrate (a reused, mutable object: a tap may change and return it). */
export interface GpuPrefetchRange {
  start: number;
  end: number;
}

/** Why the driver needs device memory, and a view of the root chunks to choose from (a reused object). */
export interface GpuEvictionQuery {
  readonly driver: GpuDriver;
  readonly device: string;
  /** The VA block being serviced (its own chunk is never a candidate). */
  readonly forBlockStart: number;
  readonly timePs: number;
  /** Number of root chunks (2 MiB each) and how many are allocated. */
  readonly chunks: number;
  readonly usedChunks: number;
  /** LRU order, least recent first: first() then next(c) until -1. */
  first(): number;
  next(chunk: number): number;
  /** May this chunk be evicted now (allocated and not being serviced)? */
  isEvictable(chunk: number): boolean;
  /** VA start of the block the chunk backs, and the pages of it in use. */
  chunkBlockStart(chunk: number): number;
  chunkResidentPages(chunk: number): number;
  /** Virtual time the chunk was last allocated or migrated into (the LRU key), ps. */
  chunkLastUsePs(chunk: number): number;
}

export interface GpuDriverHooks {
  readonly shouldMigrate: SyncBailHook<[GpuFault], boolean | undefined>;
  readonly prefetchRange: SyncWaterfallHook<[GpuPrefetchRange, GpuFault]>;
  readonly selectVictim: SyncBailHook<[GpuEvictionQuery], number | undefined>;
}

/** The hooks of `machine` (created on first use, frozen); shared by every GPU of the machine (`fault.device` says which). */
export const getGpuDriverHooks = createHooksRegistry<object, GpuDriverHooks>(() => ({
  shouldMigrate: new SyncBailHook<[GpuFault], boolean | undefined>(["fault"]),
  prefetchRange: new SyncWaterfallHook<[GpuPrefetchRange, GpuFault]>(["range", "fault"]),
  selectVictim: new SyncBailHook<[GpuEvictionQuery], number | undefined>(["query"]),
}));

/** The default victim: the least recently allocated / migrated-into evictable chunk (UVM's va_block_used head [S5]), or -1. */
export function lruVictim(q: GpuEvictionQuery): number {
  for (let c = q.first(); c !== -1; c = q.next(c)) if (q.isEvictable(c)) return c;
  return -1;
}
