/**
 * An FPGA-shell HMM driver built on hmmsim's kernel mechanisms (docs/architecture.md; Documentation/mm/hmm.rst). It
 * stands for the shared-virtual-memory paths of two open-source FPGA shells, written the way an upstream HMM driver
 * is (lib/test_hmm.c):
 *
 *  - TaPaSCo, runtime/kernel/pcie/pcie_svm.c [S60]: device-private card memory from `devm_memremap_pages`
 *    (`request_device_pages`), an on-FPGA IOMMU whose misses raise an interrupt (`iommu_page_fault_handler`) handled
 *    by a worker (`handle_iommu_page_fault`: a page already on the card gets a TLB entry from a host page-table walk,
 *    `svm_perform_ptw` + `add_tlb_entry`; any other page is migrated, `svm_migrate_to_device` →
 *    `svm_migrate_ram_to_dev`: migrate_vma_setup, a PageDMA H2C copy, migrate_vma_pages / finalize, TLB entries);
 *    `svm_migrate_to_ram` as dev_pagemap_ops.migrate_to_ram (invalidate the TLB entry, C2H copy); an MMU notifier
 *    that invalidates the TLB for the range and skips its own migrations (`svm_tlb_invalidate_range_start`:
 *    MMU_NOTIFY_MIGRATE with range->owner == pdev); user-managed migration before a job
 *    (`pcie_svm_user_managed_migration_to_device`);
 *  - Coyote, driver/src/vfpga and driver/src/fpga_mmu.c [S61]: per-vFPGA 4 KiB and 2 MiB TLBs filled by the driver;
 *    `vfpga_isr` queues one work item per page-fault interrupt and `vfpga_pfault_handler` services it alone under
 *    `mmu_lock`, then `restart_mmu` restarts the stalled stream (or `drop_irq_pfault` drops it); in HMM mode
 *    `mmu_handler_hmm` maps host memory (`fpga_do_host_fault`: the hmm_range_fault / mmu_interval_read_retry loop,
 *    then `tlb_map_hmm`) or migrates to card memory (`fpga_migrate_to_card`); `cyt_interval_invalidate` is the
 *    interval notifier (owner filter, `mmu_interval_set_seq`, `tlb_unmap_hmm` and the wait for the IRQ_INVLDT
 *    completion interrupt); `cpu_migrate_to_host` is migrate_to_ram; `user_migrate_to_card` the user API.
 *
 * What makes it an FPGA and not a GPU: no replayable fault buffer and no batching — every miss stalls its stream and
 * is one interrupt, serviced one at a time by the device's fault-service task (a TLB refill when the page is already
 * mapped, else a page fault: hmmRangeFault for a host mapping or migrateVma* to card memory, as the policy says);
 * small TLBs the driver fills; job-scoped pre-migration or pre-mapping as the alternative programming model.
 *
 * The policy decisions are @hmmsim/policy's hooks (`shouldMigrate`, `prefetchRange` / `prefetchPages`, `selectVictim`), with the
 * documented defaults when no tap answers: the driver has no policy of its own. Each device has its own
 * dev_pagemap and is its own pgmap owner (two FPGAs in one machine do not share pages or notifiers).
 *
 * The driver lock (`lock`) is held only in synchronous sections, never across an await, so the invalidate
 * callback (called synchronously from whatever task changes the mm) can always take it with tryLock.
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
  ACCESS_READ,
  ACCESS_WRITE,
  PrefetchPageMask,
  THRASHING_HINT_PIN,
  THRASHING_HINT_THROTTLE,
  defaultShouldMigrate,
  lruVictim,
  type AccessType,
  type ThrashingHint,
  type FaultQuery,
  type PolicyHooks,
  type PrefetchRange,
  type VictimQuery,
} from "@hmmsim/policy";
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
import { CHUNK_PAGES, CardMemory } from "./card-memory.js";
import { BLOCK_SIZE, DeviceMappings, FPGA_MAP_HOST, FPGA_MAP_VALID, FPGA_MAP_WRITE } from "./device-mappings.js";
import { FpgaFaultError, FpgaInputError, FpgaPolicyError } from "./errors.js";
import { JobRun, XLATE_HOST, XLATE_LOCAL, XLATE_MISS, type AccessList, type FpgaJobResult } from "./fpga-job.js";
import { FPGA_JOB_MODES, cyclesToPs, type FpgaDriverSpec, type FpgaJobMode } from "./fpga-spec.js";
import { FpgaTlb, tlbTag2m, tlbTag4k } from "./fpga-tlb.js";

/** At most this many mms per device (the TLB tags pack the VA-space id with the page number). */
export const FPGA_MAX_VA_SPACES = 1024;

/** What the driver counted (beyond the machine's trace points). */
export interface FpgaDriverStats {
  /** Interrupts raised by streams (every TLB miss or permission miss), and serviced, one at a time. */
  interrupts: number;
  serviced: number;
  /** Serviced interrupts that only refilled the TLB (the page was mapped: TaPaSCo's is_page_present path). */
  tlbRefills: number;
  /** Serviced interrupts that were page faults (hmmRangeFault and/or migrateVma*), and those the driver dropped. */
  pageFaults: number;
  droppedFaults: number;
  /** Pages migrated to card memory with their data copied over the link, migrateVma runs, pages zero-filled on the card. */
  migratedPages: number;
  migrateRuns: number;
  populatedPages: number;
  /** Pages mapped to host memory (a system pfn in the mapping table). */
  hostMapped: number;
  /** TLB entries written by the driver (small and large). */
  tlbFills: number;
  /** Invalidations from the interval notifier that cleared mappings (card TLB shootdowns), and the mappings cleared. */
  shootdowns: number;
  invalidatedMappings: number;
  /** Pages migrated back by CPU faults (migrate_to_ram). */
  cpuFaultPages: number;
  /** Chunks evicted and their pages; faulted pages mapped to host memory because no card memory could be had. */
  evictions: number;
  evictedPages: number;
  noMemoryFallbacks: number;
  /**
   * Thrashing hints carried out (`thrashingHint`, @hmmsim/policy): faulted pages pinned (mapped on the host, not
   * migrated), page faults throttled (the stream held stalled until the hint's time, then restarted), and the stall
   * time the throttles added beyond the normal restart, ps.
   */
  thrashingPins: number;
  throttledFaults: number;
  throttlePs: number;
  /** Jobs run, and pages their pre-launch step migrated or mapped. */
  jobs: number;
  preparedPages: number;
  /** hmmRangeFault loop: attempts and read_retry collisions. */
  mirrorAttempts: number;
  mirrorRetries: number;
}

function zeroStats(): FpgaDriverStats {
  return {
    interrupts: 0,
    serviced: 0,
    tlbRefills: 0,
    pageFaults: 0,
    droppedFaults: 0,
    migratedPages: 0,
    migrateRuns: 0,
    populatedPages: 0,
    hostMapped: 0,
    tlbFills: 0,
    shootdowns: 0,
    invalidatedMappings: 0,
    cpuFaultPages: 0,
    evictions: 0,
    evictedPages: 0,
    noMemoryFallbacks: 0,
    thrashingPins: 0,
    throttledFaults: 0,
    throttlePs: 0,
    jobs: 0,
    preparedPages: 0,
    mirrorAttempts: 0,
    mirrorRetries: 0,
  };
}

/** What a mapping-table entry holds, for tests and tools (`entry(mm, addr)`). */
export interface FpgaMappingInfo {
  write: boolean;
  /** A host mapping (system pfn) rather than a card-memory page. */
  host: boolean;
  pfn: number;
}

/** A job's buffer, [start, end) of the mm (TaPaSCo / Coyote: the user declares the buffers a job works on). */
export interface FpgaBuffer {
  start: number;
  end: number;
}

export interface RunJobOptions {
  /** Streams of the job (default spec.streams; at most spec.streams). */
  streams?: number;
  /** The job's programming model (default spec.jobMode). */
  mode?: FpgaJobMode;
  /**
   * The buffers to pre-migrate or pre-map (modes "premigrate" / "premap"). Default: the VMA holding the job's first
   * access (the buffer the application allocated).
   */
  buffers?: readonly FpgaBuffer[];
}

