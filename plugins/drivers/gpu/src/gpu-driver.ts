/**
 * A GPU-like HMM driver built on hmmsim's kernel mechanisms (docs/architecture.md; Documentation/mm/hmm.rst). It stands for the
 * fault path of NVIDIA UVM in HMM mode (kernel-open/nvidia-uvm/uvm_gpu_replayable_faults.c, uvm_hmm.c,
 * uvm_pmm_gpu.c) written the way an upstream HMM driver is (lib/test_hmm.c, drivers/gpu/drm/drm_gpusvm.c):
 *
 *  - device memory: a MEMORY_DEVICE_PRIVATE pgmap from memremapPages (pageFree + migrateToRam), or
 *    MEMORY_DEVICE_COHERENT when the machine spec says so (coherent links only); 2 MiB root chunks in LRU order
 *    (root-chunks.ts);
 *  - mirroring: one interval notifier per mm (VA space) over the whole user address space; each serviced block
 *    is mirrored with hmmRangeFault in the documented read_begin / read_retry loop (mirrorRangeFault) and the
 *    device page table is written under the driver lock; the invalidate callback clears device PTEs and TLB
 *    entries for the range and ignores this device's own MMU_NOTIFY_MIGRATE (owner filtering, as lib/test_hmm.c does);
 *  - replayable faults: warps raise faults into a fault buffer; a daemon fault-service task takes batches
 *    (default 256 [S1]), folds duplicates, asks the policy hooks, migrates with migrateVmaSetup / Pages /
 *    Finalize (one call per contiguous run of a block), copies over the link (`await link.transfer("h2d", …)`),
 *    maps, invalidates the device TLB and replays;
 *  - remote mapping of system pages instead of migration (shouldMigrate → false);
 *  - eviction when device memory is full: a victim root chunk through `selectVictim` (default LRU [S5]), its
 *    pages migrated back with migrateDeviceRange / Pages / Finalize over the link.
 *
 * The policy decisions are @hmmsim/policy's hooks (`Policy.getHooks(machine)`, handed in as `policy`), answered by
 * the policy plugin of the device's spec `policy`; when no tap answers, the driver takes @hmmsim/policy's
 * documented defaults (defaultShouldMigrate, the faulted page, lruVictim): it has no policy of its own. Its
 * dependencies (engine, kernel, ledger, link, trace points, policy hooks) are handed in by the GpuDevices
 * component, which the machine's container builds (plugin.ts); it implements @hmmsim/machine's DeviceDriver.
 *
 * The driver lock (`lock`) is held only in synchronous sections, never across an await: the invalidate callback
 * (synchronous, called from whatever task changes the mm) can then always take it with tryLock.
 */
import {
  EFAULT,
  ENOMEM,
  FAULT_FLAG_WRITE,
  KernelRuleError,
  MEMORY_DEVICE_COHERENT,
  MEMORY_DEVICE_PRIVATE,
  MMU_NOTIFY_MIGRATE,
  PAGE_SIZE,
  TASK_SIZE,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
  VM_READ,
  VM_WRITE,
  allocPages,
  folioTrylock,
  type DevPagemap,
  type Kernel,
  type Mm,
  type VmFault,
} from "@hmmsim/core";
import { Mutex, WaitQueue, type Engine } from "@hmmsim/engine";
import {
  MachineError,
  type AccessSource,
  type CostLedger,
  type DeviceDriver,
  type DeviceDriverCounters,
  type DeviceSpec,
  type Interconnect,
  type Machine,
  type MachineTraceHooks,
  type PageFaultEvent,
} from "@hmmsim/machine";
import { isErrValue, memremapPages, zoneDevicePageInit } from "@hmmsim/memremap";
import {
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_DEVICE_COHERENT,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM,
  migrateDeviceFinalize,
  migrateDevicePages,
  migrateDeviceRange,
  migratePfn,
  migratePfnToPage,
  migrateVmaFinalize,
  migrateVmaInit,
  migrateVmaPages,
  migrateVmaSetup,
  mpfnSet,
  type MigrateVma,
} from "@hmmsim/migrate";
import { MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalSetSeq, type MmuNotifierRange } from "@hmmsim/mmu-notifier";
import {
  HMM_PFN_ERROR,
  HMM_PFN_PFN_MUL,
  HMM_PFN_REQ_FAULT,
  HMM_PFN_REQ_WRITE,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  asNotifierMm,
  mirrorRangeFault,
  type HmmRange,
} from "@hmmsim/range-fault";
import { DeviceTlb, tlbTag2m, tlbTag4k } from "./device-tlb.js";
import { GpuFaultError, GpuInputError, GpuPolicyError } from "./errors.js";
import { FaultBatch, FaultBuffer } from "./fault-buffer.js";
import {
  ACCESS_READ,
  ACCESS_WRITE,
  defaultShouldMigrate,
  lruVictim,
  type AccessType,
  type FaultQuery,
  type PolicyHooks,
  type PrefetchRange,
  type VictimQuery,
} from "@hmmsim/policy";
import { KernelRun, type AccessList, type GpuKernelResult, type RunKernelOptions } from "./gpu-kernel.js";
import { cyclesToPs, type GpuDriverSpec } from "./gpu-spec.js";
import { CHUNK_PAGES, RootChunks } from "./root-chunks.js";
import { GPU_PTE_REMOTE, GPU_PTE_VALID, GPU_PTE_WRITE, VA_BLOCK_SIZE, VaBlocks } from "./va-block.js";

/** At most this many mms per device (the batch sort key packs the VA-space id, see fault-buffer.ts). */
export const GPU_MAX_VA_SPACES = 63;

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
   * Pages migrated to the device with their data copied over the link (faults, prefetch and migrateRange),
   * migrateVma runs, pages migrated back by CPU faults.
   */
  migratedPages: number;
  migrateRuns: number;
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
}

function zeroStats(): GpuDriverStats {
  return {
    faults: 0,
    batches: 0,
    duplicates: 0,
    faultedPages: 0,
    staleFaults: 0,
    migratedPages: 0,
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
  };
}

/** A mirrored mm (uvm_va_space): its id, its interval notifier. */
interface VaSpace {
  id: number;
  mm: Mm;
  sub: MmuIntervalNotifier;
}

/** What a device PTE holds, for tests and tools (`entry(mm, addr)`). */
export interface GpuPteInfo {
  valid: boolean;
  write: boolean;
  remote: boolean;
  /** Device pfn (local) or system pfn (remote). */
  pfn: number;
}

/** What a GpuDriver is built from (GpuDevices hands in what the machine's container injected into it). */
export interface GpuDriverOptions {
  device: DeviceSpec;
  /** The device's spec: the plugin's spec with the device's driverSpec laid over it. */
  spec: Readonly<GpuDriverSpec>;
  kernel: Kernel;
  engine: Engine;
  ledger: CostLedger;
  /** The device's link. */
  link: Interconnect;
  /** The machine's trace points (MachineTrace.getHooks(machine)). */
  trace: MachineTraceHooks;
  /** The machine's policy hooks (Policy.getHooks(machine) from @hmmsim/policy). */
  policy: PolicyHooks;
}

const PAGE_REQ_READ = 1;
const PAGE_REQ_WRITE = 2;
const PAGE_REQ_SNAPSHOT = 3; // prefetched: map if it became ours, never fault it in

