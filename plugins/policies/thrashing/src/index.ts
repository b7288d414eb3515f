// @hmmsim/policy-thrashing public surface.
export { PLUGIN_NAME, POLICY_NAME, ThrashingPolicyPlugin } from "./thrashing.js";
export { CPU, type DetectorHint, type MigrationCause, ThrashingDetector, migrationCause } from "./thrashing-detector.js";
export { LAPSE_USEC_MAX, LAPSE_USEC_MIN, THRASHING_DEFAULTS, type ThrashingPolicySpec, thrashingPolicySpec } from "./thrashing-spec.js";