/** What an FpgaDriver is built from (FpgaDevices hands in what the machine's container injected into it). */
export interface FpgaDriverOptions {
  device: DeviceSpec;
  /** The device's spec: the plugin's spec with the device's driverSpec laid over it. */
  spec: Readonly<FpgaDriverSpec>;
  kernel: Kernel;
  engine: Engine;
  ledger: CostLedger;
  /** The device's link. */
  link: Interconnect;
  /** The machine's trace points (MachineTrace.getHooks(machine)). */
  trace: MachineTraceHooks;
  /** The machine's policy hooks (Policy.getHooks(machine) from @hmmsim/policy). */
  policy: PolicyHooks;
  /**
   * The dev_pagemap owner (pgmap->owner, hmm_range_fault's dev_private_owner, migrate_vma's pgmap_owner): the
   * machine's PgmapOwners object for the device (`machine.pgmapOwner(device)`). Default: the driver itself.
   */
  owner?: unknown;
  /**
   * True when other devices share `owner` (a peer-link group): the driver then skips no MMU_NOTIFY_MIGRATE
   * invalidation, since a peer's migration carries the same owner (pgmap-owners.ts, "The trap"). Default false.
   */
  ownerShared?: boolean;
}

/** A mirrored mm: its id, its interval notifier. */
interface VaSpace {
  id: number;
  mm: Mm;
  sub: MmuIntervalNotifier;
}

/** A pending interrupt (Coyote's `vfpga_irq_pfault`: vaddr, stream, wr). */
interface PendingFault {
  space: number;
  addr: number;
  write: boolean;
  stream: number;
  gen: number;
}

const REQ_READ = 1;
const REQ_WRITE = 2;
const REQ_SNAPSHOT = 3; // migrated or pre-mapped with the block: map if present, never fault it in

export class FpgaDriver implements DeviceDriver {
  /**
   * The FPGA driver of device `name` on `machine` (default: its only FPGA), from the machine's device drivers;
   * throws FpgaInputError naming the device when it has no driver or another driver.
   */
  static of(machine: Pick<Machine, "driver" | "drivers">, name?: string): FpgaDriver {
    const all = machine.drivers.filter((d): d is FpgaDriver => d instanceof FpgaDriver);
    const names = all.map((d) => d.device).join(", ") || "none: add FpgaDriverPlugin";
    if (name === undefined) {
      if (all.length === 1) return all[0]!;
      throw new FpgaInputError("name", `the machine has ${all.length} FPGA drivers (${names}); name one`);
    }
    let d: DeviceDriver;
    try {
      d = machine.driver(name);
    } catch (e) {
      if (!(e instanceof MachineError)) throw e;
      throw new FpgaInputError("name", `no FPGA driver for device ${JSON.stringify(name)}: ${e.message} (FPGA devices: ${names})`);
    }
    if (!(d instanceof FpgaDriver)) throw new FpgaInputError("name", `device ${JSON.stringify(name)} is run by driver ${JSON.stringify(d.driverName)}, not the FPGA driver (FPGA devices: ${names})`);
    return d;
  }

  readonly device: string;
  readonly name: string;
  readonly driverName = "fpga";
  readonly spec: Readonly<FpgaDriverSpec>;
  readonly kernel: Kernel;
  readonly engine: Engine;
  readonly link: Interconnect;
  readonly policy: PolicyHooks;
  /** The driver lock (Coyote `mmu_lock`; the lock the invalidate callback takes): synchronous sections only. */
  readonly lock: Mutex;
  readonly pgmap: DevPagemap;
  /** The dev_pagemap owner (the machine's PgmapOwners object of the device, or the driver). */
  readonly owner: unknown;
  private readonly ownerShared: boolean;
  readonly memoryType: "private" | "coherent";
  readonly startPfn: number;
  readonly nrPages: number;
  readonly card: CardMemory;
  readonly mappings = new DeviceMappings();
  /** The shell's TLBs: 4 KiB pages and 2 MiB pages [S62]. */
  readonly tlbSmall: FpgaTlb;
  readonly tlbLarge: FpgaTlb;
  readonly stats: FpgaDriverStats = zeroStats();
  /** Every job's result, in order (the per-stream stall report). */
  readonly jobs: FpgaJobResult[] = [];

  /** Derived costs, ps. */
  readonly tlbHitPs: number;
  readonly memAccessPs: number;
  readonly zeroPagePs: number;

  private readonly ledger: CostLedger;
  private readonly trace: MachineTraceHooks;
  private readonly spaces: VaSpace[] = [];
  private readonly spaceOf = new Map<Mm, VaSpace>();
  private readonly pending: PendingFault[] = [];
  private readonly faultWq: WaitQueue;
  private serviceStarted = false;
  private faultSeq = 0;
  /** One job at a time per device (jobs queue on it). */
  private readonly jobLock: Mutex;
  /** Serialises the users of the per-block scratch arrays: the fault-service task and pre-launch / migrateToCard callers. */
  private readonly blockLock: Mutex;
  /** @internal the running job, if any. */
  run: JobRun | null = null;
  private failedRun: JobRun | null = null;
  private runGen = 0;

  private readonly req = new Uint8Array(CHUNK_PAGES);
  private readonly mig = new Uint8Array(CHUNK_PAGES);
  private readonly fillList = new Int16Array(CHUNK_PAGES);
  private readonly src = new Float64Array(CHUNK_PAGES);
  private readonly dst = new Float64Array(CHUNK_PAGES);
  private readonly esrc = new Float64Array(CHUNK_PAGES);
  private readonly edst = new Float64Array(CHUNK_PAGES);
  private readonly hmmPfns = new Float64Array(CHUNK_PAGES);
  private readonly hmmViews: (Float64Array | undefined)[] = new Array(CHUNK_PAGES + 1);
  private readonly mva: MigrateVma;
  private readonly ramSrc = new Float64Array(1);
  private readonly ramDst = new Float64Array(1);
  private readonly ramMva: MigrateVma;
  private readonly range: HmmRange;
  private readonly prefetch: PrefetchRange = { start: 0, end: 0 };
  /** The prefetchPages hook's mask (prefetch_pages_mask), zeroed over the fault's block before each call. */
  private readonly prefetchMask = new PrefetchPageMask();
  /** @internal The thrashing mask of the block being serviced (the `thrashingPages` hook's answer). */
  readonly thrashMask = new Uint8Array(CHUNK_PAGES);
  /** Set by handlePageFault when a THROTTLE hint holds the fault back: the time until which the stream stays stalled. */
  private throttleUntil = 0;
  private readonly fault: FaultInfo;
  private readonly victimQuery: CardVictimQuery;
  private readonly faultEvent: PageFaultEvent;
  private mapSlot = -1;
  private mapLo = 0;
  private mapHi = 0;
  private readonly mirrorStats = { attempts: 0, rangeFaultBusy: 0, readRetry: 0 };
  private readonly update = (r: HmmRange): number => this.updateMappings(r);
  private readonly noWindow = (): void => {};

