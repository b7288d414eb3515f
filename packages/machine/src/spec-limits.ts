/**
 * The limits a machine spec is checked against, each with its reason. A value outside them used to pass the schema
 * and then fail deep inside the kernel, a driver or the engine (with a stack), or run for hours; the schema now
 * reports it with its path and the reason (packages/machine/README.md, "Limits").
 */
import { MAX_PFN } from "@hmmsim/core";

const MiB = 2 ** 20;
const PAGE = 4096;
/** 512 pages: the kernel places RAM and every device range on 2 MiB (PMD) boundaries of the pfn space. */
const PMD_PAGES = 512;

export const SPEC_LIMITS = Object.freeze({
  /**
   * Devices and links in one spec: 4096 each (as cpus.count). A real machine has a few dozen; the bound keeps
   * validation, composition and the summary small (a 28,600-link spec took seconds to compose and printed a
   * summary of 57,000 rows).
   */
  maxDevices: 4096,
  maxLinks: 4096,
  /** Policies one device runs together (`devices[i].policy` as a list): a few in practice (UVM's defaults are 3). */
  maxDevicePolicies: 32,
  /**
   * RAM pages: below half of the page store's 2^32 pfns (@hmmsim/core's Kernel: the other half is for device
   * memory), on a 2 MiB boundary: 8 TiB − 2 MiB.
   */
  maxRamBytes: (Math.floor(MAX_PFN / 2 / PMD_PAGES) * PMD_PAGES) * PAGE,
  /**
   * Every pfn the machine has (RAM, the zero page, each device's memory on its own 2 MiB boundary) must lie below
   * the page store's 2^32 − 1 pfns (16 TiB of 4 KiB pages).
   */
  maxPfn: MAX_PFN,
  /** CPU clock: 1 MHz to 100 GHz. Below, a "GHz" typo in Hz ("3" for 3 GHz); above, no CPU. */
  minFrequencyHz: 1e6,
  maxFrequencyHz: 1e11,
  /**
   * Link bandwidths (h2d, d2h, cpuAccess): 1 MB/s to 1 PB/s. At 1 MB/s the whole 2^53 ps (≈ 9007 s) horizon of
   * virtual time moves only 9 GB, about one working set; real links run at 1–1000 GB/s. Above 1 PB/s a transfer
   * of a page takes under 4 ps: a unit mistake.
   */
  minBandwidth: 1e6,
  maxBandwidth: 1e15,
  /**
   * Per-transfer and per-access link latencies (alpha, cpuAccessLatency): at most 1 s. PCIe's α is ≈ 1.5 µs; a
   * second per transfer is a unit mistake, and 9007 of them fill the virtual-time horizon.
   */
  maxLatencyPs: 1e12,
  /** Problems a SpecError message lists (the rest are counted: "… and N more"); SpecError.issues keeps them all. */
  maxReportedIssues: 100,
  /**
   * Spec text: at most 4 MiB. 4096 devices and 4096 links with comments come to about 2 MiB; a bigger text is
   * not a machine description (a 50 MB spec exhausted the heap).
   */
  maxSpecTextBytes: 4 * MiB,
});

/** First pfn after RAM and the zero page, as @hmmsim/core's Kernel lays them out (device ranges start there). */
export function firstDevicePfn(ramBytes: number): number {
  return Math.ceil((ramBytes / PAGE + 1) / PMD_PAGES) * PMD_PAGES;
}

/**
 * The index of the first device whose memory no longer fits below the page store's pfn limit (the devices in spec
 * order after RAM, each on a 2 MiB boundary, as memremapPages places them), or -1 when all fit.
 */
export function firstDeviceOverPfnLimit(ramBytes: number, deviceBytes: readonly number[]): number {
  let pfn = firstDevicePfn(ramBytes);
  for (let i = 0; i < deviceBytes.length; i++) {
    pfn = Math.ceil(pfn / PMD_PAGES) * PMD_PAGES + Math.ceil(deviceBytes[i]! / PAGE);
    if (pfn > SPEC_LIMITS.maxPfn) return i;
  }
  return -1;
}
