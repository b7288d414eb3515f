/**
 * A PCIe link: t = α + ⌈bytes·10^12/β⌉ ps per transfer (a size-independent α, not UVMSmart's atan curve [S14];
 * docs/references.md), two independent directions, concurrent same-direction transfers sharing β.
 * PCIe has limited atomics and no coherent CPU access to device memory, so `supportsCoherentAccess = false`:
 * device memory behind it is MEMORY_DEVICE_PRIVATE.
 */
import { DuplexLink, type Interconnect, type LinkContext, type LinkParams, type LinkSharing, type LinkSpec, PeerLink } from "@hmmsim/machine";
import { CUSTOM_LINK_KIND, PCIE_P2P_LINK_KIND, PCIE_P2P_PRESET, PCIE_PRESETS, type PciePreset, type PciePresetKind } from "./spec.js";

export class PcieLink extends DuplexLink {
  override readonly supportsCoherentAccess = false as const;
  constructor(name: string, kind: LinkSpec["kind"], params: LinkParams, ctx: LinkContext) {
    super(name, kind, params, false, ctx);
  }
}

/**
 * The figures of a spec link (validated by pcieLinkSpecIssues): a preset scaled by lanes/16, then the spec's
 * overrides; a `custom` link's own figures.
 */
export function pcieLinkParams(link: LinkSpec, sharing: LinkSharing): LinkParams {
  if (link.kind === CUSTOM_LINK_KIND) {
    return { h2dBandwidth: link.h2dBandwidth!, d2hBandwidth: link.d2hBandwidth!, alpha: link.alpha!, sharing };
  }
  const preset: PciePreset | undefined =
    link.kind === PCIE_P2P_LINK_KIND ? PCIE_P2P_PRESET : Object.hasOwn(PCIE_PRESETS, link.kind) ? PCIE_PRESETS[link.kind as PciePresetKind] : undefined;
  if (!preset) throw new RangeError(`${link.name}: ${link.kind} is not a PCIe link kind`);
  const lanes = link.lanes ?? 16;
  const bw = Math.round((preset.bandwidth * lanes) / 16);
  return {
    h2dBandwidth: link.h2dBandwidth ?? bw,
    d2hBandwidth: link.d2hBandwidth ?? bw,
    alpha: link.alpha ?? preset.alpha,
    sharing,
  };
}

/**
 * The link of a spec link of a PCIe kind: a PcieLink (host link), or for a link with `peers` (pcie-p2p, custom) a
 * PeerLink joining the two devices, without atomics across it (PeerInterconnect.peerAtomics false).
 */
export function buildPcieLink(link: LinkSpec, sharing: LinkSharing, ctx: LinkContext): Interconnect {
  const params = pcieLinkParams(link, sharing);
  return link.peers ? new PeerLink(link.name, link.kind, params, link.peers, false, ctx) : new PcieLink(link.name, link.kind, params, ctx);
}