  constructor(o: FpgaDriverOptions) {
    this.device = o.device.name;
    this.name = o.device.name;
    this.spec = o.spec;
    this.kernel = o.kernel;
    this.engine = o.engine;
    this.ledger = o.ledger;
    this.link = o.link;
    this.policy = o.policy;
    this.trace = o.trace;
    this.lock = new Mutex(`${this.name}.mmu_lock`, o.engine);
    this.jobLock = new Mutex(`${this.name}.job`, o.engine);
    this.blockLock = new Mutex(`${this.name}.block`, o.engine);
    this.faultWq = new WaitQueue(`${this.name}.pfault`, o.engine);
    this.owner = o.owner ?? this;
    this.ownerShared = o.ownerShared ?? false;
    this.memoryType = o.device.memoryType;
    if (this.memoryType === "coherent" && !o.link.supportsCoherentAccess) {
      throw new FpgaInputError(`devices.${this.name}.memoryType`, `DEVICE_COHERENT memory needs a coherent link (CXL); ${o.link.name} is not`);
    }
    const nChunks = Math.floor(o.device.memory / BLOCK_SIZE);
    if (nChunks < 1) throw new FpgaInputError(`devices.${this.name}.memory`, "must hold at least one 2 MiB chunk of card memory", o.device.memory);
    this.nrPages = nChunks * CHUNK_PAGES;
    // TaPaSCo request_device_pages / Coyote: one dev_pagemap per device, its owner the device (pgmap->owner = pdev);
    // in a machine, the machine's owner object for the device (its own unless a peer link joins it to another).
    const ops =
      this.memoryType === "private"
        ? { pageFree: (pfn: number) => this.pageFree(pfn), migrateToRam: (vmf: VmFault) => this.migrateToRam(vmf) }
        : { pageFree: (pfn: number) => this.pageFree(pfn) };
    this.pgmap = { type: this.memoryType === "private" ? MEMORY_DEVICE_PRIVATE : MEMORY_DEVICE_COHERENT, range: { start: 0, end: -1 }, owner: this.owner, ops };
    const first = memremapPages(o.kernel, this.pgmap, this.nrPages);
    if (isErrValue(first)) throw new FpgaInputError(`devices.${this.name}`, `memremapPages failed (${first})`);
    this.startPfn = first;
    this.card = new CardMemory(nChunks);
    const s = o.spec;
    this.tlbSmall = new FpgaTlb(`${this.name}.stlb`, s.tlbSmallEntries, s.tlbSmallWays);
    this.tlbLarge = new FpgaTlb(`${this.name}.ltlb`, s.tlbLargeEntries, s.tlbLargeWays);
    this.tlbHitPs = cyclesToPs(s.tlbHitCycles, s.clockHz);
    this.memAccessPs = Math.ceil((s.accessBytes * 1e12) / s.deviceMemoryBandwidth);
    this.zeroPagePs = Math.ceil((PAGE_SIZE * 1e12) / s.deviceMemoryBandwidth);
    this.mva = migrateVmaInit({ vma: null, start: 0, end: 0, src: this.src, dst: this.dst, pgmapOwner: this.owner, flags: MIGRATE_VMA_SELECT_SYSTEM });
    this.ramMva = migrateVmaInit({
      vma: null,
      start: 0,
      end: 0,
      src: this.ramSrc,
      dst: this.ramDst,
      pgmapOwner: this.owner,
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
      devPrivateOwner: this.owner,
    };
    this.fault = new FaultInfo(this);
    this.victimQuery = new CardVictimQuery(this);
    this.faultEvent = { source: "device", device: this.name, mm: null, address: 0, write: false, flags: 0, ret: 0, timePs: 0 };
  }

  /** DeviceDriver.counters: faults are serviced one at a time, so each serviced interrupt is a "batch" of one. */
  counters(): DeviceDriverCounters {
    const s = this.stats;
    return { batches: s.serviced, faultedPages: s.serviced, migratedPages: s.migratedPages, populatedPages: s.populatedPages };
  }

  /** DeviceDriver.kernelProgress: the counts so far of the job running now, or of the last one if it failed. */
  kernelProgress(): FpgaJobResult | null {
    return (this.run ?? this.failedRun)?.result() ?? null;
  }

  /** @internal The mm of VA space `id`. */
  spaceMm(id: number): Mm | null {
    return this.spaces[id]?.mm ?? null;
  }

  // --- VA spaces ------------------------------------------------------------------------------------------------

  /** Starts mirroring `mm` (Coyote registers an mmu_interval_notifier per process); returns its VA-space id. */
  attachMm(mm: Mm): number {
    if (mm === null || typeof mm !== "object" || !("pgtable" in mm)) throw new FpgaInputError("mm", "must be a @hmmsim/core Mm");
    const have = this.spaceOf.get(mm);
    if (have) return have.id;
    if (mm.kernel !== this.kernel) throw new FpgaInputError("mm", `belongs to another kernel than ${this.name}'s machine`);
    if (this.spaces.length >= FPGA_MAX_VA_SPACES) throw new FpgaInputError("mm", `at most ${FPGA_MAX_VA_SPACES} mms per device`);
    const id = this.spaces.length;
    const sub = new MmuIntervalNotifier();
    const ret = mmuIntervalNotifierInsert(sub, asNotifierMm(mm), 0, TASK_SIZE, { invalidate: (s, range, curSeq) => this.invalidate(id, s, range, curSeq) });
    if (ret !== 0) throw new FpgaInputError("mm", `mmuIntervalNotifierInsert failed (${ret}): the mm has exited`);
    const vs: VaSpace = { id, mm, sub };
    this.spaces.push(vs);
    this.spaceOf.set(mm, vs);
    return id;
  }

  /** The mapping-table entry for `addr` of `mm`, or null when the card may not access it. */
  entry(mm: Mm, addr: number): FpgaMappingInfo | null {
    const vs = this.spaceOf.get(mm);
    if (!vs) return null;
    const slot = this.mappings.find(vs.id, addr);
    if (slot < 0) return null;
    const i = slot * CHUNK_PAGES + pageIndex(addr);
    const f = this.mappings.flags[i]!;
    if ((f & FPGA_MAP_VALID) === 0) return null;
    return { write: (f & FPGA_MAP_WRITE) !== 0, host: (f & FPGA_MAP_HOST) !== 0, pfn: this.mappings.pfn[i]! };
  }

  /** Is the page at `addr` of `mm` in this card's memory? */
  isResident(mm: Mm, addr: number): boolean {
    const vs = this.spaceOf.get(mm);
    if (!vs) return false;
    const slot = this.mappings.find(vs.id, addr);
    if (slot < 0) return false;
    const c = this.mappings.chunk[slot]!;
    return c >= 0 && this.card.isPageUsed(c, pageIndex(addr));
  }

  /** The VA-space id of `mm`, or -1 when the driver does not mirror it. */
  spaceId(mm: Mm): number {
    return this.spaceOf.get(mm)?.id ?? -1;
  }

  // --- jobs -----------------------------------------------------------------------------------------------------

  /** DeviceDriver.runKernel: a job with the device's default programming model (`warps` = streams). */
  runKernel(mm: Mm, accesses: AccessSource | AccessList, opts: { warps?: number } = {}): Promise<FpgaJobResult> {
    return this.runJob(mm, accesses, opts.warps === undefined ? {} : { streams: opts.warps });
  }

  /**
   * Runs a job (an accelerator kernel streaming over its buffers) over `accesses` of `mm`. With mode "premigrate"
   * the driver first migrates the job's buffers to card memory and fills the TLBs (TaPaSCo
   * `pcie_svm_user_managed_migration_to_device` [S60], Coyote `user_migrate_to_card` [S61]); with "premap" it faults
   * them in on the host and maps them; then the streams start. Awaited inside an engine task; jobs on one device run
   * one after another. Rejects with FpgaFaultError when a fault cannot be serviced (no VMA, no permission: the
   * driver drops it), FpgaForwardProgressError when an access never completes.
   */
  async runJob(mm: Mm, accesses: AccessSource | AccessList, opts: RunJobOptions = {}): Promise<FpgaJobResult> {
    const space = this.attachMm(mm);
    const streams = opts.streams ?? this.spec.streams;
    if (!Number.isSafeInteger(streams) || streams < 1 || streams > this.spec.streams) throw new FpgaInputError("opts.streams", `must be an integer in [1, ${this.spec.streams}] (spec.streams)`, streams);
    const mode = opts.mode ?? this.spec.jobMode;
    if (!FPGA_JOB_MODES.includes(mode)) throw new FpgaInputError("opts.mode", `must be one of ${FPGA_JOB_MODES.join(", ")}`, mode);
    if (opts.buffers !== undefined) for (const b of opts.buffers) checkRange(b.start, b.end, "opts.buffers[]");
    const run = new JobRun(this, space, accesses, streams, ++this.runGen, mode);
    this.failedRun = null;
    this.startService();
    await this.ledger.settle();
    await this.jobLock.lock();
    try {
      this.stats.jobs++;
      if (mode !== "fault") {
        run.prepare.startPs = this.engine.now;
        let buffers = opts.buffers;
        if (buffers === undefined) {
          const a = run.peekFirst();
          const vma = a >= 0 ? mm.findVma(a) : null;
          buffers = vma !== null && a >= vma.vmStart ? [{ start: vma.vmStart, end: vma.vmEnd }] : [];
        }
        for (const b of buffers) {
          const r = await this.prepareRange(mm, b.start, b.end, mode, run);
          if (r !== 0) throw new FpgaFaultError(this.name, b.start, r, `the job's ${mode === "premigrate" ? "pre-migration" : "pre-mapping"} of [0x${b.start.toString(16)}, 0x${b.end.toString(16)}) failed`);
        }
        await this.ledger.settle();
        run.prepare.endPs = this.engine.now;
      }
      this.run = run;
      run.start();
      await run.done.wait();
    } finally {
      this.run = null;
      this.jobLock.unlock();
    }
    if (run.error) {
      this.failedRun = run;
      throw run.error;
    }
    const res = run.result();
    this.jobs.push(res);
    return res;
  }

  /**
   * User-managed migration of [start, end) of `mm` to card memory (TaPaSCo
   * `pcie_svm_user_managed_migration_to_device` [S60]; Coyote `user_migrate_to_card` [S61]): every page not yet on
   * the card is migrated (one migrateVma* run and one DMA per 2 MiB block piece), evicting through selectVictim when
   * card memory is full, then mapped and its TLB entries written. Returns 0, -EFAULT (a page not mapped readable:
   * the pages before it stay migrated), -ENOMEM (no card memory). Awaited inside an engine task.
   */
  /**
   * DeviceDriver.migrateRange (a workload's `prefetch` phase, cudaMemPrefetchAsync's counterpart): the shell's
   * user-managed migration to the card, `migrateToCard`.
   */
  migrateRange(mm: Mm, start: number, end: number): Promise<number> {
    return this.migrateToCard(mm, start, end);
  }

  async migrateToCard(mm: Mm, start: number, end: number): Promise<number> {
    checkRange(start, end, "range");
    this.attachMm(mm);
    await this.ledger.settle();
    return this.prepareRange(mm, start, end, "premigrate", null);
  }

  /** A job's pre-launch step over one buffer, block by block. */
  private async prepareRange(mm: Mm, start: number, end: number, mode: FpgaJobMode, run: JobRun | null): Promise<number> {
    const vs = this.spaces[this.attachMm(mm)]!;
    const s0 = Math.floor(start / PAGE_SIZE) * PAGE_SIZE;
    const e0 = Math.ceil(end / PAGE_SIZE) * PAGE_SIZE;
    for (let bs = Math.floor(s0 / BLOCK_SIZE) * BLOCK_SIZE; bs < e0; bs += BLOCK_SIZE) {
      const j0 = pageIndex(Math.max(s0, bs));
      const j1 = (Math.min(e0, bs + BLOCK_SIZE) - bs) / PAGE_SIZE;
      if (!this.blockLock.tryLock()) await this.blockLock.lock();
      let ret: number;
      try {
        ret = await this.prepareBlock(vs, bs, j0, j1, mode === "premigrate", run);
      } finally {
        this.blockLock.unlock();
      }
      if (ret !== 0) return ret;
    }
    return 0;
  }

  /** Pre-migrates (or pre-maps) pages [j0, j1) of one block (the caller holds blockLock). */
  private async prepareBlock(vs: VaSpace, blockStart: number, j0: number, j1: number, migrate: boolean, run: JobRun | null): Promise<number> {
    const mm = vs.mm;
    const slot = this.mappings.get(vs.id, blockStart);
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
      const have = this.mappings.chunk[slot]!;
      for (let k = j0; k < j1 && ret === 0; ) {
        const addr = blockStart + k * PAGE_SIZE;
        const vma = mm.findVma(addr);
        if (vma === null || addr < vma.vmStart || (vma.vmFlags & VM_READ) === 0) {
          ret = -EFAULT;
          break;
        }
        const writable = (vma.vmFlags & VM_WRITE) !== 0;
        const ke = Math.min(j1, (vma.vmEnd - blockStart) / PAGE_SIZE);
        for (; k < ke; k++) {
          if (migrate) {
            req[k] = REQ_SNAPSHOT;
            if (!(have >= 0 && this.card.isPageUsed(have, k))) mig[k] = 1;
          } else req[k] = writable ? REQ_WRITE : REQ_READ; // premap: fault them in on the host (hmm_range_fault)
          if (k < lo) lo = k;
          if (k > hi) hi = k;
        }
      }
      if (migrate && hi >= lo) {
        let any = false;
        for (let k = lo; k <= hi && !any; k++) any = mig[k] === 1;
        if (any) {
          chunk = await this.ensureChunk(slot, blockStart);
          if (chunk < 0) ret = -ENOMEM;
          else {
            this.card.pinned[chunk] = 1;
            await this.migrateRuns(mm, blockStart, lo, hi, chunk, "hint");
          }
        }
      }
    } finally {
      mm.mmapLock.upRead();
    }
    if (hi >= lo) {
      if (ret === 0) {
        const r = await this.mirror(vs, slot, blockStart, lo, hi + 1);
        if (r !== 0) ret = r;
        else if (run !== null) run.prepare.pages += hi + 1 - lo;
        this.stats.preparedPages += ret === 0 ? hi + 1 - lo : 0;
      }
      req.fill(0, lo, hi + 1);
      mig.fill(0, lo, hi + 1);
    }
    if (chunk >= 0) this.unpinChunk(chunk);
    return ret;
  }

