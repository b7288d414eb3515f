/**
 * The timing-plane hooks of a Kernel: a cost sink the machine layer fills to charge the current task, and
 * trace points (nullable functions, cheap when null). The core never formats output.
 */
import type { MmuNotifierRange } from "./mmu-notifier-range.js";
import type { Mm } from "./mm.js";

/** What a kernel operation costs; the machine's cost models turn a count into time. */
export type CostKind =
  | "cpuFault" // one handled CPU page fault (handle_mm_fault entry)
  | "pageZero" // one 4 KiB page cleared
  | "pageCopy" // one 4 KiB page copied
  | "pteUpdate" // one page-table entry written or cleared
  | "tlbShootdown"; // one TLB flush of a range (flush_tlb_range), count = pages

export type CostSink = (kind: CostKind, count: number) => void;

export interface KernelTracepoints {
  /** After handle_mm_fault: (mm, address, FAULT_FLAG_*, VM_FAULT_* result). */
  pageFault: ((mm: Mm, address: number, flags: number, ret: number) => void) | null;
  /** At each mmu_notifier_invalidate_range_start the core sends. */
  invalidate: ((range: MmuNotifierRange<Mm>) => void) | null;
  /** mm_page_alloc: (pfn, order). */
  pageAlloc: ((pfn: number, order: number) => void) | null;
  /** mm_page_free: (pfn, order). */
  pageFree: ((pfn: number, order: number) => void) | null;
}

export function emptyTracepoints(): KernelTracepoints {
  return { pageFault: null, invalidate: null, pageAlloc: null, pageFree: null };
}