export class GpuDriver implements DeviceDriver {
  /**
   * The GPU driver of device `name` on `machine` (default: its only GPU), from the machine's device drivers
   * (`machine.driver(name)`); throws GpuInputError naming the device when it has no driver or another driver.
   */
  static of(machine: Pick<Machine, "driver" | "drivers">, name?: string): GpuDriver {
    const gpus = machine.drivers.filter((d): d is GpuDriver => d instanceof GpuDriver);
    const names = gpus.map((d) => d.device).join(", ") || "none: add GpuDriverPlugin";
    if (name === undefined) {
      if (gpus.length === 1) return gpus[0]!;
      throw new GpuInputError("name", `the machine has ${gpus.length} GPU drivers (${names}); name one`);
    }
    let d: DeviceDriver;
    try {
      d = machine.driver(name);
    } catch (e) {
      if (!(e instanceof MachineError)) throw e;
      throw new GpuInputError("name", `no GPU driver for device ${JSON.stringify(name)}: ${e.message} (GPU devices: ${names})`);
    }
    if (!(d instanceof GpuDriver)) {
      throw new GpuInputError("name", `device ${JSON.stringify(name)} is run by driver ${JSON.stringify(d.driverName)}, not the GPU driver (GPU devices: ${names})`);
    }
    return d;
  }

  /** The device's name in the machine spec (DeviceDriver.device). */
  readonly device: string;
  /** = device. */
  readonly name: string;
  readonly driverName = "gpu";
  readonly spec: Readonly<GpuDriverSpec>;
  readonly kernel: Kernel;
  readonly engine: Engine;
  readonly link: Interconnect;
  /** The machine's policy hooks (@hmmsim/policy), shared by its devices (`query.device` tells them apart). */
  readonly policy: PolicyHooks;
  /** The driver lock (the lock the invalidate callback takes): held in synchronous sections only. */
  readonly lock: Mutex;
  readonly pgmap: DevPagemap;
  readonly memoryType: "private" | "coherent";
  /** First device pfn and number of device pages (whole root chunks). */
  readonly startPfn: number;
  readonly nrPages: number;
  readonly chunks: RootChunks;
  readonly blocks = new VaBlocks();
  readonly tlb: DeviceTlb;
  readonly stats: GpuDriverStats = zeroStats();

  /** Derived costs, ps. */
  readonly tlbHitPs: number;
  readonly walk4kPs: number;
  readonly walk2mPs: number;
  readonly memAccessPs: number;
  readonly remoteSetupPs: number;
  readonly zeroPagePs: number;

  private readonly ledger: CostLedger;
  private readonly trace: MachineTraceHooks;
  private readonly spaces: VaSpace[] = [];
  private readonly spaceOf = new Map<Mm, VaSpace>();
  private readonly buffer: FaultBuffer;
  private readonly batch: FaultBatch;
  private readonly faultWq: WaitQueue;
  private serviceStarted = false;
  private batchSeq = 0;
  private readonly stream: Mutex;
  /** Serialises the users of the per-block scratch arrays below: the fault-service task and migrateRange callers. */
  private readonly blockLock: Mutex;
  /** @internal the running kernel, if any. */
  run: KernelRun | null = null;
  /** The last kernel, when it failed (kernelProgress). */
  private failedRun: KernelRun | null = null;
  private runGen = 0;

  // Reused per-block state of the service path.
  private readonly req = new Uint8Array(CHUNK_PAGES);
  private readonly mig = new Uint8Array(CHUNK_PAGES);
  /** @internal pages of the block being serviced that its batch faulted. */
  readonly faultedMask = new Uint8Array(CHUNK_PAGES);
  private readonly src = new Float64Array(CHUNK_PAGES);
  private readonly dst = new Float64Array(CHUNK_PAGES);
  private readonly esrc = new Float64Array(CHUNK_PAGES);
  private readonly edst = new Float64Array(CHUNK_PAGES);
  private readonly hmmPfns = new Float64Array(CHUNK_PAGES);
  /** hmmRangeFault wants exactly (end - start) / PAGE_SIZE entries: one cached view per length. */
  private readonly hmmViews: (Float64Array | undefined)[] = new Array(CHUNK_PAGES + 1);
  private readonly mva: MigrateVma;
  private readonly ramSrc = new Float64Array(1);
  private readonly ramDst = new Float64Array(1);
  private readonly ramMva: MigrateVma;
  private readonly range: HmmRange;
  private readonly prefetch: PrefetchRange = { start: 0, end: 0 };
  private readonly fault: FaultInfo;
  private readonly evictQuery: EvictionQuery;
  private mapSlot = -1;
  private mapBlockStart = 0;
  private mapLo = 0;
  private mapHi = 0;
  private readonly mirrorStats = { attempts: 0, rangeFaultBusy: 0, readRetry: 0 };
  private readonly faultEvent: PageFaultEvent;
  /** The warps one batch replays (at most batchSize). */
  private readonly replayWarps: Int32Array;
  private readonly update = (r: HmmRange): number => this.updatePageTable(r);
  private readonly noWindow = (): void => {};

  constructor(o: GpuDriverOptions) {
    this.device = o.device.name;
    this.name = o.device.name;
    this.spec = o.spec;
    this.kernel = o.kernel;
    this.engine = o.engine;
    this.ledger = o.ledger;
    this.link = o.link;
    this.policy = o.policy;
    this.trace = o.trace;
    this.lock = new Mutex(`${this.name}.mutex`, o.engine);
    this.stream = new Mutex(`${this.name}.stream`, o.engine);
    this.blockLock = new Mutex(`${this.name}.block`, o.engine);
    this.faultWq = new WaitQueue(`${this.name}.fault-buffer`, o.engine);
    this.memoryType = o.device.memoryType;
    if (this.memoryType === "coherent" && !o.link.supportsCoherentAccess) {
      throw new GpuInputError(`devices.${this.name}.memoryType`, `DEVICE_COHERENT memory needs a coherent link; ${o.link.name} is not`);
    }
    const nChunks = Math.floor(o.device.memory / VA_BLOCK_SIZE);
    if (nChunks < 1) throw new GpuInputError(`devices.${this.name}.memory`, "must hold at least one 2 MiB root chunk", o.device.memory);
    this.nrPages = nChunks * CHUNK_PAGES;
    const ops =
      this.memoryType === "private"
        ? { pageFree: (pfn: number) => this.pageFree(pfn), migrateToRam: (vmf: VmFault) => this.migrateToRam(vmf) }
        : { pageFree: (pfn: number) => this.pageFree(pfn) };
    this.pgmap = {
      type: this.memoryType === "private" ? MEMORY_DEVICE_PRIVATE : MEMORY_DEVICE_COHERENT,
      range: { start: 0, end: -1 },
      owner: this,
      ops,
    };
    const first = memremapPages(o.kernel, this.pgmap, this.nrPages);
    if (isErrValue(first)) throw new GpuInputError(`devices.${this.name}`, `memremapPages failed (${first})`);
    this.startPfn = first;
    this.chunks = new RootChunks(nChunks);
    const s = o.spec;
    this.tlb = new DeviceTlb(s.tlbEntries, s.tlbWays);
    this.tlbHitPs = cyclesToPs(s.tlbHitCycles, s.gpuClockHz);
    this.walk4kPs = cyclesToPs(s.pageWalk4kCycles, s.gpuClockHz);
    this.walk2mPs = cyclesToPs(s.pageWalk2mCycles, s.gpuClockHz);
    this.memAccessPs = Math.ceil((s.accessBytes * 1e12) / s.deviceMemoryBandwidth);
    this.remoteSetupPs = cyclesToPs(s.remoteAccessSetupCycles, s.gpuClockHz);
    this.zeroPagePs = Math.ceil((PAGE_SIZE * 1e12) / s.deviceMemoryBandwidth);
    this.buffer = new FaultBuffer(Math.max(s.warps, s.batchSize));
    this.batch = new FaultBatch(s.batchSize);
    this.replayWarps = new Int32Array(s.batchSize);
    this.mva = migrateVmaInit({ vma: null, start: 0, end: 0, src: this.src, dst: this.dst, pgmapOwner: this, flags: MIGRATE_VMA_SELECT_SYSTEM });
    this.ramMva = migrateVmaInit({
      vma: null,
      start: 0,
      end: 0,
      src: this.ramSrc,
      dst: this.ramDst,
      pgmapOwner: this,
      flags: this.memoryType === "private" ? MIGRATE_VMA_SELECT_DEVICE_PRIVATE : MIGRATE_VMA_SELECT_DEVICE_COHERENT,
    });
    this.range = {
      notifier: null as unknown as MmuIntervalNotifier,
      notifierSeq: 0,
      start: 0,
      end: 0,
      hmmPfns: this.hmmPfns,
      defaultFlags: 0,
      pfnFlagsMask: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE,
      devPrivateOwner: this,
    };
    this.fault = new FaultInfo(this);
    this.faultEvent = { source: "device", device: this.name, mm: null, address: 0, write: false, flags: 0, ret: 0, timePs: 0 };
    this.evictQuery = new EvictionQuery(this);
  }