  // --- the stream side ------------------------------------------------------------------------------------------

  /**
   * @internal A stream's translation of (space, addr): XLATE_LOCAL / XLATE_HOST on a TLB hit with the permission,
   * else XLATE_MISS. Both TLBs are looked up at once; an entry is only there while its mapping is valid.
   */
  translate(space: number, addr: number, write: boolean): number {
    const hitL = this.tlbLarge.lookup(tlbTag2m(space, Math.floor(addr / BLOCK_SIZE)));
    const hit = hitL || this.tlbSmall.lookup(tlbTag4k(space, Math.floor(addr / PAGE_SIZE)));
    if (!hit) return XLATE_MISS;
    const slot = this.mappings.find(space, addr);
    const f = this.mappings.flags[slot * CHUNK_PAGES + pageIndex(addr)]!;
    if ((f & FPGA_MAP_VALID) === 0) throw new KernelRuleError("fpga_tlb_without_mapping", `${this.name}: a TLB entry for 0x${addr.toString(16)} outlived its mapping`);
    if (write && (f & FPGA_MAP_WRITE) === 0) return XLATE_MISS;
    if ((f & FPGA_MAP_HOST) !== 0) return XLATE_HOST;
    this.card.accessed(this.mappings.chunk[slot]!, this.engine.now);
    return XLATE_LOCAL;
  }

  /** @internal A stream raises a page-fault interrupt (the shell writes the fault registers and signals MSI-X). */
  raiseFault(space: number, addr: number, write: boolean, stream: number, gen: number): void {
    this.pending.push({ space, addr, write, stream, gen });
    this.stats.interrupts++;
    if (this.faultWq.waiting > 0) this.faultWq.wakeUpOne();
  }

  /** @internal One PMTU packet of a host mapping over the link, from `at`; then `resume`. */
  hostPacket(write: boolean, at: number, resume: () => void): void {
    const bytes = this.spec.pmtuBytes;
    this.engine.spawn(`${this.name}.host-packet`, async () => {
      if (at > this.engine.now) await this.engine.sleep(at - this.engine.now);
      await this.link.transfer(write ? "d2h" : "h2d", bytes);
      resume();
    });
  }

  // --- the fault-service task: one interrupt at a time --------------------------------------------------------------

  private startService(): void {
    if (this.serviceStarted) return;
    this.serviceStarted = true;
    this.engine.spawn(`${this.name}.pfault`, () => this.serviceLoop(), { daemon: true });
  }

  /** Coyote's page-fault work queue: one `vfpga_pfault_handler` run per interrupt, in order, under mmu_lock. */
  private async serviceLoop(): Promise<void> {
    for (;;) {
      while (this.pending.length === 0) await this.faultWq.wait();
      const f = this.pending.shift()!;
      if (this.spec.faultInterruptPs > 0) await this.engine.sleep(this.spec.faultInterruptPs);
      await this.serviceFault(f);
    }
  }

