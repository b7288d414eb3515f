// @ts-check
/**
 * A third-party device driver: `eager`. A device with its own MEMORY_DEVICE_PRIVATE memory that services every
 * device fault alone and at once: no fault buffer, no batching, no prefetch, no TLB. Written the way an upstream
 * HMM driver is (the kernel's lib/test_hmm.c, Documentation/mm/hmm.rst), with hmmsim's kernel API:
 *
 *  - device memory: memremapPages() of a MEMORY_DEVICE_PRIVATE dev_pagemap whose ops are pageFree (a device page's
 *    refcount reached 0: back on the free list) and migrateToRam (a CPU touched one of our pages);
 *  - mirroring: one interval notifier per mm over the whole user address space; its invalidate callback clears the
 *    device's entries for the range, and ignores this device's own MMU_NOTIFY_MIGRATE (the migration code keeps
 *    the device's entries right itself);
 *  - a device access to a page it has not mapped (or a write to a page mapped read-only) is one device fault:
 *    charge one DEVICE_FAULT, ask the policy (`shouldMigrate` of @hmmsim/policy; no answer: migrate; it never asks
 *    `prefetchRange` or `prefetchPages`: no prefetch), migrate that one page with migrateVmaSetup / copy over the
 *    link / migrateVmaPages / migrateVmaFinalize, then mirror it with hmmRangeFault in the documented read_begin /
 *    read_retry loop (mirrorRangeFault) and write the device page-table entry under the driver lock. A page the
 *    policy keeps in system memory (or that finds device memory full: this driver never evicts) is mapped
 *    remotely: each access to it crosses the link;
 *  - migrateToRam (dmirror_devmem_fault): migrateVmaSetup with the fault page, copy to a new system page, drop the
 *    device's entry, migrateVmaPages / migrateVmaFinalize; the copy is queued on the faulting CPU task.
 *
 * Costs: a fault costs the machine's DEVICE_FAULT cost (one service round per fault: this is what batching saves),
 * a migration its page copy over the link, a remote access a 64-byte transfer over the link; local accesses take
 * no time beyond the workload's compute time. The driver takes no driverSpec fields.
 */
import { readFileSync } from "node:fs";
import { EFAULT, KernelRuleError, TASK_SIZE, VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_READ, VM_WRITE, allocPages, folioTrylock } from "@hmmsim/core";
import { Mutex } from "@hmmsim/engine";
import { CostLedger, DEVICE_FAULT, DeviceDrivers, Engine, Kernel, LinkRegistry, MachineComponent, MachineSpec, Machine, PAGE_SIZE, PTE_UPDATE, TraceHooks } from "@hmmsim/machine";
import { MEMORY_DEVICE_PRIVATE, isErrValue, memremapPages, zoneDevicePageInit } from "@hmmsim/memremap";
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
} from "@hmmsim/migrate";
import { MMU_NOTIFY_MIGRATE, MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalSetSeq } from "@hmmsim/mmu-notifier";
import { ACCESS_READ, ACCESS_WRITE, BLOCK_PAGES, BLOCK_SIZE, Policy, defaultShouldMigrate } from "@hmmsim/policy";
import { HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE, asNotifierMm, hmmPfnToPfn, mirrorRangeFault } from "@hmmsim/range-fault";

/** @typedef {import("@hmmsim/core").Mm} Mm */
/** @typedef {import("@hmmsim/machine").DeviceDriver} DeviceDriver */
/** @typedef {import("@hmmsim/machine").MachinePlugin} MachinePlugin */
/** @typedef {import("@hmmsim/core").VmFault} VmFault */
/** @typedef {import("@hmmsim/machine").Interconnect} Interconnect */
/** @typedef {import("@hmmsim/policy").FaultQuery} FaultQuery */
/** @typedef {import("@hmmsim/range-fault").HmmRange} HmmRange */

export const PLUGIN_NAME = "EagerDriverPlugin";
/** The driver a device selects with `driver: eager` (or `kind: eager`). */
export const DRIVER_NAME = "eager";
/** Bytes one remote access moves over the link. */
export const REMOTE_ACCESS_BYTES = 64;
/** A device write or read faults again at most this many times in a row before the access fails. */
const MAX_FAULTS_PER_ACCESS = 16;

