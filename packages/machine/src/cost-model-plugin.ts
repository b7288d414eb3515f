/**
 * The default cost models as a plugin: registers `CostSpec` (defaultCostSpec + overrides) and one model per
 * kind token, plus the `CostModel` that maps each CostKind onto them and the `DmaCost` that delegates to the
 * device's link. Any of them can be replaced by a later plugin registering the same token.
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

/** CostKind → the per-kind model. DMA is charged uncontended over the first device's link (count = bytes). */
@injectable()
export class DefaultCostModel implements CostModel {
  constructor(
    @inject(CpuFaultCost) private readonly cpuFault: CpuFaultCost,
    @inject(PageZeroCost) private readonly pageZero: PageZeroCost,
    @inject(PageCopyCost) private readonly pageCopy: PageCopyCost,
    @inject(PteUpdateCost) private readonly pteUpdate: PteUpdateCost,
    @inject(TlbShootdownCost) private readonly tlb: TlbShootdownCost,
    @inject(DeviceFaultCost) private readonly deviceFault: DeviceFaultCost,
    @inject(LinkRegistry) private readonly links: LinkRegistry,
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
      case "DMA": {
        const link = this.links.all()[0];
        if (!link) throw new RangeError("CostModel.cost(DMA): the machine has no link");
        return link.transferTime("h2d", count);
      }
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

  apply(_machine: Machine): void {}
}
