/**
 * Replayable fault service (NVIDIA kernel-open/nvidia-uvm/uvm_gpu_replayable_faults.c [S1]): the bottom half that
 * warps' faults wake.
 *
 *  - `raise`: the GPU writes a fault-buffer entry (fault-buffer.ts) and the interrupt wakes the service task;
 *  - `serviceLoop`: uvm_parent_gpu_service_replayable_faults — pay the interrupt, then up to
 *    `maxBatchesPerService` batches (uvm_perf_fault_max_batches_per_service);
 *  - `serviceBatch`: fetch_fault_buffer_entries + preprocess_fault_batch (sort by VA space and page, fold
 *    duplicates), then service_fault_batch: one VA block at a time under the driver's block lock, then one TLB
 *    invalidate and the replay (UVM_FAULT_REPLAY_TYPE_START) of the batch's warps; with the default replay policy
 *    BATCH_FLUSH the buffer is flushed first and the flushed entries' warps replay too (`flushAndReplay`);
 *  - `serviceBlock`: service_fault_batch_block → uvm_va_block_service_locked: the policy hooks per distinct
 *    faulted page (thrashingPages once per block, then per page thrashingHint, shouldMigrate, prefetchRange and,
 *    when tapped, prefetchPages: UVM's prefetch_pages_mask, migrated with the range [S2, S91]) fill the block's
 *    service context (service-context.ts); a root chunk (memory-manager.ts), the migration (migrate-to-device.ts),
 *    the mirror and page-table update (block-map.ts).
 *
 * Thrashing hints, as service_fault_batch_block_locked carries them out for a GPU fault:
 *  - PIN: `thrashing_pin_mask` — the page stays where it is and is mapped (remotely, for a system page) with no
 *    migration, as a shouldMigrate = false answer;
 *  - THROTTLE: `mark_fault_throttled` — the page is skipped in this batch ("throttling is implemented by sleeping
 *    in the fault handler on the CPU and by continuing to process faults on other pages on the GPU"); UVM replays
 *    the batch and the throttled warps fault again and are skipped again until `uvm_perf_thrashing_get_hint` stops
 *    throttling at the hint's end_time_stamp. The model collapses that re-fault loop into what the warp sees: its
 *    fault entries are replayed at max(untilPs, the batch's replay) instead of with the batch, and the throttled
 *    fault does not count against the driver spec's maxFaultsPerAccess (a throttle that ends never stops a kernel).
 *    As uvm_parent_gpu_service_replayable_faults does, the bottom half stops after
 *    UVM_PERF_FAULT_MAX_THROTTLE_PER_SERVICE batches with throttled faults (and pays the interrupt again).
 */
import { EFAULT, ENOMEM, FAULT_FLAG_WRITE, KernelRuleError, PAGE_SIZE, VM_READ, VM_WRITE, type Mm } from "@hmmsim/core";
import { WaitQueue } from "@hmmsim/engine";
import type { PageFaultEvent } from "@hmmsim/machine";
import {
  ACCESS_READ,
  ACCESS_WRITE,
  PrefetchPageMask,
  THRASHING_HINT_PIN,
  THRASHING_HINT_THROTTLE,
  defaultShouldMigrate,
  type AccessType,
  type PrefetchRange,
  type ThrashingHint,
} from "@hmmsim/policy";
import { pageIndex } from "./block-map.js";
import { GpuFaultError, GpuPolicyError } from "./errors.js";
import { FaultBatch, FaultBuffer } from "./fault-buffer.js";
import type { GpuDriver } from "./gpu-driver.js";
import { FaultInfo } from "./policy-queries.js";
import { CHUNK_PAGES } from "./root-chunks.js";
import { PAGE_REQ_READ, PAGE_REQ_WRITE, ServiceBlockContext } from "./service-context.js";
import { GPU_PTE_VALID, GPU_PTE_WRITE, VA_BLOCK_SIZE } from "./va-block.js";

/** uvm_perf_fault_replay_policy values (uvm_gpu_replayable_faults.h) [S1]: the two the model implements. */
export const UVM_PERF_FAULT_REPLAY_POLICY_BATCH = 1;
export const UVM_PERF_FAULT_REPLAY_POLICY_BATCH_FLUSH = 2;

