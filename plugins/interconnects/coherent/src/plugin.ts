import type { DependencyContainer, InterconnectFactory as Factory, LinkSpec, Machine, MachinePlugin } from "@hmmsim/machine";
import { InterconnectFactory } from "@hmmsim/machine";
import { CoherentLink, coherentLinkParams } from "./coherent-link.js";
import { COHERENT_PRESETS, type CoherentSpec, defaultSpec } from "./spec.js";

export const PLUGIN_NAME = "CoherentPlugin";

/**
 * Provides links for spec kinds nvlink-c2c and cxl, and `custom` links with `coherent: true`.
 *
 *   createMachine({ spec, plugins: [...defaultPlugins(), new CoherentPlugin()] })
 */
export class CoherentPlugin implements MachinePlugin {
  static readonly defaultSpec: Readonly<CoherentSpec> = defaultSpec;
  readonly name = PLUGIN_NAME;
  readonly spec: Readonly<CoherentSpec>;

  constructor(spec: Partial<CoherentSpec> = {}) {
    const s = { ...defaultSpec, ...spec };
    if (s.sharing !== "ps" && s.sharing !== "fifo") throw new RangeError(`CoherentPlugin spec.sharing: must be "ps" or "fifo", got ${String(s.sharing)}`);
    for (const k of Object.keys(s)) if (!(k in defaultSpec)) throw new RangeError(`CoherentPlugin spec.${k}: unknown field`);
    this.spec = Object.freeze(s);
  }

  accepts(link: LinkSpec): boolean {
    return link.kind in COHERENT_PRESETS || (link.kind === "custom" && link.coherent === true);
  }

  register(c: DependencyContainer): void {
    const factory: Factory = {
      name: PLUGIN_NAME,
      accepts: (link) => this.accepts(link),
      create: (link, ctx) => new CoherentLink(link.name, link.kind, coherentLinkParams(link, this.spec.sharing), ctx),
    };
    c.register(InterconnectFactory, { useValue: factory });
  }

  apply(_machine: Machine): void {}
}
