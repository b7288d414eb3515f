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

/** The link kinds CoherentPlugin provides: the presets, then `custom-coherent`. */
export const COHERENT_LINK_KINDS: readonly string[] = Object.freeze([...Object.keys(COHERENT_PRESETS), CUSTOM_COHERENT_LINK_KIND]);

export interface CoherentSpec {
  /** How concurrent same-direction DMA transfers share a link: "ps" (processor sharing) or "fifo". */
  sharing: LinkSharing;
}

export const defaultSpec: Readonly<CoherentSpec> = Object.freeze({ sharing: "ps" });
