/**
 * The answers and queries of the policy hooks beyond shouldMigrate / prefetchRange / prefetchPages / selectVictim:
 * NVIDIA UVM's thrashing hints, its access-counter notifications, and the memory-advise hints a driver keeps per VA
 * range. Driver-neutral: a driver fills the queries and carries the answers out; a policy plugin computes them.
 */

/**
 * uvm_perf_thrashing.c `uvm_perf_thrashing_get_hint` → UVM_PERF_THRASHING_HINT_TYPE_THROTTLE: do not service the
 * page now; the faulting processor waits ("naps") until `untilPs` and the access is retried then [S3].
 */
export const THRASHING_HINT_THROTTLE = 1;
/**
 * UVM_PERF_THRASHING_HINT_TYPE_PIN: keep the page where it is and map it remotely for the faulting processor (no
 * migration) until the pin expires; under HMM the page stays in system memory (a device-private page cannot be
 * mapped by the CPU) [S3].
 */
export const THRASHING_HINT_PIN = 2;
export type ThrashingHintType = typeof THRASHING_HINT_THROTTLE | typeof THRASHING_HINT_PIN;

/** A thrashing hint for one faulted page (`thrashingHint`): a policy may return a reused object. */
export interface ThrashingHint {
  readonly type: ThrashingHintType;
  /** THROTTLE: the virtual time (ps) until which the faulting processor is held off the page. Ignored for PIN. */
  readonly untilPs: number;
}

/**
 * A device's access-counter setup (`accessCounterConfig`), UVM's module parameters of uvm_gpu_access_counters.c [S4]:
 * the tracking granularity (`uvm_perf_access_counter_granularity`: 64 KiB, 2 MiB, 16 MiB, …) and the notification
 * threshold (`uvm_perf_access_counter_threshold`, default 256). No answer: the device counts nothing.
 */
export interface AccessCounterConfig {
  /** Bytes covered by one counter: a power of two, 64 KiB … 16 MiB. */
  readonly granularity: number;
  /** Remote accesses to one region that raise a notification (≥ 1). */
  readonly threshold: number;
}

/**
 * One access-counter notification being serviced (`accessCounterNotification`; a reused object): the device
 * accessed the remotely mapped region [start, end) `count` times (≥ the threshold) since its counter was last
 * cleared. uvm_gpu_access_counters.c `service_notification_va_block_helper` migrates the region's pages to the
 * accessing processor [S4]; a policy answers true (migrate), false (clear the counter and leave the pages where
 * they are). No answer: `defaultAccessCounterMigrate` (migrate).
 */
export interface AccessCounterQuery {
  readonly device: string;
  /** The address space (@hmmsim/core Mm) of the region. */
  readonly mm: object;
  /** The counter's region, aligned to the granularity. */
  readonly start: number;
  readonly end: number;
  /** Accesses counted (the counter's value when the notification was raised). */
  readonly count: number;
  /** Sequence number of the notification batch (0, 1, …) and the notifications in it. */
  readonly batch: number;
  readonly batchNotifications: number;
  /** Virtual time of the service, ps. */
  readonly timePs: number;
  /** Pages of the region resident in this device's memory. */
  readonly residentPages: number;
  /** Device memory: free pages and total pages. */
  readonly deviceFreePages: number;
  readonly devicePages: number;
}

/** Where `preferredLocation` names system memory. Anything else is a device name, or null for "no preference". */
export const HOST_LOCATION = "host";

/**
 * The memory-advise hints of one VA range (cudaMemAdvise / UVM's uvm_va_policy_t, uvm_policy.c [S6]): a driver's
 * advise API (`DeviceDriver.advise`, @hmmsim/machine) stores them per range and reports them in every FaultQuery
 * for a page of the range.
 */
export type { MemAdvice } from "@hmmsim/machine";
