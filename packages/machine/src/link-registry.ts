import { type Interconnect, type LinkDirection, type LinkRegistry, type PeerInterconnect, isPeerInterconnect } from "./interconnect.js";
import { MachineError } from "./machine-error.js";
import type { MachineSpec } from "./machine-spec.js";

/**
 * The machine's links by name, by device (its host link) and by device pair (its peer link); filled by
 * createMachine from the spec's links. See LinkRegistry (interconnect.ts).
 */
export class MapLinkRegistry implements LinkRegistry {
  private readonly byName = new Map<string, Interconnect>();
  private readonly list: Interconnect[] = [];
  /** A frozen copy of `list`, made on the first all() after an add (adding n links is O(n), not O(n²)). */
  private frozen: readonly Interconnect[] | null = Object.freeze([]);
  private readonly linkOf = new Map<string, string>();
  /** Peer links: the spec's `peers` by link name, and the link name by unordered device pair. */
  private readonly endsOf = new Map<string, readonly [string, string]>();
  private readonly byPair = new Map<string, string>();
  private readonly peersOfDevice = new Map<string, string[]>();

  constructor(private readonly spec: MachineSpec) {
    for (const d of spec.devices) if (!this.linkOf.has(d.name)) this.linkOf.set(d.name, d.link);
    for (const l of spec.links ?? []) {
      if (!l.peers) continue;
      const [a, b] = l.peers;
      this.endsOf.set(l.name, Object.freeze([a, b] as const));
      this.byPair.set(pairKey(a, b), l.name);
      for (const [x, y] of [[a, b], [b, a]] as const) {
        let p = this.peersOfDevice.get(x);
        if (!p) this.peersOfDevice.set(x, (p = []));
        p.push(y);
      }
    }
    for (const p of this.peersOfDevice.values()) Object.freeze(p);
  }

  /** @internal createMachine adds each link it builds. */
  add(link: Interconnect): void {
    if (this.byName.has(link.name)) throw new MachineError(`link ${JSON.stringify(link.name)} added twice`);
    const ends = this.endsOf.get(link.name);
    if (ends && !(isPeerInterconnect(link) && link.peers[0] === ends[0] && link.peers[1] === ends[1])) {
      throw new MachineError(
        `link ${JSON.stringify(link.name)} (kind ${link.kind}) is a peer link of the spec (peers: ${JSON.stringify(ends)}), but its plugin built a link ` +
          `${isPeerInterconnect(link) ? `with peers ${JSON.stringify(link.peers)}` : "that is no PeerInterconnect"} (build peer links with PeerLink)`,
      );
    }
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
    if (link === undefined) throw this.noDevice(device);
    return this.get(link);
  }

  peer(a: string, b: string): PeerInterconnect | null {
    if (!this.linkOf.has(a)) throw this.noDevice(a);
    if (!this.linkOf.has(b)) throw this.noDevice(b);
    const name = a === b ? undefined : this.byPair.get(pairKey(a, b));
    return name === undefined ? null : (this.get(name) as PeerInterconnect);
  }

  peerDirection(from: string, to: string): LinkDirection {
    const link = this.peer(from, to);
    if (!link) {
      throw new MachineError(
        from === to
          ? `peerDirection(${JSON.stringify(from)}, ${JSON.stringify(to)}): a device has no peer link to itself`
          : `no peer link joins ${JSON.stringify(from)} and ${JSON.stringify(to)} (ask links.peer(a, b) first; without one, data moves through the host links)`,
      );
    }
    return this.endsOf.get(link.name)![0] === from ? "h2d" : "d2h";
  }

  peersOf(device: string): readonly string[] {
    if (!this.linkOf.has(device)) throw this.noDevice(device);
    return this.peersOfDevice.get(device) ?? [];
  }

  ends(name: string): readonly [string, string] | null {
    this.get(name);
    return this.endsOf.get(name) ?? null;
  }

  all(): readonly Interconnect[] {
    return (this.frozen ??= Object.freeze([...this.list]));
  }

  private noDevice(device: string): MachineError {
    return new MachineError(`no device named ${JSON.stringify(device)} (devices: ${this.spec.devices.map((x) => x.name).join(", ") || "none"})`);
  }
}

/** One key per unordered pair of device names. */
function pairKey(a: string, b: string): string {
  return a < b ? `${a}\0${b}` : `${b}\0${a}`;
}
