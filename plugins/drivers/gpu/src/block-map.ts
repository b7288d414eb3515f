/**
 * Mapping a serviced VA block in the device page table, and unmapping ranges of it (NVIDIA uvm_va_block.c
 * `block_map_gpu_to` / `uvm_va_block_unmap`; in HMM mode the pfns come from `hmm_range_fault` under the interval
 * notifier's sequence, uvm_hmm.c `hmm_block_cpu_fault_locked` / `uvm_hmm_va_block_service_locked` [S1]):
 *
 *  - `mirror(ctx)`: the documented loop (mirrorRangeFault: read_begin → mmap read lock → hmmRangeFault → driver
 *    lock → read_retry) over the context's span, then `updatePageTable` under the driver lock: our own device pfns
 *    are local entries (page i of the block = page i of its root chunk), system pfns remote entries, a peer
 *    device's pfns (reported because the peer shares our pgmap owner) remote entries over the peer link (GPU_PTE_PEER);
 *  - `clearPtes` / `unmapRange`: clear entries and their device-TLB tags (invalidation, eviction, page free).
 */
import { KernelRuleError, PAGE_SIZE } from "@hmmsim/core";
import { HMM_PFN_ERROR, HMM_PFN_PFN_MUL, HMM_PFN_VALID, HMM_PFN_WRITE, mirrorRangeFault, type HmmRange } from "@hmmsim/range-fault";
import { tlbTag2m, tlbTag4k } from "./device-tlb.js";
import type { GpuDriver } from "./gpu-driver.js";
import { CHUNK_PAGES } from "./root-chunks.js";
import { PAGE_REQ_SNAPSHOT, type ServiceBlockContext } from "./service-context.js";
import { GPU_PTE_PEER, GPU_PTE_REMOTE, GPU_PTE_VALID, GPU_PTE_WRITE, VA_BLOCK_SIZE } from "./va-block.js";

/** The page index of `addr` in its 2 MiB block (the low 9 bits of the page number). */
export function pageIndex(addr: number): number {
  // ToInt32 keeps the low 32 bits of the integer, so & is exact here.
  return Math.floor(addr / PAGE_SIZE) & (CHUNK_PAGES - 1);
}

export class BlockMapper {
  private readonly noWindow = (): void => {};

  constructor(private readonly d: GpuDriver) {}

  /** The documented mirror loop over the context's span [lo, hi]; the device PTEs are written in updatePageTable. */
  async mirror(ctx: ServiceBlockContext): Promise<number> {
    const d = this.d;
    const r = ctx.prepareMirror(ctx.space!.sub);
    const st = ctx.mirrorStats;
    st.attempts = 0;
    st.readRetry = 0;
    st.rangeFaultBusy = 0;
    await d.ledger.settle();
    const ret = await mirrorRangeFault(r, { driverLock: d.lock, update: ctx.update, engine: d.engine, stats: st, window: this.noWindow });
    d.stats.mirrorAttempts += st.attempts;
    d.stats.mirrorRetries += st.readRetry;
    return ret;
  }

