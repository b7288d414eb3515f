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
 * The link kind of a non-coherent link with the spec's own figures (h2dBandwidth, d2hBandwidth and alpha
 * required). Its coherent counterpart is `custom-coherent` (@hmmsim/interconnect-coherent).
 */
export const CUSTOM_LINK_KIND = "custom";

/** The link kinds PciePlugin provides: the presets, then `custom`. */
export const PCIE_LINK_KINDS: readonly string[] = Object.freeze([...Object.keys(PCIE_PRESETS), CUSTOM_LINK_KIND]);

/** The plugin's spec (plain JSON). */
export interface PcieSpec {
  /** How concurrent same-direction transfers share a link: "ps" (processor sharing) or "fifo". */
  sharing: LinkSharing;
}

export const defaultSpec: Readonly<PcieSpec> = Object.freeze({ sharing: "ps" });
