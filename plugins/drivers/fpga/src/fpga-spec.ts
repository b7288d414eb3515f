/**
 * The FPGA driver's plain-JSON spec (`FpgaDriverPlugin.defaultSpec`) and its validation. Figures cite their sources
 * by [Sx] key (docs/references.md); "assumption" marks a figure no source gives (there to be overridden). Device
 * memory size and type come from the machine spec's `devices[]`, not from here.
 *
 * The shell's figures are Coyote's hardware configuration (cmake/FindCoyoteHW.cmake [S62]): TLBS_S = 10 /
 * TLBS_A = 4 (the 4 KiB TLB: 2^10 entries, 4 ways), TLBL_S = 9 / TLBL_A = 2 (the 2 MiB TLB: 2^9 entries, 2 ways),
 * ACLK_F = 250 MHz, DATA_WIDTH = 64 bytes, PMTU_BYTES = 4096, N_STRM_AXI = 1 host stream. The driver reads the
 * same TLB geometry from the shell at probe time (driver/include/coyote_defs.h TLB_S_ORDER / TLB_S_ASSOC /
 * TLB_L_ORDER / TLB_L_ASSOC [S61]).
 */
import { PS_PER_US } from "@hmmsim/engine";
import { FpgaSpecError } from "./errors.js";

/** How a job's declared buffers reach the card (the programming model, per device or per job). */
export type FpgaJobMode = "fault" | "premigrate" | "premap";
export const FPGA_JOB_MODES: readonly FpgaJobMode[] = Object.freeze(["fault", "premigrate", "premap"]);

export interface FpgaDriverSpec {
  /** Streams of a job (each stalls on its own fault). Coyote's default N_STRM_AXI = 1 [S62]; up to 16. */
  streams: number;
  /** Shell clock, Hz: ACLK_F = 250 MHz [S62]. Converts tlbHitCycles. */
  clockHz: number;
  /** Bytes one stream beat moves: DATA_WIDTH = 64 B (a 512-bit AXI stream) [S62]. */
  accessBytes: number;
  /**
   * A stream reading or writing a host-mapped page moves it over the link in packets of PMTU_BYTES = 4096 [S62]:
   * the first beat of a stream in a host page moves one packet, the later beats in that page are on the card.
   */
  pmtuBytes: number;
  /** The 4 KiB TLB: 2^TLBS_S = 1024 entries, TLBS_A = 4 ways [S62]. */
  tlbSmallEntries: number;
  tlbSmallWays: number;
  /** The 2 MiB TLB: 2^TLBL_S = 512 entries, TLBL_A = 2 ways [S62]. */
  tlbLargeEntries: number;
  tlbLargeWays: number;
  /** TLB lookup on the card. Assumption: 2 cycles. */
  tlbHitCycles: number;
  /** Card memory bandwidth, B/s: DDR4 Alveo cards 77 GB/s [S64] (HBM cards: 460 GB/s). One beat costs ⌈accessBytes·10^12/β⌉ ps. */
  deviceMemoryBandwidth: number;
  /**
   * From the stream's TLB miss to the driver's page-fault work running: the MSI-X interrupt, `vfpga_isr` reading the
   * fault registers and queueing `vfpga_pfault_handler` [S61] (TaPaSCo: `iommu_page_fault_handler` →
   * `handle_iommu_page_fault` [S60]). Assumption: 1 µs, paid by every fault (no batching).
   */
  faultInterruptPs: number;
  /** The driver writing one TLB entry over MMIO (TaPaSCo `add_tlb_entry`: vaddr, paddr, command [S60]). Assumption: 250 ns. */
  tlbFillPs: number;
  /** Restarting the stalled stream (Coyote `restart_mmu` [S61]) until it issues again. Assumption: 1 µs. */
  restartPs: number;
  /**
   * A TLB shootdown on the card: the invalidation command and the wait for its completion (Coyote `tlb_unmap_hmm`
   * then the IRQ_INVLDT interrupt, `cyt_interval_invalidate` [S61]). Assumption: 2 µs per invalidation.
   */
  tlbInvalidatePs: number;
  /** Per device mapping cleared (TaPaSCo `invalidate_tlb_range` issues one command per page [S60]). Assumption: 100 ns. */
  tlbInvalidatePerPagePs: number;
  /**
   * The default programming model of the device's jobs (runJob's `mode` overrides it per job):
   *  - "fault": the job starts at once; every TLB miss stalls its stream and raises an interrupt;
   *  - "premigrate": the driver migrates the job's buffers to card memory and fills the TLBs before launch
   *    (TaPaSCo `pcie_svm_user_managed_migration_to_device` [S60], Coyote `user_migrate_to_card` [S61]);
   *  - "premap": the driver faults the buffers in on the host (hmm_range_fault) and maps them before launch, the
   *    data staying in host memory (Coyote's pinned-pages path).
   */
  jobMode: FpgaJobMode;
  /**
   * Forward progress: the most times one access may fault without completing before the job stops with
   * FpgaForwardProgressError. Assumption: 64 (neither driver bounds it; here so a thrashing run ends with a reason).
   */
  maxFaultsPerAccess: number;
}

