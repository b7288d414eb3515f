/**
 * The callbacks the kernel makes into the driver (NVIDIA uvm_hmm.c [S1]; lib/test_hmm.c is the upstream shape):
 *
 *  - `migrateToRam`: dev_pagemap_ops.migrate_to_ram (uvm_hmm.c `devmem_fault` → `uvm_hmm_migrate_to_ram`;
 *    `dmirror_devmem_fault`): a CPU touched one of our device-private pages;
 *  - `invalidate`: mmu_interval_notifier_ops.invalidate (uvm_hmm.c `uvm_hmm_invalidate`;
 *    `dmirror_interval_invalidate`): the CPU side of a range changed; clear our device PTEs and TLB entries for it
 *    (skipping only the MMU_NOTIFY_MIGRATE of a migration this driver is itself running, never a peer's).
 */
import {
  KernelRuleError,
  MMU_NOTIFY_MIGRATE,
  PAGE_SIZE,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
  allocPages,
  folioTrylock,
  type VmFault,
} from "@hmmsim/core";
import {
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_DEVICE_COHERENT,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  migratePfn,
  migratePfnToPage,
  migrateVmaFinalize,
  migrateVmaInit,
  migrateVmaPages,
  migrateVmaSetup,
  mpfnSet,
  type MigrateVma,
} from "@hmmsim/migrate";
import { mmuIntervalSetSeq, type MmuIntervalNotifier, type MmuNotifierRange } from "@hmmsim/mmu-notifier";
import { pageIndex } from "./block-map.js";
import type { GpuDriver } from "./gpu-driver.js";

export class HmmCallbacks {
  private readonly ramSrc = new Float64Array(1);
  private readonly ramDst = new Float64Array(1);
  private readonly ramMva: MigrateVma;

  constructor(private readonly d: GpuDriver) {
    this.ramMva = migrateVmaInit({
      vma: null,
      start: 0,
      end: 0,
      src: this.ramSrc,
      dst: this.ramDst,
      pgmapOwner: d.owner,
      flags: d.memoryType === "private" ? MIGRATE_VMA_SELECT_DEVICE_PRIVATE : MIGRATE_VMA_SELECT_DEVICE_COHERENT,
    });
  }

  /**
   * dev_pagemap_ops.migrate_to_ram (dmirror_devmem_fault): a CPU touched one of our device-private pages. Runs
   * synchronously in the faulting CPU task: migrate_vma_setup with fault_page, copy to a new system page, clear our
   * PTE, migrate_vma_pages / finalize. The copy is queued on the faulting task (`ledger.chargeTransfer`): a
   * synchronous fault path cannot await the link, so the DMA runs on the real link, shared with other traffic and
   * counted in its stats, when the task next settles (before it goes on). The migrateEnd trace point fires when the
   * pages are committed, before that DMA time has passed.
   */
  migrateToRam(vmf: VmFault): number {
    const d = this.d;
    const a = this.ramMva;
    const k = d.kernel;
    const trace = d.trace;
    a.vma = vmf.vma;
    a.start = vmf.address;
    a.end = vmf.address + PAGE_SIZE;
    a.src = this.ramSrc;
    a.dst = this.ramDst;
    a.pgmapOwner = d.owner;
    a.flags = MIGRATE_VMA_SELECT_DEVICE_PRIVATE;
    a.faultPage = vmf.page;
    const traced = trace.migrateBegin.isUsed() || trace.migrateEnd.isUsed();
    if (traced) {
      trace.migrateBegin.call({ device: d.name, mm: vmf.vma.vmMm, dir: "d2h", start: a.start, end: a.end, npages: 1, bytes: 0, reason: "cpu-fault", timePs: d.engine.now });
    }
    d.ownMigration++;
    let setup: number;
    try {
      setup = migrateVmaSetup(a);
    } finally {
      d.ownMigration--;
    }
    if (setup !== 0) {
      if (traced) trace.migrateEnd.call({ device: d.name, mm: vmf.vma.vmMm, dir: "d2h", start: a.start, end: a.end, npages: 0, bytes: 0, reason: "cpu-fault", timePs: d.engine.now });
      return VM_FAULT_SIGBUS;
    }
    const m = this.ramSrc[0]!;
    let ret = 0;
    this.ramDst[0] = 0;
    if ((m & MIGRATE_PFN_MIGRATE) !== 0) {
      const spfn = allocPages(k, 0);
      if (spfn < 0) {
        ret = VM_FAULT_OOM;
      } else {
        folioTrylock(k, spfn);
        k.pageBytes.copy(spfn, migratePfnToPage(m));
        this.ramDst[0] = (m & MIGRATE_PFN_WRITE) !== 0 ? mpfnSet(migratePfn(spfn), MIGRATE_PFN_WRITE) : migratePfn(spfn);
        const vs = d.spaceOf.get(vmf.mm);
        if (vs) {
          const slot = d.blocks.find(vs.id, vmf.address);
          if (slot >= 0) d.mapper.clearPtes(slot, pageIndex(vmf.address), pageIndex(vmf.address) + 1, true);
        }
        d.ledger.chargeTransfer(d.link, "d2h", PAGE_SIZE);
      }
    }
    d.ownMigration++;
    let moved: number;
    try {
      migrateVmaPages(a);
      moved = (this.ramSrc[0]! & MIGRATE_PFN_MIGRATE) !== 0 && this.ramDst[0] !== 0 ? 1 : 0;
      migrateVmaFinalize(a);
    } finally {
      d.ownMigration--;
    }
    d.stats.cpuFaultPages += moved;
    if (traced) {
      trace.migrateEnd.call({ device: d.name, mm: vmf.vma.vmMm, dir: "d2h", start: a.start, end: a.end, npages: moved, bytes: moved * PAGE_SIZE, reason: "cpu-fault", timePs: d.engine.now });
    }
    return ret;
  }

