/**
 * The eviction policy plugin: one plugin, five policy names, each answering `selectVictim` for the devices whose
 * machine-spec `policy` names it (victims.ts has the choices and their sources). None has policySpec fields.
 *
 *   evict-lru         lruVictim        UVM: least recently allocated / migrated into (uvm_pmm_gpu.c) [S5]
 *   evict-lru-access  lruAccessVictim  UVMSmart LRU: least recently accessed [S90]
 *   evict-lfu         lfuVictim        UVMSmart LFU: fewest accesses [S90]
 *   evict-random      randomVictim     UVMSmart random, on chunks; the machine's seeded Rng, one stream per device
 *   evict-tree        treeVictim       UVMSmart TBN eviction, at root-chunk granularity [S90]
 *
 * A device served by one of them gets no prefetch and migrates on demand (the policy hooks' defaults: these
 * policies tap `selectVictim` only).
 */
import { packageVersion, type ComponentRef, type Machine, type MachinePlugin, type SpecIssue } from "@hmmsim/machine";
import { definePolicySpec, tapPolicy, type VictimQuery } from "@hmmsim/policy";
import { lfuVictim, lruAccessVictim, lruVictim, randomVictim, treeVictim, type RandomSource } from "./victims.js";

export const PLUGIN_NAME = "EvictionPolicyPlugin";

/** The policy names this plugin provides, in the order above. */
export const EVICTION_POLICIES = ["evict-lru", "evict-lru-access", "evict-lfu", "evict-random", "evict-tree"] as const;
export type EvictionPolicyName = (typeof EVICTION_POLICIES)[number];

/** A device's policySpec for every eviction policy: no fields (absent or `{}`). */
export type EvictionPolicySpec = Record<string, never>;
const specs = Object.fromEntries(EVICTION_POLICIES.map((p) => [p, definePolicySpec<EvictionPolicySpec>(p, {}, {})])) as Record<
  EvictionPolicyName,
  ReturnType<typeof definePolicySpec<EvictionPolicySpec>>
>;

const VERSION = packageVersion(import.meta.url);

export class EvictionPolicyPlugin implements MachinePlugin {
  readonly name = PLUGIN_NAME;
  readonly kind = "policy";
  readonly version = VERSION;
  readonly provides = EVICTION_POLICIES;
  readonly spec = {};

  componentSpecIssues(ref: ComponentRef): SpecIssue[] {
    const schema = specs[ref.name as EvictionPolicyName];
    return schema ? schema.issues(ref.spec) : [{ path: "", message: `${PLUGIN_NAME} does not provide ${JSON.stringify(ref.name)}` }];
  }

  apply(machine: Machine): void {
    const plain: [EvictionPolicyName, (q: VictimQuery) => number][] = [
      ["evict-lru", lruVictim],
      ["evict-lru-access", lruAccessVictim],
      ["evict-lfu", lfuVictim],
      ["evict-tree", treeVictim],
    ];
    for (const [policy, choose] of plain) {
      tapPolicy(machine, { name: PLUGIN_NAME, policy, spec: (raw) => specs[policy].resolve(raw) }, { selectVictim: (q) => choose(q) });
    }
    tapPolicy<RandomSource>(
      machine,
      {
        name: PLUGIN_NAME,
        policy: "evict-random",
        spec: (raw, device) => {
          specs["evict-random"].resolve(raw);
          return machine.engine.rng.derive(`${device.name}.evict-random`);
        },
      },
      { selectVictim: (q, rng) => randomVictim(q, rng) },
    );
  }
}
