// @hmmsim/policy-on-demand public surface.
export { OnDemandPolicyPlugin, PLUGIN_NAME, POLICY_NAME, type OnDemandPolicySpec } from "./on-demand.js";
