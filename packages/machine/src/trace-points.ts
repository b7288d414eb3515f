/**
 * The machine's trace points: SyncHooks declared once, frozen, typed; reached per machine with
 * `MachineTrace.getHooks(machine)`. Owners fire them (the kernel adapter for CPU faults and invalidations, the
 * links for DMA, drivers for device faults, migration and eviction); tracing, statistics and exporters tap them.
 * Owners guard building the event record with `hook.isUsed()`, so an untapped trace point costs one check.
 */
import { SyncHook } from "tapable";
import { createHooksRegistry } from "./hooks-registry.js";
import type { LinkDirection } from "./interconnect.js";

/** A CPU page fault (handle_mm_fault) or a device fault entering its driver. */
/**
 * A page fault. The object may be reused once the taps return (the GPU driver refills one per device for every
 * fault entry): a tap copies what it keeps.
 */
export interface PageFaultEvent {
  source: "cpu" | "device";
  /** Device name for device faults, null for CPU faults. */
  device: string | null;
  /** The faulting mm (core Mm) if known. */
  mm: unknown;
  address: number;
  write: boolean;
  /** FAULT_FLAG_* for CPU faults; driver-defined for device faults. */
  flags: number;
  /** VM_FAULT_* result for CPU faults (0 when not known). */
  ret: number;
  timePs: number;
}

/** An mmu_notifier invalidation start (struct mmu_notifier_range). */
export interface InvalidateEvent {
  mm: unknown;
  start: number;
  end: number;
  /** MMU_NOTIFY_* */
  event: number;
  owner: unknown;
  timePs: number;
}

/** A migration of [start, end) towards a device (h2d) or towards system memory (d2h). */
export interface MigrateEvent {
  device: string;
  /** The address space (@hmmsim/core Mm) of [start, end): policies key per-page history by (mm, address). */
  mm: unknown;
  dir: LinkDirection;
  start: number;
  end: number;
  /** migrateBegin: pages selected; migrateEnd: pages actually migrated. */
  npages: number;
  /** Bytes moved (migrateEnd; 0 at begin). */
  bytes: number;
  /** Why: "fault", "prefetch", "eviction", "hint", "cpu-fault", … (free text for reports). */
  reason: string;
  timePs: number;
  /**
   * A device → device migration (dir "h2d", `device` the destination): the device the pages came from, over the
   * peer link joining the two. Absent: the pages came from (or went to) system memory.
   */
  from?: string;
}

export interface DmaTransferEvent {
  link: string;
  dir: LinkDirection;
  bytes: number;
  startPs: number;
  endPs: number;
}

/** Device memory evicted to system memory. */
export interface EvictionEvent {
  device: string;
  /** The address space (@hmmsim/core Mm) of the evicted block. */
  mm: unknown;
  start: number;
  npages: number;
  bytes: number;
  timePs: number;
}

/** A device fault batch serviced. */
export interface DeviceFaultBatchEvent {
  device: string;
  /** Faults in the batch (including duplicates). */
  faults: number;
  /** Distinct pages faulted. */
  pages: number;
  startPs: number;
  endPs: number;
}

export interface MachineTraceHooks {
  readonly pageFault: SyncHook<[PageFaultEvent]>;
  readonly invalidate: SyncHook<[InvalidateEvent]>;
  readonly migrateBegin: SyncHook<[MigrateEvent]>;
  readonly migrateEnd: SyncHook<[MigrateEvent]>;
  readonly dmaTransfer: SyncHook<[DmaTransferEvent]>;
  readonly eviction: SyncHook<[EvictionEvent]>;
  readonly deviceFaultBatch: SyncHook<[DeviceFaultBatchEvent]>;
}

const registry = createHooksRegistry<object, MachineTraceHooks>(() => ({
  pageFault: new SyncHook<[PageFaultEvent]>(["event"]),
  invalidate: new SyncHook<[InvalidateEvent]>(["event"]),
  migrateBegin: new SyncHook<[MigrateEvent]>(["event"]),
  migrateEnd: new SyncHook<[MigrateEvent]>(["event"]),
  dmaTransfer: new SyncHook<[DmaTransferEvent]>(["event"]),
  eviction: new SyncHook<[EvictionEvent]>(["event"]),
  deviceFaultBatch: new SyncHook<[DeviceFaultBatchEvent]>(["event"]),
}));

export const MachineTrace = Object.freeze({
  /** The trace points of `machine` (created on first use, frozen). */
  getHooks(machine: object): MachineTraceHooks {
    return registry(machine);
  },
});
