// @hmmsim/policy-on-demand public surface.
export { OnDemandPolicyPlugin, PLUGIN_NAME, POLICY_NAME, onDemandPolicySpec, type OnDemandPolicySpec } from "./on-demand.js";
