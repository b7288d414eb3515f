/**
 * The access-counters policy: NVIDIA UVM's access-counter-driven migration (uvm_gpu_access_counters.c [S4]) for the
 * devices that run the policy `access-counters` (alone, in a list, or through a bundle):
 *
 *  - `accessCounterConfig` → the device's `{ granularity, threshold }` (UVM's `g_default_config`: the granularity
 *    one counter tracks and the notification threshold `uvm_perf_access_counter_threshold`);
 *  - `shouldMigrate` → false for a device fault when `mapRemoteOnFault` (default): the page is mapped remotely and
 *    its accesses are counted, so it migrates on the threshold-th access to its region, not on the first fault;
 *  - `accessCounterNotification` → mode "uvm": true, the notified region migrates to the device
 *    (`service_va_block_locked` makes the accessed pages resident on the accessing processor); mode "adaptive":
 *    IPDPS'20's rule below.
 *
 * UVM turns these migrations on only with ATS or `uvm_perf_access_counter_migration_enable` (`is_migration_enabled`),
 * and not yet for HMM blocks (`service_notifications_batch`, Bug 4309292): a device that runs this policy has them on.
 *
 * **Adaptive** (Ganguly et al., IPDPS 2020, "Adaptive Page Migration for Irregular Data-intensive Applications under
 * GPU Memory Oversubscription" [S80], as UVMSmart implements it in `gmmu_t::should_cause_page_migration`,
 * `dma_type::ADAPTIVE`): a write fault migrates at once; a read leaves the page remote until the region's access
 * count reaches a dynamic threshold —
 *
 *  - before over-subscription: t_d = ⌊1 + t_s × occupancy⌋ (occupancy = used / total device memory; UVMSmart uses the
 *    projected occupancy including queued transfers);
 *  - once the device has evicted (UVMSmart's `over_sub`): t_d = t_s × p × (r + 1), with r the region's round trips
 *    (evictions of the region, `inc_bb_round_trip`, "IPDPS'20 paper — used for migration counters").
 *
 * t_s is `migrateThreshold`, p `penalty`. The region's count is the sum of its notifications' counts since it last
 * migrated (a step of `threshold`: set a small threshold in this mode, and the 64 KiB granularity of UVMSmart's basic
 * blocks); a notification that does not migrate keeps its count.
 */
import { MMU_NOTIFY_UNMAP } from "@hmmsim/core";
import { MachineTrace, packageVersion, type ComponentRef, type Machine, type MachinePlugin, type SpecIssue } from "@hmmsim/machine";
import { ACCESS_READ, tapPolicy, type AccessCounterConfig, type AccessCounterQuery, type FaultQuery } from "@hmmsim/policy";
import { ACCESS_COUNTERS_DEFAULTS, type AccessCountersPolicySpec, type ResolvedAccessCountersSpec, accessCountersPolicySpec, resolveAccessCountersSpec } from "./access-counters-spec.js";

export const PLUGIN_NAME = "AccessCountersPolicyPlugin";
/** The policy name devices select (`policy: access-counters`, or in a list / bundle). */
export const POLICY_NAME = "access-counters";

const PAGE = 4096;
const VERSION = packageVersion(import.meta.url);

/** One device's access-counter policy: its config, and (adaptive) the counts and round trips of its regions per mm. */
export class AccessCounterPolicy {
  readonly config: AccessCounterConfig;
  /** Has the device evicted (UVMSmart's over_sub)? */
  overSubscribed = false;
  readonly #counts = new WeakMap<object, Map<number, number>>();
  readonly #roundTrips = new WeakMap<object, Map<number, number>>();

  constructor(readonly spec: Readonly<ResolvedAccessCountersSpec>) {
    this.config = Object.freeze({ granularity: spec.granularity, threshold: spec.threshold });
  }

  /** shouldMigrate for a device fault: false (map remotely) when mapRemoteOnFault; adaptive mode migrates writes at once. */
  shouldMigrate(f: Pick<FaultQuery, "access">): boolean | undefined {
    if (this.spec.mode === "adaptive" && f.access !== ACCESS_READ) return true;
    return this.spec.mapRemoteOnFault ? false : undefined;
  }

