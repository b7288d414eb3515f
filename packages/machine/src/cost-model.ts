/**
 * Cost models: what each kernel/driver operation costs in virtual time (integer ps). One small interface per
 * kind, each with its own token (tokens.ts), so a plugin can replace one model; `CostModel` maps the core's
 * cost kinds onto them. Defaults (CostSpec, `defaultCostSpec`) cite their sources by [Sx] key (docs/references.md);
 * figures marked "assumption" have no source and are there to be overridden.
 */
import { inject, injectable } from "tsyringe";
import type { LinkDirection } from "./interconnect.js";
import type { MachineSpec as MachineSpecT } from "./machine-spec.js";
import { CostSpec as CostSpecToken, MachineSpec } from "./tokens.js";

/** The cost kinds, by their machine-side names (core's names in parentheses; kernel-wiring.ts maps them). */
export const CPU_FAULT = "CPU_FAULT"; // one handled CPU page fault (core "cpuFault"); count = faults
export const PAGE_ZERO = "PAGE_ZERO"; // clear_page (core "pageZero"); count = 4 KiB pages
export const PAGE_COPY = "PAGE_COPY"; // copy_page by the CPU (core "pageCopy"); count = 4 KiB pages
export const PTE_UPDATE = "PTE_UPDATE"; // set/clear one PTE (core "pteUpdate"); count = PTEs
export const TLB_SHOOTDOWN = "TLB_SHOOTDOWN"; // one flush_tlb_range with IPIs (core "tlbShootdown"); count = pages in the range
export const DEVICE_FAULT = "DEVICE_FAULT"; // one device fault-service round (a batch); count = faults in the batch
export const DMA = "DMA"; // one DMA transfer, uncontended; count = bytes
export type CostKind = "CPU_FAULT" | "PAGE_ZERO" | "PAGE_COPY" | "PTE_UPDATE" | "TLB_SHOOTDOWN" | "DEVICE_FAULT" | "DMA";
export const COST_KINDS: readonly CostKind[] = Object.freeze([CPU_FAULT, PAGE_ZERO, PAGE_COPY, PTE_UPDATE, TLB_SHOOTDOWN, DEVICE_FAULT, DMA]);

export interface CpuFaultCost {
  /** Entry/exit and bookkeeping of `faults` CPU page faults (handle_mm_fault), excluding zeroing/copying. */
  cpuFault(faults: number): number;
}
export interface PageZeroCost {
  pageZero(pages: number): number;
}
export interface PageCopyCost {
  pageCopy(pages: number): number;
}
export interface PteUpdateCost {
  pteUpdate(ptes: number): number;
}
export interface TlbShootdownCost {
  /** One flush_tlb_range of `pages` pages: α + k·(target cores); see TlbShootdownModel. */
  tlbShootdown(pages: number): number;
}
export interface DeviceFaultCost {
  /** One fault-service round handling a batch of `faults` replayable faults. */
  deviceFault(faults: number): number;
}
export interface DmaCost {
  /** Uncontended DMA time of `bytes` over `device`'s link (delegates to the link's transferTime). */
  dmaTime(device: string, dir: LinkDirection, bytes: number): number;
  /** DMA over `device`'s link with contention; awaited inside an engine task. */
  dma(device: string, dir: LinkDirection, bytes: number): Promise<void>;
}

/** Maps a cost kind and count to picoseconds (the sink the machine installs on the kernel uses it). */
export interface CostModel {
  cost(kind: CostKind, count: number): number;
}

/** The figures of the default models. All times integer ps, bandwidths bytes/s. */
export interface CostSpec {
  /** Per CPU page fault: trap, handle_mm_fault walk, return. Assumption: 1 µs. */
  cpuFaultPs: number;
  /** clear_page bandwidth. Assumption: 10 GB/s per core (409.6 ns per 4 KiB page). */
  pageZeroBandwidth: number;
  /** copy_page bandwidth (read + write). Assumption: 5 GB/s per core (819.2 ns per page). */
  pageCopyBandwidth: number;
  /** Per PTE written or cleared. Assumption: 10 ns. */
  pteUpdatePs: number;
  /** TLB shootdown fixed cost α: local flush + IPI send, "about 1–3 µs per IPI round trip" [S39]: 1 µs. */
  tlbShootdownAlphaPs: number;
  /** TLB shootdown per target core k: "≈1.5 µs × cores" [S39]: 1.5 µs. */
  tlbShootdownPerCorePs: number;
  /**
   * Device far-fault service per round: 45 µs, UVMSmart's whole-fault latency (66,645 cycles @ 1481 MHz) [S14]
   * (the literature uses 20–50 µs [S24]). Charged once per service round, so a batch of one
   * fault costs what UVMSmart charges per fault.
   */
  deviceFaultPs: number;
  /** Added per fault in a batch. Default 0 (batch time dominated by the round, Kim et al. [S25]). */
  deviceFaultPerFaultPs: number;
}

