/**
 * Migration of system pages — and of a peer device's pages — to device memory (NVIDIA uvm_hmm.c
 * `uvm_hmm_va_block_service_locked` → `hmm_migrate_to_device` / `migrate_alloc_on_gpu` / `migrate_vma_*`, and uvm_migrate.c for explicit
 * migration [S1, S6]), written the way lib/test_hmm.c's `dmirror_migrate_to_device` is:
 *
 *  - `migrateRuns`: one migrateVmaSetup / copy over the link / migrateVmaPages / migrateVmaFinalize per contiguous
 *    run of the context's `mig` pages that lies in one VMA; holes (pages never touched by the CPU) are zero-filled
 *    on the device, with no DMA;
 *  - several devices: with peers (one pgmap owner for the peer-link group, PgmapOwners), migrate_vma_setup also
 *    selects device-private pages of that owner (MIGRATE_VMA_SELECT_DEVICE_PRIVATE): a peer's pages move device →
 *    device over the peer link, and the peer's page_free runs when finalize puts them; a page of another owner is
 *    first faulted back to system memory through that owner's migrate_to_ram (`faultForeignToRam`: through the host);
 *  - `migrateBlock`: every page of [j0, j1) of one block not yet resident, migrated and mapped (a snapshot mirror:
 *    nothing is faulted in) — the per-block step of `migrateRange` (UVM_MIGRATE, cudaMemPrefetchAsync) and of an
 *    access-counter notification (uvm_gpu_access_counters.c `service_va_block_locked`).
 */
