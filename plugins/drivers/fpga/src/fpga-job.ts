/**
 * An FPGA job in flight: `streams` streams take the job's accesses in order (the next free stream takes the next
 * beat) and run them as plain engine events:
 *
 *   issue     → wait the beat's compute time
 *   translate → both TLBs looked up at once (tlbHitCycles): a hit on a card-memory page → the card memory beat
 *               (⌈accessBytes/β⌉) → next; a hit on a host-mapped page → the first beat of the stream in a PMTU
 *               window moves one packet over the link, the others are on the card → next; a miss (or a write to a
 *               read-only mapping) → the stream STALLS and raises a page-fault interrupt (Coyote `vfpga_isr`
 *               IRQ_PFAULT [S61]; TaPaSCo `iommu_page_fault_handler` [S60]); the driver services it and restarts
 *               the stream (Coyote `restart_mmu`), which translates again.
 *
 * Unlike a GPU warp, a stalled stream holds the whole stream: the beats behind it wait. Each stream's stall time (from
 * the miss to the restart) is summed per stream: `FpgaJobResult.streams[i].stallPs`.
 */
import { Completion } from "@hmmsim/engine";
import { TASK_SIZE } from "@hmmsim/core";
import type { AccessBuffer, AccessSource, DeviceKernelResult } from "@hmmsim/machine";
import { FpgaForwardProgressError, FpgaInputError } from "./errors.js";
import type { FpgaDriver } from "./fpga-driver.js";
import type { FpgaJobMode } from "./fpga-spec.js";

/** Accesses as plain objects (tests, small jobs). `computePs` defaults to 0. */
export type AccessList = readonly { addr: number; write: boolean; computePs?: number }[];

/** One stream of a job: what it did and how long it stood still. */
export interface FpgaStreamResult {
  accesses: number;
  /** Interrupts this stream raised (TLB misses and page faults; each stalls it). */
  faults: number;
  /** Time the stream stood stalled on its faults, ps. */
  stallPs: number;
}

/** What one job did (the driver-neutral counts plus the FPGA's own). */
export interface FpgaJobResult extends DeviceKernelResult {
  /** Per stream, in stream order. */
  streams: FpgaStreamResult[];
  /** The programming model the job ran with and what its pre-launch step did (pages, time, ps). */
  mode: FpgaJobMode;
  prepare: { pages: number; startPs: number; endPs: number };
  /** Beats served from host-mapped pages, and the packets they moved over the link. */
  hostPackets: number;
  startPs: number;
  endPs: number;
}

const BUF = 4096;

class ListSource implements AccessSource {
  private i = 0;
  constructor(private readonly list: AccessList) {}
  fill(b: AccessBuffer): number {
    let n = 0;
    const l = this.list;
    while (n < b.capacity && this.i < l.length) {
      const a = l[this.i++]!;
      b.addr[n] = a.addr;
      b.write[n] = a.write ? 1 : 0;
      b.computePs[n] = a.computePs ?? 0;
      n++;
    }
    return n;
  }
}

/** translate(): the beat hits a card-memory mapping, a host mapping, or misses (stall + interrupt). */
export const XLATE_LOCAL = 0;
export const XLATE_HOST = 1;
export const XLATE_MISS = 2;

export class JobRun {
  readonly done: Completion;
  error: Error | null = null;
  private readonly source: AccessSource;
  private readonly buf: AccessBuffer;
  private pos = 0;
  private len = 0;
  private exhausted = false;
  private active: number;
  private accesses = 0;
  private faults = 0;
  private hostBeats = 0;
  hostPackets = 0;
  tlbHits = 0;
  tlbMisses = 0;
  startPs = 0;
  prepare = { pages: 0, startPs: 0, endPs: 0 };
  private readonly addr: Float64Array;
  private readonly write: Uint8Array;
  private readonly tries: Uint32Array;
  /** Per stream: the PMTU window (host address / pmtuBytes) whose packet it holds, -1 none. */
  private readonly window: Float64Array;
  private readonly stallStart: Float64Array;
  private readonly sAccesses: Float64Array;
  private readonly sFaults: Float64Array;
  private readonly sStall: Float64Array;
  private readonly issueFn: (() => void)[];
  private readonly translateFn: (() => void)[];

  constructor(
    private readonly driver: FpgaDriver,
    readonly space: number,
    accesses: AccessSource | AccessList,
    readonly streams: number,
    readonly gen: number,
    readonly mode: FpgaJobMode,
  ) {
    if (Array.isArray(accesses)) this.source = new ListSource(accesses);
    else if (accesses !== null && typeof accesses === "object" && typeof (accesses as AccessSource).fill === "function") this.source = accesses as AccessSource;
    else throw new FpgaInputError("accesses", "must be an AccessPattern (fill(batch)) or an array of { addr, write, computePs? }");
    this.done = new Completion(`${driver.name}.job`, driver.engine);
    this.buf = { capacity: BUF, addr: new Float64Array(BUF), write: new Uint8Array(BUF), computePs: new Float64Array(BUF) };
    this.active = streams;
    this.addr = new Float64Array(streams);
    this.write = new Uint8Array(streams);
    this.tries = new Uint32Array(streams);
    this.window = new Float64Array(streams).fill(-1);
    this.stallStart = new Float64Array(streams);
    this.sAccesses = new Float64Array(streams);
    this.sFaults = new Float64Array(streams);
    this.sStall = new Float64Array(streams);
    this.issueFn = new Array<() => void>(streams);
    this.translateFn = new Array<() => void>(streams);
    for (let s = 0; s < streams; s++) {
      this.issueFn[s] = () => this.issue(s);
      this.translateFn[s] = () => this.translate(s);
    }
  }