/** Device page-table entry: pfn · 4 + flags. */
const PTE_WRITE = 1;
/** The entry maps a system page (accesses cross the link). */
const PTE_REMOTE = 2;

/** @type {string} */
const VERSION = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8")).version;

/** A device access that cannot be serviced (no VMA allows it, or the mirror failed). */
export class EagerFaultError extends Error {
  /**
   * @param {string} device
   * @param {number} address
   * @param {number} errno a negative errno
   */
  constructor(device, address, errno) {
    super(`${device}: device access to 0x${address.toString(16)} cannot be serviced (${errno})`);
    this.name = "EagerFaultError";
    this.errno = errno;
  }
}

/**
 * What the driver keeps of one mirrored mm: its interval notifier and the device page table.
 * @typedef {{ mm: Mm, notifier: MmuIntervalNotifier, pt: Map<number, number> }} MirroredMm
 */

/** @implements {DeviceDriver} */
export class EagerDriver {
  driverName = DRIVER_NAME;
  /** The running counters (DeviceDriverCounters): one batch per fault, one faulted page per batch. */
  #counters = { batches: 0, faultedPages: 0, migratedPages: 0, populatedPages: 0 };
  /** Free device pages (pfns). */
  #free = /** @type {number[]} */ ([]);
  /** @type {Map<Mm, MirroredMm>} */
  #mms = new Map();

