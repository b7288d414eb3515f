import type { DependencyContainer, InterconnectFactory as Factory, LinkSpec, Machine, MachinePlugin } from "@hmmsim/machine";
import { InterconnectFactory } from "@hmmsim/machine";
import { PcieLink, pcieLinkParams } from "./pcie-link.js";
import { PCIE_PRESETS, type PcieSpec, defaultSpec } from "./spec.js";

export const PLUGIN_NAME = "PciePlugin";

/**
 * Provides links for spec kinds pcie3x16, pcie4x16, pcie5x16, and `custom` links with `coherent: false`.
 *
 *   createMachine({ spec, plugins: [...defaultPlugins(), new PciePlugin()] })
 */
export class PciePlugin implements MachinePlugin {
  static readonly defaultSpec: Readonly<PcieSpec> = defaultSpec;
  readonly name = PLUGIN_NAME;
  readonly spec: Readonly<PcieSpec>;

  constructor(spec: Partial<PcieSpec> = {}) {
    const s = { ...defaultSpec, ...spec };
    if (s.sharing !== "ps" && s.sharing !== "fifo") throw new RangeError(`PciePlugin spec.sharing: must be "ps" or "fifo", got ${String(s.sharing)}`);
    for (const k of Object.keys(s)) if (!(k in defaultSpec)) throw new RangeError(`PciePlugin spec.${k}: unknown field`);
    this.spec = Object.freeze(s);
  }

  accepts(link: LinkSpec): boolean {
    return link.kind in PCIE_PRESETS || (link.kind === "custom" && link.coherent !== true);
  }

  register(c: DependencyContainer): void {
    const factory: Factory = {
      name: PLUGIN_NAME,
      accepts: (link) => this.accepts(link),
      create: (link, ctx) => new PcieLink(link.name, link.kind, pcieLinkParams(link, this.spec.sharing), ctx),
    };
    c.register(InterconnectFactory, { useValue: factory });
  }

  apply(_machine: Machine): void {}
}
