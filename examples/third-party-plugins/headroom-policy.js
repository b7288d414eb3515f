// @ts-check
/**
 * A third-party migration policy: `headroom`. It keeps `headroom` bytes of a device's memory free. A faulted page
 * is migrated to the device while, after the migration, at least `headroom` bytes of device memory would still be
 * free; past that the policy answers "do not migrate", and the driver maps the page where it is, in system memory,
 * so that the device reaches it over the link (a remote mapping, zero-copy).
 *
 *   devices:
 *     - { kind: eager, name: eager0, memory: 4MiB, link: fiber0, policy: headroom, policySpec: { headroom: 3MiB } }
 *
 * On a workload that touches more than `memory − headroom` bytes, the device migrates `(memory − headroom) / 4 KiB`
 * pages and maps the rest remotely, where the built-in on-demand policy migrates every page it can: fewer pages
 * migrated, and accesses served over the link instead. It answers only `shouldMigrate` (from the fault's
 * `deviceFreePages`), for the devices whose spec names it (`tapPolicy` does the filtering); it imports no driver:
 * any driver that asks the @hmmsim/policy hooks is served. A driver that services faults in batches asks for
 * every page of a batch before it migrates any, so it may migrate up to one batch past the headroom.
 */
import { readFileSync } from "node:fs";
import { PAGE_SIZE, parseSize } from "@hmmsim/machine";
import { definePolicySpec, tapPolicy } from "@hmmsim/policy";

/** @typedef {import("@hmmsim/machine").MachinePlugin} MachinePlugin */

export const PLUGIN_NAME = "HeadroomPolicyPlugin";
/** The `policy` a machine-spec device selects this policy with. */
export const POLICY_NAME = "headroom";

/** @type {string} */
const VERSION = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8")).version;

/**
 * A device's policySpec: `headroom`, a size (bytes, or a string like "3MiB"), a multiple of 4 KiB.
 * @typedef {{ headroom: string | number }} HeadroomPolicySpec
 */

/** @type {HeadroomPolicySpec} */
const DEFAULTS = { headroom: "2MiB" };

/** The policySpec schema (defaults and one rule per field): its `issues` lists every bad or unknown field. */
export const headroomPolicySpec = definePolicySpec(POLICY_NAME, DEFAULTS, {
  headroom: (v) => {
    const bytes = parseSize(v);
    if (bytes === undefined) return `expected a size like "3MiB", got ${JSON.stringify(v)}`;
    if (bytes % PAGE_SIZE !== 0) return `must be a multiple of 4KiB, got ${bytes}`;
    return undefined;
  },
});

/** @implements {MachinePlugin} */
export class HeadroomPolicyPlugin {
  static defaultSpec = headroomPolicySpec.defaults;
  name = PLUGIN_NAME;
  kind = "policy";
  version = VERSION;
  provides = [POLICY_NAME];
  spec = HeadroomPolicyPlugin.defaultSpec;

  /**
   * A device's policySpec: the schema's issues, and a headroom below the device's memory (a headroom of all of it
   * would never migrate anything).
   * @param {import("@hmmsim/machine").ComponentRef} ref
   * @returns {import("@hmmsim/machine").SpecIssue[]}
   */
  componentSpecIssues(ref) {
    if (ref.kind !== "policy") return [{ path: "", message: `plugin ${PLUGIN_NAME} provides a policy, not a ${ref.kind}` }];
    const issues = headroomPolicySpec.issues(ref.spec);
    if (issues.length > 0) return issues;
    const bytes = headroomBytes(headroomPolicySpec.resolve(ref.spec));
    if (bytes >= ref.device.memory) {
      issues.push({ path: "headroom", message: `must be less than the device's memory (${ref.device.memory} bytes), got ${bytes}` });
    }
    return issues;
  }

  /**
   * Taps shouldMigrate for this policy's devices: migrate while (free pages − 1) · 4 KiB ≥ headroom.
   * @param {import("@hmmsim/machine").Machine} machine
   */
  apply(machine) {
    tapPolicy(
      machine,
      { name: PLUGIN_NAME, policy: POLICY_NAME, spec: (raw) => headroomBytes(headroomPolicySpec.resolve(raw)) / PAGE_SIZE },
      { shouldMigrate: (fault, headroomPages) => fault.deviceFreePages - 1 >= headroomPages },
    );
  }
}

/**
 * @param {Readonly<HeadroomPolicySpec>} spec
 * @returns {number}
 */
function headroomBytes(spec) {
  return /** @type {number} */ (parseSize(spec.headroom));
}

export default new HeadroomPolicyPlugin();