  /** vfpga_pfault_handler / handle_iommu_page_fault for one interrupt. */
  private async serviceFault(f: PendingFault): Promise<void> {
    const run = this.run;
    if (run === null || run.gen !== f.gen || run.error !== null) return; // the job is gone
    const vs = this.spaces[f.space]!;
    const page = Math.floor(f.addr / PAGE_SIZE) * PAGE_SIZE;
    const startPs = this.engine.now;
    const seq = this.faultSeq++;
    this.stats.serviced++;
    const slot = this.mappings.get(vs.id, page);
    const j = pageIndex(page);
    const fl = this.mappings.flags[slot * CHUNK_PAGES + j]!;
    let ret = 0;
    // Every interrupt is a device fault the machine sees (a TLB miss raises the same page-fault interrupt).
    if (this.trace.pageFault.isUsed()) {
      const ev = this.faultEvent;
      ev.mm = vs.mm;
      ev.address = page;
      ev.write = f.write;
      ev.flags = f.write ? FAULT_FLAG_WRITE : 0;
      ev.timePs = startPs;
      this.trace.pageFault.call(ev);
    }
    if ((fl & FPGA_MAP_VALID) !== 0 && (!f.write || (fl & FPGA_MAP_WRITE) !== 0)) {
      // A TLB miss on a mapped page (TaPaSCo is_page_present → svm_perform_ptw → add_tlb_entry): refill only.
      this.stats.tlbRefills++;
      this.fillTlb(slot, j);
    } else {
      this.stats.pageFaults++;
      this.ledger.charge("DEVICE_FAULT", 1); // one service round per fault: nothing to batch with
      if (!this.blockLock.tryLock()) {
        await this.ledger.settle();
        await this.blockLock.lock();
      }
      try {
        ret = await this.handlePageFault(vs, slot, page, f.write, seq);
      } finally {
        this.blockLock.unlock();
      }
    }
    await this.ledger.settle();
    const endPs = this.engine.now;
    if (this.trace.deviceFaultBatch.isUsed()) this.trace.deviceFaultBatch.call({ device: this.name, faults: 1, pages: 1, startPs, endPs });
    if (this.throttleUntil > 0) {
      // A THROTTLE hint: the stream stays stalled until the hint's time, then retries its access (the shell's
      // counterpart of the throttled GPU warps, and of UVM's CPU path, which naps the faulting thread:
      // uvm_perf_thrashing.c `uvm_perf_thrashing_get_hint`, UVM_PERF_THRASHING_HINT_TYPE_THROTTLE [S3]).
      const at = endPs + this.spec.restartPs;
      const until = Math.max(this.throttleUntil, at);
      this.throttleUntil = 0;
      this.stats.throttlePs += until - at;
      run.restartThrottled(f.stream, until);
      return;
    }
    if (ret !== 0) {
      // Coyote drop_irq_pfault / TaPaSCo drop_page_fault: the access cannot be serviced.
      this.stats.droppedFaults++;
      run.fail(new FpgaFaultError(this.name, f.addr, ret, ret === -ENOMEM ? "out of memory (hmm_range_fault -ENOMEM)" : "the stream's access cannot be serviced: the driver dropped the fault"));
      return;
    }
    run.restart(f.stream, endPs + this.spec.restartPs);
  }

  /** Asks `thrashingHint` for the page in `q`; validates the answer (a policy error names the hook). */
  private thrashingHint(q: FaultQuery): ThrashingHint | undefined {
    const h = this.policy.thrashingHint.call(q) as ThrashingHint | undefined | null;
    if (h === undefined || h === null) return undefined;
    if (typeof h !== "object" || (h.type !== THRASHING_HINT_PIN && h.type !== THRASHING_HINT_THROTTLE)) {
      throw new FpgaPolicyError("thrashingHint", `must answer { type: THRASHING_HINT_THROTTLE | THRASHING_HINT_PIN, untilPs } or nothing, got ${JSON.stringify(h)}`);
    }
    if (h.type === THRASHING_HINT_THROTTLE && !Number.isFinite(h.untilPs)) {
      throw new FpgaPolicyError("thrashingHint", `a THROTTLE hint needs a finite untilPs (ps), got ${String(h.untilPs)}`);
    }
    return h;
  }

  /** mmu_handler_hmm for one faulted page: migrate it (and the policy's prefetch range) to card memory or map it on the host. */
  private async handlePageFault(vs: VaSpace, slot: number, page: number, write: boolean, seq: number): Promise<number> {
    const mm = vs.mm;
    const blockStart = Math.floor(page / BLOCK_SIZE) * BLOCK_SIZE;
    const j = pageIndex(page);
    const req = this.req;
    const mig = this.mig;
    let lo = j;
    let hi = j;
    let chunk = -1;
    req[j] = write ? REQ_WRITE : REQ_READ;
    if (!mm.mmapLock.tryDownRead()) {
      await this.ledger.settle();
      await mm.mmapLock.downRead();
    }
    try {
      const vma = mm.findVma(page);
      if (vma === null || page < vma.vmStart || (vma.vmFlags & (write ? VM_WRITE : VM_READ)) === 0) {
        req[j] = 0;
        return -EFAULT;
      }
      const c = this.mappings.chunk[slot]!;
      if (!(c >= 0 && this.card.isPageUsed(c, j))) {
        const q = this.fault;
        q.set(mm, seq, page, slot, write ? ACCESS_WRITE : ACCESS_READ, vma.vmStart, vma.vmEnd);
        if (this.policy.thrashingPages.isUsed()) {
          this.thrashMask.fill(0);
          this.policy.thrashingPages.call(q, this.thrashMask);
        }
        // The thrashing hint comes before the migration decision, as on the GPU (uvm_perf_thrashing_get_hint [S3]):
        // THROTTLE holds this fault back (serviceFault restarts the stream at the hint's time), PIN maps the page
        // where it is (on the host) with no migration.
        const hint = this.policy.thrashingHint.isUsed() ? this.thrashingHint(q) : undefined;
        if (hint !== undefined && hint.type === THRASHING_HINT_THROTTLE && hint.untilPs > this.engine.now) {
          this.stats.throttledFaults++;
          this.throttleUntil = hint.untilPs;
          req[j] = 0;
          return 0;
        }
        const pinned = hint !== undefined && hint.type === THRASHING_HINT_PIN;
        if (pinned) this.stats.thrashingPins++;
        const migrate = !pinned && (this.policy.shouldMigrate.call(q) ?? defaultShouldMigrate(q));
        if (migrate) {
          const r = this.prefetch;
          r.start = page;
          r.end = page + PAGE_SIZE;
          const out = this.policy.prefetchRange.call(r, q) as PrefetchRange | undefined;
          let s = page;
          let en = page + PAGE_SIZE;
          if (out && Number.isFinite(out.start) && Number.isFinite(out.end)) {
            s = Math.floor(Math.max(Math.min(out.start, page), blockStart, vma.vmStart) / PAGE_SIZE) * PAGE_SIZE;
            en = Math.ceil(Math.min(Math.max(out.end, page + PAGE_SIZE), blockStart + BLOCK_SIZE, vma.vmEnd) / PAGE_SIZE) * PAGE_SIZE;
          }
          let any = false;
          for (let k = pageIndex(s), ke = (en - blockStart) / PAGE_SIZE; k < ke; k++) {
            if (c >= 0 && this.card.isPageUsed(c, k)) continue;
            mig[k] = 1;
            any = true;
            if (req[k] === 0) req[k] = REQ_SNAPSHOT;
            if (k < lo) lo = k;
            if (k > hi) hi = k;
          }
          if (this.policy.prefetchPages.isUsed()) {
            // The page-mask answer, as UVM's `prefetch_pages_mask` (uvm_perf_prefetch.c
            // `uvm_perf_prefetch_get_hint_va_block`, zeroed first; uvm_va_block.c `uvm_va_block_get_prefetch_hint` adds
            // its pages to the migration) [S2, S91]: each page clamped to the VMA like the range, resident ones skipped;
            // migrateRuns moves every contiguous run with one migrateVma call.
            const pm = this.prefetchMask;
            pm.zero(blockStart);
            this.policy.prefetchPages.call(q, pm);
            if (pm.blockStart !== blockStart) throw new FpgaPolicyError("prefetchPages", "a tap must not move the mask to another block (zero() is the driver's)");
            const pages = pm.pages;
            for (let k = Math.max(pm.first, (vma.vmStart - blockStart) / PAGE_SIZE), ke = Math.min(pm.outer, (vma.vmEnd - blockStart) / PAGE_SIZE); k < ke; k++) {
              if (pages[k] === 0 || mig[k] === 1 || (c >= 0 && this.card.isPageUsed(c, k))) continue;
              mig[k] = 1;
              any = true;
              if (req[k] === 0) req[k] = REQ_SNAPSHOT;
              if (k < lo) lo = k;
              if (k > hi) hi = k;
            }
          }
          if (any) {
            chunk = await this.ensureChunk(slot, blockStart);
            if (chunk < 0) {
              this.stats.noMemoryFallbacks++; // no card memory: map it on the host instead
              mig.fill(0, lo, hi + 1);
            } else {
              this.card.pinned[chunk] = 1;
              await this.migrateRuns(mm, blockStart, lo, hi, chunk, "fault");
            }
          }
        }
      }
    } finally {
      mm.mmapLock.upRead();
    }
    const ret = await this.mirror(vs, slot, blockStart, lo, hi + 1);
    req.fill(0, lo, hi + 1);
    mig.fill(0, lo, hi + 1);
    if (chunk >= 0) this.unpinChunk(chunk);
    return ret;
  }