/** uvm_perf_fault_max_throttle_per_service (UVM_PERF_FAULT_MAX_THROTTLE_PER_SERVICE_DEFAULT) [S1]. */
export const UVM_PERF_FAULT_MAX_THROTTLE_PER_SERVICE = 5;

export class ReplayableFaultService {
  readonly buffer: FaultBuffer;
  readonly batch: FaultBatch;
  /** The service context of the block being serviced, and the FaultQuery that reads it. */
  readonly ctx: ServiceBlockContext;
  readonly fault: FaultInfo;
  private readonly wq: WaitQueue;
  private started = false;
  private batchSeq = 0;
  private readonly prefetch: PrefetchRange = { start: 0, end: 0 };
  /** The prefetchPages hook's mask (prefetch_pages_mask), zeroed over the fault's block before each call. */
  private readonly prefetchMask = new PrefetchPageMask();
  private readonly faultEvent: PageFaultEvent;
  /** The warps one batch replays (at most batchSize). */
  private readonly replayWarps: Int32Array;
  /** Per distinct page of the batch: 0, or the time until which a THROTTLE hint holds its warps off, ps. */
  private readonly throttleUntil: Float64Array;
  private throttledInBatch = 0;
  /** BATCH_FLUSH: the warps (and their kernel-run generations) of the entries a flush dropped. */
  private readonly flushedWarps: Int32Array;
  private readonly flushedGens: Int32Array;
  /** The last flush (its number, the buffer's head and write count after it) whose entries raiseWarps may put back; -1: none. */
  private flushSeq = 0;
  private parked = -1;
  private parkedHead = 0;
  private parkedPushes = 0;

  constructor(private readonly d: GpuDriver) {
    const s = d.spec;
    this.buffer = new FaultBuffer(Math.max(s.warps, s.batchSize));
    this.batch = new FaultBatch(s.batchSize);
    this.replayWarps = new Int32Array(s.batchSize);
    this.throttleUntil = new Float64Array(s.batchSize);
    this.flushedWarps = new Int32Array(this.buffer.capacity);
    this.flushedGens = new Int32Array(this.buffer.capacity);
    this.wq = new WaitQueue(`${d.name}.fault-buffer`, d.engine);
    this.ctx = new ServiceBlockContext(d.owner, (ctx, r) => d.mapper.updatePageTable(ctx, r));
    this.fault = new FaultInfo(d, this.ctx);
    this.faultEvent = { source: "device", device: d.name, mm: null, address: 0, write: false, flags: 0, ret: 0, timePs: 0 };
  }

  /** A warp raises a replayable fault (the GPU writes a fault-buffer entry). */
  raise(space: number, addr: number, write: boolean, warp: number, gen: number): void {
    const d = this.d;
    const page = Math.floor(addr / PAGE_SIZE) * PAGE_SIZE;
    if (!this.buffer.push(page, write ? ACCESS_WRITE : ACCESS_READ, space, warp, gen)) {
      throw new KernelRuleError("gpu_fault_buffer_overflow", `${d.name}: fault buffer full (${this.buffer.capacity} entries)`);
    }
    d.stats.faults++;
    if (this.wq.waiting > 0) this.wq.wakeUpOne();
  }

  /**
   * `raise` for the warps ws[0..n) of one kernel run, in order (a flushed group's retry: gpu-kernel.ts): warp w's
   * entry is for addr[w] (a write when write[w] is 1). Wakes the service task as n raises would (a wake-up only
   * schedules the waiter: it sees every entry).
   */
  raiseWarps(space: number, ws: Int32Array, n: number, addr: Float64Array, write: Uint8Array, gen: number, flush: number): void {
    const buf = this.buffer;
    if (flush >= 0 && flush === this.parked && buf.count === 0 && buf.headIndex === this.parkedHead && buf.pushes === this.parkedPushes) {
      // These are the entries of the last flush, all of them in their order (flushAndReplay), and the buffer has not
      // been written or read since: the entries the warps write are the ones the flush dropped, still in their
      // slots. Putting them back is writing them again.
      this.parked = -1;
      buf.unflush(n);
    } else if (buf.capacity - buf.count < n) {
      // Not all fit: one at a time, so the overflow error comes at the same entry.
      for (let k = 0; k < n; k++) this.raise(space, addr[ws[k]!]!, write[ws[k]!] === 1, ws[k]!, gen);
      return;
    } else {
      for (let k = 0; k < n; k++) {
        const w = ws[k]!;
        buf.push(Math.floor(addr[w]! / PAGE_SIZE) * PAGE_SIZE, write[w] === 1 ? ACCESS_WRITE : ACCESS_READ, space, w, gen);
      }
    }
    this.d.stats.faults += n;
    for (let k = 0; k < n && this.wq.waiting > 0; k++) this.wq.wakeUpOne();
  }

