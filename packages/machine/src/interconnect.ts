/**
 * A link of the machine: the interface the interconnect plugins implement (@hmmsim/interconnect-pcie,
 * @hmmsim/interconnect-coherent) and drivers use for DMA. A link has two independent directions (h2d, d2h).
 *
 * Two sorts of link, told apart by the spec:
 *  - a **host link** joins the host (CPU, system RAM) and the devices whose `link` names it: "h2d" is host →
 *    device, "d2h" device → host;
 *  - a **peer link** (a spec link with `peers: [a, b]`) joins two devices directly (NVLink between GPUs, PCIe
 *    peer-to-peer through a switch) and is no device's host link: "h2d" is the direction peers[0] → peers[1] and
 *    "d2h" peers[1] → peers[0] (never "host"). Ask the registry for the direction rather than spelling it:
 *    `links.peerDirection(from, to)`. It is a PeerInterconnect.
 */
import type { Engine } from "@hmmsim/engine";
import type { LinkKind, LinkSpec } from "./machine-spec.js";

export type LinkDirection = "h2d" | "d2h";
export const LINK_DIRECTIONS: readonly LinkDirection[] = Object.freeze(["h2d", "d2h"]);

/**
 * How concurrent transfers in one direction share its bandwidth:
 *  - "ps" (processor sharing, default): n active transfers each progress at β/n;
 *  - "fifo": one transfer's data phase at a time, in arrival order.
 * In both, a transfer first spends its fixed cost α (DMA setup) without occupying the link.
 */
export type LinkSharing = "ps" | "fifo";

/** The figures of one link, in base units. */
export interface LinkParams {
  /** Effective bandwidth host→device, bytes/s (an integer). */
  h2dBandwidth: number;
  /** Effective bandwidth device→host, bytes/s (an integer). */
  d2hBandwidth: number;
  /** Fixed cost per transfer (α), ps. */
  alpha: number;
  sharing: LinkSharing;
}

/** What a link carried so far in one direction. */
export interface LinkDirectionStats {
  /** Virtual time during which at least one transfer was in its data phase, ps (α excluded). */
  busyPs: number;
  bytes: number;
  transfers: number;
}

/** A DMA transfer that finished (the machine's dmaTransfer trace point fires with it). */
export interface LinkTransferRecord {
  link: string;
  dir: LinkDirection;
  bytes: number;
  /** When transfer() was called, ps. */
  startPs: number;
  /** When the last byte arrived, ps. */
  endPs: number;
}

export interface Interconnect {
  readonly name: string;
  readonly kind: LinkKind;
  readonly params: Readonly<LinkParams>;
  /**
   * True if the CPU can load/store device memory behind this link coherently (NVLink-C2C, CXL), so device memory
   * may be MEMORY_DEVICE_COHERENT. False for PCIe (limited atomics): device memory is MEMORY_DEVICE_PRIVATE.
   */
  readonly supportsCoherentAccess: boolean;
  /** Moves `bytes` in direction `dir`; awaited inside an engine task, it sleeps the simulated transfer time. */
  transfer(dir: LinkDirection, bytes: number): Promise<void>;
  /** Uncontended time of one transfer: α + ⌈bytes·10^12 / β⌉ ps. */
  transferTime(dir: LinkDirection, bytes: number): number;
  busyTime(dir: LinkDirection): number;
  bytesMoved(dir: LinkDirection): number;
  stats(dir: LinkDirection): LinkDirectionStats;
}

/** A link whose device memory the CPU accesses with loads and stores (no migration needed). */
export interface CoherentInterconnect extends Interconnect {
  readonly supportsCoherentAccess: true;
  /** Added latency of one CPU access to device memory over a local DRAM access, ps. */
  readonly cpuAccessLatency: number;
  /** CPU load/store bandwidth to device memory, bytes/s. */
  readonly cpuAccessBandwidth: number;
  /** Uncontended time of a CPU access of `bytes` to device memory: latency + ⌈bytes·10^12 / bandwidth⌉ ps. */
  cpuAccessTime(bytes: number): number;
}

export function isCoherentInterconnect(link: Interconnect): link is CoherentInterconnect {
  return link.supportsCoherentAccess;
}

