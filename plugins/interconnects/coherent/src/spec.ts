/**
 * Coherent-link presets (per direction), derived in docs/references.md:
 *
 * | preset     | h2d β          | d2h β          | α per DMA     | CPU access to device memory |
 * |------------|----------------|----------------|---------------|-----------------------------|
 * | nvlink-c2c | 375 GB/s [S34] | 297 GB/s [S34] (measured, Schieffer et al. 2024; 450 GB/s/dir peak [S35]) | 1 µs (assumption: copy-engine setup) | latency +150 ns (assumption), bandwidth 297 GB/s (the measured d2h figure [S34]) |
 * | cxl        | 50.4 GB/s      | 50.4 GB/s      | 1.5 µs (assumption: as PCIe 5) | latency +80 ns (midpoint of "+70–90 ns per load" [S36, S37]), bandwidth 50.4 GB/s |
 *
 * CXL: a x16 Gen5 type-3 memory expander, ≈63 GB/s theoretical [S28] at ≈80% effective; latency [S36, S37].
 * `cpuAccessLatency` is the latency a CPU load to device memory adds over a local DRAM access.
 */
import type { LinkSharing } from "@hmmsim/machine";

export interface CoherentPreset {
  h2dBandwidth: number;
  d2hBandwidth: number;
  alpha: number;
  /** ps added to a CPU load from device memory. */
  cpuAccessLatency: number;
  /** B/s of CPU loads/stores to device memory. */
  cpuAccessBandwidth: number;
}

export type CoherentPresetKind = "nvlink-c2c" | "cxl";

export const COHERENT_PRESETS: Readonly<Record<CoherentPresetKind, Readonly<CoherentPreset>>> = Object.freeze({
  "nvlink-c2c": Object.freeze({
    h2dBandwidth: 375_000_000_000,
    d2hBandwidth: 297_000_000_000,
    alpha: 1_000_000,
    cpuAccessLatency: 150_000,
    cpuAccessBandwidth: 297_000_000_000,
  }),
  cxl: Object.freeze({
    h2dBandwidth: 50_400_000_000,
    d2hBandwidth: 50_400_000_000,
    alpha: 1_500_000,
    cpuAccessLatency: 80_000,
    cpuAccessBandwidth: 50_400_000_000,
  }),
});

/** A peer-link preset: NVLink between two GPUs (per direction). */
export interface NvlinkPeerPreset {
  /** NVLink links per GPU (each 25 GB/s per direction; documentation). */
  links: number;
  /** Nominal per-direction bandwidth, B/s (documentation; not used for timing). */
  peakBandwidth: number;
  /** Effective per-direction bandwidth, B/s (the model's β, both directions). */
  bandwidth: number;
  /** Per-transfer fixed cost α, ps. */
  alpha: number;
}

export type NvlinkPeerKind = "nvlink3" | "nvlink4";

/**
 * NVLink between two GPUs: peer links (a spec link with `peers: [a, b]`), device → device DMA and native atomics
 * across the link (PeerInterconnect.peerAtomics: UVM gives NVLink peers `has_native_atomics`, PCIe peers not;
 * uvm_va_space.c enable_peers [S104]). The CPU has no access through them (isCoherentLink false). They belong to
 * this package because what sets them apart from PCIe peer-to-peer is what the coherent links have: loads, stores
 * and atomics to another processor's memory, coherently, over the link (as NVLink-C2C gives the CPU).
 *
 * | kind      | GPU                 | β nominal            | β effective (model)      | α per DMA            |
 * |-----------|---------------------|----------------------|--------------------------|----------------------|
 * | `nvlink3` | A100, NVLink 3      | 300 GB/s [S33] (12 links × 25 GB/s [S100]) | 270 GB/s (90 %, assumption) | 1 µs (assumption) |
 * | `nvlink4` | H100 SXM, NVLink 4  | 450 GB/s [S100] (18 links × 25 GB/s)       | 405 GB/s (90 %, assumption) | 1 µs (assumption) |
 *
 * The full figure is what two GPUs get through NVSwitch (DGX/HGX: every GPU's links go to the switches) or with all
 * links between the pair; a pair joined by fewer links gets links × 25 GB/s: override `h2dBandwidth` and
 * `d2hBandwidth`. 90 % of nominal is an assumption (the PCIe presets are at ≈ 80 %, PCIe P2P under a switch measures
 * 86 % [S101]). α: copy-engine setup as the `nvlink-c2c` preset's 1 µs (assumption: no source measured it).
 */
export const NVLINK_PEER_PRESETS: Readonly<Record<NvlinkPeerKind, Readonly<NvlinkPeerPreset>>> = Object.freeze({
  nvlink3: Object.freeze({ links: 12, peakBandwidth: 300_000_000_000, bandwidth: 270_000_000_000, alpha: 1_000_000 }),
  nvlink4: Object.freeze({ links: 18, peakBandwidth: 450_000_000_000, bandwidth: 405_000_000_000, alpha: 1_000_000 }),
});

/**
 * The link kind of a coherent link with the spec's own figures: h2dBandwidth, d2hBandwidth and alpha are required;
 * cpuAccessLatency defaults to CUSTOM_COHERENT_DEFAULTS.cpuAccessLatency (CXL's +80 ns, the conservative coherent
 * fabric) and cpuAccessBandwidth to the link's d2hBandwidth (a CPU load moves data device → host). Its
 * non-coherent counterpart is `custom` (@hmmsim/interconnect-pcie).
 */
export const CUSTOM_COHERENT_LINK_KIND = "custom-coherent";

/**
 * The default CPU-access latency of a custom-coherent link, ps: the cxl preset's +80 ns. (Its cpuAccessBandwidth
 * defaults to the link's own d2hBandwidth.)
 */
export const CUSTOM_COHERENT_DEFAULTS: Readonly<{ cpuAccessLatency: number }> = Object.freeze({
  cpuAccessLatency: COHERENT_PRESETS.cxl.cpuAccessLatency,
});

/** The link kinds CoherentPlugin provides: the host-link presets, the NVLink peer presets, then `custom-coherent`. */
export const COHERENT_LINK_KINDS: readonly string[] = Object.freeze([...Object.keys(COHERENT_PRESETS), ...Object.keys(NVLINK_PEER_PRESETS), CUSTOM_COHERENT_LINK_KIND]);

/** True for the NVLink peer kinds (nvlink3, nvlink4). */
export function isNvlinkPeerKind(kind: string): kind is NvlinkPeerKind {
  return Object.hasOwn(NVLINK_PEER_PRESETS, kind);
}

export interface CoherentSpec {
  /** How concurrent same-direction DMA transfers share a link: "ps" (processor sharing) or "fifo". */
  sharing: LinkSharing;
}

export const defaultSpec: Readonly<CoherentSpec> = Object.freeze({ sharing: "ps" });