import { EBUSY, EFAULT, ENOMEM, PAGE_SIZE, VM_READ, isDevicePrivateEntry, ptePfn, type Mm } from "@hmmsim/core";
import type { LinkDirection } from "@hmmsim/machine";
import {
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
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
import { mmuIntervalReadBegin } from "@hmmsim/mmu-notifier";
import { HMM_PFN_REQ_FAULT, hmmRangeFault, type HmmRange } from "@hmmsim/range-fault";
import type { GpuDriver } from "./gpu-driver.js";
import { CHUNK_PAGES } from "./root-chunks.js";
import type { ServiceBlockContext, VaSpace } from "./service-context.js";
import { GPU_PTE_REMOTE } from "./va-block.js";

type Vma = NonNullable<ReturnType<Mm["findVma"]>>;

/** Why pages move to the device (the trace events' `reason`). */
export type MigrateReason = "fault" | "hint" | "access-counter";

/** hmm_range_fault attempts (-EBUSY retries) when faulting another owner's pages back to system memory. */
const THROUGH_HOST_ATTEMPTS = 16;

/** Where a collected source page is (the `from` of each page of a run). */
const FROM_HOLE = -2;
const FROM_SYSTEM = -1;
// >= 0: the index of a peer device in the driver's `peers`.

export class DeviceMigration {
  private readonly src = new Float64Array(CHUNK_PAGES);
  private readonly dst = new Float64Array(CHUNK_PAGES);
  /** Per page of a run: FROM_HOLE, FROM_SYSTEM or the peer index its source page lives on. */
  private readonly from = new Int8Array(CHUNK_PAGES);
  private readonly mva: MigrateVma;
  /**
   * migrate_vma's selection: system pages, and — when the device has peers (its pgmap owner is shared) — the
   * device-private pages of that owner, i.e. the peers' pages (device → device over the peer link).
   */
  private readonly selectFlags: number;
  /** The hmm_range_fault request that faults another owner's pages back to system memory (through the host). */
  private readonly hostRange: HmmRange;
  private readonly hostPfns = new Float64Array(CHUNK_PAGES);

  constructor(private readonly d: GpuDriver) {
    this.selectFlags = d.peers.length > 0 ? MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_DEVICE_PRIVATE : MIGRATE_VMA_SELECT_SYSTEM;
    this.mva = migrateVmaInit({ vma: null, start: 0, end: 0, src: this.src, dst: this.dst, pgmapOwner: d.owner, flags: this.selectFlags });
    this.hostRange = {
      notifier: null as unknown as HmmRange["notifier"],
      notifierSeq: 0,
      start: 0,
      end: 0,
      hmmPfns: this.hostPfns,
      defaultFlags: 0,
      pfnFlagsMask: HMM_PFN_REQ_FAULT,
      devPrivateOwner: d.owner,
    };
  }

  /**
   * Through the host: the pages of [start, end) that are device-private pages of another pgmap owner (a device not
   * joined to this one by a peer link) are faulted back to system memory with hmm_range_fault(HMM_PFN_REQ_FAULT),
   * which goes through do_swap_page → that owner's migrate_to_ram (its copy runs over its host link, d2h); the
   * run's migrate_vma_setup then collects them as system pages and the copy to this device crosses our host link
   * (h2d). This is amdgpu's `svm_migrate_vram_to_vram` (kfd_migrate.c [S106]: VRAM → RAM → VRAM, "TODO: for both devices
   * with PCIe large bar or on same xgmi hive, skip system memory as migration bridge"). Returns the pages faulted.
   * The caller holds the mmap read lock.
   */
  private faultForeignToRam(vma: Vma, start: number, end: number): number {
    const d = this.d;
    const mm = vma.vmMm;
    const vs = d.spaceOf.get(mm);
    if (vs === undefined) return 0;
    const pt = mm.pgtable;
    const pgmaps = d.kernel.pgmaps;
    const n = (end - start) / PAGE_SIZE;
    const pf = this.hostPfns;
    let first = -1;
    let last = -1;
    for (let i = 0; i < n; i++) {
      const e = pt.pteGet(start + i * PAGE_SIZE);
      pf[i] = 0;
      if (!isDevicePrivateEntry(e)) continue;
      const pg = pgmaps.pgmapOf(ptePfn(e));
      if (pg === null || pg.owner === d.owner) continue;
      pf[i] = HMM_PFN_REQ_FAULT;
      if (first < 0) first = i;
      last = i;
    }
    if (first < 0) return 0;
    const r = this.hostRange;
    r.notifier = vs.sub;
    r.start = start + first * PAGE_SIZE;
    r.end = start + (last + 1) * PAGE_SIZE;
    r.hmmPfns = pf.subarray(first, last + 1);
    for (let attempt = 0; attempt < THROUGH_HOST_ATTEMPTS; attempt++) {
      r.notifierSeq = mmuIntervalReadBegin(vs.sub);
      // Faulting the pages in invalidates our own interval (the owner's migrate_to_ram): -EBUSY, and again.
      if (hmmRangeFault(r) !== -EBUSY) break;
    }
    const faulted = last + 1 - first;
    d.stats.throughHostPages += faulted;
    return faulted;
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
    a.pgmapOwner = d.owner;
    a.flags = this.selectFlags;
    a.faultPage = null;
    d.stats.migrateRuns++;
    const trace = d.trace;
    if (trace.migrateBegin.isUsed()) {
      trace.migrateBegin.call({ device: d.name, mm: vma.vmMm, dir: "h2d", start, end, npages: ke - k, bytes: 0, reason, timePs: d.engine.now });
    }
    if (d.foreignOwners) this.faultForeignToRam(vma, start, end);
    d.ownMigration++;
    let setup: number;
    try {
      setup = migrateVmaSetup(a);
    } finally {
      d.ownMigration--;
    }
    if (setup !== 0) {
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
    const from = this.from;
    const peers = d.peers;
    let copied = 0;
    let zeroed = 0;
    let fromPeers = 0;
    for (let i = 0; i < npages; i++) {
      const m = src[i]!;
      if ((m & MIGRATE_PFN_MIGRATE) === 0) {
        dst[i] = 0;
        continue;
      }
      const spfn = migratePfnToPage(m);
      // A collected device-private page (SELECT_DEVICE_PRIVATE, our owner): a peer's page, copied over the peer
      // link. One of our own (another block's, e.g. shared by fork) is left where it is.
      const p = spfn >= 0 && peers.length > 0 ? d.peerIndexOfPfn(spfn) : -1;
      if (p < 0 && spfn >= d.startPfn && spfn < d.startPfn + d.nrPages) {
        dst[i] = 0;
        continue;
      }
      const j = k + i;
      const dpfn = base + j;
      pmm.allocDevicePage(chunk, j, dpfn);
      if (spfn >= 0) {
        pb.copy(dpfn, spfn);
        if (p >= 0) fromPeers++;
        else copied++;
        from[i] = p >= 0 ? p : FROM_SYSTEM;
      } else {
        pb.clear(dpfn);
        zeroed++;
        from[i] = FROM_HOLE;
      }
      dst[i] = (m & MIGRATE_PFN_WRITE) !== 0 ? mpfnSet(migratePfn(dpfn), MIGRATE_PFN_WRITE) : migratePfn(dpfn);
    }
    if (zeroed > 0) d.ledger.chargePs(zeroed * d.zeroPagePs);
    if (copied > 0 || fromPeers > 0) await d.ledger.settle(); // the CPU work of setup before the copy engine starts
    if (copied > 0) await d.link.transfer("h2d", copied * PAGE_SIZE);
    if (fromPeers > 0) await this.copyFromPeers(npages);
    d.ownMigration++;
    let moved = 0;
    let movedBytes = 0;
    let peerMoved = 0;
    try {
      migrateVmaPages(a);
      for (let i = 0; i < npages; i++) {
        if ((src[i]! & MIGRATE_PFN_MIGRATE) === 0 || dst[i] === 0) continue;
        moved++;
        if (migratePfnToPage(src[i]!) >= 0) {
          movedBytes += PAGE_SIZE;
          if (fromPeers > 0 && from[i]! >= 0) peerMoved++;
        }
      }
      // The peers' source pages are put here: their refcount reaches 0 and each peer's page_free runs (its chunk
      // accounting, its device PTE); the peer's mappings went with our setup's MMU_NOTIFY_MIGRATE invalidation.
      migrateVmaFinalize(a);
    } finally {
      d.ownMigration--;
    }
    if (moved > 0) pmm.chunks.touch(chunk, d.engine.now);
    const copiedMoved = movedBytes / PAGE_SIZE;
    d.stats.migratedPages += copiedMoved;
    d.stats.peerMigratedPages += peerMoved;
    d.stats.populatedPages += moved - copiedMoved;
    if (trace.migrateEnd.isUsed()) {
      if (fromPeers === 0) {
        trace.migrateEnd.call({ device: d.name, mm: vma.vmMm, dir: "h2d", start, end, npages: moved, bytes: movedBytes, reason, timePs: d.engine.now });
      } else {
        this.traceEndBySource(vma, start, end, npages, reason);
      }
    }
    return moved;
  }

  /**
   * The copies of a run's peer pages: one DMA per peer over the peer link joining it to this device, in the
   * direction peer → this device (LinkRegistry.peerDirection). UVM copies between two GPUs of one VA space
   * directly when they are peers (uvm_va_block.c `block_copy_resident_pages_between`, allowed by
   * `block_can_copy_from`: the VA space's `can_copy_from` mask, set for peer-enabled GPUs [S105]); the peers' pages
   * are never staged in system memory.
   */
  private async copyFromPeers(npages: number): Promise<void> {
    const d = this.d;
    const from = this.from;
    const src = this.src;
    const dst = this.dst;
    for (let p = 0; p < d.peers.length; p++) {
      let n = 0;
      for (let i = 0; i < npages; i++) if (from[i] === p && (src[i]! & MIGRATE_PFN_MIGRATE) !== 0 && dst[i] !== 0) n++;
      if (n === 0) continue;
      const peer = d.peers[p]!;
      const dir: LinkDirection = peer.fromPeer;
      await peer.link.transfer(dir, n * PAGE_SIZE);
    }
  }

  /**
   * migrateEnd for a run some of whose pages came from peers: one event for the pages from system memory (and
   * populated holes), as for any run, then one per peer with `from` = the peer device (dir "h2d": towards this
   * device). The migrateBegin of the run was one event (its sources are known only after setup).
   */
  private traceEndBySource(vma: Vma, start: number, end: number, npages: number, reason: MigrateReason): void {
    const d = this.d;
    const src = this.src;
    const dst = this.dst;
    const from = this.from;
    const now = d.engine.now;
    let sys = 0;
    let sysBytes = 0;
    for (let i = 0; i < npages; i++) {
      if ((src[i]! & MIGRATE_PFN_MIGRATE) === 0 || dst[i] === 0 || from[i]! >= 0) continue;
      sys++;
      if (from[i] === FROM_SYSTEM) sysBytes += PAGE_SIZE;
    }
    if (sys > 0) d.trace.migrateEnd.call({ device: d.name, mm: vma.vmMm, dir: "h2d", start, end, npages: sys, bytes: sysBytes, reason, timePs: now });
    for (let p = 0; p < d.peers.length; p++) {
      let n = 0;
      for (let i = 0; i < npages; i++) if (from[i] === p && (src[i]! & MIGRATE_PFN_MIGRATE) !== 0 && dst[i] !== 0) n++;
      if (n > 0) d.trace.migrateEnd.call({ device: d.name, from: d.peers[p]!.device, mm: vma.vmMm, dir: "h2d", start, end, npages: n, bytes: n * PAGE_SIZE, reason, timePs: now });
    }
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
