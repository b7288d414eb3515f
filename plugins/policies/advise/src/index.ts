// @hmmsim/policy-advise public surface.
export { AdvisePolicyPlugin, PLUGIN_NAME, POLICY_NAME, adviseShouldMigrate, advisePolicySpec, type AdvisePolicySpec } from "./advise.js";
