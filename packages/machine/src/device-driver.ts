/**
 * What the machine knows of a device driver: the driver-neutral surface a workload runner, a report or a tool uses
 * (run a device kernel over accesses, its memory's pgmap, its counters). A driver plugin's component builds one
 * DeviceDriver per device it drives and adds it to the machine's `DeviceDrivers` registry (a token of the
 * machine's container); `machine.driver(name)` finds it. Driver packages keep their own typed lookups
 * (`GpuDriver.of(machine, name)`) over the same registry.
 */
import { MachineError } from "./machine-error.js";

/** The typed-array batch an access source fills (@hmmsim/workloads AccessBatch). */
export interface AccessBuffer {
  readonly capacity: number;
  readonly addr: Float64Array;
  readonly write: Uint8Array;
  readonly computePs: Float64Array;
}

/** Anything that fills access batches: an @hmmsim/workloads AccessPattern, or a wrapper of one. Returns 0 at the end. */
export interface AccessSource {
  fill(batch: AccessBuffer): number;
}

/** What one device kernel did (the driver-neutral counts). */
export interface DeviceKernelResult {
  /** Accesses executed. */
  accesses: number;
  /** Device page faults raised (fault-buffer entries, interrupts, …: the driver's unit). */
  faults: number;
  /** Accesses served over the link from remotely mapped memory. */
  remoteAccesses: number;
  tlbHits: number;
  tlbMisses: number;
  /**
   * Optional: of `faults`, the entries the driver dropped unserviced (NVIDIA UVM's default replay policy flushes the
   * fault buffer after each batch; the dropped accesses are replayed and fault again if their page is still not
   * valid, so they count again in `faults`). The summary reports them beside `faults`.
   */
  flushedFaults?: number;
  /**
   * Optional, for devices whose independent streams each stall on their own faults (an FPGA shell's streams: a
   * miss stops the stream until the driver restarts it): per stream, its accesses, the faults it raised and the time
   * it stood stalled, ps. The workload runner copies them into the phase summary; a GPU (warps replayed in batches)
   * leaves them out.
   */
  streams?: readonly DeviceStreamResult[];
}

/** One stream of a device kernel (DeviceKernelResult.streams). */
export interface DeviceStreamResult {
  accesses: number;
  faults: number;
  stallPs: number;
}

/**
 * The driver's running counters, read before and after a phase: the workload runner reports their differences.
 * Drivers that do not batch report `batches` = faults serviced one at a time.
 */
export interface DeviceDriverCounters {
  /** Fault batches (or single fault services) completed. */
  batches: number;
  /** Distinct pages serviced per batch, summed over batches. */
  faultedPages: number;
  /** Pages migrated to the device with their data copied over the link. */
  migratedPages: number;
  /** Pages populated on the device by zero-filling (no system page to copy). */
  populatedPages: number;
}

/**
 * Memory-advise hints for a VA range (cudaMemAdvise; NVIDIA UVM's uvm_va_policy_t, kernel-open/nvidia-uvm/
 * uvm_policy.c): what a driver's `advise` stores per range and reports to the policies in every fault query
 * (@hmmsim/policy FaultQuery `preferredLocation`, `accessedBy`, `readMostly`). An absent field is left as it is.
 */
export interface MemAdvice {
  /** UVM_SET_PREFERRED_LOCATION: "host", a device name, or null to unset. */
  preferredLocation?: string | null;
  /** UVM_SET_ACCESSED_BY (true) / UVM_UNSET_ACCESSED_BY (false) for this device. */
  accessedBy?: boolean;
  /** UVM_ENABLE_READ_DUPLICATION (true) / UVM_DISABLE_READ_DUPLICATION (false). */
  readMostly?: boolean;
}

export interface DeviceDriver {
  /** The device's name in the machine spec. */
  readonly device: string;
  /** The driver's name (the spec's `driver`). */
  readonly driverName: string;
  /** The device memory's dev_pagemap (@hmmsim/core DevPagemap), if the device has memory. */
  readonly pgmap: { readonly type: number } | null;
  /**
   * Runs a device kernel over `accesses` of `mm` (an @hmmsim/core Mm) inside an engine task; resolves when every
   * access completed. Rejects with the driver's typed error when an access cannot be serviced.
   */
  runKernel(mm: unknown, accesses: AccessSource, opts?: { warps?: number }): Promise<DeviceKernelResult>;
  /** The driver's running counters (a snapshot). */
  counters(): DeviceDriverCounters;
  /**
   * Optional: sets memory-advise hints on [start, end) of `mm` (page-aligned). Returns 0 or a negative errno;
   * throws the driver's typed error for a bad argument, before anything changes. A workload's `advise` phase calls it.
   */
  advise?(mm: unknown, start: number, end: number, advice: MemAdvice): number;
  /**
   * Optional: migrates [start, end) of `mm` to the device (cudaMemPrefetchAsync / UVM_MIGRATE), inside an engine
   * task. Resolves 0 or a negative errno. A workload's `prefetch` phase calls it.
   */
  migrateRange?(mm: unknown, start: number, end: number): Promise<number>;
  /**
   * Optional: the counts of the kernel running now (accesses started so far, faults, …), or null when none runs.
   * A run that stops in the middle of a device phase reports them in its partial summary (else they are 0).
   */
  kernelProgress?(): DeviceKernelResult | null;
}

/** The machine's device drivers by device name (registered under the `DeviceDrivers` token). */
export class DeviceDriverRegistry {
  readonly #byDevice = new Map<string, DeviceDriver>();

  /** Adds the driver of `driver.device`; a device has one driver. */
  add(driver: DeviceDriver): void {
    if (this.#byDevice.has(driver.device)) throw new MachineError(`device ${JSON.stringify(driver.device)} already has a driver (${this.#byDevice.get(driver.device)!.driverName})`);
    this.#byDevice.set(driver.device, driver);
  }

  has(device: string): boolean {
    return this.#byDevice.has(device);
  }

  /** The driver of `device`; throws MachineError naming the devices that have one. */
  get(device: string): DeviceDriver {
    const d = this.#byDevice.get(device);
    if (!d) throw new MachineError(`no driver runs device ${JSON.stringify(device)} (devices with a driver: ${[...this.#byDevice.keys()].join(", ") || "none"})`);
    return d;
  }

  all(): readonly DeviceDriver[] {
    return [...this.#byDevice.values()];
  }
}