export const defaultSpec: Readonly<FpgaDriverSpec> = Object.freeze({
  streams: 1,
  clockHz: 250_000_000,
  accessBytes: 64,
  pmtuBytes: 4096,
  tlbSmallEntries: 1024,
  tlbSmallWays: 4,
  tlbLargeEntries: 512,
  tlbLargeWays: 2,
  tlbHitCycles: 2,
  deviceMemoryBandwidth: 77_000_000_000,
  faultInterruptPs: 1 * PS_PER_US,
  tlbFillPs: 250_000,
  restartPs: 1 * PS_PER_US,
  tlbInvalidatePs: 2 * PS_PER_US,
  tlbInvalidatePerPagePs: 100_000,
  jobMode: "fault",
  maxFaultsPerAccess: 64,
});

/** The numeric fields of the spec (every field but jobMode). */
export type FpgaNumericSpecField = Exclude<keyof FpgaDriverSpec, "jobMode">;
const DELAY = { min: 0, max: 1e12, why: "ps (at most 1 s): the assumed figures are 0.1-2 µs" };

/** The range of each numeric field (inclusive), with its reason. */
export const FPGA_SPEC_BOUNDS: Readonly<Record<FpgaNumericSpecField, { readonly min: number; readonly max: number; readonly why: string }>> = Object.freeze({
  streams: { min: 1, max: 64, why: "Coyote supports up to 16 host streams per vFPGA (N_STRM_AXI) [S62]; each stream stalls on its own fault" },
  clockHz: { min: 1e6, max: 2e9, why: "Hz, 1 MHz to 2 GHz: FPGA shells run at 100-500 MHz" },
  accessBytes: { min: 1, max: 4096, why: "bytes: one beat lies within one 4 KiB page" },
  pmtuBytes: { min: 64, max: 4096, why: "bytes: a packet lies within one 4 KiB page (PMTU_BYTES = 4096 [S62])" },
  tlbSmallEntries: { min: 1, max: 2 ** 16, why: "a shell TLB has 2^TLBS_S entries (TLBS_S = 10 [S62]); the driver keeps 16 B of host memory per entry" },
  tlbSmallWays: { min: 1, max: 2 ** 16, why: "at most tlbSmallEntries, and a divisor of it" },
  tlbLargeEntries: { min: 1, max: 2 ** 16, why: "a shell TLB has 2^TLBL_S entries (TLBL_S = 9 [S62])" },
  tlbLargeWays: { min: 1, max: 2 ** 16, why: "at most tlbLargeEntries, and a divisor of it" },
  tlbHitCycles: { min: 0, max: 1e6, why: "cycles: a TLB lookup takes a few" },
  deviceMemoryBandwidth: { min: 1e6, max: 1e15, why: "B/s, 1 MB/s to 1 PB/s: DDR4 cards 77 GB/s, HBM cards 460 GB/s [S64]" },
  faultInterruptPs: DELAY,
  tlbFillPs: DELAY,
  restartPs: DELAY,
  tlbInvalidatePs: DELAY,
  tlbInvalidatePerPagePs: DELAY,
  maxFaultsPerAccess: { min: 1, max: 2 ** 20, why: "faults of one access before the job stops (forward progress)" },
});

