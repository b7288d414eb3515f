/** What the GPU driver counts beyond the machine's trace points (`GpuDriver.stats`). */

/** What the driver counted (beyond the machine's trace points). */
export interface GpuDriverStats {
  /** Fault-buffer entries raised by warps, and batches serviced. */
  faults: number;
  batches: number;
  /** Entries folded into another entry of the same page in their batch (faults = faultedPages + duplicates). */
  duplicates: number;
  /** Distinct pages per batch, summed over batches (a page faulted again in a later batch counts again). */
  faultedPages: number;
  /** Distinct pages serviced that were already mapped when their batch ran (a previous batch serviced them). */
  staleFaults: number;
  /**
   * Replay policy BATCH_FLUSH: fault-buffer entries dropped unserviced by the flush after a batch (their warps were
   * replayed with the batch's: on a page the batch made valid they went on, else they faulted again), and flushes.
   */
  flushedFaults: number;
  flushes: number;
  /**
   * Pages migrated to the device with their data copied over the link (faults, prefetch and migrateRange),
   * migrateVma runs, pages migrated back by CPU faults.
   */
  migratedPages: number;
  migrateRuns: number;
  /**
   * Of migratedPages, the pages that came from a peer device's memory over the peer link (device → device), and
   * the pages another owner's device memory gave back to system memory first for a migration here (through the
   * host: hmm_range_fault → that owner's migrate_to_ram).
   */
  peerMigratedPages: number;
  throughHostPages: number;
  /**
   * Pages that had no system page yet (never touched by the CPU: migrate_vma_setup's holes / pte_none) and were
   * populated in device memory by zero-filling it there, with no DMA. Not counted in migratedPages.
   */
  populatedPages: number;
  /** migrateRange() calls (hint migrations, uvm_migrate) and the pages they migrated or populated. */
  hintMigrations: number;
  hintPages: number;
  cpuFaultPages: number;
  /** Pages mapped remotely (system pfn in the device page table). */
  remoteMapped: number;
  /** Root chunks evicted and their pages. */
  evictions: number;
  evictedPages: number;
  /** Device PTEs cleared by mmu-notifier invalidations (own migrations excluded). */
  invalidatedPtes: number;
  /** Faulted pages the driver could not give device memory (no victim) and mapped remotely instead. */
  noMemoryFallbacks: number;
  /** hmmRangeFault loop: attempts and read_retry collisions. */
  mirrorAttempts: number;
  mirrorRetries: number;
  /** Device accesses over the link to remotely mapped pages. */
  remoteAccesses: number;
  /** Of remoteAccesses, those to a peer device's memory over the peer link (peer access). */
  peerRemoteAccesses: number;
  /**
   * Thrashing hints carried out (`thrashingHint`): distinct faulted pages pinned (mapped remotely, not migrated)
   * and throttled (not serviced in their batch; their fault entries replayed once the throttle ended).
   */
  thrashingPins: number;
  throttledPages: number;
  /** Fault-buffer entries held back by a THROTTLE hint, and the warp-time they waited beyond the normal replay, ns. */
  throttledFaults: number;
  throttleNs: number;
  /** Access counters: notifications raised (a counter reached its threshold), serviced, and batches serviced. */
  accessCounterNotifications: number;
  accessCounterBatches: number;
  /** Notifications the policy answered "migrate", and the pages they migrated (or populated) to the device. */
  accessCounterMigrations: number;
  accessCounterPages: number;
}

export function zeroStats(): GpuDriverStats {
  return {
    faults: 0,
    batches: 0,
    duplicates: 0,
    faultedPages: 0,
    staleFaults: 0,
    flushedFaults: 0,
    flushes: 0,
    migratedPages: 0,
    peerMigratedPages: 0,
    throughHostPages: 0,
    migrateRuns: 0,
    populatedPages: 0,
    hintMigrations: 0,
    hintPages: 0,
    cpuFaultPages: 0,
    remoteMapped: 0,
    evictions: 0,
    evictedPages: 0,
    invalidatedPtes: 0,
    noMemoryFallbacks: 0,
    mirrorAttempts: 0,
    mirrorRetries: 0,
    remoteAccesses: 0,
    peerRemoteAccesses: 0,
    thrashingPins: 0,
    throttledPages: 0,
    throttledFaults: 0,
    throttleNs: 0,
    accessCounterNotifications: 0,
    accessCounterBatches: 0,
    accessCounterMigrations: 0,
    accessCounterPages: 0,
  };
}
