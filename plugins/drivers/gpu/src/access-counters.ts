/**
 * Access counters (NVIDIA kernel-open/nvidia-uvm/uvm_gpu_access_counters.c [S4]): the GPU counts its accesses to
 * remotely mapped memory per region of `granularity` bytes; when a region's counter reaches `threshold` the GPU
 * writes a notification into the access-counter buffer, clears the counter and raises an interrupt; the bottom half
 * (`uvm_service_access_counters`) fetches up to `uvm_perf_access_counter_batch_count` = 256 notifications at a time
 * (`fetch_access_counter_buffer_entries`, NOTIFICATION_FETCH_MODE_BATCH_READY) and services each batch
 * (`service_notifications` → `service_notifications_batch` → `service_va_block_locked`), until the buffer is empty.
 *
 * Here:
 *  - configuration: `accessCounterConfig.call(device)` is asked once, on the device's first remote access (policies
 *    tap at `apply`, before anything runs); no answer → the device counts nothing and the hot path pays one
 *    comparison per remote access, nothing per local one;
 *  - counting: `record(space, addr)` on every warp access that translates to a remote entry (a page the policy
 *    chose to map remotely — shouldMigrate false, a thrashing PIN — or one that got no device memory): one Map lookup
 *    (the last region is cached) and a typed-array increment;
 *  - the notification buffer: a ring of typed arrays (space, region, count). When it is full the counter is not
 *    cleared and notifies again on its next access (the hardware drops nothing, it stalls the notification);
 *  - service: a daemon task woken by the "interrupt" (it pays the driver spec's `faultInterruptPs`, the same
 *    interrupt + wake-up assumption as the fault path), then batches of at most 256: for each notification
 *    `accessCounterNotification.call(q) ?? defaultAccessCounterMigrate(q)`; true → the region's pages this device
 *    maps remotely are migrated to it (clamped to the VMAs; DeviceMigration.migrateBlock, reason "access-counter"),
 *    false → nothing (the counter was cleared when the notification was raised).
 *
 * UVM's own HMM/4 KiB-page path differs in one documented way: in the open driver's `service_notifications`,
 * "TODO: Bug 4299018: Add support for virtual access counter migrations on 4K page sizes" — on a 4 KiB-page kernel
 * it only notifies tools and clears. The model carries out what the hook answers (the behaviour on 64 KiB-page
 * kernels, and what the issue asks for).
 */
import { PAGE_SIZE, VM_READ } from "@hmmsim/core";
import { WaitQueue } from "@hmmsim/engine";
import { defaultAccessCounterMigrate, type AccessCounterConfig, type AccessCounterQuery } from "@hmmsim/policy";
import { GpuPolicyError } from "./errors.js";
import type { GpuDriver } from "./gpu-driver.js";
import { CHUNK_PAGES } from "./root-chunks.js";
import { ServiceBlockContext } from "./service-context.js";
import { GPU_PTE_REMOTE, GPU_PTE_VALID, VA_BLOCK_SIZE } from "./va-block.js";

/** uvm_perf_access_counter_batch_count (UVM_PERF_ACCESS_COUNTER_BATCH_COUNT_DEFAULT) [S4]. */
export const ACCESS_COUNTER_BATCH_COUNT = 256;
/** Notification buffer entries (the hardware's buffer holds thousands; here 8 batches). */
export const ACCESS_COUNTER_BUFFER_ENTRIES = 8 * ACCESS_COUNTER_BATCH_COUNT;
/** Bounds of `granularity` (UVM_ACCESS_COUNTER_GRANULARITY_64K … _16G; the model stops at 16 MiB) and `threshold` [S4]. */
export const ACCESS_COUNTER_MIN_GRANULARITY = 64 * 1024;
export const ACCESS_COUNTER_MAX_GRANULARITY = 16 * 1024 * 1024;
export const ACCESS_COUNTER_MAX_THRESHOLD = (1 << 16) - 1;

const UNCONFIGURED = 2;
const ON = 1;
const OFF = 0;
const SPACE_MUL = 2 ** 47; // region numbers of a 47-bit VA space stay below it at any granularity ≥ 1

