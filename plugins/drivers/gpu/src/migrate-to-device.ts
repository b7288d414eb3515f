/**
 * Migration of system pages to device memory (NVIDIA uvm_hmm.c `uvm_hmm_va_block_service_locked` →
 * `hmm_migrate_to_device` / `migrate_alloc_on_gpu` / `migrate_vma_*`, and uvm_migrate.c for explicit
 * migration [S1, S6]), written the way lib/test_hmm.c's `dmirror_migrate_to_device` is:
 *
 *  - `migrateRuns`: one migrateVmaSetup / copy over the link / migrateVmaPages / migrateVmaFinalize per contiguous
 *    run of the context's `mig` pages that lies in one VMA; holes (pages never touched by the CPU) are zero-filled
 *    on the device, with no DMA;
 *  - `migrateBlock`: every page of [j0, j1) of one block not yet resident, migrated and mapped (a snapshot mirror:
 *    nothing is faulted in) — the per-block step of `migrateRange` (UVM_MIGRATE, cudaMemPrefetchAsync) and of an
 *    access-counter notification (uvm_gpu_access_counters.c `service_va_block_locked`).
 */
import { EFAULT, ENOMEM, PAGE_SIZE, VM_READ, type Mm } from "@hmmsim/core";
import {
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_SYSTEM,
  migratePfn,
  migratePfnToPage,
  migrateVmaFinalize,
  migrateVmaInit,
  migrateVmaPages,
  migrateVmaSetup,
  mpfnSet,
  type MigrateVma,
} from "@hmmsim/migrate";
import type { GpuDriver } from "./gpu-driver.js";
import { CHUNK_PAGES } from "./root-chunks.js";
import type { ServiceBlockContext, VaSpace } from "./service-context.js";
import { GPU_PTE_REMOTE } from "./va-block.js";

type Vma = NonNullable<ReturnType<Mm["findVma"]>>;

/** Why pages move to the device (the trace events' `reason`). */
export type MigrateReason = "fault" | "hint" | "access-counter";

export class DeviceMigration {
  private readonly src = new Float64Array(CHUNK_PAGES);
  private readonly dst = new Float64Array(CHUNK_PAGES);
  private readonly mva: MigrateVma;

  constructor(private readonly d: GpuDriver) {
    this.mva = migrateVmaInit({ vma: null, start: 0, end: 0, src: this.src, dst: this.dst, pgmapOwner: d, flags: MIGRATE_VMA_SELECT_SYSTEM });
  }

  /** One migrateVma call per contiguous run of `ctx.mig` pages in [lo, hi] of the block inside one VMA; returns pages moved. */
  async migrateRuns(ctx: ServiceBlockContext, mm: Mm, chunk: number, reason: MigrateReason): Promise<number> {
    const mig = ctx.mig;
    const blockStart = ctx.blockStart;
    const hi = ctx.hi;
    let moved = 0;
    let k = ctx.lo;
    while (k <= hi) {
      if (mig[k] === 0) {
        k++;
        continue;
      }
      const rv = mm.findVma(blockStart + k * PAGE_SIZE)!;
      let ke = k + 1;
      while (ke <= hi && mig[ke] === 1 && blockStart + ke * PAGE_SIZE < rv.vmEnd) ke++;
      moved += await this.migrateRun(rv, blockStart, k, ke, chunk, reason);
      k = ke;
    }
    return moved;
  }

