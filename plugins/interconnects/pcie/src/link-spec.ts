/**
 * What a PCIe link of a machine spec may say, checked by PciePlugin.componentSpecIssues. The machine schema has
 * already validated and normalized the common link fields (units, lanes ∈ {1, 2, 4, 8, 16}); these are the rules
 * that depend on the kind, each issue's path relative to the link ("lanes", "h2dBandwidth", …):
 *
 *  - a link takes name, kind, lanes, alpha, h2dBandwidth, d2hBandwidth, coherent; any other field is an unknown key
 *    (cpuAccessLatency / cpuAccessBandwidth say why: only coherent links have CPU access to device memory);
 *  - `coherent: true` is refused: PCIe gives no coherent CPU access (a coherent link with its own figures is kind
 *    `custom-coherent`, provided by CoherentPlugin); `coherent: false` is allowed (it is what the link is);
 *  - a `custom` link gives h2dBandwidth, d2hBandwidth and alpha, and no lanes (they scale a preset's bandwidth);
 *  - `peers` (two devices; the machine schema checks that they are distinct, declared devices): required on a
 *    `pcie-p2p` link, allowed on `custom` (a peer link with its own figures), refused on the host presets
 *    (pcie3x16, pcie4x16, pcie5x16 join the host and a device).
 */
import type { LinkSpec, SpecIssue } from "@hmmsim/machine";
import { CUSTOM_LINK_KIND, PCIE_P2P_LINK_KIND, PCIE_PRESETS } from "./spec.js";

/** The fields of a PCIe link (the common link fields without the coherent-only ones). */
export const PCIE_LINK_FIELDS: readonly string[] = Object.freeze(["name", "kind", "lanes", "alpha", "h2dBandwidth", "d2hBandwidth", "coherent", "peers"]);

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
      if (link[f] === undefined) {
        out.push({
          path: f,
          message:
            link.peers === undefined
              ? "required: a custom link gives h2dBandwidth, d2hBandwidth and alpha"
              : `required: a custom link gives h2dBandwidth, d2hBandwidth and alpha (a peer link: h2dBandwidth ${peerDir(link, 0)}, d2hBandwidth ${peerDir(link, 1)})`,
        });
      }
    }
    if (link.lanes !== undefined) {
      out.push({ path: "lanes", message: "lanes scale a PCIe preset's bandwidth; a custom link gives its own h2dBandwidth and d2hBandwidth" });
    }
  } else if (link.kind === PCIE_P2P_LINK_KIND) {
    if (link.peers === undefined) {
      out.push({ path: "peers", message: "required: a pcie-p2p link joins two devices through a PCIe switch: peers: [<device>, <device>] (a device's host link is pcie3x16, pcie4x16 or pcie5x16)" });
    }
  } else if (!Object.hasOwn(PCIE_PRESETS, link.kind)) {
    out.push({ path: "kind", message: `not a PCIe link kind (PciePlugin provides ${[...Object.keys(PCIE_PRESETS), PCIE_P2P_LINK_KIND, CUSTOM_LINK_KIND].join(", ")})` });
  } else if (link.peers !== undefined) {
    out.push({
      path: "peers",
      message: `${link.kind} is a host link (it joins the host and a device); for peer-to-peer between two devices through a PCIe switch write kind: pcie-p2p (its lanes, alpha and bandwidths as here), or custom with your own figures`,
    });
  }
  return out;
}

/** "gpu0 → gpu1" for direction 0 (h2d) of a peer link, "gpu1 → gpu0" for 1 (d2h); "a → b" when peers are malformed. */
function peerDir(link: LinkSpec, d: 0 | 1): string {
  const p = Array.isArray(link.peers) ? link.peers : ["a", "b"];
  return d === 0 ? `${String(p[0])} → ${String(p[1])}` : `${String(p[1])} → ${String(p[0])}`;
}