/**
 * A link that joins two devices directly (a spec link with `peers`): device → device DMA without a copy through
 * system RAM. Its "h2d" direction carries peers[0] → peers[1] and "d2h" peers[1] → peers[0]
 * (`LinkRegistry.peerDirection`). The CPU has no access through it: `supportsCoherentAccess` is false.
 */
export interface PeerInterconnect extends Interconnect {
  /** The two devices it joins, in the spec's order. */
  readonly peers: readonly [string, string];
  /**
   * A device may load, store and do atomics on its peer's memory over the link, coherently (NVLink between GPUs:
   * true), or the link carries DMA and plain loads/stores only (PCIe peer-to-peer, limited atomics: false). A driver
   * that maps a peer's memory remotely instead of migrating asks it.
   */
  readonly peerAtomics: boolean;
  readonly supportsCoherentAccess: false;
}

export function isPeerInterconnect(link: Interconnect): link is PeerInterconnect {
  const p = (link as Partial<PeerInterconnect>).peers;
  return Array.isArray(p) && p.length === 2;
}

/** What a factory gets to build a link for a machine. */
export interface LinkContext {
  engine: Engine;
  /** Called at the end of every transfer; the machine routes it to its dmaTransfer trace point. */
  onTransfer: ((record: LinkTransferRecord) => void) | null;
}

/**
 * Registered by an interconnect plugin under the `InterconnectFactory` token (multi), named after the plugin:
 * createMachine builds each spec link with the factory of the plugin that provides the link's kind.
 */
export interface InterconnectFactory {
  /** The plugin's name (the registry maps a link kind to a plugin, the plugin to this factory). */
  readonly name: string;
  create(link: LinkSpec, ctx: LinkContext): Interconnect;
}

/**
 * The machine's links by name, by device (its host link) and by device pair (the peer link joining them).
 *
 * Device → device migration in a driver (the GPU driver does it this way):
 *
 *   const link = links.peer(src, dst);                // null: no peer link, the data goes through the host
 *   if (link) await link.transfer(links.peerDirection(src, dst), bytes);
 *   else { await links.ofDevice(src).transfer("d2h", bytes); await links.ofDevice(dst).transfer("h2d", bytes); }
 *
 * Whether a page may move directly is up to both drivers too ("both ends allow it"): a peer link says the
 * hardware can; the two drivers must also share a pgmap owner (PgmapOwners, pgmap-owners.ts), which the machine
 * gives exactly to devices joined by peer links.
 */
export interface LinkRegistry {
  /** The link named `name` (host or peer); throws MachineError listing the links when there is none. */
  get(name: string): Interconnect;
  /**
   * The host link of a device (by the device's name in the spec: its `link`). Never a peer link. Throws
   * MachineError for a device the spec does not declare.
   */
  ofDevice(device: string): Interconnect;
  /**
   * The peer link joining devices `a` and `b` (either order), or null when none does (or a === b). Throws
   * MachineError for a device the spec does not declare.
   */
  peer(a: string, b: string): PeerInterconnect | null;
  /**
   * The direction to transfer on `peer(from, to)` to move data from device `from` to device `to`: "h2d" when
   * `from` is the link's peers[0], "d2h" when it is peers[1]. Throws MachineError when no peer link joins them.
   */
  peerDirection(from: string, to: string): LinkDirection;
  /** The devices joined to `device` by a peer link, in spec order of the links (empty when none). */
  peersOf(device: string): readonly string[];
  /** The two devices a link joins when it is a peer link, else null (a host link); throws for an unknown link. */
  ends(name: string): readonly [string, string] | null;
  /** Every link, host and peer, in spec order. */
  all(): readonly Interconnect[];
}

/** Misuse of a link (bad direction or byte count); names the field and the rule. */
export class InterconnectError extends Error {
  override readonly name = "InterconnectError";
}

export function checkTransferArgs(link: string, dir: unknown, bytes: unknown): void {
  if (dir !== "h2d" && dir !== "d2h") throw new InterconnectError(`${link}.transfer: dir must be "h2d" or "d2h", got ${String(dir)}`);
  if (typeof bytes !== "number" || !Number.isSafeInteger(bytes) || bytes < 0) {
    throw new InterconnectError(`${link}.transfer: bytes must be a non-negative safe integer, got ${String(bytes)}`);
  }
}
