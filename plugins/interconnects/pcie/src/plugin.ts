import {
  type ComponentRef,
  type DependencyContainer,
  type InterconnectFactory as Factory,
  InterconnectFactory,
  type LinkSpec,
  type Machine,
  type MachinePlugin,
  type SpecIssue,
  packageVersion,
} from "@hmmsim/machine";
import { pcieLinkSpecIssues } from "./link-spec.js";
import { buildPcieLink } from "./pcie-link.js";
import { PCIE_LINK_KINDS, type PcieSpec, defaultSpec } from "./spec.js";

export const PLUGIN_NAME = "PciePlugin";

/** @hmmsim/interconnect-pcie's version (its package.json). */
export const PCIE_VERSION: string = packageVersion(import.meta.url);

/**
 * Provides the link kinds pcie3x16, pcie4x16, pcie5x16 (host-link presets), pcie-p2p (peer-to-peer between two
 * devices through a PCIe switch) and `custom` (a non-coherent link with the spec's own figures, host or peer),
 * validates those links (link-spec.ts) and builds them with its InterconnectFactory.
 *
 *   createMachine({ spec, plugins: [...defaultPlugins(), new PciePlugin(), …] })
 */
export class PciePlugin implements MachinePlugin {
  static readonly defaultSpec: Readonly<PcieSpec> = defaultSpec;
  readonly name = PLUGIN_NAME;
  readonly kind = "interconnect";
  readonly version = PCIE_VERSION;
  readonly provides: readonly string[] = PCIE_LINK_KINDS;
  readonly spec: Readonly<PcieSpec>;

  /** `spec` overrides fields of defaultSpec; throws RangeError naming a bad or unknown field. */
  constructor(spec: Partial<PcieSpec> = {}) {
    if (spec === null || typeof spec !== "object") throw new RangeError(`${PLUGIN_NAME} spec: must be an object, got ${spec === null ? "null" : typeof spec}`);
    const s = { ...defaultSpec, ...spec };
    for (const k of Object.keys(s)) if (!Object.hasOwn(defaultSpec, k)) throw new RangeError(`${PLUGIN_NAME} spec.${k}: unknown field`);
    if (s.sharing !== "ps" && s.sharing !== "fifo") throw new RangeError(`${PLUGIN_NAME} spec.sharing: must be "ps" or "fifo", got ${String(s.sharing)}`);
    this.spec = Object.freeze(s);
  }

  /** The problems of a spec link of one of this plugin's kinds, each path relative to the link. */
  componentSpecIssues(ref: ComponentRef): SpecIssue[] {
    if (ref.kind !== "interconnect") return [{ path: "", message: `plugin ${PLUGIN_NAME} provides link kinds, not a ${ref.kind}` }];
    return pcieLinkSpecIssues(ref.spec);
  }

  /** PCIe gives the CPU no coherent access to device memory: device memory behind it is DEVICE_PRIVATE. */
  isCoherentLink(_link: LinkSpec): boolean {
    return false;
  }

  register(c: DependencyContainer): void {
    const factory: Factory = {
      name: PLUGIN_NAME,
      create: (link, ctx) => buildPcieLink(link, this.spec.sharing, ctx),
    };
    c.register(InterconnectFactory, { useValue: factory });
  }

  apply(_machine: Machine): void {
    // Nothing to tap: the links are built by the InterconnectFactory registered above.
  }
}