  /** DeviceDriver.counters: the driver-neutral counts, from `stats`. */
  counters(): DeviceDriverCounters {
    const s = this.stats;
    return { batches: s.batches, faultedPages: s.faultedPages, migratedPages: s.migratedPages, populatedPages: s.populatedPages };
  }

  /**
   * DeviceDriver.kernelProgress: the counts so far of the kernel running now, or of the last one if it failed (a
   * run stopped in the middle of it), or null.
   */
  kernelProgress(): GpuKernelResult | null {
    return (this.run ?? this.failedRun)?.result() ?? null;
  }

  /** @internal Why a warp makes no progress, for GpuForwardProgressError: what competes for device memory. */
  progressDiagnosis(warps: number): string {
    const s = this.stats;
    const mib = (this.chunks.count * VA_BLOCK_SIZE) / 2 ** 20;
    return (
      `its page was taken away before each replay (${s.evictions.toLocaleString("en-US")} root chunks evicted so far, ${s.invalidatedPtes.toLocaleString("en-US")} device PTEs invalidated): ` +
      `the device's ${this.chunks.count.toLocaleString("en-US")} root chunk${this.chunks.count === 1 ? "" : "s"} of 2 MiB (${mib} MiB) cannot hold what ${warps} warps touch at once — ` +
      `give the device more memory, run fewer warps (driverSpec.warps) or shrink the working set`
    );
  }

  /** @internal The mm of VA space `id` (the eviction query's chunkMm). */
  spaceMm(id: number): Mm | null {
    return this.spaces[id]?.mm ?? null;
  }

  /** Device pages in root chunks no VA block holds (pages free inside allocated chunks are not counted). */
  get freePages(): number {
    return this.chunks.freeChunks * CHUNK_PAGES;
  }

  // --- VA spaces ------------------------------------------------------------------------------------------------

  /** Starts mirroring `mm` (uvm_va_space + its interval notifier over [0, TASK_SIZE)); returns its VA-space id. */
  attachMm(mm: Mm): number {
    if (mm === null || typeof mm !== "object" || !("pgtable" in mm)) throw new GpuInputError("mm", "must be a @hmmsim/core Mm");
    const have = this.spaceOf.get(mm);
    if (have) return have.id;
    if (mm.kernel !== this.kernel) throw new GpuInputError("mm", `belongs to another kernel than ${this.name}'s machine`);
    if (this.spaces.length >= GPU_MAX_VA_SPACES) throw new GpuInputError("mm", `at most ${GPU_MAX_VA_SPACES} mms per device`);
    const id = this.spaces.length;
    const sub = new MmuIntervalNotifier();
    const ret = mmuIntervalNotifierInsert(sub, asNotifierMm(mm), 0, TASK_SIZE, {
      invalidate: (s, range, curSeq) => this.invalidate(id, s, range, curSeq),
    });
    if (ret !== 0) throw new GpuInputError("mm", `mmuIntervalNotifierInsert failed (${ret}): the mm has exited`);
    const vs: VaSpace = { id, mm, sub };
    this.spaces.push(vs);
    this.spaceOf.set(mm, vs);
    return id;
  }

  /** The device PTE for `addr` of `mm`, or null when not valid. */
  entry(mm: Mm, addr: number): GpuPteInfo | null {
    const vs = this.spaceOf.get(mm);
    if (!vs) return null;
    const slot = this.blocks.find(vs.id, addr);
    if (slot < 0) return null;
    const j = pageIndex(addr);
    const f = this.blocks.pte[slot * CHUNK_PAGES + j]!;
    if ((f & GPU_PTE_VALID) === 0) return null;
    const remote = (f & GPU_PTE_REMOTE) !== 0;
    return {
      valid: true,
      write: (f & GPU_PTE_WRITE) !== 0,
      remote,
      pfn: remote ? this.blocks.remotePfns(slot)[j]! : this.startPfn + this.blocks.chunk[slot]! * CHUNK_PAGES + j,
    };
  }

  /** Is the page at `addr` of `mm` resident in this device's memory? */
  isResident(mm: Mm, addr: number): boolean {
    const vs = this.spaceOf.get(mm);
    if (!vs) return false;
    const slot = this.blocks.find(vs.id, addr);
    if (slot < 0) return false;
    const c = this.blocks.chunk[slot]!;
    return c >= 0 && this.chunks.isPageUsed(c, pageIndex(addr));
  }

  /** Host bytes of the driver's per-page state (device page table, chunk arrays, TLB, fault buffer). */
  get hostBytes(): number {
    const c = this.chunks;
    return (
      this.blocks.hostBytes +
      c.block.byteLength + c.used.byteLength + c.bits.byteLength + c.stamp.byteLength + c.allocStamp.byteLength + c.pinned.byteLength + c.count * 12 +
      this.spec.tlbEntries * 16
    );
  }

  // --- kernels ----------------------------------------------------------------------------------------------------

  /**
   * Runs a GPU kernel over `accesses` of `mm` (an @hmmsim/workloads AccessPattern — anything with
   * `fill(batch)` — or an array of `{ addr, write, computePs? }`). Warps take the accesses in order; each access
   * pays its compute time, then translates (TLB hit, or a walk), then either accesses device memory, crosses the
   * link (remote entry) or raises a replayable fault and stalls until its batch is replayed. Awaited inside an
   * engine task; kernels on one device run one after another. Rejects with GpuFaultError when an access cannot be
   * serviced (no VMA, no permission).
   */
  async runKernel(mm: Mm, accesses: AccessSource | AccessList, opts: RunKernelOptions = {}): Promise<GpuKernelResult> {
    const space = this.attachMm(mm);
    const warps = opts.warps ?? this.spec.warps;
    if (!Number.isSafeInteger(warps) || warps < 1 || warps > this.spec.warps) {
      throw new GpuInputError("opts.warps", `must be an integer in [1, ${this.spec.warps}] (spec.warps)`, warps);
    }
    const run = new KernelRun(this, space, accesses, warps, ++this.runGen);
    this.failedRun = null;
    this.startService();
    await this.ledger.settle();
    await this.stream.lock();
    try {
      this.run = run;
      run.start();
      await run.done.wait();
    } finally {
      this.run = null;
      this.stream.unlock();
    }
    if (run.error) {
      this.failedRun = run;
      throw run.error;
    }
    return run.result();
  }

