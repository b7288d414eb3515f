/**
 * The GPU driver's plain-JSON spec (`GpuDriverPlugin.defaultSpec`) and its validation. Figures cite their
 * sources by [Sx] key (docs/references.md); "assumption" marks a figure no source gives (there to be overridden). Device memory size and type come from the machine spec's `devices[]`, not from here.
 *
 * Kernel/UVM counterparts: the module parameters at the top of
 * kernel-open/nvidia-uvm/uvm_gpu_replayable_faults.c (uvm_perf_fault_batch_count,
 * uvm_perf_fault_max_batches_per_service) [S1]; the GMMU figures of UVMSmart's gpgpusim.config [S14].
 */
import { PS_PER_US } from "@hmmsim/engine";
import { GpuSpecError } from "./errors.js";

export interface GpuDriverSpec {
  /** Fault entries fetched and serviced per batch: uvm_perf_fault_batch_count = 256 [S1]. At most 2048. */
  batchSize: number;
  /** Batches serviced per interrupt before the handler re-arms it: uvm_perf_fault_max_batches_per_service = 20 [S1]. */
  maxBatchesPerService: number;
  /** Warps in flight running a kernel (each stalls on its own fault until replay). Assumption: 1024. */
  warps: number;
  /** GPU core clock, Hz: 1481 MHz (GTX 1080 Ti, UVMSmart's config) [S14]. Converts the cycle counts below. */
  gpuClockHz: number;
  /** Device TLB entries: 4096 [S14]. */
  tlbEntries: number;
  /** Ways per TLB set (tlbEntries / tlbWays sets, LRU within a set). [S14] is fully associative; 8 ways is an assumption for speed. */
  tlbWays: number;
  /** TLB hit: 1 cycle [S14]. */
  tlbHitCycles: number;
  /** Page walk on a TLB miss, 4 KiB leaf: 100 cycles [S14]. */
  pageWalk4kCycles: number;
  /** Page walk on a TLB miss, 2 MiB leaf: 66 cycles [S14]. */
  pageWalk2mCycles: number;
  /**
   * Fault buffer write + interrupt + bottom-half wake-up, from the GPU raising the fault to the fault-service task
   * running. Assumption: 1 µs (paid again after every maxBatchesPerService batches).
   */
  faultInterruptPs: number;
  /** Device TLB invalidate (membar + invalidate method) once per serviced batch, before the replay. Assumption: 1 µs. */
  tlbInvalidatePs: number;
  /** Replay: from the replay method to the stalled warps re-issuing their accesses. Assumption: 1 µs. */
  replayPs: number;
  /** Bytes one device memory access moves (a warp's coalesced 32 × 4 B). Assumption: 128. */
  accessBytes: number;
  /** Device memory bandwidth, B/s: A100-40GB 1,555 GB/s [S33]. One access costs ⌈accessBytes·10^12/β⌉ ps. */
  deviceMemoryBandwidth: number;
  /** Extra setup of a remote (over-the-link) access: 200 core cycles (UVMSmart get_ready_cycle_dma) [S14]. */
  remoteAccessSetupCycles: number;
  /**
   * Forward progress: the most times one warp's access may fault (and be replayed) without completing before the
   * kernel stops with GpuForwardProgressError naming the device. A page faulted in is normally there at the replay
   * (one fault per access, two for a read then a write); an access that faults again and again has its page taken
   * away before each replay — thrash. UVM has no such bound (it throttles and pins instead); it is here so that a
   * run that cannot progress ends with a reason instead of running for hours. Assumption: 64.
   */
  maxFaultsPerAccess: number;
  /**
   * What follows a serviced batch: uvm_perf_fault_replay_policy [S1]. 2 = UVM_PERF_FAULT_REPLAY_POLICY_BATCH_FLUSH,
   * UVM's default: the fault buffer is flushed (the entries still in it are dropped unserviced) and the replay
   * restarts every flushed warp too — a warp whose page the batch made valid (prefetched) goes on, the others
   * fault again. 1 = UVM_PERF_FAULT_REPLAY_POLICY_BATCH: replay without a flush; the entries left are serviced by
   * later batches even when an earlier batch already made their pages valid (stale faults). BLOCK (0) and ONCE (3)
   * are not modelled.
   */
  replayPolicy: number;
  /**
   * uvm_perf_fault_replay_update_put_ratio = 50 [S1]: with BATCH_FLUSH, when more than this percentage of the
   * batch's entries were duplicates, the flush re-reads the buffer's PUT pointer and drops every entry present
   * (UVM_GPU_BUFFER_FLUSH_MODE_UPDATE_PUT); otherwise only the entries that were already there when the batch was
   * fetched (UVM_GPU_BUFFER_FLUSH_MODE_CACHED_PUT).
   */
  replayUpdatePutRatio: number;
}

export const defaultSpec: Readonly<GpuDriverSpec> = Object.freeze({
  batchSize: 256,
  maxBatchesPerService: 20,
  warps: 1024,
  gpuClockHz: 1_481_000_000,
  tlbEntries: 4096,
  tlbWays: 8,
  tlbHitCycles: 1,
  pageWalk4kCycles: 100,
  pageWalk2mCycles: 66,
  faultInterruptPs: 1 * PS_PER_US,
  tlbInvalidatePs: 1 * PS_PER_US,
  replayPs: 1 * PS_PER_US,
  accessBytes: 128,
  deviceMemoryBandwidth: 1_555_000_000_000,
  remoteAccessSetupCycles: 200,
  maxFaultsPerAccess: 64,
  replayPolicy: 2,
  replayUpdatePutRatio: 50,
});

const CYCLES = { min: 0, max: 1e6, why: "cycles: UVMSmart's page walk is 100; a million is a unit mistake" };
const DELAY = { min: 0, max: 1e12, why: "ps (at most 1 s): the assumed figure is 1 µs" };

