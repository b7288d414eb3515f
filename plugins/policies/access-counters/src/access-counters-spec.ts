/**
 * The access-counters policy's per-device spec. UVM's part comes from uvm_gpu_access_counters.c [S4]:
 *
 * | field | UVM | default | allowed |
 * |---|---|---|---|
 * | `granularity` | `UVM_PERF_ACCESS_COUNTER_GRANULARITY` (`config_granularity_to_bytes`) | 2 MiB | 64 KiB, 2 MiB, 16 MiB (UVM also has 16 GiB; the hook's `AccessCounterConfig` stops at 16 MiB) |
 * | `threshold` | `uvm_perf_access_counter_threshold` | 256 (`UVM_PERF_ACCESS_COUNTER_THRESHOLD_DEFAULT`) | 1 … 65535 (`_THRESHOLD_MIN` … `_THRESHOLD_MAX`) |
 * | `mapRemoteOnFault` | — | true | true / false |
 * | `mode` | — | "uvm" | "uvm", "adaptive" |
 * | `migrateThreshold` | UVMSmart `-migrate_threshold` [S80] | 8 (its GTX 1080 Ti config) | 1 … 65535 |
 * | `penalty` | UVMSmart `-multiply_dma_penalty` [S80] | 2 (its GTX 1080 Ti config) | 0 … 1000 |
 *
 * `mapRemoteOnFault` answers shouldMigrate = false for a device fault, so that a page is first mapped remotely and
 * the counters decide when it moves ("migrate on the N-th access"); false leaves faults to the other policies (UVM
 * itself migrates on a replayable fault and counts only pages mapped remotely for another reason). `mode: adaptive`
 * is the delayed migration of Ganguly et al., IPDPS 2020, as UVMSmart's `gmmu_t::should_cause_page_migration`
 * implements it (access-counters.ts).
 */
import { parseSize } from "@hmmsim/machine";
import { definePolicySpec, specRules, type SpecRule } from "@hmmsim/policy";

const KiB = 1024;
const MiB = 1024 * KiB;
/** The tracking granularities (uvm_gpu_access_counters.c `config_granularity_to_bytes`) the hook takes. */
export const ACCESS_COUNTER_GRANULARITIES = Object.freeze([64 * KiB, 2 * MiB, 16 * MiB] as const);

export interface AccessCountersPolicySpec {
  /** Bytes one counter covers: 64 KiB, 2 MiB or 16 MiB (a size string like "64KiB" is accepted). */
  granularity: number | string;
  /** Remote accesses to a region that raise a notification. */
  threshold: number;
  /** Answer shouldMigrate = false on device faults: map remotely first, migrate on the counters. */
  mapRemoteOnFault: boolean;
  /** "uvm": every notification migrates its region; "adaptive": IPDPS'20's threshold decides. */
  mode: "uvm" | "adaptive";
  /** Adaptive: the static threshold t_s (accesses counted before a read-only region migrates). */
  migrateThreshold: number;
  /** Adaptive: the over-subscription multiplicative penalty p. */
  penalty: number;
}

export const ACCESS_COUNTERS_DEFAULTS: Readonly<AccessCountersPolicySpec> = Object.freeze({
  granularity: 2 * MiB,
  threshold: 256,
  mapRemoteOnFault: true,
  mode: "uvm",
  migrateThreshold: 8,
  penalty: 2,
});

const granularity: SpecRule = (v) => {
  const bytes = typeof v === "string" ? parseSize(v) : v;
  return typeof bytes === "number" && (ACCESS_COUNTER_GRANULARITIES as readonly number[]).includes(bytes)
    ? undefined
    : `must be 64KiB, 2MiB or 16MiB (65536, 2097152 or 16777216; uvm_gpu_access_counters.c config_granularity_to_bytes), got ${typeof v === "string" ? JSON.stringify(v) : String(v)}`;
};

export const accessCountersPolicySpec = definePolicySpec<AccessCountersPolicySpec>("access-counters", { ...ACCESS_COUNTERS_DEFAULTS }, {
  granularity,
  threshold: specRules.integer(1, 65535),
  mapRemoteOnFault: specRules.boolean(),
  mode: specRules.oneOf("uvm", "adaptive"),
  migrateThreshold: specRules.integer(1, 65535),
  penalty: specRules.integer(0, 1000),
});

/** A resolved spec with the granularity in bytes. */
export interface ResolvedAccessCountersSpec extends Omit<AccessCountersPolicySpec, "granularity"> {
  readonly granularity: number;
}

/** The defaults with `raw` laid over them, the granularity in bytes; throws SpecError when invalid. */
export function resolveAccessCountersSpec(raw: unknown): Readonly<ResolvedAccessCountersSpec> {
  const s = accessCountersPolicySpec.resolve(raw);
  const g = typeof s.granularity === "string" ? parseSize(s.granularity)! : s.granularity;
  return Object.freeze({ ...s, granularity: g });
}
