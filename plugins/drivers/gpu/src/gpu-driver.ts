/**
 * A GPU-like HMM driver built on hmmsim's kernel mechanisms (docs/architecture.md; Documentation/mm/hmm.rst). It stands for the
 * fault path of NVIDIA UVM in HMM mode written the way an upstream HMM driver is (lib/test_hmm.c,
 * drivers/gpu/drm/drm_gpusvm.c), split along UVM's own seams (kernel-open/nvidia-uvm):
 *
 *  | module               | UVM                                   | what                                              |
 *  |----------------------|---------------------------------------|---------------------------------------------------|
 *  | gpu-driver.ts        | uvm_va_space.c, uvm_gpu.c             | the device: VA spaces, translation, public API    |
 *  | fault-buffer.ts      | uvm_gpu_replayable_faults.c           | fault buffer, fetch, preprocess (sort + fold)     |
 *  | fault-service.ts     | uvm_gpu_replayable_faults.c           | service loop, batches, per-block service, replay  |
 *  | service-context.ts   | uvm_service_block_context_t           | what one VA block's service asks for, page by page|
 *  | migrate-to-device.ts | uvm_hmm.c (migrate_vma), uvm_migrate.c| migrateVma* runs to device memory, migrateRange   |
 *  | block-map.ts         | uvm_va_block.c map / unmap            | hmmRangeFault mirror, device PTEs + TLB           |
 *  | memory-manager.ts    | uvm_pmm_gpu.c                         | root chunks, page_free, selectVictim + eviction   |
 *  | hmm-callbacks.ts     | uvm_hmm.c                             | migrate_to_ram (devmem_fault), interval invalidate|
 *  | policy-queries.ts    | —                                     | the FaultQuery / VictimQuery handed to the hooks  |
 *
 *  - device memory: a MEMORY_DEVICE_PRIVATE pgmap from memremapPages (pageFree + migrateToRam), or
 *    MEMORY_DEVICE_COHERENT when the machine spec says so (coherent links only); 2 MiB root chunks in LRU order;
 *  - mirroring: one interval notifier per mm (VA space) over the whole user address space; each serviced block
 *    is mirrored with hmmRangeFault in the documented read_begin / read_retry loop (mirrorRangeFault) and the
 *    device page table is written under the driver lock; the invalidate callback clears device PTEs and TLB
 *    entries for the range and ignores the MMU_NOTIFY_MIGRATE of a migration this driver is running (`ownMigration`:
 *    its owner may be shared by peers, so the owner alone does not tell);
 *  - several devices: the pgmap owner is the machine's (PgmapOwners: shared by a peer-link group); a peer's page is
 *    migrated device → device over the peer link or mapped over it (GPU_PTE_PEER), another owner's page is faulted
 *    back to RAM first (through the host) — migrate-to-device.ts;
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
import { MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_PRIVATE, PAGE_SIZE, TASK_SIZE, type DevPagemap, type Kernel, type Mm, type VmFault } from "@hmmsim/core";
import { Mutex, type Engine } from "@hmmsim/engine";
import {
  MachineError,
  type AccessSource,
  type CostLedger,
  type DeviceDriver,
  type DeviceDriverCounters,
  type DeviceSpec,
  type Interconnect,
  type LinkDirection,
  type Machine,
  type MachineTraceHooks,
  type PeerInterconnect,
} from "@hmmsim/machine";
import { isErrValue, memremapPages } from "@hmmsim/memremap";
import { MmuIntervalNotifier, mmuIntervalNotifierInsert } from "@hmmsim/mmu-notifier";
import type { MemAdvice, PolicyHooks } from "@hmmsim/policy";
import { asNotifierMm } from "@hmmsim/range-fault";
import { AccessCounters } from "./access-counters.js";
import { BlockMapper, pageIndex } from "./block-map.js";
import { DeviceTlb, tlbTag2m, tlbTag4k } from "./device-tlb.js";
import { GpuInputError } from "./errors.js";
import { ReplayableFaultService } from "./fault-service.js";
import { KernelRun, type AccessList, type GpuKernelResult, type RunKernelOptions } from "./gpu-kernel.js";
import { cyclesToPs, type GpuDriverSpec } from "./gpu-spec.js";
import { zeroStats, type GpuDriverStats } from "./gpu-stats.js";
import { HmmCallbacks } from "./hmm-callbacks.js";
import { GpuMemoryManager } from "./memory-manager.js";
import { DeviceMigration } from "./migrate-to-device.js";
import { CHUNK_PAGES, type RootChunks } from "./root-chunks.js";
import { ServiceBlockContext, type VaSpace } from "./service-context.js";
import { GPU_PTE_PEER, GPU_PTE_REMOTE, GPU_PTE_VALID, GPU_PTE_WRITE, VA_BLOCK_SIZE, VaBlocks } from "./va-block.js";
import { VaPolicies, memAdviceIssues, type VaPolicyRange } from "./va-policy.js";

export type { GpuDriverStats } from "./gpu-stats.js";

/** At most this many mms per device (the batch sort key packs the VA-space id, see fault-buffer.ts). */
export const GPU_MAX_VA_SPACES = 63;

