/**
 * The thrashing policy's per-device spec: UVM's module parameters of uvm_perf_thrashing.c [S3], with their defaults
 * (`UVM_PERF_THRASHING_*_DEFAULT`) and the bounds `uvm_perf_thrashing_init` enforces with its
 * `INIT_THRASHING_PARAMETER_*` macros (a value outside falls back to the default there; here it is a SpecError):
 *
 * | field | module parameter | default | bounds (uvm_perf_thrashing_init) |
 * |---|---|---|---|
 * | `enable` | uvm_perf_thrashing_enable | true | TOGGLE (0, 1) |
 * | `threshold` | uvm_perf_thrashing_threshold | 3 | NONZERO_MAX: 1 … UVM_PERF_THRASHING_THRESHOLD_MAX = 7 (3-bit counter) |
 * | `pinThreshold` | uvm_perf_thrashing_pin_threshold | 10 | NONZERO_MAX: 1 … UVM_PERF_THRASHING_PIN_THRESHOLD_MAX = 255 (8-bit counter) |
 * | `lapseUs` | uvm_perf_thrashing_lapse_usec | 500 | NONZERO: ≥ 1 µs |
 * | `nap` | uvm_perf_thrashing_nap (× lapse) | 1 | NONZERO_MAX: 1 … UVM_PERF_THRASHING_NAP_MAX = 100 |
 * | `epoch` | uvm_perf_thrashing_epoch (× lapse) | 2000 | NONZERO: ≥ 1 |
 * | `pin` | uvm_perf_thrashing_pin (× lapse; 0 = pinned for good) | 300 | ≥ 0 |
 * | `maxResets` | uvm_perf_thrashing_max_resets | 4 | ≥ 0 |
 * | `lapseVoteThreshold` | uvm_perf_lapse_vote_threshold | 32 | NONZERO: ≥ 1 |
 *
 * The unsigned module parameters are 32-bit: every bound stops at 2^32 − 1. `va_space_thrashing_info_init_params`
 * turns them into times once: lapse_ns = lapse_usec × 1000, nap_ns = lapse_ns × nap, epoch_ns = lapse_ns × epoch,
 * pin_ns = lapse_ns × pin (the emulation-only overrides for simulated GPUs are not modelled).
 */
import { definePolicySpec, specRules } from "@hmmsim/policy";

const UINT_MAX = 2 ** 32 - 1;

export interface ThrashingPolicySpec {
  /** Detection and mitigation on (uvm_perf_thrashing_enable, UVM_PERF_THRASHING_ENABLE_DEFAULT = 1). */
  enable: boolean;
  /** Consecutive thrashing events that mark a page thrashing (UVM_PERF_THRASHING_THRESHOLD_DEFAULT = 3). */
  threshold: number;
  /** Throttles of a page before it is pinned (UVM_PERF_THRASHING_PIN_THRESHOLD_DEFAULT = 10). */
  pinThreshold: number;
  /** Two events on a page within this lapse are a thrashing event, µs (UVM_PERF_THRASHING_LAPSE_USEC_DEFAULT = 500). */
  lapseUs: number;
  /** A throttled processor naps this many lapses (UVM_PERF_THRASHING_NAP_DEFAULT = 1). */
  nap: number;
  /** Lapses without thrashing after which a block's tracking is reset (UVM_PERF_THRASHING_EPOCH_DEFAULT = 2000). */
  epoch: number;
  /** Lapses a page stays pinned; 0 = for good (UVM_PERF_THRASHING_PIN_DEFAULT = 300). */
  pin: number;
  /** Epoch resets of one block at most (UVM_PERF_THRASHING_MAX_RESETS_DEFAULT = 4). */
  maxResets: number;
  /** Votes before the default lapse is adjusted (UVM_PERF_LAPSE_VOTE_THRESHOLD = 32; only when lapseUs is the default). */
  lapseVoteThreshold: number;
}

/** uvm_perf_thrashing.c's defaults. */
export const THRASHING_DEFAULTS: Readonly<ThrashingPolicySpec> = Object.freeze({
  enable: true,
  threshold: 3,
  pinThreshold: 10,
  lapseUs: 500,
  nap: 1,
  epoch: 2000,
  pin: 300,
  maxResets: 4,
  lapseVoteThreshold: 32,
});

/** UVM_PERF_THRASHING_LAPSE_USEC_MAX / _MIN: the bounds of the adaptive lapse (`adjust_thrashing_lapse`), µs. */
export const LAPSE_USEC_MAX = 500 * 1000;
export const LAPSE_USEC_MIN = 500 / 100;

export const thrashingPolicySpec = definePolicySpec<ThrashingPolicySpec>("thrashing", { ...THRASHING_DEFAULTS }, {
  enable: specRules.boolean(),
  threshold: specRules.integer(1, 7),
  pinThreshold: specRules.integer(1, 255),
  lapseUs: specRules.integer(1, UINT_MAX),
  nap: specRules.integer(1, 100),
  epoch: specRules.integer(1, UINT_MAX),
  pin: specRules.integer(0, UINT_MAX),
  maxResets: specRules.integer(0, UINT_MAX),
  lapseVoteThreshold: specRules.integer(1, UINT_MAX),
});