export class AccessCounters {
  /** OFF (no config: count nothing), ON, or UNCONFIGURED (ask on the first remote access). */
  state = UNCONFIGURED;
  granularity = 0;
  threshold = 0;
  private shift = 0;
  /** Counters: (space, region) key → slot; counts per slot. */
  private readonly index = new Map<number, number>();
  private counts = new Uint32Array(64);
  private lastKey = -1;
  private lastSlot = -1;
  /** The notification ring. */
  private readonly nSpace = new Uint16Array(ACCESS_COUNTER_BUFFER_ENTRIES);
  private readonly nRegion = new Float64Array(ACCESS_COUNTER_BUFFER_ENTRIES);
  private readonly nCount = new Uint32Array(ACCESS_COUNTER_BUFFER_ENTRIES);
  private head = 0;
  private pending = 0;
  private readonly wq: WaitQueue;
  private started = false;
  private batchSeq = 0;
  private readonly query: Query;
  private readonly ctx: ServiceBlockContext;

  constructor(private readonly d: GpuDriver) {
    this.wq = new WaitQueue(`${d.name}.access-counter-buffer`, d.engine);
    this.query = new Query(d.name);
    this.ctx = new ServiceBlockContext(d.owner, (ctx, r) => d.mapper.updatePageTable(ctx, r));
  }

  /** Notifications waiting in the buffer. */
  get pendingNotifications(): number {
    return this.pending;
  }

  /** The current count of the region holding `addr` of VA space `space` (0 when not counted). */
  countOf(space: number, addr: number): number {
    if (this.state !== ON) return 0;
    const s = this.index.get(space * SPACE_MUL + Math.floor(addr / this.granularity));
    return s === undefined ? 0 : this.counts[s]!;
  }

  /** Asks the policy for the device's configuration (once). */
  configure(): void {
    const d = this.d;
    const c = d.policy.accessCounterConfig.call(d.name) as AccessCounterConfig | undefined;
    if (c === undefined || c === null) {
      this.state = OFF;
      return;
    }
    const g = c.granularity;
    const t = c.threshold;
    if (!Number.isSafeInteger(g) || g < ACCESS_COUNTER_MIN_GRANULARITY || g > ACCESS_COUNTER_MAX_GRANULARITY || (g & (g - 1)) !== 0) {
      throw new GpuPolicyError("accessCounterConfig", `granularity must be a power of two from 64 KiB to 16 MiB, got ${String(g)}`);
    }
    if (!Number.isSafeInteger(t) || t < 1 || t > ACCESS_COUNTER_MAX_THRESHOLD) {
      throw new GpuPolicyError("accessCounterConfig", `threshold must be an integer from 1 to ${ACCESS_COUNTER_MAX_THRESHOLD}, got ${String(t)}`);
    }
    this.granularity = g;
    this.threshold = t;
    this.shift = g;
    this.state = ON;
  }

  /** A warp's access to a remotely mapped page at `addr` of VA space `space` (the hot path: cheap). */
  record(space: number, addr: number): void {
    if (this.state !== ON) {
      if (this.state === OFF) return;
      this.configure();
      if (this.state !== ON) return;
    }
    const key = space * SPACE_MUL + Math.floor(addr / this.shift);
    let slot = this.lastSlot;
    if (key !== this.lastKey) {
      const s = this.index.get(key);
      if (s === undefined) {
        slot = this.index.size;
        if (slot === this.counts.length) {
          const n = new Uint32Array(slot * 2);
          n.set(this.counts);
          this.counts = n;
        }
        this.index.set(key, slot);
      } else slot = s;
      this.lastKey = key;
      this.lastSlot = slot;
    }
    const n = this.counts[slot]! + 1;
    if (n < this.threshold || this.pending === ACCESS_COUNTER_BUFFER_ENTRIES) {
      this.counts[slot] = n;
      return;
    }
    // The counter reached its threshold: a notification, and the counter starts again.
    this.counts[slot] = 0;
    const i = (this.head + this.pending) % ACCESS_COUNTER_BUFFER_ENTRIES;
    this.nSpace[i] = space;
    this.nRegion[i] = Math.floor(addr / this.shift) * this.shift;
    this.nCount[i] = n;
    this.pending++;
    this.d.stats.accessCounterNotifications++;
    if (!this.started) {
      this.started = true;
      this.d.engine.spawn(`${this.d.name}.access-counter-service`, () => this.serviceLoop(), { daemon: true });
    } else if (this.wq.waiting > 0) this.wq.wakeUpOne();
  }

  /** uvm_service_access_counters: interrupt, then batches of at most 256 until the buffer is empty. */
  private async serviceLoop(): Promise<void> {
    const d = this.d;
    for (;;) {
      while (this.pending === 0) await this.wq.wait();
      if (d.spec.faultInterruptPs > 0) await d.engine.sleep(d.spec.faultInterruptPs);
      while (this.pending > 0) await this.serviceBatch();
    }
  }