  /** Starts the fault-service daemon task (once). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.d.engine.spawn(`${this.d.name}.fault-service`, () => this.serviceLoop(), { daemon: true });
  }

  /** The bottom half: wait for faults, pay the interrupt, service up to maxBatchesPerService batches, repeat. */
  private async serviceLoop(): Promise<void> {
    const s = this.d.spec;
    const engine = this.d.engine;
    for (;;) {
      while (this.buffer.count === 0) await this.wq.wait();
      if (s.faultInterruptPs > 0) await engine.sleep(s.faultInterruptPs);
      let throttled = 0;
      for (let b = 0; b < s.maxBatchesPerService && this.buffer.count > 0 && throttled < UVM_PERF_FAULT_MAX_THROTTLE_PER_SERVICE; b++) {
        if (await this.serviceBatch()) throttled++;
      }
    }
  }

  /** uvm_parent_gpu_service_replayable_faults → service_fault_batch for one batch; true when it throttled a fault. */
  private async serviceBatch(): Promise<boolean> {
    const d = this.d;
    const b = this.batch;
    const startPs = d.engine.now;
    const n = this.buffer.fetch(b, d.spec.batchSize);
    // The entries already in the buffer behind the batch (UVM's cached PUT, read when the batch was fetched).
    const cachedBehind = this.buffer.count;
    const np = b.preprocess();
    const seq = this.batchSeq++;
    d.stats.batches++;
    d.stats.duplicates += n - np;
    d.stats.faultedPages += np;
    const trace = d.trace;
    if (trace.pageFault.isUsed()) {
      // One event object per device, refilled for each entry (PageFaultEvent: copy what you keep).
      const ev = this.faultEvent;
      ev.timePs = startPs;
      for (let i = 0; i < n; i++) {
        const w = b.access[i] !== ACCESS_READ;
        ev.mm = d.spaces[b.space[i]!]!.mm;
        ev.address = b.addr[i]!;
        ev.write = w;
        ev.flags = w ? FAULT_FLAG_WRITE : 0;
        trace.pageFault.call(ev);
      }
    }
    d.ledger.charge("DEVICE_FAULT", n);
    this.throttledInBatch = 0;
    // One VA block at a time (pages are sorted by space, then address).
    let g = 0;
    while (g < np) {
      const space = b.pageSpace[g]!;
      const block = Math.floor(b.pageAddr[g]! / VA_BLOCK_SIZE);
      let e = g + 1;
      while (e < np && b.pageSpace[e] === space && Math.floor(b.pageAddr[e]! / VA_BLOCK_SIZE) === block) e++;
      if (!d.blockLock.tryLock()) await d.blockLock.lock();
      try {
        await this.serviceBlock(b, g, e, seq);
      } finally {
        d.blockLock.unlock();
      }
      g = e;
    }
    if (d.spec.tlbInvalidatePs > 0) d.ledger.chargePs(d.spec.tlbInvalidatePs);
    await d.ledger.settle();
    const endPs = d.engine.now;
    if (trace.deviceFaultBatch.isUsed()) trace.deviceFaultBatch.call({ device: d.name, faults: n, pages: np, startPs, endPs });
    // Replay (UVM_FAULT_REPLAY_TYPE_START): every warp of the batch retries its access.
    // The warps retry in batch order at the same instant: one engine event for the group (the order, and so every
    // result, is what one event per warp in FIFO order gives).
    const run = d.run;
    const at = endPs + d.spec.replayPs;
    const rw = this.replayWarps;
    const throttled = this.throttledInBatch > 0;
    let nr = 0;
    for (let p = 0; p < np; p++) {
      const err = b.pageErr[p]!;
      if (throttled && this.throttleUntil[p]! > 0) continue; // replayed below, once the throttle ends
      for (let j = b.pageFirst[p]!, end = j + b.pageDup[p]!; j < end; j++) {
        const i = b.order[j]!;
        if (run === null || b.gen[i] !== run.gen) continue; // a finished kernel's warp
        if (err !== 0) run.fail(new GpuFaultError(d.name, b.addr[i]!, err, err === -ENOMEM ? "out of memory: no page of RAM for the fault (hmm_range_fault -ENOMEM)" : "the device access cannot be serviced"));
        else rw[nr++] = b.warp[i]!;
      }
    }
    if (run !== null && nr > 0) run.replayGroup(rw, nr, at);
    if (d.spec.replayPolicy === UVM_PERF_FAULT_REPLAY_POLICY_BATCH_FLUSH) this.flushAndReplay(n, n - np, cachedBehind, at);
    if (throttled) this.replayThrottled(b, np, at);
    return throttled;
  }

