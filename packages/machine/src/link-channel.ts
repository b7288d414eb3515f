/**
 * One direction of a link as a bandwidth server, shared by the interconnect plugins. Exact integer ps:
 *
 *  - A transfer of b bytes needs S = ⌈b·10^12 / β⌉ ps of *solo service* (BigInt arithmetic, so 1 GiB at
 *    25 GB/s is exactly 42,949,672,960 ps). Before it, the caller spends α (DMA setup) off the link.
 *  - "ps" (processor sharing): with n transfers active, each receives 1/n ps of service per ps. Service is
 *    credited in whole ps at each arrival/departure: elapsed time (plus the remainder carried from the last
 *    update) is split as ⌊elapsed/n⌋ per transfer, the remainder (< n ps) carried forward, so no time is lost
 *    and every completion lands on an integer ps. The next completion is at last + n·minRemaining − carry.
 *  - "fifo": one data phase at a time, in arrival order.
 *  - busy time = virtual time with ≥ 1 transfer in its data phase.
 *
 * Completions wake the waiting task through an engine Completion (an engine primitive), so `transfer()` is
 * awaitable inside engine tasks. A superseded completion event is ignored by a generation check.
 */
import { Completion, type Engine } from "@hmmsim/engine";
import {
  type Interconnect,
  InterconnectError,
  type LinkContext,
  type LinkDirection,
  type LinkDirectionStats,
  type LinkParams,
  type LinkSharing,
  type PeerInterconnect,
  checkTransferArgs,
} from "./interconnect.js";
import type { LinkKind } from "./machine-spec.js";

interface Active {
  remaining: number;
  bytes: number;
  startPs: number;
  done: Completion;
}

export class LinkChannel {
  private readonly active: Active[] = [];
  private head = 0; // fifo: index of the transfer in service
  private last = 0;
  private carry = 0;
  private gen = 0;
  private busySince = -1;
  private busyAcc = 0;
  private bytesAcc = 0;
  private transfersAcc = 0;
  private readonly solo = new Map<number, number>();
  private readonly scale: bigint;

  constructor(
    private readonly engine: Engine,
    readonly name: string,
    /** bytes/s, a positive safe integer */
    readonly bandwidth: number,
    /** ps */
    readonly alpha: number,
    readonly sharing: LinkSharing,
    private readonly onDone: ((bytes: number, startPs: number, endPs: number) => void) | null = null,
  ) {
    if (!Number.isSafeInteger(bandwidth) || bandwidth <= 0) throw new RangeError(`${name}: bandwidth must be a positive integer B/s, got ${bandwidth}`);
    if (!Number.isSafeInteger(alpha) || alpha < 0) throw new RangeError(`${name}: alpha must be a non-negative integer ps, got ${alpha}`);
    this.scale = BigInt(bandwidth);
  }

  /** Solo service time of `bytes`: ⌈bytes·10^12 / β⌉ ps (cached per size). */
  serviceTime(bytes: number): number {
    let s = this.solo.get(bytes);
    if (s === undefined) {
      const num = BigInt(bytes) * 1_000_000_000_000n;
      s = Number((num + this.scale - 1n) / this.scale);
      if (this.solo.size < 4096) this.solo.set(bytes, s);
    }
    return s;
  }

  /** Uncontended time: α + serviceTime(bytes). */
  transferTime(bytes: number): number {
    return this.alpha + this.serviceTime(bytes);
  }

  /** Moves `bytes`; must be awaited inside an engine task. */
  async transfer(bytes: number): Promise<void> {
    const e = this.engine;
    const startPs = e.now;
    if (this.alpha > 0) await e.sleep(this.alpha);
    const s = this.serviceTime(bytes);
    if (s === 0) {
      this.account(bytes, startPs);
      return;
    }
    const done = new Completion(`${this.name} transfer`, e);
    this.enter({ remaining: s, bytes, startPs, done });
    await done.wait();
  }

  busyTime(): number {
    return this.busyAcc + (this.busySince >= 0 ? this.engine.now - this.busySince : 0);
  }

  bytesMoved(): number {
    return this.bytesAcc;
  }

  transfers(): number {
    return this.transfersAcc;
  }

  /** Transfers in their data phase now. */
  get inFlight(): number {
    return this.active.length - this.head;
  }

  private account(bytes: number, startPs: number): void {
    this.bytesAcc += bytes;
    this.transfersAcc++;
    this.onDone?.(bytes, startPs, this.engine.now);
  }

  private enter(t: Active): void {
    const now = this.engine.now;
    const wasIdle = this.inFlight === 0;
    if (wasIdle) {
      this.busySince = now;
      this.last = now;
      this.carry = 0;
    }
    if (this.sharing === "fifo") {
      this.active.push(t);
      if (wasIdle) this.startHead(now);
      return;
    }
    this.advance(now);
    this.active.push(t);
    this.reschedulePs();
  }

  /** ps: credit service for the time since the last update. */
  private advance(now: number): void {
    const n = this.active.length;
    const elapsed = now - this.last + this.carry;
    this.last = now;
    if (n === 0) return;
    const credit = Math.floor(elapsed / n);
    this.carry = elapsed - credit * n;
    if (credit > 0) for (const a of this.active) a.remaining -= credit;
  }

