/**
 * What a PCIe link of a machine spec may say, checked by PciePlugin.componentSpecIssues. The machine schema has
 * already validated and normalized the common link fields (units, lanes ∈ {1, 2, 4, 8, 16}); these are the rules
 * that depend on the kind, each issue's path relative to the link ("lanes", "h2dBandwidth", …):
 *
 *  - a link takes name, kind, lanes, alpha, h2dBandwidth, d2hBandwidth, coherent; any other field is an unknown key
 *    (cpuAccessLatency / cpuAccessBandwidth say why: only coherent links have CPU access to device memory);
 *  - `coherent: true` is refused: PCIe gives no coherent CPU access (a coherent link with its own figures is kind
 *    `custom-coherent`, provided by CoherentPlugin); `coherent: false` is allowed (it is what the link is);
 *  - a `custom` link gives h2dBandwidth, d2hBandwidth and alpha, and no lanes (they scale a preset's bandwidth).
 */
import type { LinkSpec, SpecIssue } from "@hmmsim/machine";
import { CUSTOM_LINK_KIND, PCIE_PRESETS } from "./spec.js";

/** The fields of a PCIe link (the common link fields without the coherent-only ones). */
export const PCIE_LINK_FIELDS: readonly string[] = Object.freeze(["name", "kind", "lanes", "alpha", "h2dBandwidth", "d2hBandwidth", "coherent"]);

const CPU_ACCESS_FIELDS = new Set(["cpuAccessLatency", "cpuAccessBandwidth"]);
const CUSTOM_REQUIRED = ["h2dBandwidth", "d2hBandwidth", "alpha"] as const;

/** The problems of one normalized spec link of a PCIe kind (pcie3x16, pcie4x16, pcie5x16, custom). */
export function pcieLinkSpecIssues(link: LinkSpec): SpecIssue[] {
  const out: SpecIssue[] = [];
  const who = `${JSON.stringify(link.name)} is ${link.kind}`;
  if (link.coherent === true) {
    out.push({
      path: "coherent",
      message:
        link.kind === CUSTOM_LINK_KIND
          ? "a custom link is a PCIe-like link without coherent CPU access; for a coherent link with your own figures write kind: custom-coherent"
          : `PCIe has no coherent CPU access to device memory; ${who} (for a coherent link use kind nvlink-c2c, cxl or custom-coherent)`,
    });
  }
  for (const key of Object.keys(link)) {
    if (PCIE_LINK_FIELDS.includes(key)) continue;
    if (CPU_ACCESS_FIELDS.has(key)) {
      out.push({ path: key, message: `only coherent links (nvlink-c2c, cxl, custom-coherent) have CPU access to device memory; ${who}` });
    } else {
      out.push({ path: key, message: "unknown key" });
    }
  }
  if (link.kind === CUSTOM_LINK_KIND) {
    for (const f of CUSTOM_REQUIRED) {
      if (link[f] === undefined) out.push({ path: f, message: "required: a custom link gives h2dBandwidth, d2hBandwidth and alpha" });
    }
    if (link.lanes !== undefined) {
      out.push({ path: "lanes", message: "lanes scale a PCIe preset's bandwidth; a custom link gives its own h2dBandwidth and d2hBandwidth" });
    }
  } else if (!Object.hasOwn(PCIE_PRESETS, link.kind)) {
    out.push({ path: "kind", message: `not a PCIe link kind (PciePlugin provides ${[...Object.keys(PCIE_PRESETS), CUSTOM_LINK_KIND].join(", ")})` });
  }
  return out;
}