  /**
   * @param {{
   *   device: import("@hmmsim/machine").DeviceSpec,
   *   kernel: import("@hmmsim/core").Kernel,
   *   engine: import("@hmmsim/engine").Engine,
   *   ledger: import("@hmmsim/machine").CostLedger,
   *   link: Interconnect,
   *   trace: import("@hmmsim/machine").MachineTraceHooks,
   *   policy: import("@hmmsim/policy").PolicyHooks,
   * }} o
   */
  constructor(o) {
    this.device = o.device.name;
    this.kernel = o.kernel;
    this.engine = o.engine;
    this.ledger = o.ledger;
    this.link = o.link;
    this.trace = o.trace;
    this.policy = o.policy;
    /** The driver lock: the lock the invalidate callback takes; held only in synchronous sections. */
    this.lock = new Mutex(`${this.device}.mutex`, o.engine);
    this.nrPages = o.device.memory / PAGE_SIZE;
    /** @type {import("@hmmsim/core").DevPagemap} */
    this.pgmap = {
      type: MEMORY_DEVICE_PRIVATE,
      range: { start: 0, end: -1 },
      owner: this,
      ops: { pageFree: (pfn) => this.#pageFree(pfn), migrateToRam: (vmf) => this.#migrateToRam(vmf) },
    };
    const first = memremapPages(o.kernel, this.pgmap, this.nrPages);
    if (isErrValue(first)) throw new RangeError(`devices.${this.device}: memremapPages failed (${first})`);
    this.firstPfn = first;
    for (let pfn = first + this.nrPages - 1; pfn >= first; pfn--) this.#free.push(pfn);
  }

  counters() {
    return { ...this.#counters };
  }

  /**
   * Runs the accesses one after another inside the calling engine task; faults are serviced as they come.
   * @param {unknown} mm an @hmmsim/core Mm
   * @param {import("@hmmsim/machine").AccessSource} accesses
   * @returns {Promise<import("@hmmsim/machine").DeviceKernelResult>}
   */
  async runKernel(mm, accesses) {
    const m = this.#mirror(/** @type {Mm} */ (mm));
    const buf = { capacity: 256, addr: new Float64Array(256), write: new Uint8Array(256), computePs: new Float64Array(256) };
    const result = { accesses: 0, faults: 0, remoteAccesses: 0, tlbHits: 0, tlbMisses: 0 };
    for (let n = accesses.fill(buf); n > 0; n = accesses.fill(buf)) {
      for (let i = 0; i < n; i++) {
        const compute = /** @type {number} */ (buf.computePs[i]);
        if (compute > 0) await this.engine.sleep(compute);
        const a = /** @type {number} */ (buf.addr[i]);
        const addr = a - (a % PAGE_SIZE);
        const write = buf.write[i] === 1;
        let entry = m.pt.get(addr / PAGE_SIZE);
        for (let faults = 0; entry === undefined || (write && (entry & PTE_WRITE) === 0); faults++) {
          if (faults === MAX_FAULTS_PER_ACCESS) throw new EagerFaultError(this.device, addr, -EFAULT);
          await this.#fault(m, addr, write);
          result.faults++;
          entry = m.pt.get(addr / PAGE_SIZE);
        }
        if ((/** @type {number} */ (entry) & PTE_REMOTE) !== 0) {
          result.remoteAccesses++;
          await this.link.transfer(write ? "d2h" : "h2d", REMOTE_ACCESS_BYTES);
        }
        result.accesses++;
      }
    }
    await this.ledger.settle();
    return result;
  }

  /**
   * Starts mirroring `mm`: an interval notifier over [0, TASK_SIZE).
   * @param {Mm} mm
   * @returns {MirroredMm}
   */
  #mirror(mm) {
    let m = this.#mms.get(mm);
    if (m) return m;
    const notifier = new MmuIntervalNotifier();
    m = { mm, notifier, pt: new Map() };
    const mirrored = m;
    const ret = mmuIntervalNotifierInsert(notifier, asNotifierMm(mm), 0, TASK_SIZE, {
      invalidate: (sub, range, curSeq) => this.#invalidate(mirrored, sub, range, curSeq),
    });
    if (ret !== 0) throw new EagerFaultError(this.device, 0, ret);
    this.#mms.set(mm, m);
    return m;
  }

  /**
   * One device fault on the page at `addr`, serviced alone: policy, migration of that page, mirror.
   * @param {MirroredMm} m
   * @param {number} addr page aligned
   * @param {boolean} write
   */
  async #fault(m, addr, write) {
    const startPs = this.engine.now;
    const seq = this.#counters.batches++;
    this.#counters.faultedPages++;
    if (this.trace.pageFault.isUsed()) {
      this.trace.pageFault.call({ source: "device", device: this.device, mm: m.mm, address: addr, write, flags: 0, ret: 0, timePs: startPs });
    }
    this.ledger.charge(DEVICE_FAULT, 1);
    await this.ledger.settle();

    const vma = m.mm.findVma(addr);
    if (vma !== null && addr >= vma.vmStart && (vma.vmFlags & (write ? VM_WRITE : VM_READ)) !== 0) {
      const q = this.#query(m, addr, write, seq, vma);
      if (this.policy.shouldMigrate.call(q) ?? defaultShouldMigrate(q)) await this.#migrateToDevice(m, vma, addr);
    }

    // Mirror the page wherever it now is: our device-private page (owner match: hmmRangeFault returns it as is),
    // or a system page (faulted in if needed).
    /** @type {HmmRange} */
    const range = {
      notifier: m.notifier,
      notifierSeq: 0,
      start: addr,
      end: addr + PAGE_SIZE,
      hmmPfns: new Float64Array(1),
      defaultFlags: HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0),
      pfnFlagsMask: 0,
      devPrivateOwner: this,
    };
    const ret = await mirrorRangeFault(range, { driverLock: this.lock, engine: this.engine, update: (r) => this.#updatePageTable(m, r) });
    await this.ledger.settle();
    if (this.trace.deviceFaultBatch.isUsed()) this.trace.deviceFaultBatch.call({ device: this.device, faults: 1, pages: 1, startPs, endPs: this.engine.now });
    if (ret !== 0) throw new EagerFaultError(this.device, addr, ret);
  }

  /**
   * Under the driver lock, with a sequence no invalidation moved: write the device entry from range.hmmPfns.
   * @param {MirroredMm} m
   * @param {HmmRange} range
   * @returns {number} 0 or a negative errno
   */
  #updatePageTable(m, range) {
    const e = /** @type {number} */ (range.hmmPfns[0]);
    if ((e & HMM_PFN_VALID) === 0 || (e & HMM_PFN_ERROR) !== 0) return -EFAULT;
    const pfn = hmmPfnToPfn(e);
    const local = pfn >= this.firstPfn && pfn < this.firstPfn + this.nrPages;
    m.pt.set(range.start / PAGE_SIZE, pfn * 4 + ((e & HMM_PFN_WRITE) !== 0 ? PTE_WRITE : 0) + (local ? 0 : PTE_REMOTE));
    this.ledger.charge(PTE_UPDATE, 1);
    return 0;
  }