/**
 * The range of each field (inclusive), with its reason. A value outside used to fail deep inside the driver or the
 * engine (10^7 warps: a false LivelockError after 4.7 GB of host memory; 10^9: out of host memory).
 */
export const GPU_SPEC_BOUNDS: Readonly<Record<keyof GpuDriverSpec, { readonly min: number; readonly max: number; readonly why: string }>> = Object.freeze({
  batchSize: { min: 1, max: 2048, why: "the batch sort key packs it with the VA-space id; UVM's default is 256 [S1]" },
  maxBatchesPerService: { min: 1, max: 65536, why: "UVM's default is 20 [S1]" },
  warps: {
    min: 1,
    max: 65536,
    why: "warps resident at once on a real GPU: A100 108 SMs × 64 = 6,912, H100 132 × 64 = 8,448; 65,536 is 8 times that (each warp's first step is an engine event at one instant)",
  },
  gpuClockHz: { min: 1e6, max: 1e11, why: "Hz, 1 MHz to 100 GHz: GPU clocks run at 1-2 GHz" },
  tlbEntries: { min: 1, max: 2 ** 20, why: "a GPU's last-level TLB has a few thousand entries [S14]; the model keeps 16 B of host memory per entry" },
  tlbWays: { min: 1, max: 2 ** 20, why: "at most tlbEntries, and a divisor of it" },
  tlbHitCycles: CYCLES,
  pageWalk4kCycles: CYCLES,
  pageWalk2mCycles: CYCLES,
  faultInterruptPs: DELAY,
  tlbInvalidatePs: DELAY,
  replayPs: DELAY,
  accessBytes: { min: 1, max: 4096, why: "bytes: one access lies within one 4 KiB page (the unit a fault is raised for)" },
  deviceMemoryBandwidth: { min: 1e6, max: 1e15, why: "B/s, 1 MB/s to 1 PB/s: HBM runs at 1-8 TB/s [S33]" },
  remoteAccessSetupCycles: CYCLES,
  maxFaultsPerAccess: { min: 1, max: 2 ** 20, why: "faults of one access before the kernel stops (forward progress)" },
  replayPolicy: { min: 1, max: 2, why: "uvm_perf_fault_replay_policy: 1 = BATCH, 2 = BATCH_FLUSH (UVM's default) [S1]; BLOCK (0) and ONCE (3) are not modelled" },
  replayUpdatePutRatio: { min: 0, max: 100, why: "a percentage: uvm_perf_fault_replay_update_put_ratio, UVM clamps it to 100 [S1]" },
});

const POSITIVE = new Set<keyof GpuDriverSpec>(["batchSize", "maxBatchesPerService", "warps", "gpuClockHz", "tlbEntries", "tlbWays", "accessBytes", "deviceMemoryBandwidth", "maxFaultsPerAccess"]);

/**
 * The problems of `overrides` laid over `base` (default: the built-in defaults), each with its field and rule;
 * empty when the result is a valid spec. Plain JSON in, so a CLI can merge these with the machine spec's own
 * issues (a device's `driverSpec`) before building anything.
 */
export function gpuDriverSpecIssues(overrides: unknown, base: Readonly<GpuDriverSpec> = defaultSpec): { field: string; rule: string }[] {
  if (overrides === null || typeof overrides !== "object" || Array.isArray(overrides)) {
    return [{ field: "spec", rule: `must be an object (a mapping of spec fields), got ${Array.isArray(overrides) ? "an array" : String(overrides)}` }];
  }
  const spec = { ...base, ...(overrides as object) } as GpuDriverSpec;
  const issues: { field: string; rule: string }[] = [];
  for (const [k, v] of Object.entries(spec)) {
    if (!(k in defaultSpec)) {
      issues.push({ field: k, rule: `unknown field (known: ${Object.keys(defaultSpec).join(", ")})` });
      continue;
    }
    const positive = POSITIVE.has(k as keyof GpuDriverSpec);
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || (positive && v === 0)) {
      issues.push({ field: k, rule: `must be a ${positive ? "positive" : "non-negative"} integer, got ${JSON.stringify(v) ?? String(v)}` });
      continue;
    }
    const b = GPU_SPEC_BOUNDS[k as keyof GpuDriverSpec];
    if (v > b.max) issues.push({ field: k, rule: `must be at most ${b.max} (${b.why}), got ${v}` });
    else if (v < b.min) issues.push({ field: k, rule: `must be at least ${b.min} (${b.why}), got ${v}` });
  }
  if (issues.length === 0 && spec.tlbWays > spec.tlbEntries) {
    issues.push({ field: "tlbWays", rule: `must be at most tlbEntries (${spec.tlbEntries}), got ${spec.tlbWays}` });
  }
  if (issues.length === 0 && spec.tlbEntries % spec.tlbWays !== 0) {
    issues.push({ field: "tlbWays", rule: `must divide tlbEntries (${spec.tlbEntries}), got ${spec.tlbWays}` });
  }
  return issues;
}

/** `base` (default: the built-in defaults) + overrides, validated: every problem is listed in one GpuSpecError. */
export function resolveGpuSpec(overrides: Partial<GpuDriverSpec> = {}, base: Readonly<GpuDriverSpec> = defaultSpec): Readonly<GpuDriverSpec> {
  const issues = gpuDriverSpecIssues(overrides, base);
  if (issues.length > 0) throw new GpuSpecError(issues);
  return Object.freeze({ ...base, ...overrides } as GpuDriverSpec);
}

/** round(cycles · 10^12 / Hz) ps. */
export function cyclesToPs(cycles: number, hz: number): number {
  return Math.round((cycles * 1e12) / hz);
}