  private reschedulePs(): void {
    const g = ++this.gen;
    let min = Infinity;
    for (const a of this.active) if (a.remaining < min) min = a.remaining;
    const at = Math.max(this.last, this.last + this.active.length * min - this.carry);
    this.engine.schedule(at, () => {
      if (g === this.gen) this.completePs();
    });
  }

  private completePs(): void {
    const now = this.engine.now;
    this.advance(now);
    let w = 0;
    const finished: Active[] = [];
    for (const a of this.active) {
      if (a.remaining <= 0) finished.push(a);
      else this.active[w++] = a;
    }
    this.active.length = w;
    if (w === 0) this.idle(now);
    else this.reschedulePs();
    for (const a of finished) this.finish(a);
  }

  private startHead(now: number): void {
    const h = this.active[this.head]!;
    this.engine.schedule(now + h.remaining, () => this.completeFifo());
  }

  private completeFifo(): void {
    const now = this.engine.now;
    const h = this.active[this.head]!;
    this.active[this.head++] = undefined as unknown as Active;
    if (this.head === this.active.length) {
      this.active.length = 0;
      this.head = 0;
      this.idle(now);
    } else {
      if (this.head > 64 && this.head * 2 > this.active.length) {
        this.active.splice(0, this.head);
        this.head = 0;
      }
      this.startHead(now);
    }
    this.finish(h);
  }

  private idle(now: number): void {
    this.busyAcc += now - this.busySince;
    this.busySince = -1;
    this.carry = 0;
  }

  private finish(a: Active): void {
    this.account(a.bytes, a.startPs);
    a.done.complete();
  }
}

/**
 * A link made of two independent LinkChannels (h2d, d2h): the common body of the interconnect plugins' links.
 * Transfers in opposite directions never interfere; same-direction transfers share per `params.sharing`.
 */
export class DuplexLink implements Interconnect {
  readonly params: Readonly<LinkParams>;
  private readonly channels: Readonly<Record<LinkDirection, LinkChannel>>;

  constructor(
    readonly name: string,
    readonly kind: LinkKind,
    params: LinkParams,
    readonly supportsCoherentAccess: boolean,
    ctx: LinkContext,
  ) {
    this.params = Object.freeze({ ...params });
    const mk = (dir: LinkDirection, bw: number): LinkChannel =>
      new LinkChannel(ctx.engine, `${name}.${dir}`, bw, params.alpha, params.sharing, ctx.onTransfer && ((bytes, startPs, endPs) => ctx.onTransfer!({ link: name, dir, bytes, startPs, endPs })));
    this.channels = Object.freeze({ h2d: mk("h2d", params.h2dBandwidth), d2h: mk("d2h", params.d2hBandwidth) });
  }

  transfer(dir: LinkDirection, bytes: number): Promise<void> {
    checkTransferArgs(this.name, dir, bytes);
    return this.channels[dir].transfer(bytes);
  }

  transferTime(dir: LinkDirection, bytes: number): number {
    checkTransferArgs(this.name, dir, bytes);
    return this.channels[dir].transferTime(bytes);
  }

  busyTime(dir: LinkDirection): number {
    return this.channel(dir).busyTime();
  }

  bytesMoved(dir: LinkDirection): number {
    return this.channel(dir).bytesMoved();
  }

  stats(dir: LinkDirection): LinkDirectionStats {
    const c = this.channel(dir);
    return { busyPs: c.busyTime(), bytes: c.bytesMoved(), transfers: c.transfers() };
  }

  private channel(dir: LinkDirection): LinkChannel {
    const c = this.channels[dir];
    if (!c) throw new InterconnectError(`${this.name}: dir must be "h2d" or "d2h", got ${String(dir)}`);
    return c;
  }
}

/**
 * A peer link (a spec link with `peers: [a, b]`): a DuplexLink whose "h2d" channel carries peers[0] → peers[1]
 * and "d2h" peers[1] → peers[0] (LinkRegistry.peerDirection picks it). The CPU has no access through it. The
 * interconnect plugins build their peer kinds (nvlink3, nvlink4, pcie-p2p, custom with peers) with it; a
 * third-party peer kind does the same, or implements PeerInterconnect itself.
 */
export class PeerLink extends DuplexLink implements PeerInterconnect {
  override readonly supportsCoherentAccess = false as const;
  readonly peers: readonly [string, string];

  constructor(
    name: string,
    kind: LinkKind,
    params: LinkParams,
    peers: readonly [string, string],
    readonly peerAtomics: boolean,
    ctx: LinkContext,
  ) {
    super(name, kind, params, false, ctx);
    if (!Array.isArray(peers) || peers.length !== 2 || typeof peers[0] !== "string" || typeof peers[1] !== "string" || peers[0] === peers[1]) {
      throw new InterconnectError(`${name}: peers must be two different device names, got ${JSON.stringify(peers)}`);
    }
    this.peers = Object.freeze([peers[0], peers[1]] as const);
  }
}
