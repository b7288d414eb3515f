/**
 * The link between host and a device: the interface the interconnect plugins implement (@hmmsim/interconnect-pcie,
 * @hmmsim/interconnect-coherent) and drivers use for DMA. A link has two independent directions (h2d, d2h).
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

/** The machine's links by name. */
export interface LinkRegistry {
  get(name: string): Interconnect;
  /** The link of a device (by the device's name in the spec). */
  ofDevice(device: string): Interconnect;
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