  /** @internal A warp's translation of (space, addr): 0 = local hit path, 1 = remote, 2 = fault; cost in `translateCost`. */
  translateCost = 0;
  /** @internal */
  translate(space: number, addr: number, write: boolean, slotHint: number): number {
    const slot = slotHint >= 0 ? slotHint : this.blocks.find(space, addr);
    if (slot < 0) {
      this.tlb.misses++;
      this.translateCost = this.walk4kPs;
      return 2;
    }
    const j = pageIndex(addr);
    const f = this.blocks.pte[slot * CHUNK_PAGES + j]!;
    const huge = this.blocks.localMapped[slot] === CHUNK_PAGES;
    const tag = huge ? tlbTag2m(space, Math.floor(addr / VA_BLOCK_SIZE) * CHUNK_PAGES) : tlbTag4k(space, Math.floor(addr / PAGE_SIZE));
    const ok = (f & GPU_PTE_VALID) !== 0 && (!write || (f & GPU_PTE_WRITE) !== 0);
    if (this.tlb.lookup(tag)) {
      this.translateCost = this.tlbHitPs;
    } else {
      this.translateCost = huge ? this.walk2mPs : this.walk4kPs;
      if (ok) this.tlb.insert(tag);
    }
    if (!ok) return 2;
    return (f & GPU_PTE_REMOTE) !== 0 ? 1 : 0;
  }

  /** @internal A warp raises a replayable fault (the GPU writes a fault-buffer entry). */
  raiseFault(space: number, addr: number, write: boolean, warp: number, gen: number): void {
    const page = Math.floor(addr / PAGE_SIZE) * PAGE_SIZE;
    if (!this.buffer.push(page, write ? ACCESS_WRITE : ACCESS_READ, space, warp, gen)) {
      throw new KernelRuleError("gpu_fault_buffer_overflow", `${this.name}: fault buffer full (${this.buffer.capacity} entries)`);
    }
    this.stats.faults++;
    if (this.faultWq.waiting > 0) this.faultWq.wakeUpOne();
  }

  /** @internal A warp's access to a remotely mapped page: setup + one link transfer of accessBytes, then `resume`. */
  remoteAccess(write: boolean, resume: () => void): void {
    this.stats.remoteAccesses++;
    const bytes = this.spec.accessBytes;
    const setup = this.remoteSetupPs;
    this.engine.spawn(`${this.name}.remote-access`, async () => {
      if (setup > 0) await this.engine.sleep(setup);
      await this.link.transfer(write ? "d2h" : "h2d", bytes);
      resume();
    });
  }

  // --- the fault-service task -------------------------------------------------------------------------------------

  private startService(): void {
    if (this.serviceStarted) return;
    this.serviceStarted = true;
    this.engine.spawn(`${this.name}.fault-service`, () => this.serviceLoop(), { daemon: true });
  }

  /** The bottom half: wait for faults, pay the interrupt, service up to maxBatchesPerService batches, repeat. */
  private async serviceLoop(): Promise<void> {
    const s = this.spec;
    for (;;) {
      while (this.buffer.count === 0) await this.faultWq.wait();
      if (s.faultInterruptPs > 0) await this.engine.sleep(s.faultInterruptPs);
      for (let b = 0; b < s.maxBatchesPerService && this.buffer.count > 0; b++) await this.serviceBatch();
    }
  }

  /** uvm_parent_gpu_service_replayable_faults → service_fault_batch for one batch. */
  private async serviceBatch(): Promise<void> {
    const b = this.batch;
    const startPs = this.engine.now;
    const n = this.buffer.fetch(b, this.spec.batchSize);
    const np = b.preprocess();
    const seq = this.batchSeq++;
    this.stats.batches++;
    this.stats.duplicates += n - np;
    this.stats.faultedPages += np;
    if (this.trace.pageFault.isUsed()) {
      // One event object per device, refilled for each entry (PageFaultEvent: copy what you keep).
      const ev = this.faultEvent;
      ev.timePs = startPs;
      for (let i = 0; i < n; i++) {
        const w = b.access[i] !== ACCESS_READ;
        ev.mm = this.spaces[b.space[i]!]!.mm;
        ev.address = b.addr[i]!;
        ev.write = w;
        ev.flags = w ? FAULT_FLAG_WRITE : 0;
        this.trace.pageFault.call(ev);
      }
    }
    this.ledger.charge("DEVICE_FAULT", n);
    // One VA block at a time (pages are sorted by space, then address).
    let g = 0;
    while (g < np) {
      const space = b.pageSpace[g]!;
      const block = Math.floor(b.pageAddr[g]! / VA_BLOCK_SIZE);
      let e = g + 1;
      while (e < np && b.pageSpace[e] === space && Math.floor(b.pageAddr[e]! / VA_BLOCK_SIZE) === block) e++;
      if (!this.blockLock.tryLock()) await this.blockLock.lock();
      try {
        await this.serviceBlock(b, g, e, seq);
      } finally {
        this.blockLock.unlock();
      }
      g = e;
    }
    if (this.spec.tlbInvalidatePs > 0) this.ledger.chargePs(this.spec.tlbInvalidatePs);
    await this.ledger.settle();
    const endPs = this.engine.now;
    if (this.trace.deviceFaultBatch.isUsed()) this.trace.deviceFaultBatch.call({ device: this.name, faults: n, pages: np, startPs, endPs });
    // Replay (UVM_FAULT_REPLAY_TYPE_START): every warp of the batch retries its access.
    // The warps retry in batch order at the same instant: one engine event for the group (the order, and so every
    // result, is what one event per warp in FIFO order gives).
    const run = this.run;
    const at = endPs + this.spec.replayPs;
    const rw = this.replayWarps;
    let nr = 0;
    for (let p = 0; p < np; p++) {
      const err = b.pageErr[p]!;
      for (let j = b.pageFirst[p]!, end = j + b.pageDup[p]!; j < end; j++) {
        const i = b.order[j]!;
        if (run === null || b.gen[i] !== run.gen) continue; // a finished kernel's warp
        if (err !== 0) run.fail(new GpuFaultError(this.name, b.addr[i]!, err, err === -ENOMEM ? "out of memory: no page of RAM for the fault (hmm_range_fault -ENOMEM)" : "the device access cannot be serviced"));
        else rw[nr++] = b.warp[i]!;
      }
    }
    if (run !== null && nr > 0) run.replayGroup(rw, nr, at);
  }