export const PAGE_SIZE = 4096;

export const defaultCostSpec: Readonly<CostSpec> = Object.freeze({
  cpuFaultPs: 1_000_000,
  pageZeroBandwidth: 10_000_000_000,
  pageCopyBandwidth: 5_000_000_000,
  pteUpdatePs: 10_000,
  tlbShootdownAlphaPs: 1_000_000,
  tlbShootdownPerCorePs: 1_500_000,
  deviceFaultPs: 45_000_000,
  deviceFaultPerFaultPs: 0,
});

/** ⌈bytes·10^12 / bandwidth⌉ ps, exact (BigInt). */
export function bytesToPs(bytes: number, bandwidth: number): number {
  const b = BigInt(bandwidth);
  return Number((BigInt(bytes) * 1_000_000_000_000n + b - 1n) / b);
}

@injectable()
export class CpuFaultModel implements CpuFaultCost {
  constructor(@inject(CostSpecToken) private readonly spec: CostSpec) {}
  cpuFault(faults: number): number {
    return faults * this.spec.cpuFaultPs;
  }
}

@injectable()
export class PageZeroModel implements PageZeroCost {
  private readonly perPage: number;
  constructor(@inject(CostSpecToken) spec: CostSpec) {
    this.perPage = bytesToPs(PAGE_SIZE, spec.pageZeroBandwidth);
  }
  pageZero(pages: number): number {
    return pages * this.perPage;
  }
}

@injectable()
export class PageCopyModel implements PageCopyCost {
  private readonly perPage: number;
  constructor(@inject(CostSpecToken) spec: CostSpec) {
    this.perPage = bytesToPs(PAGE_SIZE, spec.pageCopyBandwidth);
  }
  pageCopy(pages: number): number {
    return pages * this.perPage;
  }
}

@injectable()
export class PteUpdateModel implements PteUpdateCost {
  constructor(@inject(CostSpecToken) private readonly spec: CostSpec) {}
  pteUpdate(ptes: number): number {
    return ptes * this.spec.pteUpdatePs;
  }
}

/**
 * α + k·(activeCores − 1): the initiator flushes locally and IPIs every other CPU in the mm's cpumask (the CPUs
 * running the process, `cpus.activeCores`, not every CPU of the machine). Independent of the page count:
 * Linux folds more than tlb_single_page_flush_ceiling = 33 pages into a full flush, and the IPI round trip
 * dominates either way [S39].
 */
@injectable()
export class TlbShootdownModel implements TlbShootdownCost {
  private readonly cpus: number;
  constructor(
    @inject(CostSpecToken) private readonly spec: CostSpec,
    @inject(MachineSpec) machine: Pick<MachineSpecT, "cpus">,
  ) {
    this.cpus = machine.cpus.activeCores;
  }
  tlbShootdown(_pages: number): number {
    return this.spec.tlbShootdownAlphaPs + this.spec.tlbShootdownPerCorePs * Math.max(0, this.cpus - 1);
  }
}

@injectable()
export class DeviceFaultModel implements DeviceFaultCost {
  constructor(@inject(CostSpecToken) private readonly spec: CostSpec) {}
  deviceFault(faults: number): number {
    return this.spec.deviceFaultPs + faults * this.spec.deviceFaultPerFaultPs;
  }
}

/** Validates a (partial) cost spec; throws RangeError naming the field. */
export function resolveCostSpec(overrides: Partial<CostSpec> = {}): CostSpec {
  const spec = { ...defaultCostSpec, ...overrides };
  for (const [k, v] of Object.entries(spec)) {
    if (!(k in defaultCostSpec)) throw new RangeError(`CostSpec.${k}: unknown field`);
    const positive = k.endsWith("Bandwidth");
    if (!Number.isSafeInteger(v) || v < 0 || (positive && v === 0)) {
      throw new RangeError(`CostSpec.${k}: must be a ${positive ? "positive" : "non-negative"} integer, got ${v}`);
    }
  }
  return spec;
}
