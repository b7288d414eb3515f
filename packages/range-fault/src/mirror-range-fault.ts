/**
 * The documented mirror loop (Documentation/mm/hmm.rst "Address space mirroring implementation and API";
 * lib/test_hmm.c dmirror_range_fault), reusable by drivers:
 *
 *   timeout = now + HMM_RANGE_DEFAULT_TIMEOUT
 *   loop:
 *     if past timeout: return -EBUSY
 *     range.notifierSeq = mmu_interval_read_begin(notifier)
 *     mmap_read_lock; ret = hmm_range_fault(range); mmap_read_unlock
 *     if ret == -EBUSY: continue;  if ret: return ret
 *     take the driver lock
 *     if mmu_interval_read_retry(notifier, seq): drop the driver lock; continue
 *     update the device page table from hmm_pfns   (still under the driver lock)
 *     drop the driver lock; return
 *
 * The driver lock must be the lock the notifier's invalidate callback takes before mmu_interval_set_seq().
 *
 * Timeout: with an engine, HMM_RANGE_DEFAULT_TIMEOUT (1000 ms) is counted in virtual time (`engine.now`, ps), as
 * the kernel counts jiffies; without an engine virtual time does not pass, so the budget is counted in attempts
 * (`maxAttempts`, default HMM_RANGE_DEFAULT_ATTEMPTS). Both bounds apply when both are given.
 *
 * Where the kernel drops a lock (after read_begin, after hmm_range_fault + mmap unlock, before the driver lock)
 * the loop calls `window(label)`; by default that is `engine.yieldPoint(label)` with an engine (so the schedule
 * explorer can interleave other tasks there) and nothing without one. Tests may pass their own `window` to run an
 * invalidation at an exact point.
 */
import { EBUSY, EFAULT } from "@hmmsim/core";
import type { Engine, Mutex } from "@hmmsim/engine";
import { mmuIntervalReadBegin, mmuIntervalReadBeginWait, mmuIntervalReadRetry } from "@hmmsim/mmu-notifier";
import { hmmRangeFault, hmmRangeMm, type HmmRange } from "./hmm-range-fault.js";

/** include/linux/hmm.h HMM_RANGE_DEFAULT_TIMEOUT, in ms. */
export const HMM_RANGE_DEFAULT_TIMEOUT = 1000;
/** Picoseconds per millisecond (the engine's PS_PER_MS; a type-only import keeps @hmmsim/engine out of runtime deps). */
const PS_PER_MS = 1e9;
/** The attempt budget used without an engine (no virtual time passes there). */
export const HMM_RANGE_DEFAULT_ATTEMPTS = 100;

/** The places where the loop holds neither the mmap lock nor the driver lock. */
export type MirrorWindow = "after-read-begin" | "after-range-fault" | "before-driver-lock";

/** What the loop did (for tests and statistics). */
export interface MirrorRangeFaultStats {
  /** Passes through the loop (read_begin calls). */
  attempts: number;
  /** hmmRangeFault returned -EBUSY. */
  rangeFaultBusy: number;
  /** mmu_interval_read_retry said the range was invalidated after hmmRangeFault. */
  readRetry: number;
}

export interface MirrorRangeFaultOptions {
  /** The driver's update lock (dmirror->mutex): the lock its invalidate callback takes. */
  driverLock: Mutex;
  /**
   * Program the device page table from range.hmmPfns. Runs synchronously with `driverLock` held and the sequence
   * validated; returns 0 or a negative errno, which the loop returns.
   */
  update: (range: HmmRange) => number;
  /** The engine the calling task runs on (null/absent: the synchronous plane; locks then must be free). */
  engine?: Engine | null;
  /** Timeout in virtual ms with an engine (default HMM_RANGE_DEFAULT_TIMEOUT). */
  timeoutMs?: number;
  /** Attempt budget (default: unbounded with an engine, HMM_RANGE_DEFAULT_ATTEMPTS without). */
  maxAttempts?: number;
  /** Called where the kernel holds no lock (default: engine.yieldPoint(label) with an engine). */
  window?: (label: MirrorWindow, attempt: number) => void | Promise<void>;
  /** Filled with what the loop did. */
  stats?: MirrorRangeFaultStats;
}

/**
 * dmirror_range_fault(): fault and mirror `range` with the sequence-retry protocol. Returns 0 (the device page
 * table was updated under the driver lock with a sequence no invalidation moved), -EBUSY when the timeout or the
 * attempt budget ran out, -EFAULT when the mm has exited (mmget_not_zero failed), or the hmmRangeFault / update
 * error. With an engine it must run inside a task.
 */
export async function mirrorRangeFault(range: HmmRange, opts: MirrorRangeFaultOptions): Promise<number> {
  const mm = hmmRangeMm(range);
  const engine = opts.engine ?? null;
  const notifier = range.notifier;
  const { driverLock, update } = opts;
  const stats = opts.stats;
  const maxAttempts = opts.maxAttempts ?? (engine === null ? HMM_RANGE_DEFAULT_ATTEMPTS : Infinity);
  const deadline = engine === null ? Infinity : engine.now + (opts.timeoutMs ?? HMM_RANGE_DEFAULT_TIMEOUT) * PS_PER_MS;
  const window = opts.window ?? (engine === null ? null : (label: MirrorWindow) => engine.yieldPoint(label));

  if (mm.exited) return -EFAULT; // !mmget_not_zero(mm)
  for (let attempt = 0; ; attempt++) {
    // time_after(jiffies, timeout)
    if (attempt >= maxAttempts || (engine !== null && engine.now > deadline)) return -EBUSY;
    if (stats) stats.attempts++;

    range.notifierSeq = engine === null ? mmuIntervalReadBegin(notifier) : await mmuIntervalReadBeginWait(notifier, engine);
    if (window) await window("after-read-begin", attempt);

    await mm.mmapLock.downRead();
    let ret: number;
    try {
      ret = hmmRangeFault(range);
    } finally {
      mm.mmapLock.upRead();
    }
    if (window) await window("after-range-fault", attempt);
    if (ret !== 0) {
      if (ret === -EBUSY) {
        if (stats) stats.rangeFaultBusy++;
        continue;
      }
      return ret;
    }

    if (window) await window("before-driver-lock", attempt);
    await driverLock.lock();
    if (mmuIntervalReadRetry(notifier, range.notifierSeq)) {
      driverLock.unlock();
      if (stats) stats.readRetry++;
      continue;
    }
    try {
      return update(range);
    } finally {
      driverLock.unlock();
    }
  }
}

/** A fresh stats object. */
export function mirrorRangeFaultStats(): MirrorRangeFaultStats {
  return { attempts: 0, rangeFaultBusy: 0, readRetry: 0 };
}
