/**
 * The default migration policy: on-demand migration of the faulted page, no prefetch, LRU eviction of 2 MiB
 * root chunks (recency by allocation / migration-in, as NVIDIA UVM's uvm_pmm_gpu.c [S5]). It answers the GPU
 * driver's policy hooks (@hmmsim/driver-gpu `GpuDriver.getHooks(machine)`) for every device whose spec `policy`
 * is "on-demand" (the machine spec's default), at GPU_POLICY_STAGE_DEFAULT so that any other policy tapped at an
 * earlier stage answers first:
 *
 *  - shouldMigrate → true (migrate the faulted page to device memory);
 *  - prefetchRange → left alone (the range stays the faulted page unless another policy grows it);
 *  - selectVictim  → lruVictim (the head of the LRU list that is not being serviced).
 */
import { GPU_POLICY_STAGE_DEFAULT, GpuDriver, lruVictim } from "@hmmsim/driver-gpu";
import type { Machine, MachinePlugin } from "@hmmsim/machine";

export const PLUGIN_NAME = "OnDemandPolicyPlugin";
/** The `policy` value of a machine-spec device this plugin serves. */
export const POLICY_NAME = "on-demand";

export interface OnDemandPolicySpec {
  /** Devices to serve regardless of their spec `policy` (default: none; devices with policy "on-demand" always). */
  devices: string[];
}

export class OnDemandPolicyPlugin implements MachinePlugin {
  static readonly defaultSpec: Readonly<OnDemandPolicySpec> = Object.freeze({ devices: [] });
  readonly name = PLUGIN_NAME;
  readonly spec: Readonly<OnDemandPolicySpec>;

  constructor(spec: Partial<OnDemandPolicySpec> = {}) {
    if (spec === null || typeof spec !== "object") throw new TypeError(`${PLUGIN_NAME} spec: must be an object`);
    for (const k of Object.keys(spec)) if (!(k in OnDemandPolicyPlugin.defaultSpec)) throw new RangeError(`${PLUGIN_NAME} spec.${k}: unknown field`);
    const devices = spec.devices ?? [];
    if (!Array.isArray(devices) || devices.some((d) => typeof d !== "string" || d === "")) {
      throw new RangeError(`${PLUGIN_NAME} spec.devices: must be an array of device names`);
    }
    this.spec = Object.freeze({ devices: Object.freeze([...devices]) as string[] });
  }

  apply(machine: Machine): void {
    const served = new Set<string>(this.spec.devices);
    for (const d of machine.spec.devices) if (d.policy === POLICY_NAME) served.add(d.name);
    const hooks = GpuDriver.getHooks(machine);
    const tap = { name: PLUGIN_NAME, stage: GPU_POLICY_STAGE_DEFAULT };
    hooks.shouldMigrate.tap(tap, (f) => (served.has(f.device) ? true : undefined));
    hooks.selectVictim.tap(tap, (q) => (served.has(q.device) ? lruVictim(q) : undefined));
  }
}
