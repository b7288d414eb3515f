import type { Interconnect, LinkRegistry } from "./interconnect.js";
import { MachineError } from "./machine.js";
import type { MachineSpec } from "./machine-spec.js";

/** The machine's links by name (filled by createMachine from the spec's links). */
export class MapLinkRegistry implements LinkRegistry {
  private readonly byName = new Map<string, Interconnect>();
  private readonly list: Interconnect[] = [];
  /** A frozen copy of `list`, made on the first all() after an add (adding n links is O(n), not O(n²)). */
  private frozen: readonly Interconnect[] | null = Object.freeze([]);
  private readonly linkOf = new Map<string, string>();

  constructor(private readonly spec: MachineSpec) {
    for (const d of spec.devices) if (!this.linkOf.has(d.name)) this.linkOf.set(d.name, d.link);
  }

  /** @internal createMachine adds each link it builds. */
  add(link: Interconnect): void {
    if (this.byName.has(link.name)) throw new MachineError(`link ${JSON.stringify(link.name)} added twice`);
    this.byName.set(link.name, link);
    this.list.push(link);
    this.frozen = null;
  }

  get(name: string): Interconnect {
    const l = this.byName.get(name);
    if (!l) throw new MachineError(`no link named ${JSON.stringify(name)} (links: ${[...this.byName.keys()].join(", ") || "none"})`);
    return l;
  }

  ofDevice(device: string): Interconnect {
    const link = this.linkOf.get(device);
    if (link === undefined) throw new MachineError(`no device named ${JSON.stringify(device)} (devices: ${this.spec.devices.map((x) => x.name).join(", ") || "none"})`);
    return this.get(link);
  }

  all(): readonly Interconnect[] {
    return (this.frozen ??= Object.freeze([...this.list]));
  }
}