  /**
   * UVM_PERF_FAULT_REPLAY_POLICY_BATCH_FLUSH (uvm_parent_gpu_service_replayable_faults → fault_buffer_flush_locked
   * with UVM_FAULT_REPLAY_TYPE_START): after the batch, the entries still in the buffer are dropped unserviced —
   * all of them (UPDATE_PUT) when more than replayUpdatePutRatio % of the batch were duplicates, else those that were
   * there when the batch was fetched (CACHED_PUT) — and the replay restarts their warps with the batch's: a warp whose
   * page the batch made valid (a prefetched page) goes on without a service round; the others fault again (a new
   * entry). The model replays only the warps of dropped entries (an entry that stays keeps its warp stalled), and a
   * dropped fault does not count against maxFaultsPerAccess (it was never serviced).
   */
  private flushAndReplay(n: number, duplicates: number, cachedBehind: number, at: number): void {
    const d = this.d;
    const updatePut = duplicates * 100 > n * d.spec.replayUpdatePutRatio;
    const k = this.buffer.flush(updatePut ? this.buffer.count : cachedBehind, this.flushedWarps, this.flushedGens);
    d.stats.flushes++;
    if (k === 0) return;
    d.stats.flushedFaults += k;
    const run = d.run;
    if (run === null) return;
    const ws = this.flushedWarps;
    let nr = 0;
    for (let j = 0; j < k; j++) if (this.flushedGens[j] === run.gen) ws[nr++] = ws[j]!; // a finished kernel's warp: dropped
    // All of them the running kernel's: raiseWarps may put them back as they are (`parked`).
    let flush = -1;
    if (nr === k) {
      flush = this.parked = ++this.flushSeq;
      this.parkedHead = this.buffer.headIndex;
      this.parkedPushes = this.buffer.pushes;
    }
    if (nr > 0) run.replayFlushed(ws, nr, at, flush);
  }

  /**
   * The throttled pages' warps: each page's group is replayed at max(untilPs, the batch's replay time), the fault
   * not counted against maxFaultsPerAccess; the wait beyond the normal replay is the throttle's cost (throttleNs).
   */
  private replayThrottled(b: FaultBatch, np: number, at: number): void {
    const d = this.d;
    const run = d.run;
    const rw = this.replayWarps;
    for (let p = 0; p < np; p++) {
      const until = this.throttleUntil[p]!;
      if (until === 0) continue;
      this.throttleUntil[p] = 0;
      const when = Math.max(until, at);
      let nr = 0;
      for (let j = b.pageFirst[p]!, end = j + b.pageDup[p]!; j < end; j++) {
        const i = b.order[j]!;
        d.stats.throttledFaults++;
        if (run === null || b.gen[i] !== run.gen) continue;
        rw[nr++] = b.warp[i]!;
      }
      d.stats.throttleNs += (nr * (when - at)) / 1000;
      if (run !== null && nr > 0) run.replayThrottled(rw, nr, when);
    }
  }

