/**
 * PCIe presets (per direction, x16), derived in docs/references.md:
 *
 * | preset   | β peak (theor.) | β eff (default)            | α per DMA                                   |
 * |----------|-----------------|----------------------------|---------------------------------------------|
 * | pcie3x16 | 15.75 GB/s [S28]| 12 GB/s (UVMSmart fit) [S14]| 1.5 µs (fit: 4 KiB → 1.76 µs) [S14]         |
 * | pcie4x16 | 31.5 GB/s [S28] | 25 GB/s (≈80%) [S33]        | 1.5 µs                                      |
 * | pcie5x16 | 63.0 GB/s [S28] | 52 GB/s (≈83%; 55.6 seen) [S28, S29] | 1.5 µs (DMA setup does not shrink with the generation) |
 *
 * Bandwidths are decimal (GB = 10^9 B). Fewer lanes scale β by lanes/16.
 */
import type { LinkSharing } from "@hmmsim/machine";

export type PcieGen = 3 | 4 | 5;

export interface PciePreset {
  gen: PcieGen;
  /** Theoretical per-direction bandwidth at x16, B/s (documentation; not used for timing). */
  peakBandwidth: number;
  /** Effective per-direction bandwidth at x16, B/s (the model's β). */
  bandwidth: number;
  /** Per-transfer fixed cost α, ps. */
  alpha: number;
}

export type PciePresetKind = "pcie3x16" | "pcie4x16" | "pcie5x16";

export const PCIE_PRESETS: Readonly<Record<PciePresetKind, Readonly<PciePreset>>> = Object.freeze({
  pcie3x16: Object.freeze({ gen: 3, peakBandwidth: 15_750_000_000, bandwidth: 12_000_000_000, alpha: 1_500_000 }),
  pcie4x16: Object.freeze({ gen: 4, peakBandwidth: 31_500_000_000, bandwidth: 25_000_000_000, alpha: 1_500_000 }),
  pcie5x16: Object.freeze({ gen: 5, peakBandwidth: 63_000_000_000, bandwidth: 52_000_000_000, alpha: 1_500_000 }),
});

/**
 * The peer kind: peer-to-peer between two devices through a PCIe switch (a spec link with `peers: [a, b]`), one
 * DMA from one device's memory into the other's without a copy through system RAM. Its figures are those of the
 * link each device has to the switch, a PCIe 4.0 x16 link unless the spec says otherwise (`lanes`, `alpha`,
 * `h2dBandwidth`, `d2hBandwidth` override them, as for the presets):
 *
 *  - β 25 GB/s per direction: the `pcie4x16` preset's effective bandwidth (31.5 GB/s peak [S28], ≈ 80 % [S33]).
 *    Under one switch a P2P write runs at about the same share of line rate as host DMA: PCIe 5.0 x16 P2P measured
 *    at about 54 GB/s of 63 (86 %) through Broadcom PEX switches [S101]. Assumption: both devices sit under one
 *    switch with ACS off; through the root complex (or across sockets) P2P is slower [S101]: lower the bandwidth.
 *  - α 1.5 µs: the PCIe presets' per-DMA setup [S14] (a peer copy is set up like a host copy).
 *  - no atomics across it (PeerInterconnect.peerAtomics false): NVIDIA UVM gives PCIe peers no native atomics,
 *    only NVLink peers (uvm_va_space.c enable_peers [S104]).
 */
export const PCIE_P2P_LINK_KIND = "pcie-p2p";

export const PCIE_P2P_PRESET: Readonly<PciePreset> = Object.freeze({ ...PCIE_PRESETS.pcie4x16 });

/**
 * The link kind of a non-coherent link with the spec's own figures (h2dBandwidth, d2hBandwidth and alpha
 * required): a host link, or with `peers: [a, b]` a peer link (h2dBandwidth a → b, d2hBandwidth b → a). Its coherent
 * counterpart is `custom-coherent` (@hmmsim/interconnect-coherent).
 */
export const CUSTOM_LINK_KIND = "custom";

/** The link kinds PciePlugin provides: the presets, `pcie-p2p`, then `custom`. */
export const PCIE_LINK_KINDS: readonly string[] = Object.freeze([...Object.keys(PCIE_PRESETS), PCIE_P2P_LINK_KIND, CUSTOM_LINK_KIND]);

/** The plugin's spec (plain JSON). */
export interface PcieSpec {
  /** How concurrent same-direction transfers share a link: "ps" (processor sharing) or "fifo". */
  sharing: LinkSharing;
}

export const defaultSpec: Readonly<PcieSpec> = Object.freeze({ sharing: "ps" });
