/**
 * One dmirror device of a machine, as the machine sees a device driver (@hmmsim/machine DeviceDriver): a device
 * kernel runs each access as lib/test_hmm.c's device does when user space issues HMM_DMIRROR_READ / _WRITE for
 * that page — dmirror_read / dmirror_write look the page up in the mirror's page table and, on a miss, fault it in
 * with dmirror_fault → dmirror_range_fault (hmm_range_fault in the mmu_interval_read_begin / read_retry loop),
 * then copy it. The file (struct dmirror) of each mm is opened on the mm's first kernel, as dmirror_fops_open.
 *
 * Timing, through the machine's CostLedger (settled after every access): the kernel's own costs of the range
 * fault (handle_mm_fault: CPU_FAULT, PAGE_ZERO, …), one DEVICE_FAULT service round per range fault (dmirror
 * services faults one at a time), and the page copied over the device's link — h2d for a read, d2h for a write —
 * unless the page is in the device's own memory (a page migrated to it with MIGRATE_TO_DEV). Each range fault
 * fires the machine's `pageFault` (source "device") and `deviceFaultBatch` (1 fault, 1 page) trace points.
 */
import { EBUSY, Mm, PAGE_SIZE, errnoName } from "@hmmsim/core";
import type { Engine } from "@hmmsim/engine";
import type { DevPagemap } from "@hmmsim/memremap";
import {
  type AccessBuffer,
  type AccessSource,
  type CostLedger,
  DEVICE_FAULT,
  type DeviceDriver,
  type DeviceDriverCounters,
  type DeviceKernelResult,
  type DeviceSpec,
  type Interconnect,
  type Machine,
  MachineError,
  type MachineTraceHooks,
} from "@hmmsim/machine";
import type { DmirrorDevice } from "./dmirror-device.js";
import { xaUntagPointer } from "./dmirror.js";
import { HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, type HmmDmirrorCmd } from "./test-hmm-uapi.js";
import type { DmirrorFile, HmmDmirrorModule } from "./test-hmm.js";

/** An access a dmirror device could not perform, or bad input to one of its entry points; names the field and the rule. */
export class DmirrorDeviceError extends Error {
  override readonly name = "DmirrorDeviceError";
  constructor(
    /** The device's name in the machine spec. */
    readonly device: string,
    readonly field: string,
    readonly rule: string,
  ) {
    super(`${device}: ${field}: ${rule}`);
  }
}

/**
 * How often an access whose HMM_DMIRROR_READ/WRITE returned -EBUSY (hmm_range_fault kept being invalidated: the
 * kernel's 1000 ms HMM_RANGE_DEFAULT_TIMEOUT ran out) is retried, DMIRROR_BUSY_RETRY_PS apart, before the kernel
 * fails.
 */
export const DMIRROR_BUSY_RETRIES = 1000;
export const DMIRROR_BUSY_RETRY_PS = 1_000_000;

/** What a DmirrorDriver is built from (the DmirrorDevices component hands it the machine's services). */
export interface DmirrorDriverParts {
  spec: DeviceSpec;
  module: HmmDmirrorModule;
  mdevice: DmirrorDevice;
  engine: Engine;
  ledger: CostLedger;
  link: Interconnect;
  trace: MachineTraceHooks;
}

const BATCH = 1024;

export class DmirrorDriver implements DeviceDriver {
  /** The dmirror device of `device` on `machine`; throws MachineError when another driver runs it. */
  static of(machine: Machine, device: string): DmirrorDriver {
    const d = machine.driver(device);
    if (!(d instanceof DmirrorDriver)) throw new MachineError(`device ${JSON.stringify(device)} is run by driver ${d.driverName}, not by the dmirror driver`);
    return d;
  }

  readonly device: string;
  readonly driverName: string;
  /** The device (struct dmirror_device): its chunks, free lists, counters. */
  readonly mdevice: DmirrorDevice;
  /**
   * What a device write stores in the page (bytes mode): the device kernel's data, PAGE_SIZE bytes, zero unless a
   * caller sets them. In bytes-off mode a write gives the page a new content tag, as dmirror_do_write.
   */
  readonly writeData = new Uint8Array(PAGE_SIZE);
  readonly #parts: DmirrorDriverParts;
  readonly #files = new Map<Mm, DmirrorFile>();
  readonly #readBuf = new Uint8Array(PAGE_SIZE);
  #batches = 0;
  #faultedPages = 0;

  constructor(parts: DmirrorDriverParts) {
    this.#parts = parts;
    this.device = parts.spec.name;
    this.driverName = parts.spec.driver;
    this.mdevice = parts.mdevice;
  }

  /** The device memory's dev_pagemap: its first chunk's (a coherent device has one chunk); null when it has none. */
  get pgmap(): DevPagemap | null {
    return this.mdevice.devmemChunks[0]?.pagemap ?? null;
  }

  /**
   * The open /dev/hmm_dmirror<minor> of `mm` (dmirror_fops_open on first use): its ioctls are the driver's whole
   * UAPI (MIGRATE_TO_DEV, SNAPSHOT, EXCLUSIVE, … besides READ / WRITE).
   */
  file(mm: Mm): DmirrorFile {
    this.#checkMm(mm);
    let f = this.#files.get(mm);
    if (f === undefined) {
      const r = this.#parts.module.open(this.mdevice.id, mm);
      if (typeof r === "number") throw new DmirrorDeviceError(this.device, "mm", `dmirror_fops_open failed: ${errnoName(r)}`);
      f = r;
      this.#files.set(mm, f);
    }
    return f;
  }

