// @ts-check
/**
 * A third-party interconnect: an optical link made of `fibers` parallel fibers of `fiberBandwidth` each, so
 * `fibers × fiberBandwidth` in each direction, with a fixed cost `alpha` per DMA. It provides the link kind
 * `optical`, with its own fields:
 *
 *   links:
 *     - { name: fiber0, kind: optical, fibers: 4, fiberBandwidth: 10GB/s, alpha: 800ns }
 *
 * The machine schema validates the common link fields (name, kind, alpha: a duration, normalized to ps) and keeps
 * any other field as written for the plugin that provides the kind: `componentSpecIssues` checks `fibers` and
 * `fiberBandwidth` and rejects every field an optical link does not have. The link itself is the framework's
 * DuplexLink (two independent directions, processor sharing), built by the InterconnectFactory registered in
 * `register`. The CPU has no coherent access to device memory behind it (device memory is DEVICE_PRIVATE).
 */
import { readFileSync } from "node:fs";
import { DuplexLink, InterconnectFactory, parseBandwidth } from "@hmmsim/machine";

/** @typedef {import("@hmmsim/machine").LinkSpec} LinkSpec */
/** @typedef {import("@hmmsim/machine").MachinePlugin} MachinePlugin */
/** @typedef {import("@hmmsim/machine").LinkParams} LinkParams */
/** @typedef {import("@hmmsim/machine").SpecIssue} SpecIssue */

export const PLUGIN_NAME = "OpticalLinkPlugin";
/** The link kind a spec link selects with `kind: optical`. */
export const LINK_KIND = "optical";
/** The fields of an optical link. */
export const OPTICAL_LINK_FIELDS = Object.freeze(["name", "kind", "fibers", "fiberBandwidth", "alpha"]);
/** At most this many fibers per link. */
export const MAX_FIBERS = 64;
/** alpha when the link does not give one: 500 ns of DMA setup per transfer, in ps. */
export const DEFAULT_ALPHA_PS = 500_000;

/** @type {string} */
const VERSION = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8")).version;

/**
 * The problems of one spec link of kind `optical`, each with its path relative to the link.
 * @param {LinkSpec} link
 * @returns {SpecIssue[]}
 */
export function opticalLinkIssues(link) {
  /** @type {SpecIssue[]} */
  const out = [];
  for (const key of Object.keys(link)) {
    if (OPTICAL_LINK_FIELDS.includes(key)) continue;
    const why = key === "h2dBandwidth" || key === "d2hBandwidth" || key === "lanes" ? ": an optical link's bandwidth is fibers × fiberBandwidth" : "";
    out.push({ path: key, message: `unknown field of an optical link (known: ${OPTICAL_LINK_FIELDS.join(", ")})${why}` });
  }
  const fibers = link.fibers;
  if (fibers === undefined) out.push({ path: "fibers", message: "required: the number of fibers (an integer >= 1)" });
  else if (!Number.isSafeInteger(fibers) || /** @type {number} */ (fibers) < 1 || /** @type {number} */ (fibers) > MAX_FIBERS) {
    out.push({ path: "fibers", message: `expected an integer in [1, ${MAX_FIBERS}], got ${JSON.stringify(fibers)}` });
  }
  if (link.fiberBandwidth === undefined) out.push({ path: "fiberBandwidth", message: 'required: the bandwidth of one fiber, like "10GB/s"' });
  else if (parseBandwidth(link.fiberBandwidth) === undefined) {
    out.push({ path: "fiberBandwidth", message: `expected a bandwidth like "10GB/s", got ${JSON.stringify(link.fiberBandwidth)}` });
  }
  return out;
}

/**
 * The figures of a valid optical link: fibers × fiberBandwidth each way (B/s), alpha in ps.
 * @param {LinkSpec} link
 * @returns {LinkParams}
 */
export function opticalLinkParams(link) {
  const perFiber = parseBandwidth(link.fiberBandwidth);
  if (perFiber === undefined || !Number.isSafeInteger(link.fibers)) throw new RangeError(`${link.name}: not a valid optical link (see opticalLinkIssues)`);
  const bandwidth = /** @type {number} */ (link.fibers) * perFiber;
  return { h2dBandwidth: bandwidth, d2hBandwidth: bandwidth, alpha: link.alpha ?? DEFAULT_ALPHA_PS, sharing: "ps" };
}

/** @implements {MachinePlugin} */
export class OpticalLinkPlugin {
  name = PLUGIN_NAME;
  kind = "interconnect";
  version = VERSION;
  provides = [LINK_KIND];

  /**
   * The problems of a spec link of kind `optical` (the whole link object: paths relative to it).
   * @param {import("@hmmsim/machine").ComponentRef} ref
   * @returns {SpecIssue[]}
   */
  componentSpecIssues(ref) {
    if (ref.kind !== "interconnect") return [{ path: "", message: `plugin ${PLUGIN_NAME} provides link kinds, not a ${ref.kind}` }];
    return opticalLinkIssues(ref.link);
  }

  /** No coherent CPU access to device memory over this link: device memory behind it is DEVICE_PRIVATE. */
  isCoherentLink() {
    return false;
  }

  /**
   * The factory createMachine builds every `optical` link of the spec with (named after this plugin).
   * @param {import("@hmmsim/machine").DependencyContainer} container
   */
  register(container) {
    /** @type {import("@hmmsim/machine").InterconnectFactory} */
    const factory = {
      name: PLUGIN_NAME,
      create: (link, ctx) => new DuplexLink(link.name, link.kind, opticalLinkParams(link), false, ctx),
    };
    container.register(InterconnectFactory, { useValue: factory });
  }

  /** Nothing to tap: the links are built by the factory. */
  apply() {}
}

export default new OpticalLinkPlugin();
