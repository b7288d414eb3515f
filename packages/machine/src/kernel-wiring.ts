/**
 * The one place that adapts @hmmsim/core's Kernel to the machine: builds the kernel from the spec, installs the
 * cost sink (core cost kinds → the machine's CostKind → the CostLedger of the current task) and routes the
 * kernel's trace-point slots to MachineTrace hooks (set only while the hook has taps: an untapped trace point
 * stays null in the kernel, which is the core's "costs nothing" contract).
 *
 * The slot shapes below mirror packages/core/src/cost.ts (`CostSink`, `KernelTracepoints`).
 */
import * as core from "@hmmsim/core";
import type { CostLedger } from "./cost-ledger.js";
import { CPU_FAULT, type CostKind, PAGE_COPY, PAGE_ZERO, PTE_UPDATE, TLB_SHOOTDOWN } from "./cost-model.js";
import type { MachineSpec } from "./machine-spec.js";
import { MachineTrace } from "./trace-points.js";

/** core's CostKind (packages/core/src/cost.ts). */
export type CoreCostKind = "cpuFault" | "pageZero" | "pageCopy" | "pteUpdate" | "tlbShootdown";

/** core cost kind → machine cost kind. */
export const CORE_COST_KINDS: Readonly<Record<CoreCostKind, CostKind>> = Object.freeze({
  cpuFault: CPU_FAULT,
  pageZero: PAGE_ZERO,
  pageCopy: PAGE_COPY,
  pteUpdate: PTE_UPDATE,
  tlbShootdown: TLB_SHOOTDOWN,
});

/** include/linux/mm_types.h FAULT_FLAG_WRITE (core's vm-fault.ts). */
const FAULT_FLAG_WRITE = 1 << 0;

interface CoreNotifierRange {
  mm: unknown;
  start: number;
  end: number;
  event: number;
  owner: unknown;
}

/** The parts of core's Kernel the machine touches (structurally; the token's type). */
export interface MachineKernel {
  charge: ((kind: CoreCostKind, count: number) => void) | null;
  readonly tracepoints: {
    pageFault: ((mm: never, address: number, flags: number, ret: number) => void) | null;
    invalidate: ((range: never) => void) | null;
  };
}

type CreateKernel = (opts: { ramBytes: number; bytes?: boolean }) => MachineKernel;

/** Builds the machine's kernel: `createKernel({ ramBytes: spec.ram.size, bytes: spec.bytes })` from @hmmsim/core. */
export function createMachineKernel(spec: MachineSpec): MachineKernel | null {
  const create = (core as Record<string, unknown>).createKernel as CreateKernel | undefined;
  return create ? create({ ramBytes: spec.ram.size, bytes: spec.bytes }) : null;
}

/** Installs the cost sink and the trace-point routing on `kernel` for `machine`. */
export function wireKernel(kernel: MachineKernel, ledger: CostLedger, machine: { readonly now: number }): void {
  kernel.charge = (kind, count) => ledger.charge(CORE_COST_KINDS[kind], count);
  const hooks = MachineTrace.getHooks(machine);
  const tp = kernel.tracepoints as {
    pageFault: ((mm: unknown, address: number, flags: number, ret: number) => void) | null;
    invalidate: ((range: CoreNotifierRange) => void) | null;
  };
  const pageFault = (mm: unknown, address: number, flags: number, ret: number): void =>
    hooks.pageFault.call({ source: "cpu", device: null, mm, address, write: (flags & FAULT_FLAG_WRITE) !== 0, flags, ret, timePs: machine.now });
  const invalidate = (r: CoreNotifierRange): void =>
    hooks.invalidate.call({ mm: r.mm, start: r.start, end: r.end, event: r.event, owner: r.owner, timePs: machine.now });
  // A slot is set once its hook has a tap (tapable cannot remove taps): now, or when the first tap registers.
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