  /**
   * Runs `accesses` of `mm` one at a time, in order, inside the current engine task: for each, its compute time,
   * then a device read or write of the access's page through the mirror (HMM_DMIRROR_READ / _WRITE of one page).
   * `opts.warps` is ignored: a dmirror device has one stream of accesses. Rejects with DmirrorDeviceError when the
   * kernel refuses an access (-EFAULT: not mapped or no access; -EPERM: a write to a read-only page; …).
   */
  async runKernel(mm: unknown, accesses: AccessSource, _opts?: { warps?: number }): Promise<DeviceKernelResult> {
    const m = this.#checkMm(mm);
    if (accesses === null || typeof accesses !== "object" || typeof accesses.fill !== "function") {
      throw new DmirrorDeviceError(this.device, "accesses", "must be an AccessSource (an object with fill(batch))");
    }
    const file = this.file(m);
    const { engine, ledger } = this.#parts;
    const res: DeviceKernelResult = { accesses: 0, faults: 0, remoteAccesses: 0, tlbHits: 0, tlbMisses: 0 };
    const buf: AccessBuffer = { capacity: BATCH, addr: new Float64Array(BATCH), write: new Uint8Array(BATCH), computePs: new Float64Array(BATCH) };
    if (ledger.hasPending) await ledger.settle();
    for (let n = accesses.fill(buf); n > 0; n = accesses.fill(buf)) {
      for (let i = 0; i < n; i++) {
        const c = buf.computePs[i]!;
        if (c > 0) await engine.sleep(c);
        const a = buf.addr[i]!;
        await this.#access(m, file, a - (a % PAGE_SIZE), buf.write[i] === 1, res);
        if (ledger.hasPending) await ledger.settle();
      }
    }
    return res;
  }

  counters(): DeviceDriverCounters {
    return { batches: this.#batches, faultedPages: this.#faultedPages, migratedPages: 0, populatedPages: 0 };
  }

  /** dmirror_fops_release of every file this driver opened (the machine's dispose). */
  release(): void {
    for (const f of this.#files.values()) this.#parts.module.close(f);
    this.#files.clear();
  }

  /** One device access of the page at `addr`, with the retry of -EBUSY; counts into `res`. */
  async #access(mm: Mm, file: DmirrorFile, addr: number, write: boolean, res: DeviceKernelResult): Promise<void> {
    const { engine, ledger, trace } = this.#parts;
    const index = res.accesses;
    const cmd: HmmDmirrorCmd = { addr, ptr: write ? this.writeData : this.#readBuf, npages: 1, cpages: 0, faults: 0 };
    let ret = file.ioctl(write ? HMM_DMIRROR_WRITE : HMM_DMIRROR_READ, cmd);
    for (let tries = 0; ret === -EBUSY && tries < DMIRROR_BUSY_RETRIES; tries++) {
      if (ledger.hasPending) await ledger.settle();
      await engine.sleep(DMIRROR_BUSY_RETRY_PS);
      ret = file.ioctl(write ? HMM_DMIRROR_WRITE : HMM_DMIRROR_READ, cmd);
    }
    if (ret !== 0) {
      throw new DmirrorDeviceError(
        this.device,
        `accesses[${index}]`,
        `device ${write ? "write" : "read"} at 0x${addr.toString(16)}: HMM_DMIRROR_${write ? "WRITE" : "READ"} failed with ${errnoName(ret)}`,
      );
    }
    res.accesses++;
    if (cmd.faults === 0) res.tlbHits++;
    else res.tlbMisses++;
    for (let f = 0; f < cmd.faults; f++) {
      ledger.charge(DEVICE_FAULT, 1);
      this.#batches++;
      this.#faultedPages++;
      res.faults++;
    }
    if (cmd.faults > 0 && (trace.pageFault.isUsed() || trace.deviceFaultBatch.isUsed())) {
      const now = engine.now;
      for (let f = 0; f < cmd.faults; f++) {
        trace.pageFault.call({ source: "device", device: this.device, mm, address: addr, write, flags: 0, ret: 0, timePs: now });
        trace.deviceFaultBatch.call({ device: this.device, faults: 1, pages: 1, startPs: now, endPs: now + ledger.pendingPs });
      }
    }
    // The page the device reached: its own memory (migrated to it), or system memory over the link.
    if (!this.#isDeviceMemory(xaUntagPointer(file.dmirror.pt.get(addr / PAGE_SIZE)))) {
      res.remoteAccesses++;
      ledger.chargeTransfer(this.#parts.link, write ? "d2h" : "h2d", PAGE_SIZE);
    }
  }

  /**
   * Whether a page of the mirror's page table is this device's memory: one of its chunk pages (a range fault of a
   * page migrated to it: hmm_range_fault gives the device-private pfn to its owner), or the backing page that
   * stands for a private device page (what dmirror_migrate_finalize_and_map stores: rpage->zone_device_data is
   * the dmirror that migrated it).
   */
  #isDeviceMemory(page: number): boolean {
    if (page < 0) return false;
    if (this.mdevice.chunkOf(page) !== undefined) return true;
    return this.#parts.module.zdd.mirror(page)?.mdevice === this.mdevice;
  }

  #checkMm(mm: unknown): Mm {
    if (!(mm instanceof Mm)) throw new DmirrorDeviceError(this.device, "mm", "must be an Mm of the machine's kernel");
    if (mm.kernel !== this.mdevice.kernel) throw new DmirrorDeviceError(this.device, "mm", "belongs to another kernel than the machine's");
    if (mm.exited) throw new DmirrorDeviceError(this.device, "mm", "has exited (no process to mirror)");
    return mm;
  }
}