  /** service_fault_batch_block(): the distinct pages [g, e) of the batch, all in one 2 MiB VA block. */
  private async serviceBlock(b: FaultBatch, g: number, e: number, seq: number): Promise<void> {
    const vs = this.spaces[b.pageSpace[g]!]!;
    const mm = vs.mm;
    const blockStart = Math.floor(b.pageAddr[g]! / VA_BLOCK_SIZE) * VA_BLOCK_SIZE;
    const slot = this.blocks.get(vs.id, blockStart);
    // req / mig / faultedMask are all-zero between blocks: only [lo, hi] and the faulted pages get set, and
    // are cleared again at the end of the block.
    const req = this.req;
    const mig = this.mig;
    const fm = this.faultedMask;
    for (let p = g; p < e; p++) fm[pageIndex(b.pageAddr[p]!)] = 1;
    let lo = CHUNK_PAGES;
    let hi = -1;
    let anyMig = false;
    let chunk = -1;

    if (!mm.mmapLock.tryDownRead()) {
      await this.ledger.settle(); // settle before blocking
      await mm.mmapLock.downRead();
    }
    try {
      const f = this.fault;
      f.beginBlock(mm, seq, b.npages, blockStart, slot, e - g);
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
        const pf = this.blocks.pte[slot * CHUNK_PAGES + j]!;
        if ((pf & GPU_PTE_VALID) !== 0 && (!write || (pf & GPU_PTE_WRITE) !== 0)) {
          this.stats.staleFaults++; // serviced by an earlier batch
          continue;
        }
        req[j] = write ? PAGE_REQ_WRITE : PAGE_REQ_READ;
        if (j < lo) lo = j;
        if (j > hi) hi = j;
        const c = this.blocks.chunk[slot]!;
        if (c >= 0 && this.chunks.isPageUsed(c, j)) continue; // resident: only map it
        f.setPage(addr, j, b.pageAccess[p] as AccessType, b.pageDup[p]!, vma.vmStart, vma.vmEnd);
        const migrate = this.policy.shouldMigrate.call(f) ?? defaultShouldMigrate(f);
        if (!migrate) continue; // mapped remotely by the mirror step
        const r = this.prefetch;
        r.start = addr;
        r.end = addr + PAGE_SIZE;
        // The waterfall starts from the faulted page: with no tap it returns it unchanged (defaultPrefetchRange).
        const out = this.policy.prefetchRange.call(r, f) as PrefetchRange | undefined;
        let s = addr;
        let en = addr + PAGE_SIZE;
        if (out && Number.isFinite(out.start) && Number.isFinite(out.end)) {
          s = Math.max(Math.min(out.start, addr), blockStart, vma.vmStart);
          en = Math.min(Math.max(out.end, addr + PAGE_SIZE), blockStart + VA_BLOCK_SIZE, vma.vmEnd);
          s = Math.floor(s / PAGE_SIZE) * PAGE_SIZE;
          en = Math.ceil(en / PAGE_SIZE) * PAGE_SIZE;
        }
        for (let k = pageIndex(s), ke = (en - blockStart) / PAGE_SIZE; k < ke; k++) {
          if (c >= 0 && this.chunks.isPageUsed(c, k)) continue;
          mig[k] = 1;
          anyMig = true;
          if (req[k] === 0) {
            req[k] = PAGE_REQ_SNAPSHOT;
            if (k < lo) lo = k;
            if (k > hi) hi = k;
          }
        }
      }

      if (anyMig) {
        chunk = await this.ensureChunk(slot, blockStart);
        if (chunk < 0) {
          this.stats.noMemoryFallbacks++;
          mig.fill(0, lo, hi + 1);
        } else {
          this.chunks.pinned[chunk] = 1;
          await this.migrateRuns(mm, blockStart, lo, hi, chunk, seq);
        }
      }
    } finally {
      mm.mmapLock.upRead();
    }

