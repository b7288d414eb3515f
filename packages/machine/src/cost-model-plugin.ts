/**
 * The default cost models as a plugin: registers `CostSpec` (defaultCostSpec + overrides) and one model per
 * kind token, plus the `CostModel` that maps each CostKind onto them and the `DmaCost` that delegates to the
 * device's link. Any of them can be replaced by a later plugin registering the same token.
 *
 * DMA is not a ledger cost. A DMA's time depends on the device's own link, its direction and the other traffic
 * sharing the link, none of which `CostModel.cost(kind, count)` knows; the links account for every DMA themselves
 * (busy time, bytes, transfers, the dmaTransfer trace point). So a DMA is performed, never charged as a kind:
 *   - inside a task: `await machine.dma.dma(device, dir, bytes)` (LinkDmaModel: the device's own link) or
 *     `await link.transfer(dir, bytes)`;
 *   - from synchronous code (a driver's migrate_to_ram inside a CPU fault): `ledger.chargeTransfer(link, dir,
 *     bytes)`, performed on the link at the task's next settle();
 *   - uncontended time for a report or a model: `machine.dma.dmaTime(device, dir, bytes)`.
 * `cost("DMA", …)` (and so `ledger.charge("DMA", …)`) throws a RangeError saying this; the DMA entry of the
 * ledger's per-kind totals (COST_KINDS keeps the kind for compatibility) therefore stays 0. It used to be the
 * uncontended h2d time over the machine's first link, whatever the device or direction.
 */
import { type DependencyContainer, Lifecycle, inject, injectable } from "tsyringe";
import {
  CpuFaultModel,
  type CostKind,
  type CostSpec as CostSpecT,
  DeviceFaultModel,
  PageCopyModel,
  PageZeroModel,
  PteUpdateModel,
  TlbShootdownModel,
  defaultCostSpec,
  resolveCostSpec,
} from "./cost-model.js";
import type { LinkDirection } from "./interconnect.js";
import type { Machine } from "./machine.js";
import type { MachinePlugin } from "./plugin.js";
import { MACHINE_VERSION } from "./version.js";
import {
  CostModel,
  CostSpec,
  CpuFaultCost,
  DeviceFaultCost,
  DmaCost,
  LinkRegistry,
  PageCopyCost,
  PageZeroCost,
  PteUpdateCost,
  TlbShootdownCost,
} from "./tokens.js";

/** CostKind → the per-kind model. DMA is not a ledger cost (see the file comment): cost("DMA") throws. */
@injectable()
export class DefaultCostModel implements CostModel {
  constructor(
    @inject(CpuFaultCost) private readonly cpuFault: CpuFaultCost,
    @inject(PageZeroCost) private readonly pageZero: PageZeroCost,
    @inject(PageCopyCost) private readonly pageCopy: PageCopyCost,
    @inject(PteUpdateCost) private readonly pteUpdate: PteUpdateCost,
    @inject(TlbShootdownCost) private readonly tlb: TlbShootdownCost,
    @inject(DeviceFaultCost) private readonly deviceFault: DeviceFaultCost,
  ) {}

  cost(kind: CostKind, count: number): number {
    switch (kind) {
      case "CPU_FAULT":
        return this.cpuFault.cpuFault(count);
      case "PAGE_ZERO":
        return this.pageZero.pageZero(count);
      case "PAGE_COPY":
        return this.pageCopy.pageCopy(count);
      case "PTE_UPDATE":
        return this.pteUpdate.pteUpdate(count);
      case "TLB_SHOOTDOWN":
        return this.tlb.tlbShootdown(count);
      case "DEVICE_FAULT":
        return this.deviceFault.deviceFault(count);
      case "DMA":
        throw new RangeError(
          "CostModel.cost(DMA): a DMA is not charged as a cost kind; it runs on the device's own link, which counts it " +
            "(await machine.dma.dma(device, dir, bytes) or link.transfer(dir, bytes) in a task, ledger.chargeTransfer(link, dir, bytes) " +
            "from synchronous code; machine.dma.dmaTime(device, dir, bytes) for its uncontended time)",
        );
      default:
        throw new RangeError(`CostModel.cost: unknown kind ${String(kind)}`);
    }
  }
}

/** DMA over a device's link: uncontended time from transferTime, contended transfer through the link. */
@injectable()
export class LinkDmaModel implements DmaCost {
  constructor(@inject(LinkRegistry) private readonly links: LinkRegistry) {}

  dmaTime(device: string, dir: LinkDirection, bytes: number): number {
    return this.links.ofDevice(device).transferTime(dir, bytes);
  }

  dma(device: string, dir: LinkDirection, bytes: number): Promise<void> {
    return this.links.ofDevice(device).transfer(dir, bytes);
  }
}

export const COST_MODEL_PLUGIN_NAME = "CostModelPlugin";

export class CostModelPlugin implements MachinePlugin {
  static readonly defaultSpec: Readonly<CostSpecT> = defaultCostSpec;
  readonly name: string = COST_MODEL_PLUGIN_NAME;
  readonly kind = "cost";
  readonly version = MACHINE_VERSION;
  readonly spec: Readonly<CostSpecT>;

  /** `spec` overrides fields of defaultCostSpec; throws RangeError naming a bad field. */
  constructor(spec: Partial<CostSpecT> = {}) {
    this.spec = Object.freeze(resolveCostSpec(spec));
  }

  register(c: DependencyContainer): void {
    const scoped = { lifecycle: Lifecycle.ContainerScoped } as const;
    c.register(CostSpec, { useValue: this.spec });
    c.register(CpuFaultCost, { useClass: CpuFaultModel }, scoped);
    c.register(PageZeroCost, { useClass: PageZeroModel }, scoped);
    c.register(PageCopyCost, { useClass: PageCopyModel }, scoped);
    c.register(PteUpdateCost, { useClass: PteUpdateModel }, scoped);
    c.register(TlbShootdownCost, { useClass: TlbShootdownModel }, scoped);
    c.register(DeviceFaultCost, { useClass: DeviceFaultModel }, scoped);
    c.register(DmaCost, { useClass: LinkDmaModel }, scoped);
    c.register(CostModel, { useClass: DefaultCostModel }, scoped);
  }

  /** The cost models are services the kernel adapter and the drivers call; there is no hook to tap. */
  apply(_machine: Machine): void {}
}