const POSITIVE = new Set<string>(["streams", "clockHz", "accessBytes", "pmtuBytes", "tlbSmallEntries", "tlbSmallWays", "tlbLargeEntries", "tlbLargeWays", "deviceMemoryBandwidth", "maxFaultsPerAccess"]);

/**
 * The problems of `overrides` laid over `base` (default: the built-in defaults), each with its field and rule;
 * empty when the result is a valid spec. Plain JSON in, so a CLI can merge these with the machine spec's own issues.
 */
export function fpgaDriverSpecIssues(overrides: unknown, base: Readonly<FpgaDriverSpec> = defaultSpec): { field: string; rule: string }[] {
  if (overrides === null || typeof overrides !== "object" || Array.isArray(overrides)) {
    return [{ field: "spec", rule: `must be an object (a mapping of spec fields), got ${Array.isArray(overrides) ? "an array" : String(overrides)}` }];
  }
  const spec = { ...base, ...(overrides as object) } as FpgaDriverSpec;
  const issues: { field: string; rule: string }[] = [];
  for (const [k, v] of Object.entries(spec)) {
    if (!(k in defaultSpec)) {
      issues.push({ field: k, rule: `unknown field (known: ${Object.keys(defaultSpec).join(", ")})` });
      continue;
    }
    if (k === "jobMode") {
      if (!(FPGA_JOB_MODES as readonly unknown[]).includes(v)) issues.push({ field: k, rule: `must be one of ${FPGA_JOB_MODES.join(", ")}, got ${JSON.stringify(v) ?? String(v)}` });
      continue;
    }
    const positive = POSITIVE.has(k);
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || (positive && v === 0)) {
      issues.push({ field: k, rule: `must be a ${positive ? "positive" : "non-negative"} integer, got ${JSON.stringify(v) ?? String(v)}` });
      continue;
    }
    const b = FPGA_SPEC_BOUNDS[k as FpgaNumericSpecField];
    if (v > b.max) issues.push({ field: k, rule: `must be at most ${b.max} (${b.why}), got ${v}` });
    else if (v < b.min) issues.push({ field: k, rule: `must be at least ${b.min} (${b.why}), got ${v}` });
  }
  if (issues.length > 0) return issues;
  for (const [e, w] of [["tlbSmallEntries", "tlbSmallWays"], ["tlbLargeEntries", "tlbLargeWays"]] as const) {
    if (spec[w] > spec[e]) issues.push({ field: w, rule: `must be at most ${e} (${spec[e]}), got ${spec[w]}` });
    else if (spec[e] % spec[w] !== 0) issues.push({ field: w, rule: `must divide ${e} (${spec[e]}), got ${spec[w]}` });
  }
  if (spec.pmtuBytes < spec.accessBytes) issues.push({ field: "pmtuBytes", rule: `must be at least accessBytes (${spec.accessBytes}): a packet carries whole beats, got ${spec.pmtuBytes}` });
  return issues;
}

/** `base` (default: the built-in defaults) + overrides, validated: every problem is listed in one FpgaSpecError. */
export function resolveFpgaSpec(overrides: Partial<FpgaDriverSpec> = {}, base: Readonly<FpgaDriverSpec> = defaultSpec): Readonly<FpgaDriverSpec> {
  const issues = fpgaDriverSpecIssues(overrides, base);
  if (issues.length > 0) throw new FpgaSpecError(issues);
  return Object.freeze({ ...base, ...overrides } as FpgaDriverSpec);
}

/** round(cycles · 10^12 / Hz) ps. */
export function cyclesToPs(cycles: number, hz: number): number {
  return Math.round((cycles * 1e12) / hz);
}
