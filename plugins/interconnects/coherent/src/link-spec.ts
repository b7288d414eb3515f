/**
 * What a coherent link of a machine spec may say, checked by CoherentPlugin.componentSpecIssues. The machine schema
 * has already validated and normalized the common link fields (units); these are the rules that depend on the
 * kind, each issue's path relative to the link ("lanes", "cpuAccessLatency", …):
 *
 *  - a link takes name, kind, alpha, h2dBandwidth, d2hBandwidth, coherent, cpuAccessLatency, cpuAccessBandwidth;
 *    any other field is an unknown key (`lanes` says why: only PCIe links have lanes);
 *  - `coherent: false` is refused: these links are coherent (a non-coherent link with its own figures is kind
 *    `custom`, provided by PciePlugin); `coherent: true` is allowed (it is what the link is);
 *  - a `custom-coherent` link gives h2dBandwidth, d2hBandwidth and alpha; its CPU-access figures have defaults
 *    (cpuAccessLatency: CUSTOM_COHERENT_DEFAULTS; cpuAccessBandwidth: the link's d2hBandwidth);
 *  - the NVLink peer kinds (nvlink3, nvlink4) join two GPUs: `peers` is required (the machine schema checks that
 *    they are distinct, declared devices); they give the CPU no access, so cpuAccessLatency, cpuAccessBandwidth and
 *    `coherent: true` are refused (`coherent: false` is what they are). The host kinds (nvlink-c2c, cxl,
 *    custom-coherent) refuse `peers`.
 */
import type { LinkSpec, SpecIssue } from "@hmmsim/machine";
import { COHERENT_PRESETS, CUSTOM_COHERENT_LINK_KIND, NVLINK_PEER_PRESETS, isNvlinkPeerKind } from "./spec.js";

/** The fields of a coherent link (the common link fields without PCIe's lanes). */
export const COHERENT_LINK_FIELDS: readonly string[] = Object.freeze([
  "name",
  "kind",
  "alpha",
  "h2dBandwidth",
  "d2hBandwidth",
  "coherent",
  "cpuAccessLatency",
  "cpuAccessBandwidth",
  "peers",
]);

const CUSTOM_REQUIRED = ["h2dBandwidth", "d2hBandwidth", "alpha"] as const;

/** The problems of one normalized spec link of a coherent kind (nvlink-c2c, cxl, custom-coherent). */
export function coherentLinkSpecIssues(link: LinkSpec): SpecIssue[] {
  const out: SpecIssue[] = [];
  const who = `${JSON.stringify(link.name)} is ${link.kind}`;
  for (const key of Object.keys(link)) {
    if (COHERENT_LINK_FIELDS.includes(key)) continue;
    out.push({ path: key, message: key === "lanes" ? `only PCIe links (pcie3x16, pcie4x16, pcie5x16) have lanes; ${who}` : "unknown key" });
  }
  if (isNvlinkPeerKind(link.kind)) return [...out, ...nvlinkPeerIssues(link)];
  if (link.peers !== undefined) {
    out.push({
      path: "peers",
      message: `${link.kind} is a host link (it joins the CPU and a device); for a link between two GPUs write kind nvlink3 or nvlink4, or custom with peers (@hmmsim/interconnect-pcie) for your own figures`,
    });
  }
  if (link.coherent === false) {
    out.push({
      path: "coherent",
      message:
        link.kind === CUSTOM_COHERENT_LINK_KIND
          ? "a custom-coherent link is coherent; for a non-coherent link with your own figures write kind: custom"
          : `${link.kind} is a coherent link (the CPU loads and stores device memory); ${who} (for a non-coherent link use a PCIe kind or custom)`,
    });
  }
  if (link.kind === CUSTOM_COHERENT_LINK_KIND) {
    for (const f of CUSTOM_REQUIRED) {
      if (link[f] === undefined) out.push({ path: f, message: "required: a custom-coherent link gives h2dBandwidth, d2hBandwidth and alpha" });
    }
  } else if (!Object.hasOwn(COHERENT_PRESETS, link.kind)) {
    out.push({ path: "kind", message: `not a coherent link kind (CoherentPlugin provides ${[...Object.keys(COHERENT_PRESETS), ...Object.keys(NVLINK_PEER_PRESETS), CUSTOM_COHERENT_LINK_KIND].join(", ")})` });
  }
  return out;
}

/** The rules of an NVLink peer link (nvlink3, nvlink4), past the unknown keys. */
function nvlinkPeerIssues(link: LinkSpec): SpecIssue[] {
  const out: SpecIssue[] = [];
  const who = `${JSON.stringify(link.name)} is ${link.kind}`;
  if (link.peers === undefined) {
    out.push({ path: "peers", message: `required: an ${link.kind} link joins two GPUs: peers: [<device>, <device>] (a device's host link is a PCIe kind, nvlink-c2c or cxl)` });
  }
  for (const key of ["cpuAccessLatency", "cpuAccessBandwidth"] as const) {
    if (link[key] !== undefined) out.push({ path: key, message: `a peer link gives the CPU no access to device memory; ${who}, a link between two GPUs` });
  }
  if (link.coherent === true) {
    out.push({ path: "coherent", message: `coherent: true means the CPU loads and stores device memory over the link; ${who}, a link between two GPUs (leave coherent out)` });
  }
  return out;
}
