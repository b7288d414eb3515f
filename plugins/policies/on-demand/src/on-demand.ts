/**
 * The default migration policy: on-demand migration of the faulted page, no prefetch, LRU eviction of 2 MiB root
 * chunks (recency by allocation / migration-in, as NVIDIA UVM's uvm_pmm_gpu.c [S5]). It provides the policy name
 * "on-demand" (the machine spec's default `policy`) and answers the driver-neutral policy hooks of @hmmsim/policy
 * (`Policy.getHooks(machine)`) for exactly the devices whose spec `policy` is "on-demand", with @hmmsim/policy's
 * documented defaults, at POLICY_STAGE_DEFAULT so that any tap at an earlier stage answers first:
 *
 *  - shouldMigrate → defaultShouldMigrate (true: migrate the faulted page to device memory);
 *  - prefetchRange → defaultPrefetchRange (the range stays the faulted page unless an earlier tap grew it);
 *  - selectVictim  → lruVictim (the head of the LRU order that is evictable).
 *
 * It never imports a driver: any driver that calls the @hmmsim/policy hooks is served.
 */
import { packageVersion, type ComponentRef, type Machine, type MachinePlugin, type SpecIssue } from "@hmmsim/machine";
import { POLICY_STAGE_DEFAULT, defaultPrefetchRange, defaultShouldMigrate, definePolicySpec, lruVictim, tapPolicy } from "@hmmsim/policy";

export const PLUGIN_NAME = "OnDemandPolicyPlugin";
/** The `policy` value of a machine-spec device this plugin serves. */
export const POLICY_NAME = "on-demand";

/** A device's policySpec for on-demand: it has no fields (absent or `{}`). */
export type OnDemandPolicySpec = Record<string, never>;

/** The policySpec schema: no fields, every field given is an issue. */
export const onDemandPolicySpec = definePolicySpec<OnDemandPolicySpec>(POLICY_NAME, {}, {});

const VERSION = packageVersion(import.meta.url);

export class OnDemandPolicyPlugin implements MachinePlugin {
  static readonly defaultSpec: Readonly<OnDemandPolicySpec> = onDemandPolicySpec.defaults;
  readonly name = PLUGIN_NAME;
  readonly kind = "policy";
  readonly version = VERSION;
  readonly provides = [POLICY_NAME] as const;
  readonly spec = OnDemandPolicyPlugin.defaultSpec;

  /** A device's policySpec must be absent or an empty mapping. */
  componentSpecIssues(ref: ComponentRef): SpecIssue[] {
    return onDemandPolicySpec.issues(ref.spec);
  }

  apply(machine: Machine): void {
    tapPolicy(machine, { name: PLUGIN_NAME, policy: POLICY_NAME, stage: POLICY_STAGE_DEFAULT }, {
      shouldMigrate: defaultShouldMigrate,
      prefetchRange: defaultPrefetchRange,
      selectVictim: lruVictim,
    });
  }
}