  /**
   * migrate_vma_setup / copy over the link / migrate_vma_pages / migrate_vma_finalize for the one page at `addr`.
   * A page already in device memory, or that cannot move (pinned, locked), stays where it is; with no free device
   * page nothing moves.
   * @param {MirroredMm} m
   * @param {import("@hmmsim/core").VmAreaStruct} vma
   * @param {number} addr
   */
  async #migrateToDevice(m, vma, addr) {
    const mm = m.mm;
    const src = new Float64Array(1);
    const dst = new Float64Array(1);
    const args = migrateVmaInit({ vma, start: addr, end: addr + PAGE_SIZE, src, dst, pgmapOwner: this, flags: MIGRATE_VMA_SELECT_SYSTEM });
    const event = { device: this.device, mm, dir: /** @type {const} */ ("h2d"), start: addr, end: addr + PAGE_SIZE, npages: 1, bytes: 0, reason: "fault", timePs: this.engine.now };
    if (this.trace.migrateBegin.isUsed()) this.trace.migrateBegin.call(event);
    let moved = 0;
    let copied = 0;
    if (!mm.mmapLock.tryDownRead()) await mm.mmapLock.downRead();
    try {
      // Our entry for the page goes: the page is about to move (our own MMU_NOTIFY_MIGRATE is ignored).
      m.pt.delete(addr / PAGE_SIZE);
      if (migrateVmaSetup(args) === 0) {
        const s = /** @type {number} */ (src[0]);
        const dpfn = (s & MIGRATE_PFN_MIGRATE) !== 0 ? this.#free.pop() : undefined;
        dst[0] = 0;
        if (dpfn !== undefined) {
          zoneDevicePageInit(this.kernel, dpfn); // refcount 1, locked; migrateVmaFinalize unlocks it
          const spfn = migratePfnToPage(s);
          if (spfn >= 0) {
            this.kernel.pageBytes.copy(dpfn, spfn);
            copied = 1;
          } else {
            this.kernel.pageBytes.clear(dpfn); // pte_none or the zero page: nothing to copy
          }
          dst[0] = (s & MIGRATE_PFN_WRITE) !== 0 ? mpfnSet(migratePfn(dpfn), MIGRATE_PFN_WRITE) : migratePfn(dpfn);
          if (copied) {
            await this.ledger.settle(); // the CPU work of setup, before the copy starts
            await this.link.transfer("h2d", PAGE_SIZE);
          }
        }
        migrateVmaPages(args);
        moved = (/** @type {number} */ (src[0]) & MIGRATE_PFN_MIGRATE) !== 0 && dst[0] !== 0 ? 1 : 0;
        migrateVmaFinalize(args);
      }
    } finally {
      mm.mmapLock.upRead();
    }
    if (moved && copied) this.#counters.migratedPages++;
    else if (moved) this.#counters.populatedPages++;
    if (this.trace.migrateEnd.isUsed()) this.trace.migrateEnd.call({ ...event, npages: moved, bytes: moved * copied * PAGE_SIZE, timePs: this.engine.now });
  }

  /**
   * The policy's view of one faulted page (FaultQuery of @hmmsim/policy); a driver that does not batch: one page
   * per batch.
   * @param {MirroredMm} m
   * @param {number} addr
   * @param {boolean} write
   * @param {number} batch
   * @param {import("@hmmsim/core").VmAreaStruct} vma
   * @returns {FaultQuery}
   */
  #query(m, addr, write, batch, vma) {
    const blockStart = addr - (addr % BLOCK_SIZE);
    const pageIndex = (addr - blockStart) / PAGE_SIZE;
    const entry = (/** @type {number} */ i) => m.pt.get(blockStart / PAGE_SIZE + i);
    const count = (/** @type {(i: number) => boolean} */ f) => {
      let n = 0;
      for (let i = 0; i < BLOCK_PAGES; i++) if (f(i)) n++;
      return n;
    };
    const isResident = (/** @type {number} */ i) => {
      const e = entry(i);
      return e !== undefined && (e & PTE_REMOTE) === 0;
    };
    const isMapped = (/** @type {number} */ i) => entry(i) !== undefined;
    return {
      device: this.device,
      mm: m.mm,
      address: addr,
      access: write ? ACCESS_WRITE : ACCESS_READ,
      write,
      duplicates: 1,
      batch,
      batchPages: 1,
      timePs: this.engine.now,
      blockStart,
      pageIndex,
      get blockResident() {
        return count(isResident);
      },
      get blockMapped() {
        return count(isMapped);
      },
      blockFaulted: 1,
      vmaStart: vma.vmStart,
      vmaEnd: vma.vmEnd,
      deviceFreePages: this.#free.length,
      devicePages: this.nrPages,
      isResident,
      isFaulted: (i) => i === pageIndex,
      isMapped,
      // No thrashing detection is asked for and no advise API is offered: every page answers "no".
      isThrashing: () => false,
      preferredLocation: null,
      accessedBy: false,
      readMostly: false,
    };
  }

  /**
   * mmu_interval_notifier_ops.invalidate (dmirror_interval_invalidate).
   * @param {MirroredMm} m
   * @param {MmuIntervalNotifier} sub
   * @param {import("@hmmsim/mmu-notifier").MmuNotifierRange<unknown>} range
   * @param {number} curSeq
   * @returns {boolean}
   */
  #invalidate(m, sub, range, curSeq) {
    // Our own migrations: migrateToDevice / migrateToRam keep our entries right themselves.
    if (range.event === MMU_NOTIFY_MIGRATE && range.owner === this) return true;
    // The driver lock is held only in synchronous sections, never across an await: it is free here.
    if (!this.lock.tryLock()) throw new KernelRuleError("eager_driver_lock_held", `${this.device}: the driver lock is held outside a synchronous section`);
    try {
      mmuIntervalSetSeq(sub, curSeq);
      const first = Math.floor(range.start / PAGE_SIZE);
      const last = Math.ceil(range.end / PAGE_SIZE); // exclusive
      let cleared = 0;
      if (last - first > m.pt.size) {
        for (const vpn of [...m.pt.keys()]) if (vpn >= first && vpn < last && m.pt.delete(vpn)) cleared++;
      } else {
        for (let vpn = first; vpn < last; vpn++) if (m.pt.delete(vpn)) cleared++;
      }
      if (cleared > 0) this.ledger.charge(PTE_UPDATE, cleared);
    } finally {
      this.lock.unlock();
    }
    return true;
  }

  /**
   * dev_pagemap_ops.page_free: a device page's refcount reached 0; it is free again.
   * @param {number} pfn
   */
  #pageFree(pfn) {
    this.#free.push(pfn);
  }

  /**
   * dev_pagemap_ops.migrate_to_ram (lib/test_hmm.c dmirror_devmem_fault): a CPU touched our device-private page.
   * Runs synchronously in the faulting CPU task, so the copy is queued on that task (`ledger.chargeTransfer`): it
   * crosses the link when the task next settles. Returns VM_FAULT_* bits.
   * @param {VmFault} vmf
   * @returns {number}
   */
  #migrateToRam(vmf) {
    const src = new Float64Array(1);
    const dst = new Float64Array(1);
    const args = migrateVmaInit({
      vma: vmf.vma,
      start: vmf.address,
      end: vmf.address + PAGE_SIZE,
      src,
      dst,
      pgmapOwner: this,
      flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
      faultPage: vmf.page,
    });
    const event = { device: this.device, mm: vmf.vma.vmMm, dir: /** @type {const} */ ("d2h"), start: args.start, end: args.end, npages: 1, bytes: 0, reason: "cpu-fault", timePs: this.engine.now };
    if (this.trace.migrateBegin.isUsed()) this.trace.migrateBegin.call(event);
    if (migrateVmaSetup(args) !== 0) {
      if (this.trace.migrateEnd.isUsed()) this.trace.migrateEnd.call({ ...event, npages: 0 });
      return VM_FAULT_SIGBUS;
    }
    const s = /** @type {number} */ (src[0]);
    if ((s & MIGRATE_PFN_MIGRATE) !== 0) {
      const spfn = allocPages(this.kernel, 0);
      if (spfn < 0) {
        migrateVmaFinalize(args); // straight after setup: the device page is restored
        if (this.trace.migrateEnd.isUsed()) this.trace.migrateEnd.call({ ...event, npages: 0 });
        return VM_FAULT_OOM;
      }
      folioTrylock(this.kernel, spfn); // lock_page() of a fresh page
      this.kernel.pageBytes.copy(spfn, migratePfnToPage(s));
      dst[0] = (s & MIGRATE_PFN_WRITE) !== 0 ? mpfnSet(migratePfn(spfn), MIGRATE_PFN_WRITE) : migratePfn(spfn);
      this.#mms.get(vmf.mm)?.pt.delete(vmf.address / PAGE_SIZE);
      this.ledger.chargeTransfer(this.link, "d2h", PAGE_SIZE);
    }
    migrateVmaPages(args);
    const moved = (/** @type {number} */ (src[0]) & MIGRATE_PFN_MIGRATE) !== 0 && dst[0] !== 0 ? 1 : 0;
    migrateVmaFinalize(args);
    if (this.trace.migrateEnd.isUsed()) this.trace.migrateEnd.call({ ...event, npages: moved, bytes: moved * PAGE_SIZE, timePs: this.engine.now });
    return 0;
  }
}

