// @hmmsim/policy public surface: the driver-neutral migration-policy hook points, their queries and defaults.
export { Policy, POLICY_STAGE_DEFAULT, POLICY_STAGE_OVERRIDE, POLICY_STAGE_POLICY, type PolicyHooks } from "./policy-hooks.js";
export {
  ACCESS_ATOMIC,
  ACCESS_READ,
  ACCESS_WRITE,
  BLOCK_PAGES,
  BLOCK_SIZE,
  type AccessType,
  type FaultQuery,
  type PrefetchRange,
} from "./fault-query.js";
export { PrefetchMaskError, PrefetchPageMask } from "./prefetch-page-mask.js";
export type { VictimQuery } from "./victim-query.js";
export { defaultAccessCounterMigrate, defaultPrefetchRange, defaultShouldMigrate, lruVictim } from "./defaults.js";
export {
  HOST_LOCATION,
  THRASHING_HINT_PIN,
  THRASHING_HINT_THROTTLE,
  type AccessCounterConfig,
  type AccessCounterQuery,
  type MemAdvice,
  type ThrashingHint,
  type ThrashingHintType,
} from "./hints.js";
export { devicePolicies, servedDevices, servedPolicies, tapPolicy, type PolicyMachine, type PolicyTapOptions, type PolicyTaps } from "./tap-policy.js";
export { definePolicySpec, specRules, type PolicySpecSchema, type SpecRule } from "./policy-spec.js";
