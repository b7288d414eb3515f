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
 *    (cpuAccessLatency: CUSTOM_COHERENT_DEFAULTS; cpuAccessBandwidth: the link's d2hBandwidth).
 */
import type { LinkSpec, SpecIssue } from "@hmmsim/machine";
import { COHERENT_PRESETS, CUSTOM_COHERENT_LINK_KIND } from "./spec.js";

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
    out.push({ path: "kind", message: `not a coherent link kind (CoherentPlugin provides ${[...Object.keys(COHERENT_PRESETS), CUSTOM_COHERENT_LINK_KIND].join(", ")})` });
  }
  return out;
}
