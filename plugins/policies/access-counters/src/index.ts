// @hmmsim/policy-access-counters public surface.
export { AccessCounterPolicy, AccessCountersPolicyPlugin, PLUGIN_NAME, POLICY_NAME } from "./access-counters.js";
export {
  ACCESS_COUNTER_GRANULARITIES,
  ACCESS_COUNTERS_DEFAULTS,
  type AccessCountersPolicySpec,
  type ResolvedAccessCountersSpec,
  accessCountersPolicySpec,
  resolveAccessCountersSpec,
} from "./access-counters-spec.js";