/** What a device PTE holds, for tests and tools (`entry(mm, addr)`). */
export interface GpuPteInfo {
  valid: boolean;
  write: boolean;
  remote: boolean;
  /** Device pfn (local) or system pfn (remote). */
  pfn: number;
}

/**
 * A device joined to this one by a peer link (LinkRegistry.peer / peerDirection): device → device migration and
 * peer mappings of its memory go over `link` instead of the two host links.
 */
export interface GpuPeer {
  /** The peer device's name. */
  device: string;
  link: PeerInterconnect;
  /** The link direction carrying peer → this device, and this device → peer. */
  fromPeer: LinkDirection;
  toPeer: LinkDirection;
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
  /** The names of the machine's devices (advise's preferredLocation names one of them); default: this device. */
  deviceNames?: readonly string[];
  /**
   * The dev_pagemap owner (`pgmap->owner`, hmm_range_fault's dev_private_owner, migrate_vma's pgmap_owner): the
   * machine's PgmapOwners object for the device, shared with its peer-link group (`machine.pgmapOwner(device)`).
   * Default: the driver itself (a machine of one device).
   */
  owner?: unknown;
  /** The devices joined to this one by peer links (default none). */
  peers?: readonly GpuPeer[];
  /**
   * The dev_pagemap of a peer device, by name (resolved lazily, once every driver is built): tells which peer a
   * device-private pfn reported by hmm_range_fault belongs to. Default: none.
   */
  peerPgmap?: (device: string) => DevPagemap | null;
  /**
   * True when the machine has device memory of another pgmap owner (another device not in this device's peer
   * group): a page of it is faulted back to system memory before it migrates here (through the host). Default false.
   */
  foreignOwners?: boolean;
}

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
  /** The dev_pagemap owner (the machine's PgmapOwners object of this device's peer-link group, or the driver). */
  readonly owner: unknown;
  /** The devices joined by a peer link (device → device migration and peer mappings go over it). */
  readonly peers: readonly GpuPeer[];
  /** Device memory of another owner exists in the machine (migration faults its pages back to RAM first). */
  readonly foreignOwners: boolean;
  readonly memoryType: "private" | "coherent";
  /** First device pfn and number of device pages (whole root chunks). */
  readonly startPfn: number;
  readonly nrPages: number;
  /** The device's root chunks (the memory manager's). */
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

  // The parts, along UVM's seams (see the table above). @internal: reached by each other through the driver.
  /** @internal */
  readonly ledger: CostLedger;
  /** @internal */
  readonly trace: MachineTraceHooks;
  /** @internal the mirrored mms (uvm_va_space), by id and by mm. */
  readonly spaces: VaSpace[] = [];
  /** @internal */
  readonly spaceOf = new Map<Mm, VaSpace>();
  /** @internal Serialises the per-block services: the fault-service task and migrateRange callers. */
  readonly blockLock: Mutex;
  /** @internal uvm_pmm_gpu.c */
  readonly pmm: GpuMemoryManager;
  /** @internal uvm_va_block.c map / unmap */
  readonly mapper: BlockMapper;
  /** @internal migrate_vma to device memory */
  readonly migration: DeviceMigration;
  /** @internal uvm_gpu_replayable_faults.c */
  readonly faults: ReplayableFaultService;
  /** @internal uvm_hmm.c callbacks */
  readonly hmm: HmmCallbacks;
  /** @internal uvm_gpu_access_counters.c */
  readonly accessCounters: AccessCounters;
  /** @internal the advise hints per VA range (uvm_va_policy nodes of HMM ranges) */
  readonly vaPolicies = new VaPolicies();
  /** The machine's device names (advise). */
  private readonly deviceNames: readonly string[];
  /** The memory manager's per-chunk access time and count (written on the warp's local-access path). */
  private readonly chunkLastAccessPs: Float64Array;
  private readonly chunkAccesses: Float64Array;
  /** The service context of migrateRange (the fault service has its own). */
  private readonly hintCtx: ServiceBlockContext;
  private readonly stream: Mutex;
  /**
   * @internal > 0 while this driver is inside one of its own (synchronous) migrate_vma_* / migrate_device_* calls:
   * the MMU_NOTIFY_MIGRATE invalidations raised meanwhile are its own (UVM's `ignore_hmm_invalidate_va_block`).
   */
  ownMigration = 0;
  /** The peers' pgmaps (index = peers index), resolved on first use. */
  private peerPgmaps: (DevPagemap | null)[] | null = null;
  private readonly peerPgmapOf: ((device: string) => DevPagemap | null) | null;
  /** @internal the running kernel, if any. */
  run: KernelRun | null = null;
  /** The last kernel, when it failed (kernelProgress). */
  private failedRun: KernelRun | null = null;
  private runGen = 0;

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
    this.owner = o.owner ?? this;
    this.peers = o.peers ?? [];
    this.peerPgmapOf = o.peerPgmap ?? null;
    this.foreignOwners = o.foreignOwners ?? false;
    this.lock = new Mutex(`${this.name}.mutex`, o.engine);
    this.stream = new Mutex(`${this.name}.stream`, o.engine);
    this.blockLock = new Mutex(`${this.name}.block`, o.engine);
    this.memoryType = o.device.memoryType;
    if (this.memoryType === "coherent" && !o.link.supportsCoherentAccess) {
      throw new GpuInputError(`devices.${this.name}.memoryType`, `DEVICE_COHERENT memory needs a coherent link; ${o.link.name} is not`);
    }
    const nChunks = Math.floor(o.device.memory / VA_BLOCK_SIZE);
    if (nChunks < 1) throw new GpuInputError(`devices.${this.name}.memory`, "must hold at least one 2 MiB root chunk", o.device.memory);
    this.nrPages = nChunks * CHUNK_PAGES;
    const ops =
      this.memoryType === "private"
        ? { pageFree: (pfn: number) => this.pmm.pageFree(pfn), migrateToRam: (vmf: VmFault) => this.hmm.migrateToRam(vmf) }
        : { pageFree: (pfn: number) => this.pmm.pageFree(pfn) };
    this.pgmap = {
      type: this.memoryType === "private" ? MEMORY_DEVICE_PRIVATE : MEMORY_DEVICE_COHERENT,
      range: { start: 0, end: -1 },
      owner: this.owner,
      ops,
    };
    const first = memremapPages(o.kernel, this.pgmap, this.nrPages);
    if (isErrValue(first)) throw new GpuInputError(`devices.${this.name}`, `memremapPages failed (${first})`);
    this.startPfn = first;
    const s = o.spec;
    this.tlb = new DeviceTlb(s.tlbEntries, s.tlbWays);
    this.tlbHitPs = cyclesToPs(s.tlbHitCycles, s.gpuClockHz);
    this.walk4kPs = cyclesToPs(s.pageWalk4kCycles, s.gpuClockHz);
    this.walk2mPs = cyclesToPs(s.pageWalk2mCycles, s.gpuClockHz);
    this.memAccessPs = Math.ceil((s.accessBytes * 1e12) / s.deviceMemoryBandwidth);
    this.remoteSetupPs = cyclesToPs(s.remoteAccessSetupCycles, s.gpuClockHz);
    this.zeroPagePs = Math.ceil((PAGE_SIZE * 1e12) / s.deviceMemoryBandwidth);
    this.pmm = new GpuMemoryManager(this, nChunks);
    this.chunks = this.pmm.chunks;
    this.mapper = new BlockMapper(this);
    this.migration = new DeviceMigration(this);
    this.faults = new ReplayableFaultService(this);
    this.hmm = new HmmCallbacks(this);
    this.accessCounters = new AccessCounters(this);
    this.chunkLastAccessPs = this.pmm.lastAccessPs;
    this.chunkAccesses = this.pmm.accesses;
    this.deviceNames = o.deviceNames ?? [this.name];
    this.hintCtx = new ServiceBlockContext(this.owner, (ctx, r) => this.mapper.updatePageTable(ctx, r));
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
    return this.pmm.freePages;
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
      invalidate: (s, range, curSeq) => this.hmm.invalidate(id, s, range, curSeq),
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
    return this.blocks.hostBytes + this.pmm.hostBytes + this.spec.tlbEntries * 16;
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
    this.faults.start();
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

  /**
   * @internal A warp's translation of (space, addrs[w]) in the VA block at `slot` (`blocks.find`'s answer: -1 = no
   * block): 0 = local hit path, 1 = remote, 2 = fault; cost in `translateCost`; for a remote entry,
   * `translatePeer` is the peer's index (a peer device's page) or -1 (system memory).
   */
  translateCost = 0;
  /** @internal */
  translatePeer = -1;
  /** @internal */
  translate(space: number, addrs: Float64Array, w: number, write: boolean, slot: number): number {
    // The address is read here from the kernel's per-warp array: passed as an argument (a double beyond 2^31, to a
    // call the JIT does not inline) it would be boxed, a heap allocation per translation.
    const addr = addrs[w]!;
    if (slot < 0) {
      this.tlb.misses++;
      this.translateCost = this.walk4kPs;
      return 2;
    }
    const j = pageIndex(addr);
    const f = this.blocks.pte[slot * CHUNK_PAGES + j]!;
    if ((f & GPU_PTE_VALID) === 0) {
      // No entry: the TLB cannot hold it (a tag is dropped whenever its entry is cleared: block-map.ts), so this is
      // the lookup's miss without the set scan, and a 4 KiB walk (a block with an invalid entry has no 2 MiB one).
      this.tlb.misses++;
      this.translateCost = this.walk4kPs;
      return 2;
    }
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
    if ((f & GPU_PTE_REMOTE) !== 0) {
      this.translatePeer = (f & GPU_PTE_PEER) === 0 ? -1 : this.peerIndexOfPfn(this.blocks.remotePfns(slot)[j]!);
      this.accessCounters.record(space, addr);
      return 1;
    }
    const c = this.blocks.chunk[slot]!;
    this.chunkLastAccessPs[c] = this.engine.now;
    this.chunkAccesses[c]!++;
    return 0;
  }

  /** @internal A warp raises a replayable fault (the GPU writes a fault-buffer entry). */
  raiseFault(space: number, addr: number, write: boolean, warp: number, gen: number): void {
    this.faults.raise(space, addr, write, warp, gen);
  }

  /**
   * @internal A warp's access to a remotely mapped page: setup + one link transfer of accessBytes, then `resume`.
   * `peer`: the index of the peer whose memory holds the page (the transfer goes over the peer link: peer access),
   * or -1 for system memory (over the host link).
   */
  remoteAccess(write: boolean, resume: () => void, peer = -1): void {
    this.stats.remoteAccesses++;
    const bytes = this.spec.accessBytes;
    const setup = this.remoteSetupPs;
    const p = peer >= 0 ? this.peers[peer] : undefined;
    if (p !== undefined) this.stats.peerRemoteAccesses++;
    const link: Interconnect = p === undefined ? this.link : p.link;
    const dir: LinkDirection = p === undefined ? (write ? "d2h" : "h2d") : write ? p.toPeer : p.fromPeer;
    this.engine.spawn(`${this.name}.remote-access`, async () => {
      if (setup > 0) await this.engine.sleep(setup);
      await link.transfer(dir, bytes);
      resume();
    });
  }

  // --- peers ------------------------------------------------------------------------------------------------------

  /**
   * @internal The index in `peers` of the peer device whose dev_pagemap holds `pfn`, or -1 (system memory, this
   * device's memory, or a device that is no peer).
   */
  peerIndexOfPfn(pfn: number): number {
    if (this.peers.length === 0) return -1;
    const pg = this.kernel.pgmaps.pgmapOf(pfn);
    if (pg === null || pg === this.pgmap) return -1;
    const all = (this.peerPgmaps ??= this.peers.map((p) => this.peerPgmapOf?.(p.device) ?? null));
    return all.indexOf(pg);
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
    const ctx = this.hintCtx;
    for (let bs = Math.floor(start / VA_BLOCK_SIZE) * VA_BLOCK_SIZE; bs < end; bs += VA_BLOCK_SIZE) {
      const j0 = pageIndex(Math.max(start, bs));
      const j1 = (Math.min(end, bs + VA_BLOCK_SIZE) - bs) / PAGE_SIZE;
      if (!this.blockLock.tryLock()) await this.blockLock.lock();
      let ret: number;
      try {
        ret = await this.migration.migrateBlock(ctx, vs, bs, j0, j1, "hint");
        this.stats.hintPages += ctx.moved;
      } finally {
        this.blockLock.unlock();
      }
      if (ret !== 0) return ret;
    }
    return 0;
  }

  // --- advise ---------------------------------------------------------------------------------------------------

  /**
   * Memory advice for [start, end) of `mm` (cudaMemAdvise → uvm_policy.c; for HMM ranges uvm_hmm.c keeps
   * uvm_va_policy nodes): sets the fields `advice` names (`preferredLocation`: "host", a device of the machine or
   * null to unset; `accessedBy`; `readMostly`) and leaves the others as they were. Every FaultQuery for a page of
   * the range reports them; the driver itself does not act on them (an advise policy does). Read-mostly is stored
   * only: read duplication is not implemented (nor is it in UVM's HMM mode: uvm_hmm.h, Bug 3660922).
   *
   * Returns 0 (DeviceDriver.advise: a workload's advise phase calls it). Bad input throws GpuInputError naming the
   * field (`mm`, `start`, `end`, `advice.preferredLocation`, …) before anything changes.
   */
  advise(mm: Mm, start: number, end: number, advice: MemAdvice): number {
    if (mm === null || typeof mm !== "object" || !("pgtable" in mm)) throw new GpuInputError("mm", "must be a @hmmsim/core Mm");
    if (mm.kernel !== this.kernel) throw new GpuInputError("mm", `belongs to another kernel than ${this.name}'s machine`);
    if (!Number.isSafeInteger(start) || start < 0 || start % PAGE_SIZE !== 0) throw new GpuInputError("start", "must be a page-aligned address", start);
    if (!Number.isSafeInteger(end) || end % PAGE_SIZE !== 0 || end <= start || end > TASK_SIZE) {
      throw new GpuInputError("end", `must be page aligned, above start and at most TASK_SIZE`, end);
    }
    const issues = memAdviceIssues(advice, this.deviceNames);
    if (issues.length > 0) throw new GpuInputError(issues[0]!.field, issues.map((i) => (i === issues[0] ? i.rule : `${i.field}: ${i.rule}`)).join("; "));
    this.vaPolicies.set(mm, start, end, advice);
    return 0;
  }

  /** The advised ranges of `mm` (sorted, non-overlapping; ranges with no hint are not listed). */
  advisedRanges(mm: Mm): VaPolicyRange[] {
    return this.vaPolicies.ranges(mm);
  }

  /** evict_root_chunk(): migrate every in-use page of chunk `c` back to system memory (memory-manager.ts). */
  evictChunk(c: number): Promise<void> {
    return this.pmm.evictChunk(c);
  }
}
