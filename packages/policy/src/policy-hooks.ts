/**
 * The migration-policy hook points of a machine, declared once, frozen and typed (docs/architecture.md, "Wiring: DI and hooks"):
 * drivers call them, policy plugins tap them, and neither imports the other — both meet here.
 *
 *  - `shouldMigrate` (SyncBailHook, first answer wins): for one distinct faulted page, `true` = migrate it (and
 *    what prefetchRange adds) to device memory, `false` = map the system page remotely (accesses then cross the
 *    link). No answer: `defaultShouldMigrate` (migrate).
 *  - `prefetchRange` (SyncWaterfallHook): transforms the range to migrate around a faulted page; it starts as the
 *    faulted page and each tap returns the (possibly grown) range. No tap: the faulted page (`defaultPrefetchRange`).
 *  - `prefetchPages` (SyncHook): for the same faulted page, right after `prefetchRange`, taps set pages of the
 *    fault's 2 MiB VA block in a PrefetchPageMask (zeroed before each call), anywhere in the block: UVM's
 *    `prefetch_pages_mask` (uvm_perf_prefetch.c `uvm_perf_prefetch_get_hint_va_block`). The driver migrates the
 *    union of the range and the mask. No tap: no page beyond the range (drivers skip the call: `isUsed()`).
 *  - `selectVictim` (SyncBailHook): which root chunk to evict when the device's memory is full. No answer:
 *    `lruVictim`.
 *  - `thrashingPages` (SyncHook): once per VA block a driver services, taps set `mask[i] = 1` for the block's
 *    thrashing pages (the mask starts cleared); the driver answers `FaultQuery.isThrashing(i)` from it
 *    (uvm_perf_thrashing_get_thrashing_pages).
 *  - `thrashingHint` (SyncBailHook): for one distinct faulted page, a ThrashingHint (THROTTLE: hold the
 *    processor off until `untilPs`; PIN: map remotely, do not migrate) or nothing (uvm_perf_thrashing_get_hint).
 *    Asked before `shouldMigrate`; a PIN answer skips it.
 *  - `accessCounterConfig` (SyncBailHook): asked once per device when the machine starts: the granularity and
 *    threshold of the device's access counters, or nothing (the device counts nothing).
 *  - `accessCounterNotification` (SyncBailHook): one notification serviced; true = migrate the region to the
 *    device, false = leave it. No answer: `defaultAccessCounterMigrate` (migrate).
 *
 * These are the places NVIDIA UVM takes its perf-module decisions (uvm_perf_prefetch.c `compute_prefetch_region`,
 * `uvm_perf_prefetch_get_hint_va_block`, uvm_perf_thrashing.c `uvm_perf_thrashing_get_hint`, uvm_pmm_gpu.c
 * `pick_root_chunk_to_evict`) [S2, S3, S5] and that gpu_ext hooks with eBPF struct_ops [S19]. The hooks are per machine, shared by its devices: a tap serves
 * the devices that run its policy — named in the device's spec `policy`, alone, in a list or through a bundle
 * (`query.device`; `tapPolicy` does the filtering). A device may run several policies: the order of its list decides
 * nothing, the tap stages do (then the machine's plugin order). Tap at setup
 * (a plugin's `apply`), with a stage from POLICY_STAGE_*; per-event history (migrations, evictions,
 * invalidations) is on the machine's trace points (MachineTrace), which a policy taps to keep its own state.
 */
import { SyncBailHook, SyncHook, SyncWaterfallHook } from "tapable";
import { createHooksRegistry } from "@hmmsim/machine";
import type { FaultQuery, PrefetchRange } from "./fault-query.js";
import type { PrefetchPageMask } from "./prefetch-page-mask.js";
import type { AccessCounterConfig, AccessCounterQuery, ThrashingHint } from "./hints.js";
import type { VictimQuery } from "./victim-query.js";

/** Tap stages (tapable `stage`, lower runs first): a test or experiment overrides any policy. */
export const POLICY_STAGE_OVERRIDE = -100;
/** Where a policy plugin taps. */
export const POLICY_STAGE_POLICY = 0;
/** The default policy plugin (on-demand) taps here, so any other tap answers first. */
export const POLICY_STAGE_DEFAULT = 100;

export interface PolicyHooks {
  readonly shouldMigrate: SyncBailHook<[FaultQuery], boolean | undefined>;
  readonly prefetchRange: SyncWaterfallHook<[PrefetchRange, FaultQuery]>;
  readonly prefetchPages: SyncHook<[FaultQuery, PrefetchPageMask]>;
  readonly selectVictim: SyncBailHook<[VictimQuery], number | undefined>;
  readonly thrashingPages: SyncHook<[FaultQuery, Uint8Array]>;
  readonly thrashingHint: SyncBailHook<[FaultQuery], ThrashingHint | undefined>;
  readonly accessCounterConfig: SyncBailHook<[string], AccessCounterConfig | undefined>;
  readonly accessCounterNotification: SyncBailHook<[AccessCounterQuery], boolean | undefined>;
}

const registry = createHooksRegistry<object, PolicyHooks>(() => ({
  shouldMigrate: new SyncBailHook<[FaultQuery], boolean | undefined>(["fault"]),
  prefetchRange: new SyncWaterfallHook<[PrefetchRange, FaultQuery]>(["range", "fault"]),
  prefetchPages: new SyncHook<[FaultQuery, PrefetchPageMask]>(["fault", "mask"]),
  selectVictim: new SyncBailHook<[VictimQuery], number | undefined>(["query"]),
  thrashingPages: new SyncHook<[FaultQuery, Uint8Array]>(["fault", "mask"]),
  thrashingHint: new SyncBailHook<[FaultQuery], ThrashingHint | undefined>(["fault"]),
  accessCounterConfig: new SyncBailHook<[string], AccessCounterConfig | undefined>(["device"]),
  accessCounterNotification: new SyncBailHook<[AccessCounterQuery], boolean | undefined>(["notification"]),
}));

export const Policy = Object.freeze({
  /** The policy hooks of `machine` (created on first use, frozen; two machines never share taps). */
  getHooks(machine: object): PolicyHooks {
    return registry(machine);
  },
});