  /**
   * migrate_vma_setup / copy over the link / migrate_vma_pages / migrate_vma_finalize for pages [k, ke) of a block;
   * returns the pages moved (copied + populated).
   */
  private async migrateRun(vma: Vma, blockStart: number, k: number, ke: number, chunk: number, reason: MigrateReason): Promise<number> {
    const d = this.d;
    const a = this.mva;
    const start = blockStart + k * PAGE_SIZE;
    const end = blockStart + ke * PAGE_SIZE;
    a.vma = vma;
    a.start = start;
    a.end = end;
    a.src = this.src;
    a.dst = this.dst;
    a.pgmapOwner = d;
    a.flags = MIGRATE_VMA_SELECT_SYSTEM;
    a.faultPage = null;
    d.stats.migrateRuns++;
    const trace = d.trace;
    if (trace.migrateBegin.isUsed()) {
      trace.migrateBegin.call({ device: d.name, mm: vma.vmMm, dir: "h2d", start, end, npages: ke - k, bytes: 0, reason, timePs: d.engine.now });
    }
    if (migrateVmaSetup(a) !== 0) {
      // Every begin has its end: nothing moved.
      if (trace.migrateEnd.isUsed()) trace.migrateEnd.call({ device: d.name, mm: vma.vmMm, dir: "h2d", start, end, npages: 0, bytes: 0, reason, timePs: d.engine.now });
      return 0;
    }
    const src = this.src;
    const dst = this.dst;
    const npages = a.npages;
    const base = d.startPfn + chunk * CHUNK_PAGES;
    const pb = d.kernel.pageBytes;
    const pmm = d.pmm;
    let copied = 0;
    let zeroed = 0;
    for (let i = 0; i < npages; i++) {
      const m = src[i]!;
      if ((m & MIGRATE_PFN_MIGRATE) === 0) {
        dst[i] = 0;
        continue;
      }
      const j = k + i;
      const dpfn = base + j;
      pmm.allocDevicePage(chunk, j, dpfn);
      const spfn = migratePfnToPage(m);
      if (spfn >= 0) {
        pb.copy(dpfn, spfn);
        copied++;
      } else {
        pb.clear(dpfn);
        zeroed++;
      }
      dst[i] = (m & MIGRATE_PFN_WRITE) !== 0 ? mpfnSet(migratePfn(dpfn), MIGRATE_PFN_WRITE) : migratePfn(dpfn);
    }
    if (zeroed > 0) d.ledger.chargePs(zeroed * d.zeroPagePs);
    if (copied > 0) {
      await d.ledger.settle(); // the CPU work of setup before the copy engine starts
      await d.link.transfer("h2d", copied * PAGE_SIZE);
    }
    migrateVmaPages(a);
    let moved = 0;
    let movedBytes = 0;
    for (let i = 0; i < npages; i++) {
      if ((src[i]! & MIGRATE_PFN_MIGRATE) === 0 || dst[i] === 0) continue;
      moved++;
      if (migratePfnToPage(src[i]!) >= 0) movedBytes += PAGE_SIZE;
    }
    migrateVmaFinalize(a);
    if (moved > 0) pmm.chunks.touch(chunk, d.engine.now);
    const copiedMoved = movedBytes / PAGE_SIZE;
    d.stats.migratedPages += copiedMoved;
    d.stats.populatedPages += moved - copiedMoved;
    if (trace.migrateEnd.isUsed()) {
      trace.migrateEnd.call({ device: d.name, mm: vma.vmMm, dir: "h2d", start, end, npages: moved, bytes: movedBytes, reason, timePs: d.engine.now });
    }
    return moved;
  }

  /**
   * Pages [j0, j1) of the VA block at `blockStart` of `vs` to device memory, then mapped (the caller holds the
   * driver's block lock; `ctx` is its service context). Stops at the first page not mapped readable (-EFAULT, the
   * pages before it stay migrated); -ENOMEM when the block gets no device memory. `ctx.moved`: the pages moved.
   * `ptesWith` (GPU_PTE_* bits, 0 = every page) selects the pages whose device PTE has all those bits (an
   * access-counter notification migrates the pages the device maps remotely).
   */
  async migrateBlock(ctx: ServiceBlockContext, vs: VaSpace, blockStart: number, j0: number, j1: number, reason: MigrateReason, ptesWith = 0): Promise<number> {
    const d = this.d;
    const mm = vs.mm;
    const slot = d.blocks.get(vs.id, blockStart);
    ctx.begin(vs, slot, blockStart);
    const pmm = d.pmm;
    let ret = 0;
    if (!mm.mmapLock.tryDownRead()) {
      await d.ledger.settle();
      await mm.mmapLock.downRead();
    }
    try {
      const have = d.blocks.chunk[slot]!;
      const pte = d.blocks.pte;
      const base = slot * CHUNK_PAGES;
      for (let k = j0; k < j1 && ret === 0; ) {
        const addr = blockStart + k * PAGE_SIZE;
        const vma = mm.findVma(addr);
        if (vma === null || addr < vma.vmStart || (vma.vmFlags & VM_READ) === 0) {
          ret = -EFAULT;
          break;
        }
        const ke = Math.min(j1, (vma.vmEnd - blockStart) / PAGE_SIZE);
        for (; k < ke; k++) {
          if (have >= 0 && pmm.chunks.isPageUsed(have, k)) continue;
          if (ptesWith !== 0 && (pte[base + k]! & ptesWith) !== ptesWith) continue;
          ctx.migrate(k);
        }
      }
      if ((ptesWith & GPU_PTE_REMOTE) !== 0 && ctx.hi >= ctx.lo) {
        // The remote mappings of the pages that move go first (block_migrate_pages unmaps the other processors):
        // an access in the meantime faults and is serviced, it never reaches the system page being migrated.
        for (let k = ctx.lo; k <= ctx.hi; k++) if (ctx.mig[k] === 1) d.mapper.clearPtes(slot, k, k + 1);
      }
      if (ctx.hi >= ctx.lo) {
        const chunk = await pmm.ensureChunk(slot, blockStart);
        if (chunk < 0) ret = -ENOMEM;
        else {
          ctx.chunk = chunk;
          pmm.pinChunk(chunk);
          ctx.moved = await this.migrateRuns(ctx, mm, chunk, reason);
        }
      }
    } finally {
      mm.mmapLock.upRead();
    }
    if (ctx.hi >= ctx.lo) {
      if (ctx.chunk >= 0) {
        const r = await d.mapper.mirror(ctx);
        if (r !== 0 && ret === 0) ret = r;
      }
      ctx.end();
    }
    if (ctx.chunk >= 0) pmm.unpinChunk(ctx.chunk);
    return ret;
  }
}