  /** The address of the job's first beat without consuming it (-1 when the job has none): its buffer's VMA. */
  peekFirst(): number {
    if (this.pos === this.len && !this.exhausted) {
      this.len = this.source.fill(this.buf);
      this.pos = 0;
      if (this.len === 0) this.exhausted = true;
    }
    return this.pos < this.len ? this.buf.addr[this.pos]! : -1;
  }

  start(): void {
    const e = this.driver.engine;
    this.startPs = e.now;
    for (let s = 0; s < this.streams; s++) e.schedule(e.now, this.issueFn[s]!);
  }

  result(): FpgaJobResult {
    const streams: FpgaStreamResult[] = [];
    for (let s = 0; s < this.streams; s++) streams.push({ accesses: this.sAccesses[s]!, faults: this.sFaults[s]!, stallPs: this.sStall[s]! });
    return {
      accesses: this.accesses,
      faults: this.faults,
      remoteAccesses: this.hostBeats,
      tlbHits: this.tlbHits,
      tlbMisses: this.tlbMisses,
      streams,
      mode: this.mode,
      prepare: { ...this.prepare },
      hostPackets: this.hostPackets,
      startPs: this.startPs,
      endPs: this.driver.engine.now,
    };
  }

  /** The job cannot go on (a fault the driver dropped): every stream stops at its next step. */
  fail(err: Error): void {
    if (this.error !== null) return;
    this.error = err;
    this.done.complete();
  }

  /** @internal The driver serviced stream `s`'s fault: it restarts at `at` (Coyote restart_mmu) and translates again. */
  restart(s: number, at: number): void {
    this.driver.engine.schedule(at, () => {
      if (this.error !== null) return;
      this.sStall[s]! += this.driver.engine.now - this.stallStart[s]!;
      this.translate(s);
    });
  }

  /**
   * @internal A THROTTLE hint held stream `s`'s fault back: it restarts at `at` and retries; the held fault is not
   * counted against maxFaultsPerAccess (a throttle that ends must not stop the job).
   */
  restartThrottled(s: number, at: number): void {
    if (this.tries[s]! > 0) this.tries[s]!--;
    this.restart(s, at);
  }

  private next(s: number): number {
    if (this.pos === this.len) {
      if (this.exhausted) return -1;
      this.len = this.source.fill(this.buf);
      this.pos = 0;
      if (this.len === 0) {
        this.exhausted = true;
        return -1;
      }
    }
    const i = this.pos++;
    const a = this.buf.addr[i]!;
    if (!(a >= 0 && a < TASK_SIZE)) {
      this.fail(new FpgaInputError("accesses[].addr", "must be a user address in [0, 2^47)", a));
      return -1;
    }
    this.addr[s] = a;
    this.write[s] = this.buf.write[i]!;
    this.accesses++;
    this.sAccesses[s]!++;
    return this.buf.computePs[i]!;
  }

  private issue(s: number): void {
    if (this.error !== null) return;
    const c = this.next(s);
    if (c < 0) {
      if (this.error === null && --this.active === 0) this.done.complete();
      return;
    }
    const e = this.driver.engine;
    if (c > 0) e.schedule(e.now + c, this.translateFn[s]!);
    else this.translate(s);
  }

  private translate(s: number): void {
    if (this.error !== null) return;
    const d = this.driver;
    const e = d.engine;
    const a = this.addr[s]!;
    const write = this.write[s] === 1;
    const r = d.translate(this.space, a, write);
    const t = e.now + d.tlbHitPs;
    if (r === XLATE_MISS) {
      this.tlbMisses++;
      const n = ++this.tries[s]!;
      if (n > d.spec.maxFaultsPerAccess) {
        this.fail(new FpgaForwardProgressError(d.name, s, a, n, d.spec.maxFaultsPerAccess));
        return;
      }
      this.faults++;
      this.sFaults[s]!++;
      this.stallStart[s] = t;
      this.window[s] = -1;
      e.schedule(t, () => {
        if (this.error === null) d.raiseFault(this.space, a, write, s, this.gen);
      });
      return;
    }
    this.tlbHits++;
    this.tries[s] = 0;
    if (r === XLATE_LOCAL) {
      e.schedule(t + d.memAccessPs, this.issueFn[s]!);
      return;
    }
    // A host mapping: the stream's DMA moves PMTU-sized packets (Coyote PMTU_BYTES [S62]).
    this.hostBeats++;
    const w = Math.floor(a / d.spec.pmtuBytes);
    if (this.window[s] === w) {
      e.schedule(t + d.memAccessPs, this.issueFn[s]!);
      return;
    }
    this.window[s] = w;
    this.hostPackets++;
    d.hostPacket(write, t, this.issueFn[s]!);
  }
}
