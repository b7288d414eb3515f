/**
 * The one place that adapts @hmmsim/core's Kernel to the machine: builds the kernel from the spec, installs the
 * cost sink (core cost kinds → the machine's CostKind → the CostLedger of the current task) and routes the
 * kernel's trace-point slots (packages/core/src/cost.ts: `CostSink`, `KernelTracepoints`) to MachineTrace hooks.
 * A slot is set only once its hook has a tap: an untapped trace point stays null in the kernel, which is the
 * core's "costs nothing" contract.
 */
import { type CostKind as CoreCostKind, FAULT_FLAG_WRITE, type Kernel, type Mm, type MmuNotifierRange, createKernel } from "@hmmsim/core";
import type { CostLedger } from "./cost-ledger.js";
import { CPU_FAULT, type CostKind, PAGE_COPY, PAGE_ZERO, PTE_UPDATE, TLB_SHOOTDOWN } from "./cost-model.js";
import type { MachineSpec } from "./machine-spec.js";
import { MachineTrace } from "./trace-points.js";

export type { CoreCostKind };

/** core cost kind → machine cost kind. */
export const CORE_COST_KINDS: Readonly<Record<CoreCostKind, CostKind>> = Object.freeze({
  cpuFault: CPU_FAULT,
  pageZero: PAGE_ZERO,
  pageCopy: PAGE_COPY,
  pteUpdate: PTE_UPDATE,
  tlbShootdown: TLB_SHOOTDOWN,
});

/** The machine's kernel: @hmmsim/core's Kernel. */
export type MachineKernel = Kernel;

/** Builds the machine's kernel: `createKernel({ ramBytes: spec.ram.size, bytes: spec.bytes })`. */
export function createMachineKernel(spec: MachineSpec): MachineKernel {
  return createKernel({ ramBytes: spec.ram.size, bytes: spec.bytes });
}

/** Installs the cost sink and the trace-point routing on `kernel` for `machine`. */
export function wireKernel(kernel: MachineKernel, ledger: CostLedger, machine: { readonly now: number }): void {
  kernel.charge = (kind, count) => ledger.charge(CORE_COST_KINDS[kind], count);
  const hooks = MachineTrace.getHooks(machine);
  const tp = kernel.tracepoints;
  const pageFault = (mm: Mm, address: number, flags: number, ret: number): void =>
    hooks.pageFault.call({ source: "cpu", device: null, mm, address, write: (flags & FAULT_FLAG_WRITE) !== 0, flags, ret, timePs: machine.now });
  const invalidate = (r: MmuNotifierRange<Mm>): void =>
    hooks.invalidate.call({ mm: r.mm, start: r.start, end: r.end, event: r.event, owner: r.owner, timePs: machine.now });
  // tapable cannot remove taps: set a slot now if its hook is tapped, or when its first tap registers
  if (hooks.pageFault.isUsed()) tp.pageFault = pageFault;
  if (hooks.invalidate.isUsed()) tp.invalidate = invalidate;
  hooks.pageFault.intercept({
    register: (tap) => {
      tp.pageFault = pageFault;
      return tap;
    },
  });
  hooks.invalidate.intercept({
    register: (tap) => {
      tp.invalidate = invalidate;
      return tap;
    },
  });
}