  /**
   * mmu_interval_notifier_ops.invalidate (dmirror_interval_invalidate) for VA space `space`.
   *
   * Only this driver's own migrations are skipped: an MMU_NOTIFY_MIGRATE whose owner is ours *and* that was raised
   * while we are inside one of our own migrate_vma_* / migrate_device_* calls (`ownMigration`, as UVM marks the
   * block it migrates with `ignore_hmm_invalidate_va_block`, uvm_hmm.c `hmm_invalidate`). lib/test_hmm.c skips on
   * the owner alone; here the owner is the peer-link group's (PgmapOwners), so a peer's migration carries our owner
   * too — of system pages we may map, or of our own device pages it is taking — and must be honoured.
   */
  invalidate(space: number, sub: MmuIntervalNotifier, range: MmuNotifierRange<unknown>, curSeq: number): boolean {
    const d = this.d;
    if (!d.lock.tryLock()) {
      throw new KernelRuleError("gpu_driver_lock_held_across_await", `${d.name}: the driver lock is held outside a synchronous section`);
    }
    try {
      // The sequence advances for every invalidation, our own migrations included: a mirror pass that read a pfn
      // before this migration (our device-private entry, which migrate_to_ram is now moving back, say) must retry,
      // not map it. UVM gets this from its va_block lock, which the fault service and migrate_to_ram both hold
      // (uvm_hmm.c hmm_invalidate: "holding the lock prevents other threads invalidating PTEs"); the FPGA driver's
      // explorer found the interleaving under `npm run soak`.
      mmuIntervalSetSeq(sub, curSeq);
      // Our own migrations told us which pages move through src/dst: we update our mappings ourselves.
      if (range.event === MMU_NOTIFY_MIGRATE && range.owner === d.owner && d.ownMigration > 0) return true;
      const cleared = d.mapper.unmapRange(space, range.start, range.end);
      if (cleared > 0) {
        d.stats.invalidatedPtes += cleared;
        d.ledger.charge("PTE_UPDATE", cleared);
        if (d.spec.tlbInvalidatePs > 0) d.ledger.chargePs(d.spec.tlbInvalidatePs);
      }
    } finally {
      d.lock.unlock();
    }
    return true;
  }
}