/**
 * Provides driver `eager`. No decorators: `register` adds a `useFactory` registration of a machine component that
 * resolves what the drivers need from the container it is handed and builds one EagerDriver per device whose
 * `driver` is "eager", each added to the machine's DeviceDrivers.
 * @implements {MachinePlugin}
 */
export class EagerDriverPlugin {
  name = PLUGIN_NAME;
  kind = "driver";
  version = VERSION;
  provides = [DRIVER_NAME];

  /**
   * A device's driverSpec: the driver has no fields.
   * @param {import("@hmmsim/machine").ComponentRef} ref
   * @returns {import("@hmmsim/machine").SpecIssue[]}
   */
  componentSpecIssues(ref) {
    if (ref.kind !== "driver") return [{ path: "", message: `plugin ${PLUGIN_NAME} provides a driver, not a ${ref.kind}` }];
    if (ref.device.memoryType !== "private") return [{ path: "", message: `the eager driver's memory is MEMORY_DEVICE_PRIVATE; devices.${ref.device.name}.memoryType is ${ref.device.memoryType}` }];
    if (ref.spec === undefined) return [];
    if (ref.spec === null || typeof ref.spec !== "object" || Array.isArray(ref.spec)) return [{ path: "", message: "expected a mapping (the eager driver has no fields)" }];
    return Object.keys(ref.spec).map((k) => ({ path: k, message: "unknown field (the eager driver has no driverSpec fields)" }));
  }

  /** @param {import("@hmmsim/machine").DependencyContainer} container */
  register(container) {
    container.register(MachineComponent, {
      useFactory: (c) => {
        const spec = c.resolve(MachineSpec);
        const machine = c.resolve(Machine);
        const registry = c.resolve(DeviceDrivers);
        const links = c.resolve(LinkRegistry);
        /** @type {EagerDriver[]} */
        const drivers = [];
        for (const device of spec.devices.filter((d) => d.driver === DRIVER_NAME)) {
          const d = new EagerDriver({
            device,
            kernel: c.resolve(Kernel),
            engine: c.resolve(Engine),
            ledger: c.resolve(CostLedger),
            link: links.ofDevice(device.name),
            trace: c.resolve(TraceHooks),
            policy: Policy.getHooks(machine),
          });
          registry.add(d);
          drivers.push(d);
        }
        return { drivers };
      },
    });
  }

  /** Nothing to tap: the drivers call the policy hooks and fire the machine's trace points. */
  apply() {}
}

export default new EagerDriverPlugin();