    if (hi >= lo) {
      const ret = await this.mirror(vs, slot, blockStart, lo, hi + 1);
      if (ret !== 0) {
        for (let p = g; p < e; p++) if (b.pageErr[p] === 0 && req[pageIndex(b.pageAddr[p]!)] !== 0) b.pageErr[p] = ret;
      }
      req.fill(0, lo, hi + 1);
      mig.fill(0, lo, hi + 1);
    }
    for (let p = g; p < e; p++) fm[pageIndex(b.pageAddr[p]!)] = 0;
    if (chunk >= 0) this.unpinChunk(chunk);
  }

  /** One migrateVma call per contiguous run of `mig` pages in [lo, hi] of a block inside one VMA; returns pages moved. */
  private async migrateRuns(mm: Mm, blockStart: number, lo: number, hi: number, chunk: number, seq: number): Promise<number> {
    const mig = this.mig;
    let moved = 0;
    let k = lo;
    while (k <= hi) {
      if (mig[k] === 0) {
        k++;
        continue;
      }
      const rv = mm.findVma(blockStart + k * PAGE_SIZE)!;
      let ke = k + 1;
      while (ke <= hi && mig[ke] === 1 && blockStart + ke * PAGE_SIZE < rv.vmEnd) ke++;
      moved += await this.migrateRun(rv, blockStart, k, ke, chunk, seq);
      k = ke;
    }
    return moved;
  }

  /**
   * migrate_vma_setup / copy over the link / migrate_vma_pages / migrate_vma_finalize for pages [k, ke) of a block;
   * returns the pages moved (copied + populated). A negative `seq` is a hint migration (migrateRange).
   */
  private async migrateRun(vma: NonNullable<ReturnType<Mm["findVma"]>>, blockStart: number, k: number, ke: number, chunk: number, seq: number): Promise<number> {
    const a = this.mva;
    const start = blockStart + k * PAGE_SIZE;
    const end = blockStart + ke * PAGE_SIZE;
    a.vma = vma;
    a.start = start;
    a.end = end;
    a.src = this.src;
    a.dst = this.dst;
    a.pgmapOwner = this;
    a.flags = MIGRATE_VMA_SELECT_SYSTEM;
    a.faultPage = null;
    this.stats.migrateRuns++;
    const reason = seq >= 0 ? "fault" : "hint";
    if (this.trace.migrateBegin.isUsed()) {
      this.trace.migrateBegin.call({ device: this.name, mm: vma.vmMm, dir: "h2d", start, end, npages: ke - k, bytes: 0, reason, timePs: this.engine.now });
    }
    if (migrateVmaSetup(a) !== 0) {
      // Every begin has its end: nothing moved.
      if (this.trace.migrateEnd.isUsed()) this.trace.migrateEnd.call({ device: this.name, mm: vma.vmMm, dir: "h2d", start, end, npages: 0, bytes: 0, reason, timePs: this.engine.now });
      return 0;
    }
    const src = this.src;
    const dst = this.dst;
    const npages = a.npages;
    const base = this.startPfn + chunk * CHUNK_PAGES;
    const pb = this.kernel.pageBytes;
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
      this.allocDevicePage(chunk, j, dpfn);
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
    if (zeroed > 0) this.ledger.chargePs(zeroed * this.zeroPagePs);
    if (copied > 0) {
      await this.ledger.settle(); // the CPU work of setup before the copy engine starts
      await this.link.transfer("h2d", copied * PAGE_SIZE);
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
    if (moved > 0) this.chunks.touch(chunk, this.engine.now);
    const copiedMoved = movedBytes / PAGE_SIZE;
    this.stats.migratedPages += copiedMoved;
    this.stats.populatedPages += moved - copiedMoved;
    if (this.trace.migrateEnd.isUsed()) {
      this.trace.migrateEnd.call({ device: this.name, mm: vma.vmMm, dir: "h2d", start, end, npages: moved, bytes: movedBytes, reason, timePs: this.engine.now });
    }
    return moved;
  }

  // --- hint migration ---------------------------------------------------------------------------------------------

  /**
   * Hint migration to this device (UVM_MIGRATE / cudaMemPrefetchAsync: uvm_migrate.c → uvm_hmm_migrate_ranges in
   * kernel-open/nvidia-uvm/uvm_hmm.c): every page of [start, end) of `mm` not yet in device memory is migrated there,
   * one migrateVma* run per VMA piece of each 2 MiB VA block (the copy is one link transfer per run), evicting a
   * root chunk through selectVictim when device memory is full; the migrated pages are then mapped in the device
   * page table (a snapshot mirror: nothing is faulted in, pages never touched by the CPU are zero-filled on the
   * device). Awaited inside an engine task; runs between fault batches, never inside one.
   *
   * Returns 0; -EFAULT when part of the range is not mapped readable (the pages before it stay migrated: uvm_migrate
   * stops at the first error); -ENOMEM when a block gets no device memory (no victim). A bad range (not page
   * aligned, empty, beyond TASK_SIZE) throws GpuInputError naming the field, before anything changes.
   */
  async migrateRange(mm: Mm, start: number, end: number): Promise<number> {
    if (!Number.isSafeInteger(start) || start < 0 || start % PAGE_SIZE !== 0) throw new GpuInputError("start", "must be a page-aligned address", start);
    if (!Number.isSafeInteger(end) || end % PAGE_SIZE !== 0 || end <= start || end > TASK_SIZE) {
      throw new GpuInputError("end", `must be page aligned, above start and at most TASK_SIZE`, end);
    }
    const vs = this.spaces[this.attachMm(mm)]!;
    this.stats.hintMigrations++;
    await this.ledger.settle();
    for (let bs = Math.floor(start / VA_BLOCK_SIZE) * VA_BLOCK_SIZE; bs < end; bs += VA_BLOCK_SIZE) {
      const j0 = pageIndex(Math.max(start, bs));
      const j1 = (Math.min(end, bs + VA_BLOCK_SIZE) - bs) / PAGE_SIZE;
      if (!this.blockLock.tryLock()) await this.blockLock.lock();
      let ret: number;
      try {
        ret = await this.hintBlock(vs, bs, j0, j1);
      } finally {
        this.blockLock.unlock();
      }
      if (ret !== 0) return ret;
    }
    return 0;
  }

  /** migrateRange for pages [j0, j1) of one VA block (the caller holds blockLock). */
  private async hintBlock(vs: VaSpace, blockStart: number, j0: number, j1: number): Promise<number> {
    const mm = vs.mm;
    const slot = this.blocks.get(vs.id, blockStart);
    const req = this.req;
    const mig = this.mig;
    let ret = 0;
    let lo = CHUNK_PAGES;
    let hi = -1;
    let chunk = -1;
    if (!mm.mmapLock.tryDownRead()) {
      await this.ledger.settle();
      await mm.mmapLock.downRead();
    }
    try {
      const have = this.blocks.chunk[slot]!;
      for (let k = j0; k < j1 && ret === 0; ) {
        const addr = blockStart + k * PAGE_SIZE;
        const vma = mm.findVma(addr);
        if (vma === null || addr < vma.vmStart || (vma.vmFlags & VM_READ) === 0) {
          ret = -EFAULT;
          break;
        }
        const ke = Math.min(j1, (vma.vmEnd - blockStart) / PAGE_SIZE);
        for (; k < ke; k++) {
          if (have >= 0 && this.chunks.isPageUsed(have, k)) continue;
          mig[k] = 1;
          req[k] = PAGE_REQ_SNAPSHOT;
          if (k < lo) lo = k;
          if (k > hi) hi = k;
        }
      }
      if (hi >= lo) {
        chunk = await this.ensureChunk(slot, blockStart);
        if (chunk < 0) ret = -ENOMEM;
        else {
          this.chunks.pinned[chunk] = 1;
          this.stats.hintPages += await this.migrateRuns(mm, blockStart, lo, hi, chunk, -1);
        }
      }
    } finally {
      mm.mmapLock.upRead();
    }
    if (hi >= lo) {
      if (chunk >= 0) {
        const r = await this.mirror(vs, slot, blockStart, lo, hi + 1);
        if (r !== 0 && ret === 0) ret = r;
      }
      req.fill(0, lo, hi + 1);
      mig.fill(0, lo, hi + 1);
    }
    if (chunk >= 0) this.unpinChunk(chunk);
    return ret;
  }

  /** The documented mirror loop over pages [lo, hi) of a block; the device PTEs are written in updatePageTable. */
  private async mirror(vs: VaSpace, slot: number, blockStart: number, lo: number, hi: number): Promise<number> {
    const r = this.range;
    const n = hi - lo;
    const pf = (this.hmmViews[n] ??= this.hmmPfns.subarray(0, n));
    const req = this.req;
    for (let k = lo; k < hi; k++) {
      const q = req[k]!;
      pf[k - lo] = q === PAGE_REQ_WRITE ? HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE : q === PAGE_REQ_READ ? HMM_PFN_REQ_FAULT : 0;
    }
    r.notifier = vs.sub;
    r.hmmPfns = pf;
    r.start = blockStart + lo * PAGE_SIZE;
    r.end = blockStart + hi * PAGE_SIZE;
    this.mapSlot = slot;
    this.mapBlockStart = blockStart;
    this.mapLo = lo;
    this.mapHi = hi;
    const st = this.mirrorStats;
    st.attempts = 0;
    st.readRetry = 0;
    st.rangeFaultBusy = 0;
    await this.ledger.settle();
    const ret = await mirrorRangeFault(r, { driverLock: this.lock, update: this.update, engine: this.engine, stats: st, window: this.noWindow });
    this.stats.mirrorAttempts += st.attempts;
    this.stats.mirrorRetries += st.readRetry;
    return ret;
  }

  /** Under the driver lock with a validated sequence: program the device page table from range.hmmPfns. */
  private updatePageTable(r: HmmRange): number {
    const slot = this.mapSlot;
    const bl = this.blocks;
    const base = slot * CHUNK_PAGES;
    const lo = this.mapLo;
    const pf = r.hmmPfns;
    const space = bl.space[slot]!;
    const blockVpn = this.mapBlockStart / PAGE_SIZE;
    const chunk = bl.chunk[slot]!;
    let written = 0;
    for (let k = lo; k < this.mapHi; k++) {
      const q = this.req[k]!;
      if (q === 0) continue;
      const e = pf[k - lo]!;
      if ((e & HMM_PFN_VALID) === 0 || (e & HMM_PFN_ERROR) !== 0) continue;
      const pfn = (e - (e & 2047)) / HMM_PFN_PFN_MUL;
      const w = (e & HMM_PFN_WRITE) !== 0 ? GPU_PTE_WRITE : 0;
      const local = pfn >= this.startPfn && pfn < this.startPfn + this.nrPages;
      let nf: number;
      if (local) {
        if (chunk < 0 || pfn !== this.startPfn + chunk * CHUNK_PAGES + k) {
          throw new KernelRuleError("gpu_block_chunk_mismatch", `${this.name}: device pfn ${pfn} is not page ${k} of the block's root chunk`);
        }
        nf = GPU_PTE_VALID | w;
      } else {
        if (q === PAGE_REQ_SNAPSHOT) continue; // a prefetched page that stayed in system memory
        nf = GPU_PTE_VALID | GPU_PTE_REMOTE | w;
        bl.remotePfns(slot)[k] = pfn;
        this.stats.remoteMapped++;
      }
      const old = bl.pte[base + k]!;
      if (old === nf) continue;
      if ((old & GPU_PTE_VALID) !== 0) {
        this.tlb.invalidate(tlbTag4k(space, blockVpn + k));
        if ((old & GPU_PTE_REMOTE) === 0) {
          if (bl.localMapped[slot] === CHUNK_PAGES) this.tlb.invalidate(tlbTag2m(space, blockVpn));
          bl.localMapped[slot]!--;
        }
        bl.mapped[slot]!--;
      }
      bl.pte[base + k] = nf;
      bl.mapped[slot]!++;
      if (local) bl.localMapped[slot]!++;
      written++;
    }
    if (written > 0) this.ledger.charge("PTE_UPDATE", written);
    return 0;
  }

  // --- device memory ----------------------------------------------------------------------------------------------

  private allocDevicePage(chunk: number, j: number, dpfn: number): void {
    zoneDevicePageInit(this.kernel, dpfn); // refcount 1, locked, pgmap ref

    this.chunks.setPageUsed(chunk, j);
  }

  /** dev_pagemap_ops.page_free: a device page's refcount reached 0. */
  private pageFree(pfn: number): void {
    const i = pfn - this.startPfn;
    if (i < 0 || i >= this.nrPages) return;
    const c = Math.floor(i / CHUNK_PAGES);
    const j = i % CHUNK_PAGES;
    const slot = this.chunks.block[c]!;
    if (slot >= 0) {
      const f = this.blocks.pte[slot * CHUNK_PAGES + j]!;
      if ((f & GPU_PTE_VALID) !== 0 && (f & GPU_PTE_REMOTE) === 0) this.clearPtes(slot, j, j + 1);
    }
    const left = this.chunks.clearPageUsed(c, j);
    if (left === 0 && this.chunks.pinned[c] === 0) this.releaseChunk(c);
  }

  /** The block is done with root chunk `c`: unpin it, and give it back if none of its pages is in use. */
  private unpinChunk(c: number): void {
    this.chunks.pinned[c] = 0;
    if (this.chunks.used[c] === 0) this.releaseChunk(c);
  }

  private releaseChunk(c: number): void {
    const slot = this.chunks.block[c]!;
    if (slot >= 0 && this.blocks.chunk[slot] === c) this.blocks.chunk[slot] = -1;
    this.chunks.release(c);
  }

  /** A root chunk for the block (uvm_pmm_gpu_alloc_user: free chunk, else evict one chosen by selectVictim). */
  private async ensureChunk(slot: number, blockStart: number): Promise<number> {
    const have = this.blocks.chunk[slot]!;
    if (have >= 0) return have;
    for (let attempt = 0; attempt < 4; attempt++) {
      const c = this.chunks.alloc(slot, this.engine.now);
      if (c >= 0) {
        this.blocks.chunk[slot] = c;
        return c;
      }
      const q = this.evictQuery;
      q.forBlockStart = blockStart;
      const v = this.policy.selectVictim.call(q) ?? lruVictim(q);
      if (v === -1) return -1;
      if (!Number.isInteger(v) || v < 0 || v >= this.chunks.count || this.chunks.block[v]! < 0 || this.chunks.pinned[v] === 1) {
        throw new GpuPolicyError("selectVictim", `must answer an evictable root chunk (allocated, not being serviced) or -1, got ${String(v)}`);
      }
      await this.evictChunk(v);
    }
    return -1;
  }

  /** evict_root_chunk(): migrate every in-use page of chunk `c` back to system memory (migrate_device_*). */
  async evictChunk(c: number): Promise<void> {
    const slot = this.chunks.block[c]!;
    if (slot < 0) return;
    const k = this.kernel;
    const src = this.esrc;
    const dst = this.edst;
    const base = this.startPfn + c * CHUNK_PAGES;
    const blockStart = this.blocks.start[slot]!;
    this.chunks.pinned[c] = 1;
    migrateDeviceRange(k, src, base, CHUNK_PAGES);
    let n = 0;
    for (let i = 0; i < CHUNK_PAGES; i++) {
      const m = src[i]!;
      if ((m & MIGRATE_PFN_MIGRATE) === 0) {
        dst[i] = 0;
        continue;
      }
      const spfn = allocPages(k, 0);
      if (spfn < 0) {
        throw new GpuFaultError(this.name, blockStart + i * PAGE_SIZE, -ENOMEM, "system RAM exhausted while evicting device memory (__GFP_NOFAIL): every evicted page needs a free page of RAM and none is left");
      }
      folioTrylock(k, spfn);
      k.pageBytes.copy(spfn, migratePfnToPage(m));
      dst[i] = (m & MIGRATE_PFN_WRITE) !== 0 ? mpfnSet(migratePfn(spfn), MIGRATE_PFN_WRITE) : migratePfn(spfn);
      n++;
    }
    // Our own device mappings of these pages go now (the CPU side was unmapped by migrate_device_range).
    if (this.blocks.mapped[slot]! > 0) this.clearPtes(slot, 0, CHUNK_PAGES, true);
    this.stats.evictions++;
    this.stats.evictedPages += n;
    const now = this.engine.now;
    if (this.trace.eviction.isUsed()) this.trace.eviction.call({ device: this.name, mm: this.spaceMm(this.blocks.space[slot]!), start: blockStart, npages: n, bytes: n * PAGE_SIZE, timePs: now });
    if (this.trace.migrateBegin.isUsed()) {
      this.trace.migrateBegin.call({ device: this.name, mm: this.spaceMm(this.blocks.space[slot]!), dir: "d2h", start: blockStart, end: blockStart + VA_BLOCK_SIZE, npages: n, bytes: 0, reason: "eviction", timePs: now });
    }
    await this.ledger.settle();
    if (n > 0) await this.link.transfer("d2h", n * PAGE_SIZE);
    migrateDevicePages(k, src, dst, CHUNK_PAGES);
    let moved = 0;
    for (let i = 0; i < CHUNK_PAGES; i++) if ((src[i]! & MIGRATE_PFN_MIGRATE) !== 0 && dst[i] !== 0) moved++;
    migrateDeviceFinalize(k, src, dst, CHUNK_PAGES);
    this.chunks.pinned[c] = 0;
    if (this.chunks.block[c] === slot && this.chunks.used[c] === 0) this.releaseChunk(c);
    if (this.trace.migrateEnd.isUsed()) {
      this.trace.migrateEnd.call({ device: this.name, mm: this.spaceMm(this.blocks.space[slot]!), dir: "d2h", start: blockStart, end: blockStart + VA_BLOCK_SIZE, npages: moved, bytes: moved * PAGE_SIZE, reason: "eviction", timePs: this.engine.now });
    }
  }

  /**
   * dev_pagemap_ops.migrate_to_ram (dmirror_devmem_fault): a CPU touched one of our device-private pages. Runs
   * synchronously in the faulting CPU task: migrate_vma_setup with fault_page, copy to a new system page, clear our
   * PTE, migrate_vma_pages / finalize. The copy is queued on the faulting task (`ledger.chargeTransfer`): a
   * synchronous fault path cannot await the link, so the DMA runs on the real link, shared with other traffic and
   * counted in its stats, when the task next settles (before it goes on). The migrateEnd trace point fires when the
   * pages are committed, before that DMA time has passed.
   */
  private migrateToRam(vmf: VmFault): number {
    const a = this.ramMva;
    const k = this.kernel;
    a.vma = vmf.vma;
    a.start = vmf.address;
    a.end = vmf.address + PAGE_SIZE;
    a.src = this.ramSrc;
    a.dst = this.ramDst;
    a.pgmapOwner = this;
    a.flags = MIGRATE_VMA_SELECT_DEVICE_PRIVATE;
    a.faultPage = vmf.page;
    const traced = this.trace.migrateBegin.isUsed() || this.trace.migrateEnd.isUsed();
    if (traced) {
      this.trace.migrateBegin.call({ device: this.name, mm: vmf.vma.vmMm, dir: "d2h", start: a.start, end: a.end, npages: 1, bytes: 0, reason: "cpu-fault", timePs: this.engine.now });
    }
    if (migrateVmaSetup(a) !== 0) {
      if (traced) this.trace.migrateEnd.call({ device: this.name, mm: vmf.vma.vmMm, dir: "d2h", start: a.start, end: a.end, npages: 0, bytes: 0, reason: "cpu-fault", timePs: this.engine.now });
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
        const vs = this.spaceOf.get(vmf.mm);
        if (vs) {
          const slot = this.blocks.find(vs.id, vmf.address);
          if (slot >= 0) this.clearPtes(slot, pageIndex(vmf.address), pageIndex(vmf.address) + 1, true);
        }
        this.ledger.chargeTransfer(this.link, "d2h", PAGE_SIZE);
      }
    }
    migrateVmaPages(a);
    const moved = (this.ramSrc[0]! & MIGRATE_PFN_MIGRATE) !== 0 && this.ramDst[0] !== 0 ? 1 : 0;
    migrateVmaFinalize(a);
    this.stats.cpuFaultPages += moved;
    if (traced) {
      this.trace.migrateEnd.call({ device: this.name, mm: vmf.vma.vmMm, dir: "d2h", start: a.start, end: a.end, npages: moved, bytes: moved * PAGE_SIZE, reason: "cpu-fault", timePs: this.engine.now });
    }
    return ret;
  }

  // --- invalidation -----------------------------------------------------------------------------------------------

  /** mmu_interval_notifier_ops.invalidate (dmirror_interval_invalidate). */
  private invalidate(space: number, sub: MmuIntervalNotifier, range: MmuNotifierRange<unknown>, curSeq: number): boolean {
    // Our own migrations told us which pages move through src/dst (owner filtering, as lib/test_hmm.c does).
    if (range.event === MMU_NOTIFY_MIGRATE && range.owner === this) return true;
    if (!this.lock.tryLock()) {
      throw new KernelRuleError("gpu_driver_lock_held_across_await", `${this.name}: the driver lock is held outside a synchronous section`);
    }
    try {
      mmuIntervalSetSeq(sub, curSeq);
      const cleared = this.unmapRange(space, range.start, range.end);
      if (cleared > 0) {
        this.stats.invalidatedPtes += cleared;
        this.ledger.charge("PTE_UPDATE", cleared);
        if (this.spec.tlbInvalidatePs > 0) this.ledger.chargePs(this.spec.tlbInvalidatePs);
      }
    } finally {
      this.lock.unlock();
    }
    return true;
  }

  /** Clears the device PTEs of `space` in [start, end) and their TLB entries; returns how many were valid. */
  private unmapRange(space: number, start: number, end: number): number {
    let cleared = 0;
    const big = end - start > 64 * VA_BLOCK_SIZE;
    this.blocks.forEachIn(space, start, end, (slot) => {
      if (this.blocks.mapped[slot] === 0) return;
      const bs = this.blocks.start[slot]!;
      const a = Math.max(start, bs);
      const z = Math.min(end, bs + VA_BLOCK_SIZE);
      cleared += this.clearPtes(slot, pageIndex(a), Math.ceil((z - bs) / PAGE_SIZE), !big);
    });
    if (big && cleared > 0) this.tlb.flushAll();
    return cleared;
  }

  /** Clears entries [j0, j1) of a block; drops their TLB tags when `tlb` (else the caller flushes). */
  private clearPtes(slot: number, j0: number, j1: number, tlb = true): number {
    const bl = this.blocks;
    const base = slot * CHUNK_PAGES;
    const space = bl.space[slot]!;
    const blockVpn = bl.start[slot]! / PAGE_SIZE;
    if (tlb && bl.localMapped[slot] === CHUNK_PAGES) this.tlb.invalidate(tlbTag2m(space, blockVpn));
    let n = 0;
    for (let j = j0; j < j1; j++) {
      const f = bl.pte[base + j]!;
      if ((f & GPU_PTE_VALID) === 0) continue;
      bl.pte[base + j] = 0;
      bl.mapped[slot]!--;
      if ((f & GPU_PTE_REMOTE) === 0) bl.localMapped[slot]!--;
      if (tlb) this.tlb.invalidate(tlbTag4k(space, blockVpn + j));
      n++;
    }
    return n;
  }
}