  /** Asks `thrashingHint` for the page in `f`; validates the answer (a policy error names the hook). */
  private thrashingHint(): ThrashingHint | undefined {
    const h = this.d.policy.thrashingHint.call(this.fault) as ThrashingHint | undefined | null;
    if (h === undefined || h === null) return undefined;
    if (typeof h !== "object" || (h.type !== THRASHING_HINT_PIN && h.type !== THRASHING_HINT_THROTTLE)) {
      throw new GpuPolicyError("thrashingHint", `must answer { type: THRASHING_HINT_THROTTLE | THRASHING_HINT_PIN, untilPs } or nothing, got ${JSON.stringify(h)}`);
    }
    if (h.type === THRASHING_HINT_THROTTLE && !Number.isFinite(h.untilPs)) {
      throw new GpuPolicyError("thrashingHint", `a THROTTLE hint needs a finite untilPs (ps), got ${String(h.untilPs)}`);
    }
    return h;
  }

  /** service_fault_batch_block(): the distinct pages [g, e) of the batch, all in one 2 MiB VA block. */
  private async serviceBlock(b: FaultBatch, g: number, e: number, seq: number): Promise<void> {
    const d = this.d;
    const vs = d.spaces[b.pageSpace[g]!]!;
    const mm = vs.mm;
    const blockStart = Math.floor(b.pageAddr[g]! / VA_BLOCK_SIZE) * VA_BLOCK_SIZE;
    const slot = d.blocks.get(vs.id, blockStart);
    const ctx = this.ctx;
    ctx.begin(vs, slot, blockStart);
    // req / mig / faulted are all-zero between blocks: only the span and the faulted pages get set, and are cleared
    // again at the end of the block.
    const fm = ctx.faulted;
    for (let p = g; p < e; p++) fm[pageIndex(b.pageAddr[p]!)] = 1;
    const pmm = d.pmm;
    const chunks = pmm.chunks;

    if (!mm.mmapLock.tryDownRead()) {
      await d.ledger.settle(); // settle before blocking
      await mm.mmapLock.downRead();
    }
    try {
      const f = this.fault;
      f.beginBlock(mm, seq, b.npages, blockStart, slot, e - g);
      const policy = d.policy;
      const advised = d.vaPolicies.size > 0;
      if (!advised) f.setAdvice(null);
      if (policy.thrashingPages.isUsed()) {
        // uvm_perf_thrashing_get_thrashing_pages, once per block serviced: the taps set the thrashing pages. The
        // query's page is the block's first faulted page.
        const a0 = b.pageAddr[g]!;
        const v0 = mm.findVma(a0);
        const inside = v0 !== null && a0 >= v0.vmStart;
        f.setPage(a0, pageIndex(a0), b.pageAccess[g] as AccessType, b.pageDup[g]!, inside ? v0.vmStart : a0, inside ? v0.vmEnd : a0 + PAGE_SIZE);
        if (advised) f.setAdvice(d.vaPolicies.lookup(mm, a0));
        ctx.thrashing.fill(0);
        policy.thrashingPages.call(f, ctx.thrashing);
      }
      const hinting = policy.thrashingHint.isUsed();
      let vma: ReturnType<Mm["findVma"]> = null;
      for (let p = g; p < e; p++) {
        const addr = b.pageAddr[p]!;
        const j = pageIndex(addr);
        const write = b.pageAccess[p] !== ACCESS_READ;
        if (vma === null || addr < vma.vmStart || addr >= vma.vmEnd) vma = mm.findVma(addr);
        if (vma === null || addr < vma.vmStart || (vma.vmFlags & (write ? VM_WRITE : VM_READ)) === 0) {
          b.pageErr[p] = -EFAULT;
          continue;
        }
        const pf = d.blocks.pte[slot * CHUNK_PAGES + j]!;
        if ((pf & GPU_PTE_VALID) !== 0 && (!write || (pf & GPU_PTE_WRITE) !== 0)) {
          d.stats.staleFaults++; // serviced by an earlier batch
          continue;
        }
        const c = d.blocks.chunk[slot]!;
        const resident = c >= 0 && chunks.isPageUsed(c, j);
        if (hinting || !resident) {
          f.setPage(addr, j, b.pageAccess[p] as AccessType, b.pageDup[p]!, vma.vmStart, vma.vmEnd);
          if (advised) f.setAdvice(d.vaPolicies.lookup(mm, addr));
        }
        if (hinting) {
          // uvm_perf_thrashing_get_hint, for a page the GPU is not yet authorized to access.
          const h = this.thrashingHint();
          if (h !== undefined && h.type === THRASHING_HINT_THROTTLE && h.untilPs > d.engine.now) {
            // mark_fault_throttled: skip the page in this batch; its warps wait until the throttle ends.
            this.throttleUntil[p] = h.untilPs;
            this.throttledInBatch++;
            d.stats.throttledPages++;
            continue;
          }
          if (h !== undefined && h.type === THRASHING_HINT_PIN) {
            // thrashing_pin_mask: map the page where it is (remotely for a system page), no migration.
            ctx.request(j, write ? PAGE_REQ_WRITE : PAGE_REQ_READ);
            d.stats.thrashingPins++;
            continue;
          }
        }
        ctx.request(j, write ? PAGE_REQ_WRITE : PAGE_REQ_READ);
        if (resident) continue; // resident: only map it
        const migrate = policy.shouldMigrate.call(f) ?? defaultShouldMigrate(f);
        if (!migrate) continue; // mapped remotely by the mirror step
        const r = this.prefetch;
        r.start = addr;
        r.end = addr + PAGE_SIZE;
        // The waterfall starts from the faulted page: with no tap it returns it unchanged (defaultPrefetchRange).
        const out = policy.prefetchRange.call(r, f) as PrefetchRange | undefined;
        let s = addr;
        let en = addr + PAGE_SIZE;
        if (out && Number.isFinite(out.start) && Number.isFinite(out.end)) {
          s = Math.max(Math.min(out.start, addr), blockStart, vma.vmStart);
          en = Math.min(Math.max(out.end, addr + PAGE_SIZE), blockStart + VA_BLOCK_SIZE, vma.vmEnd);
          s = Math.floor(s / PAGE_SIZE) * PAGE_SIZE;
          en = Math.ceil(en / PAGE_SIZE) * PAGE_SIZE;
        }
        for (let k = pageIndex(s), ke = (en - blockStart) / PAGE_SIZE; k < ke; k++) {
          if (c >= 0 && chunks.isPageUsed(c, k)) continue;
          ctx.migrate(k);
        }
        if (policy.prefetchPages.isUsed()) {
          // uvm_perf_prefetch.c `uvm_perf_prefetch_get_hint_va_block` answers `prefetch_pages_mask` (zeroed first);
          // uvm_va_block.c `uvm_va_block_get_prefetch_hint` adds its pages, wherever they lie in the block, to what
          // the block migrates [S2, S91]. Clamped to the VMA like the range; resident pages skipped.
          const pm = this.prefetchMask;
          pm.zero(blockStart);
          policy.prefetchPages.call(f, pm);
          if (pm.blockStart !== blockStart) throw new GpuPolicyError("prefetchPages", "a tap must not move the mask to another block (zero() is the driver's)");
          const pages = pm.pages;
          for (let k = Math.max(pm.first, (vma.vmStart - blockStart) / PAGE_SIZE), ke = Math.min(pm.outer, (vma.vmEnd - blockStart) / PAGE_SIZE); k < ke; k++) {
            if (pages[k] === 0 || (c >= 0 && chunks.isPageUsed(c, k))) continue;
            ctx.migrate(k);
          }
        }
      }

      if (ctx.anyMig) {
        const chunk = await pmm.ensureChunk(slot, blockStart);
        if (chunk < 0) {
          d.stats.noMemoryFallbacks++;
          ctx.dropMigrations();
        } else {
          ctx.chunk = chunk;
          pmm.pinChunk(chunk);
          await d.migration.migrateRuns(ctx, mm, chunk, "fault");
        }
      }
    } finally {
      mm.mmapLock.upRead();
    }

    if (ctx.hi >= ctx.lo) {
      const ret = await d.mapper.mirror(ctx);
      if (ret !== 0) {
        const req = ctx.req;
        for (let p = g; p < e; p++) if (b.pageErr[p] === 0 && req[pageIndex(b.pageAddr[p]!)] !== 0) b.pageErr[p] = ret;
      }
      ctx.end();
    }
    for (let p = g; p < e; p++) fm[pageIndex(b.pageAddr[p]!)] = 0;
    if (ctx.chunk >= 0) pmm.unpinChunk(ctx.chunk);
  }
}