  /** Under the driver lock with a validated sequence: program the device page table from range.hmmPfns. */
  updatePageTable(ctx: ServiceBlockContext, r: HmmRange): number {
    const d = this.d;
    const slot = ctx.slot;
    const bl = d.blocks;
    const tlb = d.tlb;
    const base = slot * CHUNK_PAGES;
    const lo = ctx.lo;
    const hi = ctx.hi;
    const req = ctx.req;
    const pf = r.hmmPfns;
    const space = bl.space[slot]!;
    const blockVpn = ctx.blockStart / PAGE_SIZE;
    const chunk = bl.chunk[slot]!;
    const startPfn = d.startPfn;
    const endPfn = startPfn + d.nrPages;
    const hasPeers = d.peers.length > 0;
    // Read-mostly ranges (the advise API): a page kept in system memory is mapped read-only into the device, so that
    // a device write faults and the page collapses to the writer (plugins/policies/advise/README.md, "Read-mostly
    // under HMM"); UVM maps read-duplicated pages read-only for the same reason (uvm_va_block.c, read duplication).
    const advised = d.vaPolicies.size > 0 ? ctx.space!.mm : null;
    let written = 0;
    for (let k = lo; k <= hi; k++) {
      const q = req[k]!;
      if (q === 0) continue;
      const e = pf[k - lo]!;
      if ((e & HMM_PFN_VALID) === 0 || (e & HMM_PFN_ERROR) !== 0) continue;
      const pfn = (e - (e & 2047)) / HMM_PFN_PFN_MUL;
      let w = (e & HMM_PFN_WRITE) !== 0 ? GPU_PTE_WRITE : 0;
      const local = pfn >= startPfn && pfn < endPfn;
      let nf: number;
      if (local) {
        if (chunk < 0 || pfn !== startPfn + chunk * CHUNK_PAGES + k) {
          throw new KernelRuleError("gpu_block_chunk_mismatch", `${d.name}: device pfn ${pfn} is not page ${k} of the block's root chunk`);
        }
        nf = GPU_PTE_VALID | w;
      } else {
        if (q === PAGE_REQ_SNAPSHOT) continue; // a prefetched page that stayed in system memory
        if (w !== 0 && advised !== null && d.vaPolicies.lookup(advised, ctx.blockStart + k * PAGE_SIZE)?.readMostly === true) w = 0;
        // A peer device's page (hmm_range_fault reports it: same pgmap owner) is mapped over the peer link.
        nf = GPU_PTE_VALID | GPU_PTE_REMOTE | w | (hasPeers && d.peerIndexOfPfn(pfn) >= 0 ? GPU_PTE_PEER : 0);
        bl.remotePfns(slot)[k] = pfn;
        d.stats.remoteMapped++;
      }
      const old = bl.pte[base + k]!;
      if (old === nf) continue;
      if ((old & GPU_PTE_VALID) !== 0) {
        tlb.invalidate(tlbTag4k(space, blockVpn + k));
        if ((old & GPU_PTE_REMOTE) === 0) {
          if (bl.localMapped[slot] === CHUNK_PAGES) tlb.invalidate(tlbTag2m(space, blockVpn));
          bl.localMapped[slot]!--;
        }
        bl.mapped[slot]!--;
      }
      bl.pte[base + k] = nf;
      bl.mapped[slot]!++;
      if (local) bl.localMapped[slot]!++;
      written++;
    }
    if (written > 0) d.ledger.charge("PTE_UPDATE", written);
    return 0;
  }

  /** Clears the device PTEs of `space` in [start, end) and their TLB entries; returns how many were valid. */
  unmapRange(space: number, start: number, end: number): number {
    const bl = this.d.blocks;
    let cleared = 0;
    const big = end - start > 64 * VA_BLOCK_SIZE;
    bl.forEachIn(space, start, end, (slot) => {
      if (bl.mapped[slot] === 0) return;
      const bs = bl.start[slot]!;
      const a = Math.max(start, bs);
      const z = Math.min(end, bs + VA_BLOCK_SIZE);
      cleared += this.clearPtes(slot, pageIndex(a), Math.ceil((z - bs) / PAGE_SIZE), !big);
    });
    if (big && cleared > 0) this.d.tlb.flushAll();
    return cleared;
  }

  /** Clears entries [j0, j1) of a block; drops their TLB tags when `tlb` (else the caller flushes). */
  clearPtes(slot: number, j0: number, j1: number, tlb = true): number {
    const bl = this.d.blocks;
    const t = this.d.tlb;
    const base = slot * CHUNK_PAGES;
    const space = bl.space[slot]!;
    const blockVpn = bl.start[slot]! / PAGE_SIZE;
    if (tlb && bl.localMapped[slot] === CHUNK_PAGES) t.invalidate(tlbTag2m(space, blockVpn));
    let n = 0;
    for (let j = j0; j < j1; j++) {
      const f = bl.pte[base + j]!;
      if ((f & GPU_PTE_VALID) === 0) continue;
      bl.pte[base + j] = 0;
      bl.mapped[slot]!--;
      if ((f & GPU_PTE_REMOTE) === 0) bl.localMapped[slot]!--;
      if (tlb) t.invalidate(tlbTag4k(space, blockVpn + j));
      n++;
    }
    return n;
  }
}
