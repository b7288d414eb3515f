/**
 * A PCIe link: t = α + ⌈bytes·10^12/β⌉ ps per transfer (anchors.md B2's recommendation: size-independent α,
 * no atan curve), two independent directions, concurrent same-direction transfers sharing β.
 * PCIe has limited atomics and no coherent CPU access to device memory, so `supportsCoherentAccess = false`:
 * device memory behind it is MEMORY_DEVICE_PRIVATE.
 */
import { DuplexLink, type LinkContext, type LinkParams, type LinkSharing, type LinkSpec } from "@hmmsim/machine";
import { PCIE_PRESETS } from "./spec.js";

export class PcieLink extends DuplexLink {
  override readonly supportsCoherentAccess = false as const;
  constructor(name: string, kind: LinkSpec["kind"], params: LinkParams, ctx: LinkContext) {
    super(name, kind, params, false, ctx);
  }
}

/** The figures of a spec link: its preset (scaled by lanes/16), then the spec's overrides. */
export function pcieLinkParams(link: LinkSpec, sharing: LinkSharing): LinkParams {
  if (link.kind === "custom") {
    return { h2dBandwidth: link.h2dBandwidth!, d2hBandwidth: link.d2hBandwidth!, alpha: link.alpha!, sharing };
  }
  const preset = PCIE_PRESETS[link.kind as keyof typeof PCIE_PRESETS];
  if (!preset) throw new RangeError(`${link.name}: ${link.kind} is not a PCIe preset`);
  const lanes = link.lanes ?? 16;
  const bw = Math.round((preset.bandwidth * lanes) / 16);
  return {
    h2dBandwidth: link.h2dBandwidth ?? bw,
    d2hBandwidth: link.d2hBandwidth ?? bw,
    alpha: link.alpha ?? preset.alpha,
    sharing,
  };
}