  /** The dynamic threshold t_d of the region at `start` (adaptive mode). */
  derivedThreshold(mm: object, start: number, usedFraction: number): number {
    const { migrateThreshold: ts, penalty: p } = this.spec;
    if (this.overSubscribed) return ts * p * ((this.#roundTrips.get(mm)?.get(start) ?? 0) + 1);
    return Math.floor(1 + ts * usedFraction);
  }

  /** accessCounterNotification: migrate the region (true) or leave it (false). */
  notification(q: AccessCounterQuery): boolean {
    if (this.spec.mode === "uvm") return true;
    let m = this.#counts.get(q.mm);
    if (m === undefined) this.#counts.set(q.mm, (m = new Map()));
    const count = (m.get(q.start) ?? 0) + q.count;
    const used = q.devicePages > 0 ? 1 - q.deviceFreePages / q.devicePages : 1;
    if (count >= this.derivedThreshold(q.mm, q.start, used)) {
      m.delete(q.start);
      return true;
    }
    m.set(q.start, count);
    return false;
  }

  /** The device evicted [start, start + bytes) of `mm`: over-subscribed from now on; each region there made a round trip. */
  evicted(mm: object, start: number, bytes: number): void {
    this.overSubscribed = true;
    if (this.spec.mode !== "adaptive") return;
    let m = this.#roundTrips.get(mm);
    if (m === undefined) this.#roundTrips.set(mm, (m = new Map()));
    const g = this.spec.granularity;
    for (let r = Math.floor(start / g) * g; r < start + Math.max(bytes, PAGE); r += g) m.set(r, Math.min((m.get(r) ?? 0) + 1, 63)); // 6-bit field in UVMSmart
  }

  /** munmap: forget the regions inside [start, end) of `mm`. */
  unmapped(mm: object, start: number, end: number): void {
    for (const map of [this.#counts.get(mm), this.#roundTrips.get(mm)]) {
      if (!map) continue;
      for (const r of [...map.keys()]) if (r >= start && r + this.spec.granularity <= end) map.delete(r);
    }
  }

  /** The region's accumulated count and round trips (adaptive; for tests and reports). */
  region(mm: object, start: number): { count: number; roundTrips: number } {
    return { count: this.#counts.get(mm)?.get(start) ?? 0, roundTrips: this.#roundTrips.get(mm)?.get(start) ?? 0 };
  }
}

export class AccessCountersPolicyPlugin implements MachinePlugin {
  static readonly defaultSpec: Readonly<AccessCountersPolicySpec> = ACCESS_COUNTERS_DEFAULTS;
  readonly name = PLUGIN_NAME;
  readonly kind = "policy";
  readonly version = VERSION;
  readonly provides = [POLICY_NAME] as const;
  readonly spec = AccessCountersPolicyPlugin.defaultSpec;
  readonly #policies = new WeakMap<object, Map<string, AccessCounterPolicy>>();

  componentSpecIssues(ref: ComponentRef): SpecIssue[] {
    return accessCountersPolicySpec.issues(ref.spec);
  }

  /** The policy state of `device` on `machine`, or undefined when the device does not run access-counters. */
  policy(machine: Machine, device: string): AccessCounterPolicy | undefined {
    return this.#policies.get(machine)?.get(device);
  }

  apply(machine: Machine): void {
    const byDevice = new Map<string, AccessCounterPolicy>();
    const served = tapPolicy(machine, { name: PLUGIN_NAME, policy: POLICY_NAME, spec: (raw, device) => {
      const p = new AccessCounterPolicy(resolveAccessCountersSpec(raw));
      byDevice.set(device.name, p);
      return p;
    } }, {
      accessCounterConfig: (_device, p) => p.config,
      accessCounterNotification: (q, p) => p.notification(q),
      shouldMigrate: (f, p) => p.shouldMigrate(f),
    });
    if (served.length === 0) return;
    this.#policies.set(machine, byDevice);
    const trace = MachineTrace.getHooks(machine);
    trace.eviction.tap(PLUGIN_NAME, (e) => {
      const p = byDevice.get(e.device);
      if (p && typeof e.mm === "object" && e.mm !== null) p.evicted(e.mm, e.start, e.bytes || e.npages * PAGE);
      else if (p) p.overSubscribed = true;
    });
    trace.invalidate.tap(PLUGIN_NAME, (e) => {
      if (e.event !== MMU_NOTIFY_UNMAP || typeof e.mm !== "object" || e.mm === null) return;
      for (const p of byDevice.values()) p.unmapped(e.mm, e.start, e.end);
    });
  }
}
