/**
 * A cache-coherent link (NVLink-C2C, CXL): DMA like any link (α + ⌈bytes·10^12/β⌉ per transfer, two
 * independent directions) plus coherent CPU loads/stores to device memory, so device memory behind it may be
 * MEMORY_DEVICE_COHERENT and the CPU may use it in place instead of migrating it back.
 * CPU access time is uncontended: cpuAccessLatency + ⌈bytes·10^12/cpuAccessBandwidth⌉ ps (it does not occupy
 * the DMA channels).
 */
import { Engine } from "@hmmsim/engine";
import {
  type CoherentInterconnect,
  DuplexLink,
  type Interconnect,
  InterconnectError,
  type LinkContext,
  type LinkParams,
  type LinkSharing,
  type LinkSpec,
  PeerLink,
  bytesToPs,
} from "@hmmsim/machine";
import { COHERENT_PRESETS, CUSTOM_COHERENT_DEFAULTS, CUSTOM_COHERENT_LINK_KIND, type CoherentPreset, type CoherentPresetKind, NVLINK_PEER_PRESETS, isNvlinkPeerKind } from "./spec.js";

export interface CoherentLinkParams extends LinkParams {
  cpuAccessLatency: number;
  cpuAccessBandwidth: number;
}

export class CoherentLink extends DuplexLink implements CoherentInterconnect {
  override readonly supportsCoherentAccess = true as const;
  readonly cpuAccessLatency: number;
  readonly cpuAccessBandwidth: number;
  private readonly engine: Engine;

  constructor(name: string, kind: LinkSpec["kind"], params: CoherentLinkParams, ctx: LinkContext) {
    super(name, kind, params, true, ctx);
    this.cpuAccessLatency = params.cpuAccessLatency;
    this.cpuAccessBandwidth = params.cpuAccessBandwidth;
    this.engine = ctx.engine;
  }

  cpuAccessTime(bytes: number): number {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new InterconnectError(`${this.name}.cpuAccessTime: bytes must be a non-negative safe integer, got ${bytes}`);
    return this.cpuAccessLatency + bytesToPs(bytes, this.cpuAccessBandwidth);
  }

  /** A CPU access of `bytes` to device memory; awaited inside an engine task, it sleeps cpuAccessTime(bytes). */
  cpuAccess(bytes: number): Promise<void> {
    return this.engine.sleep(this.cpuAccessTime(bytes));
  }
}

/**
 * The figures of a spec link (validated by coherentLinkSpecIssues): its preset, then the spec's overrides; a
 * custom-coherent link's own figures, cpuAccessLatency defaulting to CUSTOM_COHERENT_DEFAULTS and
 * cpuAccessBandwidth to the link's d2hBandwidth.
 */
export function coherentLinkParams(link: LinkSpec, sharing: LinkSharing): CoherentLinkParams {
  let preset: Partial<CoherentPreset> | undefined;
  if (link.kind === CUSTOM_COHERENT_LINK_KIND) preset = {};
  else if (Object.hasOwn(COHERENT_PRESETS, link.kind)) preset = COHERENT_PRESETS[link.kind as CoherentPresetKind];
  if (!preset) throw new RangeError(`${link.name}: ${link.kind} is not a coherent link kind`);
  const pick = (field: keyof CoherentPreset, fallback?: number): number => {
    const v = link[field] ?? preset[field] ?? fallback;
    if (v === undefined) throw new RangeError(`${link.name}.${field}: required for a custom-coherent link`);
    return v;
  };
  const d2h = pick("d2hBandwidth");
  return {
    h2dBandwidth: pick("h2dBandwidth"),
    d2hBandwidth: d2h,
    alpha: pick("alpha"),
    sharing,
    cpuAccessLatency: pick("cpuAccessLatency", CUSTOM_COHERENT_DEFAULTS.cpuAccessLatency),
    cpuAccessBandwidth: pick("cpuAccessBandwidth", d2h),
  };
}

/**
 * The figures of an NVLink peer link (nvlink3, nvlink4; validated by coherentLinkSpecIssues): the preset's β in both
 * directions and its α, then the spec's overrides (`h2dBandwidth` is peers[0] → peers[1], `d2hBandwidth` the other
 * way).
 */
export function nvlinkPeerLinkParams(link: LinkSpec, sharing: LinkSharing): LinkParams {
  if (!isNvlinkPeerKind(link.kind)) throw new RangeError(`${link.name}: ${link.kind} is not an NVLink peer kind`);
  const p = NVLINK_PEER_PRESETS[link.kind];
  return { h2dBandwidth: link.h2dBandwidth ?? p.bandwidth, d2hBandwidth: link.d2hBandwidth ?? p.bandwidth, alpha: link.alpha ?? p.alpha, sharing };
}

/**
 * The link of a spec link of one of CoherentPlugin's kinds: a CoherentLink (nvlink-c2c, cxl, custom-coherent), or a
 * PeerLink with native atomics across it (PeerInterconnect.peerAtomics true) for nvlink3 / nvlink4.
 */
export function buildCoherentLink(link: LinkSpec, sharing: LinkSharing, ctx: LinkContext): Interconnect {
  if (isNvlinkPeerKind(link.kind)) {
    if (!link.peers) throw new RangeError(`${link.name}: an ${link.kind} link needs peers`);
    return new PeerLink(link.name, link.kind, nvlinkPeerLinkParams(link, sharing), link.peers, true, ctx);
  }
  return new CoherentLink(link.name, link.kind, coherentLinkParams(link, sharing), ctx);
}