  /** One migrateVma call per contiguous run of `mig` pages in [lo, hi] of a block inside one VMA. */
  private async migrateRuns(mm: Mm, blockStart: number, lo: number, hi: number, chunk: number, reason: "fault" | "hint"): Promise<number> {
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
      moved += await this.migrateRun(rv, blockStart, k, ke, chunk, reason);
      k = ke;
    }
    return moved;
  }

  /**
   * svm_migrate_ram_to_dev / fpga_migrate_to_card for pages [k, ke) of a block: migrate_vma_setup, one H2C DMA of
   * the copied pages over the link (TaPaSCo init_h2c_dma; pages never written are cleared on the card, PageDMA's
   * CLEAR command, no copy), migrate_vma_pages / finalize. Returns the pages moved.
   */
  private async migrateRun(vma: NonNullable<ReturnType<Mm["findVma"]>>, blockStart: number, k: number, ke: number, chunk: number, reason: "fault" | "hint"): Promise<number> {
    const a = this.mva;
    const start = blockStart + k * PAGE_SIZE;
    const end = blockStart + ke * PAGE_SIZE;
    a.vma = vma;
    a.start = start;
    a.end = end;
    a.src = this.src;
    a.dst = this.dst;
    a.pgmapOwner = this.owner;
    a.flags = MIGRATE_VMA_SELECT_SYSTEM;
    a.faultPage = null;
    this.stats.migrateRuns++;
    if (this.trace.migrateBegin.isUsed()) this.trace.migrateBegin.call({ device: this.name, mm: vma.vmMm, dir: "h2d", start, end, npages: ke - k, bytes: 0, reason, timePs: this.engine.now });
    if (migrateVmaSetup(a) !== 0) {
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
      const jj = k + i;
      const dpfn = base + jj;
      zoneDevicePageInit(this.kernel, dpfn);
      this.card.setPageUsed(chunk, jj);
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
      await this.ledger.settle();
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
    if (moved > 0) this.card.touch(chunk, this.engine.now);
    const copiedMoved = movedBytes / PAGE_SIZE;
    this.stats.migratedPages += copiedMoved;
    this.stats.populatedPages += moved - copiedMoved;
    if (this.trace.migrateEnd.isUsed()) this.trace.migrateEnd.call({ device: this.name, mm: vma.vmMm, dir: "h2d", start, end, npages: moved, bytes: movedBytes, reason, timePs: this.engine.now });
    return moved;
  }

  /** The documented mirror loop (Coyote fpga_do_host_fault) over pages [lo, hi) of a block; the table is written in updateMappings. */
  private async mirror(vs: VaSpace, slot: number, blockStart: number, lo: number, hi: number): Promise<number> {
    const r = this.range;
    const n = hi - lo;
    const pf = (this.hmmViews[n] ??= this.hmmPfns.subarray(0, n));
    const req = this.req;
    for (let k = lo; k < hi; k++) {
      const q = req[k]!;
      pf[k - lo] = q === REQ_WRITE ? HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE : q === REQ_READ ? HMM_PFN_REQ_FAULT : 0;
    }
    r.notifier = vs.sub;
    r.hmmPfns = pf;
    r.start = blockStart + lo * PAGE_SIZE;
    r.end = blockStart + hi * PAGE_SIZE;
    this.mapSlot = slot;
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

  /**
   * Under the driver lock with a validated sequence: write the mapping table from range.hmmPfns and the TLB entries
   * for what was mapped (TaPaSCo add_tlb_entry / add_al_tlb_entry after a migration; Coyote tlb_map_hmm): a block
   * whole in card memory gets one 2 MiB entry, other pages 4 KiB entries.
   */
  private updateMappings(r: HmmRange): number {
    const slot = this.mapSlot;
    const m = this.mappings;
    const base = slot * CHUNK_PAGES;
    const lo = this.mapLo;
    const pf = r.hmmPfns;
    const chunk = m.chunk[slot]!;
    const fill = this.fillList;
    let nFill = 0;
    let written = 0;
    for (let k = lo; k < this.mapHi; k++) {
      const q = this.req[k]!;
      if (q === 0) continue;
      const e = pf[k - lo]!;
      if ((e & HMM_PFN_VALID) === 0 || (e & HMM_PFN_ERROR) !== 0) continue;
      const pfn = (e - (e & 2047)) / HMM_PFN_PFN_MUL;
      const w = (e & HMM_PFN_WRITE) !== 0 ? FPGA_MAP_WRITE : 0;
      const local = pfn >= this.startPfn && pfn < this.startPfn + this.nrPages;
      let nf: number;
      if (local) {
        if (chunk < 0 || pfn !== this.startPfn + chunk * CHUNK_PAGES + k) {
          throw new KernelRuleError("fpga_block_chunk_mismatch", `${this.name}: card pfn ${pfn} is not page ${k} of the block's chunk`);
        }
        nf = FPGA_MAP_VALID | w;
      } else {
        if (q === REQ_SNAPSHOT) continue; // migrated with the block but still in system memory: leave it
        nf = FPGA_MAP_VALID | FPGA_MAP_HOST | w;
        this.stats.hostMapped++;
      }
      fill[nFill++] = k;
      if (m.flags[base + k] === nf && m.pfn[base + k] === pfn) continue; // mapped already: only its TLB entry
      if ((m.flags[base + k]! & FPGA_MAP_VALID) !== 0) this.clearMapping(slot, k);
      m.flags[base + k] = nf;
      m.pfn[base + k] = pfn;
      m.mapped[slot]!++;
      if (local) m.localMapped[slot]!++;
      written++;
    }
    if (written > 0) this.ledger.charge("PTE_UPDATE", written);
    // The TLB entries, once the block's state is known: one 2 MiB entry for a block whole in card memory
    // (TaPaSCo add_al_tlb_entry for a contiguous range, Coyote's large TLB), else one 4 KiB entry per page.
    if (nFill === 0) return 0;
    if (m.localMapped[slot] === CHUNK_PAGES) this.fillTlb(slot, -1);
    else for (let i = 0; i < nFill; i++) this.fillTlb(slot, fill[i]!);
    return 0;
  }

  /** Writes the TLB entry of page `j` of a block (j = -1: the block's 2 MiB entry), charging the MMIO write. */
  private fillTlb(slot: number, j: number): void {
    const m = this.mappings;
    const space = m.space[slot]!;
    const bpn = m.start[slot]! / BLOCK_SIZE;
    if (j < 0 || m.localMapped[slot] === CHUNK_PAGES) this.tlbLarge.insert(tlbTag2m(space, bpn));
    else this.tlbSmall.insert(tlbTag4k(space, bpn * CHUNK_PAGES + j));
    this.stats.tlbFills++;
    if (this.spec.tlbFillPs > 0) this.ledger.chargePs(this.spec.tlbFillPs);
  }

  /** Clears page j's mapping and its TLB entries (and the block's 2 MiB entry if it had one); returns 1 if it was valid. */
  private clearMapping(slot: number, j: number): number {
    const m = this.mappings;
    const i = slot * CHUNK_PAGES + j;
    const f = m.flags[i]!;
    if ((f & FPGA_MAP_VALID) === 0) return 0;
    const space = m.space[slot]!;
    const bpn = m.start[slot]! / BLOCK_SIZE;
    if (m.localMapped[slot] === CHUNK_PAGES) this.tlbLarge.invalidate(tlbTag2m(space, bpn));
    this.tlbSmall.invalidate(tlbTag4k(space, bpn * CHUNK_PAGES + j));
    m.flags[i] = 0;
    m.pfn[i] = 0;
    m.mapped[slot]!--;
    if ((f & FPGA_MAP_HOST) === 0) m.localMapped[slot]!--;
    return 1;
  }

  // --- card memory ----------------------------------------------------------------------------------------------

  /** dev_pagemap_ops.page_free (TaPaSCo kernel_page_free, Coyote cpu_free_private_page): a card page's refcount reached 0. */
  private pageFree(pfn: number): void {
    const i = pfn - this.startPfn;
    if (i < 0 || i >= this.nrPages) return;
    const c = Math.floor(i / CHUNK_PAGES);
    const j = i % CHUNK_PAGES;
    const slot = this.card.block[c]!;
    if (slot >= 0) {
      const f = this.mappings.flags[slot * CHUNK_PAGES + j]!;
      if ((f & FPGA_MAP_VALID) !== 0 && (f & FPGA_MAP_HOST) === 0) this.clearMapping(slot, j);
    }
    const left = this.card.clearPageUsed(c, j);
    if (left === 0 && this.card.pinned[c] === 0) this.releaseChunk(c);
  }

  private unpinChunk(c: number): void {
    this.card.pinned[c] = 0;
    if (this.card.used[c] === 0) this.releaseChunk(c);
  }

  private releaseChunk(c: number): void {
    const slot = this.card.block[c]!;
    if (slot >= 0 && this.mappings.chunk[slot] === c) this.mappings.chunk[slot] = -1;
    this.card.release(c);
  }

  /** A chunk of card memory for the block: a free one, else evict the one selectVictim names (default LRU). */
  private async ensureChunk(slot: number, blockStart: number): Promise<number> {
    const have = this.mappings.chunk[slot]!;
    if (have >= 0) return have;
    for (let attempt = 0; attempt < 4; attempt++) {
      const c = this.card.alloc(slot, this.engine.now);
      if (c >= 0) {
        this.mappings.chunk[slot] = c;
        return c;
      }
      const q = this.victimQuery;
      q.forBlockStart = blockStart;
      const v = this.policy.selectVictim.call(q) ?? lruVictim(q);
      if (v === -1) return -1;
      if (!Number.isInteger(v) || !q.isEvictable(v)) throw new FpgaPolicyError("selectVictim", `must answer an evictable chunk (allocated, not being serviced) or -1, got ${String(v)}`);
      await this.evictChunk(v);
    }
    return -1;
  }

  /** Migrates every in-use page of chunk `c` back to system memory (migrate_device_range / pages / finalize, one C2H DMA). */
  async evictChunk(c: number): Promise<void> {
    const slot = this.card.block[c]!;
    if (slot < 0) return;
    const k = this.kernel;
    const src = this.esrc;
    const dst = this.edst;
    const base = this.startPfn + c * CHUNK_PAGES;
    const blockStart = this.mappings.start[slot]!;
    const mm = this.spaceMm(this.mappings.space[slot]!);
    this.card.pinned[c] = 1;
    migrateDeviceRange(k, src, base, CHUNK_PAGES);
    let n = 0;
    for (let i = 0; i < CHUNK_PAGES; i++) {
      const m = src[i]!;
      if ((m & MIGRATE_PFN_MIGRATE) === 0) {
        dst[i] = 0;
        continue;
      }
      const spfn = allocPages(k, 0);
      if (spfn < 0) throw new FpgaFaultError(this.name, blockStart + i * PAGE_SIZE, -ENOMEM, "system RAM exhausted while evicting card memory");
      folioTrylock(k, spfn);
      k.pageBytes.copy(spfn, migratePfnToPage(m));
      dst[i] = (m & MIGRATE_PFN_WRITE) !== 0 ? mpfnSet(migratePfn(spfn), MIGRATE_PFN_WRITE) : migratePfn(spfn);
      n++;
    }
    // Our own mappings of these pages go now, with a card TLB shootdown (the CPU side was unmapped by migrate_device_range).
    let cleared = 0;
    for (let j = 0; j < CHUNK_PAGES; j++) {
      const f = this.mappings.flags[slot * CHUNK_PAGES + j]!;
      if ((f & FPGA_MAP_VALID) !== 0 && (f & FPGA_MAP_HOST) === 0) cleared += this.clearMapping(slot, j);
    }
    if (cleared > 0) this.chargeShootdown(cleared);
    this.stats.evictions++;
    this.stats.evictedPages += n;
    const now = this.engine.now;
    if (this.trace.eviction.isUsed()) this.trace.eviction.call({ device: this.name, mm, start: blockStart, npages: n, bytes: n * PAGE_SIZE, timePs: now });
    if (this.trace.migrateBegin.isUsed()) this.trace.migrateBegin.call({ device: this.name, mm, dir: "d2h", start: blockStart, end: blockStart + BLOCK_SIZE, npages: n, bytes: 0, reason: "eviction", timePs: now });
    await this.ledger.settle();
    if (n > 0) await this.link.transfer("d2h", n * PAGE_SIZE);
    migrateDevicePages(k, src, dst, CHUNK_PAGES);
    let moved = 0;
    for (let i = 0; i < CHUNK_PAGES; i++) if ((src[i]! & MIGRATE_PFN_MIGRATE) !== 0 && dst[i] !== 0) moved++;
    migrateDeviceFinalize(k, src, dst, CHUNK_PAGES);
    this.card.pinned[c] = 0;
    if (this.card.block[c] === slot && this.card.used[c] === 0) this.releaseChunk(c);
    if (this.trace.migrateEnd.isUsed()) {
      this.trace.migrateEnd.call({ device: this.name, mm, dir: "d2h", start: blockStart, end: blockStart + BLOCK_SIZE, npages: moved, bytes: moved * PAGE_SIZE, reason: "eviction", timePs: this.engine.now });
    }
  }

  /**
   * dev_pagemap_ops.migrate_to_ram (TaPaSCo svm_migrate_to_ram, Coyote cpu_migrate_to_host): a CPU touched one of
   * our device-private pages. Synchronously in the faulting CPU task: invalidate the card's TLB entry (a shootdown),
   * migrate_vma_setup with fault_page, copy to a new system page (the C2H DMA is queued on the faulting task:
   * `ledger.chargeTransfer`), migrate_vma_pages / finalize.
   */
  private migrateToRam(vmf: VmFault): number {
    const a = this.ramMva;
    const k = this.kernel;
    a.vma = vmf.vma;
    a.start = vmf.address;
    a.end = vmf.address + PAGE_SIZE;
    a.src = this.ramSrc;
    a.dst = this.ramDst;
    a.pgmapOwner = this.owner;
    a.flags = MIGRATE_VMA_SELECT_DEVICE_PRIVATE;
    a.faultPage = vmf.page;
    const traced = this.trace.migrateBegin.isUsed() || this.trace.migrateEnd.isUsed();
    if (traced) this.trace.migrateBegin.call({ device: this.name, mm: vmf.vma.vmMm, dir: "d2h", start: a.start, end: a.end, npages: 1, bytes: 0, reason: "cpu-fault", timePs: this.engine.now });
    if (migrateVmaSetup(a) !== 0) {
      if (traced) this.trace.migrateEnd.call({ device: this.name, mm: vmf.vma.vmMm, dir: "d2h", start: a.start, end: a.end, npages: 0, bytes: 0, reason: "cpu-fault", timePs: this.engine.now });
      return VM_FAULT_SIGBUS;
    }
    const m = this.ramSrc[0]!;
    let ret = 0;
    this.ramDst[0] = 0;
    if ((m & MIGRATE_PFN_MIGRATE) !== 0) {
      const spfn = allocPages(k, 0);
      if (spfn < 0) ret = VM_FAULT_OOM;
      else {
        folioTrylock(k, spfn);
        k.pageBytes.copy(spfn, migratePfnToPage(m));
        this.ramDst[0] = (m & MIGRATE_PFN_WRITE) !== 0 ? mpfnSet(migratePfn(spfn), MIGRATE_PFN_WRITE) : migratePfn(spfn);
        const vs = this.spaceOf.get(vmf.mm);
        if (vs) {
          const slot = this.mappings.find(vs.id, vmf.address);
          if (slot >= 0 && this.clearMapping(slot, pageIndex(vmf.address)) > 0) this.chargeShootdown(1);
        }
        this.ledger.chargeTransfer(this.link, "d2h", PAGE_SIZE);
      }
    }
    migrateVmaPages(a);
    const moved = (this.ramSrc[0]! & MIGRATE_PFN_MIGRATE) !== 0 && this.ramDst[0] !== 0 ? 1 : 0;
    migrateVmaFinalize(a);
    this.stats.cpuFaultPages += moved;
    if (traced) this.trace.migrateEnd.call({ device: this.name, mm: vmf.vma.vmMm, dir: "d2h", start: a.start, end: a.end, npages: moved, bytes: moved * PAGE_SIZE, reason: "cpu-fault", timePs: this.engine.now });
    return ret;
  }

  // --- invalidation -----------------------------------------------------------------------------------------------

  /**
   * mmu_interval_notifier_ops.invalidate (Coyote cyt_interval_invalidate, TaPaSCo svm_tlb_invalidate_range_start):
   * under the driver lock, mmu_interval_set_seq always; then, except for our own migrations (MMU_NOTIFY_MIGRATE with
   * owner == this device, whose entries the migration itself handles), clear the mappings in the range and their TLB
   * entries, and pay the card's TLB shootdown (the invalidation command and its completion interrupt) in the
   * invalidating task.
   */
  private invalidate(space: number, sub: MmuIntervalNotifier, range: MmuNotifierRange<unknown>, curSeq: number): boolean {
    if (!this.lock.tryLock()) throw new KernelRuleError("fpga_driver_lock_held_across_await", `${this.name}: the driver lock is held outside a synchronous section`);
    try {
      // The sequence advances for every invalidation, our own migrations included: a fault's mirror loop that read
      // a pfn before this migration (hmm_range_fault saw our device-private entry, say, and migrate_to_ram is now
      // moving the page back) must retry, not map the old pfn. The schedule explorer's soak found that
      // interleaving (seed 1105490124). UVM gets the same from its va_block lock, held by both the fault service
      // and migrate_to_ram (uvm_hmm.c hmm_invalidate, "holding the lock prevents other threads invalidating PTEs").
      mmuIntervalSetSeq(sub, curSeq);
      // Our own migrations clear or write the card's entries themselves (migrate_to_ram clears the page's entry;
      // a migration to the card is mapped by the mirror loop that follows it): nothing to clear here.
      if (range.event === MMU_NOTIFY_MIGRATE && range.owner === this.owner && !this.ownerShared) return true;
      let cleared = 0;
      this.mappings.forEachIn(space, range.start, range.end, (slot) => {
        if (this.mappings.mapped[slot] === 0) return;
        const bs = this.mappings.start[slot]!;
        const j0 = pageIndex(Math.max(range.start, bs));
        const j1 = Math.ceil((Math.min(range.end, bs + BLOCK_SIZE) - bs) / PAGE_SIZE);
        for (let j = j0; j < j1; j++) cleared += this.clearMapping(slot, j);
      });
      if (cleared > 0) {
        this.stats.invalidatedMappings += cleared;
        this.ledger.charge("PTE_UPDATE", cleared);
        this.chargeShootdown(cleared);
      }
    } finally {
      this.lock.unlock();
    }
    return true;
  }

  /** A card TLB shootdown of `pages` mappings, charged to the current task. */
  private chargeShootdown(pages: number): void {
    this.stats.shootdowns++;
    const ps = this.spec.tlbInvalidatePs + pages * this.spec.tlbInvalidatePerPagePs;
    if (ps > 0) this.ledger.chargePs(ps);
  }
}

function pageIndex(addr: number): number {
  return Math.floor(addr / PAGE_SIZE) & (CHUNK_PAGES - 1);
}

function checkRange(start: number, end: number, field: string): void {
  if (!Number.isSafeInteger(start) || start < 0 || start >= TASK_SIZE) throw new FpgaInputError(`${field}.start`, "must be a user address in [0, 2^47)", start);
  if (!Number.isSafeInteger(end) || end <= start || end > TASK_SIZE) throw new FpgaInputError(`${field}.end`, "must be above start and at most TASK_SIZE", end);
}

/** The reused FaultQuery handed to the policy hooks: one faulted page per service (batch of one). */
class FaultInfo implements FaultQuery {
  readonly device: string;
  mm!: Mm;
  address = 0;
  access: AccessType = 0;
  readonly duplicates = 1;
  batch = 0;
  readonly batchPages = 1;
  timePs = 0;
  blockStart = 0;
  pageIndex = 0;
  readonly blockFaulted = 1;
  vmaStart = 0;
  vmaEnd = 0;
  private slot = -1;

  constructor(readonly driver: FpgaDriver) {
    this.device = driver.name;
  }
  get write(): boolean {
    return this.access !== ACCESS_READ;
  }
  get blockResident(): number {
    const c = this.driver.mappings.chunk[this.slot]!;
    return c < 0 ? 0 : this.driver.card.used[c]!;
  }
  get blockMapped(): number {
    return this.driver.mappings.mapped[this.slot]!;
  }
  get deviceFreePages(): number {
    return this.driver.nrPages - this.driver.card.usedPages;
  }
  get devicePages(): number {
    return this.driver.nrPages;
  }
  isResident(i: number): boolean {
    const c = this.driver.mappings.chunk[this.slot]!;
    return c >= 0 && this.driver.card.isPageUsed(c, i);
  }
  isFaulted(i: number): boolean {
    return i === this.pageIndex;
  }
  isMapped(i: number): boolean {
    return (this.driver.mappings.flags[this.slot * CHUNK_PAGES + i]! & FPGA_MAP_VALID) !== 0;
  }
  /** From the `thrashingPages` hook, asked once per serviced fault (all false when nobody taps it). */
  isThrashing(i: number): boolean {
    return this.driver.policy.thrashingPages.isUsed() && this.driver.thrashMask[i] === 1;
  }
  /** The driver has no advise API yet: no preferred location, not accessed-by, not read-mostly. */
  readonly preferredLocation: string | null = null;
  readonly accessedBy = false;
  readonly readMostly = false;
  /** @internal */
  set(mm: Mm, seq: number, page: number, slot: number, access: AccessType, vmaStart: number, vmaEnd: number): void {
    this.mm = mm;
    this.batch = seq;
    this.address = page;
    this.blockStart = Math.floor(page / BLOCK_SIZE) * BLOCK_SIZE;
    this.pageIndex = pageIndex(page);
    this.slot = slot;
    this.access = access;
    this.vmaStart = vmaStart;
    this.vmaEnd = vmaEnd;
    this.timePs = this.driver.engine.now;
  }
}

/** The reused VictimQuery over the card's 2 MiB chunks. */
class CardVictimQuery implements VictimQuery {
  readonly device: string;
  forBlockStart = 0;
  constructor(readonly driver: FpgaDriver) {
    this.device = driver.name;
  }
  get timePs(): number {
    return this.driver.engine.now;
  }
  get chunks(): number {
    return this.driver.card.count;
  }
  get usedChunks(): number {
    return this.driver.card.usedChunks;
  }
  first(): number {
    return this.driver.card.first();
  }
  next(chunk: number): number {
    return this.driver.card.nextOf(chunk);
  }
  isEvictable(chunk: number): boolean {
    const c = this.driver.card;
    return chunk >= 0 && chunk < c.count && c.block[chunk]! >= 0 && c.pinned[chunk] === 0;
  }
  chunkBlockStart(chunk: number): number {
    const slot = this.driver.card.block[chunk]!;
    return slot < 0 ? -1 : this.driver.mappings.start[slot]!;
  }
  chunkMm(chunk: number): Mm | null {
    const slot = this.driver.card.block[chunk]!;
    return slot < 0 ? null : this.driver.spaceMm(this.driver.mappings.space[slot]!);
  }
  chunkResidentPages(chunk: number): number {
    return this.driver.card.used[chunk]!;
  }
  chunkLastUsePs(chunk: number): number {
    return this.driver.card.stamp[chunk]!;
  }
  chunkAllocPs(chunk: number): number {
    return this.driver.card.allocStamp[chunk]!;
  }
  chunkLastAccessPs(chunk: number): number {
    return this.driver.card.lastAccess[chunk]!;
  }
  chunkAccesses(chunk: number): number {
    return this.driver.card.accesses[chunk]!;
  }
}
