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
import { buildCoherentLink } from "./coherent-link.js";
import { coherentLinkSpecIssues } from "./link-spec.js";
import { COHERENT_LINK_KINDS, type CoherentSpec, defaultSpec, isNvlinkPeerKind } from "./spec.js";

export const PLUGIN_NAME = "CoherentPlugin";

/** @hmmsim/interconnect-coherent's version (its package.json). */
export const COHERENT_VERSION: string = packageVersion(import.meta.url);

/**
 * Provides the link kinds nvlink-c2c, cxl (coherent host-link presets), nvlink3, nvlink4 (NVLink peer links between
 * two GPUs) and `custom-coherent` (a coherent link with the spec's own figures), validates those links
 * (link-spec.ts) and builds them with its InterconnectFactory.
 *
 *   createMachine({ spec, plugins: [...defaultPlugins(), new CoherentPlugin(), …] })
 */
export class CoherentPlugin implements MachinePlugin {
  static readonly defaultSpec: Readonly<CoherentSpec> = defaultSpec;
  readonly name = PLUGIN_NAME;
  readonly kind = "interconnect";
  readonly version = COHERENT_VERSION;
  readonly provides: readonly string[] = COHERENT_LINK_KINDS;
  readonly spec: Readonly<CoherentSpec>;

  /** `spec` overrides fields of defaultSpec; throws RangeError naming a bad or unknown field. */
  constructor(spec: Partial<CoherentSpec> = {}) {
    if (spec === null || typeof spec !== "object") throw new RangeError(`${PLUGIN_NAME} spec: must be an object, got ${spec === null ? "null" : typeof spec}`);
    const s = { ...defaultSpec, ...spec };
    for (const k of Object.keys(s)) if (!Object.hasOwn(defaultSpec, k)) throw new RangeError(`${PLUGIN_NAME} spec.${k}: unknown field`);
    if (s.sharing !== "ps" && s.sharing !== "fifo") throw new RangeError(`${PLUGIN_NAME} spec.sharing: must be "ps" or "fifo", got ${String(s.sharing)}`);
    this.spec = Object.freeze(s);
  }

  /** The problems of a spec link of one of this plugin's kinds, each path relative to the link. */
  componentSpecIssues(ref: ComponentRef): SpecIssue[] {
    if (ref.kind !== "interconnect") return [{ path: "", message: `plugin ${PLUGIN_NAME} provides link kinds, not a ${ref.kind}` }];
    return coherentLinkSpecIssues(ref.spec);
  }

  /**
   * The host links of this plugin (nvlink-c2c, cxl, custom-coherent) give the CPU coherent access to device memory
   * (DEVICE_COHERENT possible); the NVLink peer links (nvlink3, nvlink4) join two GPUs and give the CPU none.
   */
  isCoherentLink(link: LinkSpec): boolean {
    return !isNvlinkPeerKind(link.kind) && link.peers === undefined;
  }

  register(c: DependencyContainer): void {
    const factory: Factory = {
      name: PLUGIN_NAME,
      create: (link, ctx) => buildCoherentLink(link, this.spec.sharing, ctx),
    };
    c.register(InterconnectFactory, { useValue: factory });
  }

  apply(_machine: Machine): void {
    // Nothing to tap: the links are built by the InterconnectFactory registered above.
  }
}
