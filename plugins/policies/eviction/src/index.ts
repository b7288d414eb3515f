// @hmmsim/policy-eviction public surface.
export { EVICTION_POLICIES, EvictionPolicyPlugin, PLUGIN_NAME, type EvictionPolicyName, type EvictionPolicySpec } from "./eviction.js";
export { lfuVictim, lruAccessVictim, lruVictim, minVictim, randomVictim, treeVictim, type RandomSource } from "./victims.js";