function pageIndex(addr: number): number {
  // The low 9 bits of the page number (ToInt32 keeps the low 32 bits of the integer, so & is exact here).
  return Math.floor(addr / PAGE_SIZE) & (CHUNK_PAGES - 1);
}

/** The reused FaultQuery handed to the policy hooks. */
class FaultInfo implements FaultQuery {
  readonly device: string;
  mm!: Mm;
  address = 0;
  access: AccessType = 0;
  duplicates = 0;
  batch = 0;
  batchPages = 0;
  timePs = 0;
  blockStart = 0;
  pageIndex = 0;
  blockFaulted = 0;
  vmaStart = 0;
  vmaEnd = 0;
  private slot = -1;

  constructor(readonly driver: GpuDriver) {
    this.device = driver.name;
  }

  get write(): boolean {
    return this.access !== ACCESS_READ;
  }
  get blockResident(): number {
    const c = this.driver.blocks.chunk[this.slot]!;
    return c < 0 ? 0 : this.driver.chunks.used[c]!;
  }
  get blockMapped(): number {
    return this.driver.blocks.mapped[this.slot]!;
  }
  get deviceFreePages(): number {
    return this.driver.nrPages - this.driver.chunks.usedPages;
  }
  get devicePages(): number {
    return this.driver.nrPages;
  }
  isResident(index: number): boolean {
    const c = this.driver.blocks.chunk[this.slot]!;
    return c >= 0 && this.driver.chunks.isPageUsed(c, index);
  }
  isFaulted(index: number): boolean {
    return this.driver.faultedMask[index] === 1;
  }
  isMapped(index: number): boolean {
    return (this.driver.blocks.pte[this.slot * CHUNK_PAGES + index]! & GPU_PTE_VALID) !== 0;
  }
  isThrashing(_index: number): boolean {
    return false;
  }
  readonly preferredLocation: string | null = null;
  readonly accessedBy = false;
  readonly readMostly = false;

