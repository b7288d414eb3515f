// @hmmsim/policy-uvm-default public surface.
export { PLUGIN_NAME, POLICY_NAME, UVM_DEFAULT_POLICIES, UvmDefaultPolicyPlugin } from "./uvm-default.js";
