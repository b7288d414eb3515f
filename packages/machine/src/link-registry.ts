import type { Interconnect, LinkRegistry } from "./interconnect.js";
import { MachineError } from "./machine.js";
import type { MachineSpec } from "./machine-spec.js";

/** The machine's links by name (filled by createMachine from the spec's links). */
export class MapLinkRegistry implements LinkRegistry {
  private readonly byName = new Map<string, Interconnect>();
  private list: readonly Interconnect[] = [];

  constructor(private readonly spec: MachineSpec) {}

  /** @internal createMachine adds each link it builds. */
  add(link: Interconnect): void {
    if (this.byName.has(link.name)) throw new MachineError(`link ${JSON.stringify(link.name)} added twice`);
    this.byName.set(link.name, link);
    this.list = Object.freeze([...this.list, link]);
  }

  get(name: string): Interconnect {
    const l = this.byName.get(name);
    if (!l) throw new MachineError(`no link named ${JSON.stringify(name)} (links: ${[...this.byName.keys()].join(", ") || "none"})`);
    return l;
  }

  ofDevice(device: string): Interconnect {
    const d = this.spec.devices.find((x) => x.name === device);
    if (!d) throw new MachineError(`no device named ${JSON.stringify(device)} (devices: ${this.spec.devices.map((x) => x.name).join(", ") || "none"})`);
    return this.get(d.link);
  }

  all(): readonly Interconnect[] {
    return this.list;
  }
}