  /** @internal */
  beginBlock(mm: Mm, batch: number, batchPages: number, blockStart: number, slot: number, faulted: number): void {
    this.mm = mm;
    this.batch = batch;
    this.batchPages = batchPages;
    this.blockStart = blockStart;
    this.slot = slot;
    this.blockFaulted = faulted;
    this.timePs = this.driver.engine.now;
  }

  /** @internal */
  setPage(address: number, index: number, access: AccessType, duplicates: number, vmaStart: number, vmaEnd: number): void {
    this.address = address;
    this.pageIndex = index;
    this.access = access;
    this.duplicates = duplicates;
    this.vmaStart = vmaStart;
    this.vmaEnd = vmaEnd;
  }
}

/** The reused VictimQuery: the device's root chunks are its 2 MiB allocation units. */
class EvictionQuery implements VictimQuery {
  readonly device: string;
  forBlockStart = 0;

  constructor(readonly driver: GpuDriver) {
    this.device = driver.name;
  }
  get timePs(): number {
    return this.driver.engine.now;
  }
  get chunks(): number {
    return this.driver.chunks.count;
  }
  get usedChunks(): number {
    return this.driver.chunks.usedChunks;
  }
  first(): number {
    return this.driver.chunks.first();
  }
  next(chunk: number): number {
    return this.driver.chunks.nextOf(chunk);
  }
  isEvictable(chunk: number): boolean {
    const c = this.driver.chunks;
    return chunk >= 0 && chunk < c.count && c.block[chunk]! >= 0 && c.pinned[chunk] === 0;
  }
  chunkBlockStart(chunk: number): number {
    const slot = this.driver.chunks.block[chunk]!;
    return slot < 0 ? -1 : this.driver.blocks.start[slot]!;
  }
  chunkMm(chunk: number): Mm | null {
    const slot = this.driver.chunks.block[chunk]!;
    return slot < 0 ? null : this.driver.spaceMm(this.driver.blocks.space[slot]!);
  }
  chunkResidentPages(chunk: number): number {
    return this.driver.chunks.used[chunk]!;
  }
  chunkLastUsePs(chunk: number): number {
    return this.driver.chunks.stamp[chunk]!;
  }
  chunkAllocPs(chunk: number): number {
    return this.driver.chunks.allocStamp[chunk]!;
  }
  chunkLastAccessPs(_chunk: number): number {
    throw new Error("GpuDriver: per-chunk access times are not tracked yet (VictimQuery.chunkLastAccessPs)");
  }
  chunkAccesses(_chunk: number): number {
    throw new Error("GpuDriver: per-chunk access counts are not tracked yet (VictimQuery.chunkAccesses)");
  }
}