  /** fetch_access_counter_buffer_entries + service_notifications for one batch. */
  private async serviceBatch(): Promise<void> {
    const d = this.d;
    const n = Math.min(this.pending, ACCESS_COUNTER_BATCH_COUNT);
    const seq = this.batchSeq++;
    d.stats.accessCounterBatches++;
    const q = this.query;
    for (let k = 0; k < n; k++) {
      const i = this.head;
      this.head = (this.head + 1) % ACCESS_COUNTER_BUFFER_ENTRIES;
      this.pending--;
      const vs = d.spaces[this.nSpace[i]!]!;
      const start = this.nRegion[i]!;
      const end = start + this.granularity;
      q.mm = vs.mm;
      q.start = start;
      q.end = end;
      q.count = this.nCount[i]!;
      q.batch = seq;
      q.batchNotifications = n;
      q.timePs = d.engine.now;
      q.residentPages = this.residentPages(vs.id, start, end);
      q.deviceFreePages = d.nrPages - d.chunks.usedPages;
      q.devicePages = d.nrPages;
      const migrate = d.policy.accessCounterNotification.call(q) ?? defaultAccessCounterMigrate(q);
      if (migrate !== true) continue;
      d.stats.accessCounterMigrations++;
      await this.migrateRegion(vs.id, start, end);
    }
  }

  /** Pages of [start, end) of `space` resident in device memory. */
  residentPages(space: number, start: number, end: number): number {
    const d = this.d;
    let n = 0;
    for (let bs = Math.floor(start / VA_BLOCK_SIZE) * VA_BLOCK_SIZE; bs < end; bs += VA_BLOCK_SIZE) {
      const slot = d.blocks.find(space, bs);
      if (slot < 0) continue;
      const c = d.blocks.chunk[slot]!;
      if (c < 0) continue;
      const j0 = Math.max(0, (start - bs) / PAGE_SIZE);
      const j1 = Math.min(CHUNK_PAGES, (end - bs) / PAGE_SIZE);
      if (j0 === 0 && j1 === CHUNK_PAGES) n += d.chunks.used[c]!;
      else for (let j = j0; j < j1; j++) if (d.chunks.isPageUsed(c, j)) n++;
    }
    return n;
  }

  /**
   * service_va_block_locked for the notified region: the pages this device maps remotely (UVM's accessed pages:
   * system pages the GPU reached over the link; pages resident here are stale and skipped), clamped to the VMAs
   * (uvm_hmm_find_vma: "If the underlying VMA is gone, skip"), migrated block by block.
   */
  private async migrateRegion(space: number, start: number, end: number): Promise<void> {
    const d = this.d;
    const vs = d.spaces[space]!;
    const mm = vs.mm;
    const ctx = this.ctx;
    for (let bs = Math.floor(start / VA_BLOCK_SIZE) * VA_BLOCK_SIZE; bs < end; bs += VA_BLOCK_SIZE) {
      const slot = d.blocks.find(space, bs);
      if (slot < 0 || d.blocks.mapped[slot] === d.blocks.localMapped[slot]) continue; // no remote entry here
      const lo = Math.max(start, bs);
      const hi = Math.min(end, bs + VA_BLOCK_SIZE);
      for (let a = lo; a < hi; ) {
        const vma = mm.findVma(a);
        if (vma === null || vma.vmStart >= hi) break;
        const s = Math.max(a, vma.vmStart);
        const e = Math.min(hi, vma.vmEnd);
        if ((vma.vmFlags & VM_READ) !== 0) {
          if (!d.blockLock.tryLock()) await d.blockLock.lock();
          try {
            await d.migration.migrateBlock(ctx, vs, bs, (s - bs) / PAGE_SIZE, (e - bs) / PAGE_SIZE, "access-counter", GPU_PTE_VALID | GPU_PTE_REMOTE);
            d.stats.accessCounterPages += ctx.moved;
          } finally {
            d.blockLock.unlock();
          }
        }
        a = e;
      }
    }
  }
}

/** The reused AccessCounterQuery. */
class Query implements AccessCounterQuery {
  mm: object = {};
  start = 0;
  end = 0;
  count = 0;
  batch = 0;
  batchNotifications = 0;
  timePs = 0;
  residentPages = 0;
  deviceFreePages = 0;
  devicePages = 0;
  constructor(readonly device: string) {}
}
