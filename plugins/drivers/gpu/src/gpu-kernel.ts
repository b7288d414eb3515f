/**
 * A GPU kernel in flight: `warps` warps take a workload's accesses in order (the next free warp takes the next
 * access) and run them as plain engine events (no task, no allocation per access):
 *
 *   issue    → wait the access's compute time
 *   translate→ TLB hit (1 cycle) or page walk (100 / 66 cycles [S14]); then
 *              local entry  → device memory access (⌈accessBytes/β⌉) → issue the next access
 *              remote entry → setup (200 cycles [S14]) + link transfer of accessBytes → next
 *              no entry / read-only entry on a write → raise a replayable fault; the warp stalls until the
 *              fault-service task replays its batch, then translates again.
 *
 * Accesses come from an @hmmsim/workloads AccessPattern (`fill(batch)` into typed arrays: @hmmsim/machine's
 * AccessSource / AccessBuffer) or an array.
 */
import { Completion } from "@hmmsim/engine";
import { TASK_SIZE } from "@hmmsim/core";
import type { AccessBuffer, AccessSource } from "@hmmsim/machine";
import { GpuForwardProgressError, GpuInputError } from "./errors.js";
import type { GpuDriver } from "./gpu-driver.js";
import { pageIndex } from "./block-map.js";
import { CHUNK_PAGES } from "./root-chunks.js";
import { GPU_PTE_VALID, VaBlocks } from "./va-block.js";

/** Accesses as plain objects (tests, small kernels). `computePs` defaults to 0. */
export type AccessList = readonly { addr: number; write: boolean; computePs?: number }[];

export interface RunKernelOptions {
  /** Warps in flight (default spec.warps; at most spec.warps). */
  warps?: number;
}

export interface GpuKernelResult {
  accesses: number;
  /** Fault-buffer entries raised by this kernel's warps (replays that fault again count again). */
  faults: number;
  remoteAccesses: number;
  tlbHits: number;
  tlbMisses: number;
  /** Of `faults`, the entries a BATCH_FLUSH flush dropped unserviced (their accesses faulted again: counted again). */
  flushedFaults: number;
  startPs: number;
  endPs: number;
}

const BUF = 4096;

/** A warp's steps, as coded in a group (warp × OPS + op: warp << OP_BITS | op). */
const OP_BITS = 2;
const OPS = 1 << OP_BITS;
const OP_MASK = OPS - 1;
const OP_ISSUE = 0;
const OP_TRANSLATE = 1;
const OP_RAISE = 2;
const OP_REMOTE = 3;

/** Distinct times a group's steps are sorted among by linear search before a Map takes over. */
const SCAN = 8;

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

export class KernelRun {
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
  private remote = 0;
  private startPs = 0;
  private tlbHits0 = 0;
  private tlbMisses0 = 0;
  private flushed0 = 0;
  private readonly addr: Float64Array;
  private readonly write: Uint8Array;
  /**
   * Per warp, the VA block of its last translation: its key and slot, and for a block that did not exist (slot -1)
   * the block table's size then — blocks are never removed, so the answer holds until a block is added.
   */
  private readonly key: Float64Array;
  private readonly slot: Int32Array;
  private readonly keyBlocks: Int32Array;
  /** Faults of each warp's current access (forward progress: at most spec.maxFaultsPerAccess). */
  private readonly tries: Uint32Array;
  /** Per warp, for a remote access: the peer index holding the page (-1: system memory). */
  private readonly via: Int8Array;
  private readonly maxTries: number;
  /** The most faults one access took before it completed, over the kernel so far. */
  worstFaultsPerAccess = 0;
  /** Per warp, its steps as callbacks (for the engine, outside a group: start, a remote access's completion). */
  private readonly issueFn: (() => void)[];
  private readonly translateFn: (() => void)[];
  private readonly raiseFn: (() => void)[];
  private readonly remoteFn: (() => void)[];

  constructor(
    private readonly driver: GpuDriver,
    readonly space: number,
    accesses: AccessSource | AccessList,
    readonly warps: number,
    readonly gen: number,
  ) {
    if (Array.isArray(accesses)) this.source = new ListSource(accesses);
    else if (accesses !== null && typeof accesses === "object" && typeof (accesses as AccessSource).fill === "function") this.source = accesses as AccessSource;
    else throw new GpuInputError("accesses", "must be an AccessPattern (fill(batch)) or an array of { addr, write, computePs? }");
    this.done = new Completion(`${driver.name}.kernel`, driver.engine);
    this.buf = { capacity: BUF, addr: new Float64Array(BUF), write: new Uint8Array(BUF), computePs: new Float64Array(BUF) };
    this.active = warps;
    this.addr = new Float64Array(warps);
    this.write = new Uint8Array(warps);
    this.key = new Float64Array(warps).fill(-1);
    this.slot = new Int32Array(warps).fill(-1);
    this.keyBlocks = new Int32Array(warps);
    this.tries = new Uint32Array(warps);
    this.via = new Int8Array(warps).fill(-1);
    this.maxTries = driver.spec.maxFaultsPerAccess;
    this.issueFn = new Array<() => void>(warps);
    this.translateFn = new Array<() => void>(warps);
    this.raiseFn = new Array<() => void>(warps);
    this.remoteFn = new Array<() => void>(warps);
    this.cTime = new Float64Array(warps);
    this.cOp = new Int32Array(warps);
    this.cGroup = new Int32Array(warps);
    for (let w = 0; w < warps; w++) {
      this.issueFn[w] = () => this.issue(w);
      this.translateFn[w] = () => this.translate(w);
      this.raiseFn[w] = () => this.raise(w);
      this.remoteFn[w] = () => this.remoteStep(w);
    }
  }

  start(): void {
    const e = this.driver.engine;
    this.startPs = e.now;
    this.tlbHits0 = this.driver.tlb.hits;
    this.tlbMisses0 = this.driver.tlb.misses;
    this.flushed0 = this.driver.stats.flushedFaults;
    for (let w = 0; w < this.warps; w++) e.schedule(e.now, this.issueFn[w]!);
  }

  result(): GpuKernelResult {
    return {
      accesses: this.accesses,
      faults: this.faults,
      remoteAccesses: this.remote,
      tlbHits: this.driver.tlb.hits - this.tlbHits0,
      tlbMisses: this.driver.tlb.misses - this.tlbMisses0,
      flushedFaults: this.driver.stats.flushedFaults - this.flushed0,
      startPs: this.startPs,
      endPs: this.driver.engine.now,
    };
  }

  /**
   * Replays warps[0..n) at time `at`, in that order, as one engine event (a batch's replay). The events those
   * warps then schedule are coalesced the same way (runGroup), so a batch's warps move through the model as a few
   * events instead of one each.
   */
  replayGroup(warps: Int32Array, n: number, at: number): void {
    const ops = this.take(n);
    for (let k = 0; k < n; k++) ops[k] = warps[k]! * OPS + OP_TRANSLATE;
    this.driver.engine.schedule(at, () => this.runGroup(ops, n));
  }

  /**
   * Replays throttled warps (a THROTTLE hint held their fault back) at `at`: the throttled fault is not counted
   * against maxFaultsPerAccess — a throttle that ends must not stop the kernel (forward progress).
   */
  replayThrottled(warps: Int32Array, n: number, at: number): void {
    for (let k = 0; k < n; k++) {
      const w = warps[k]!;
      if (this.tries[w]! > 0) this.tries[w]!--;
    }
    this.replayGroup(warps, n, at);
  }

  /**
   * Replays warps whose fault entries a BATCH_FLUSH flush dropped unserviced, at `at`: the dropped fault is not
   * counted against maxFaultsPerAccess (it was never serviced; a warp behind a long queue may be flushed a few times).
   * `flush`: the fault service's number for the flush when these are all its entries, in order (raiseWarps may then
   * put the entries back instead of writing them again), else -1.
   */
  replayFlushed(warps: Int32Array, n: number, at: number, flush = -1): void {
    const ws = this.take(n);
    ws.set(warps.subarray(0, n));
    this.driver.engine.schedule(at, () => this.retryFlushed(ws, n, flush));
  }

  /**
   * The warps of flushed fault entries translate again, in order, at the replay (a BATCH_FLUSH kernel's most
   * frequent step: on a streaming kernel each page's warp faults about four times). This is runGroup over their
   * translations; when none of their pages has a valid device entry yet — the usual case: the flush dropped them
   * unserviced — every one takes translate's no-entry path (a TLB miss, a 4 KiB walk, a fault raised one walk later)
   * and the group is done in bulk with the same effects: the counters, then one event raising the same entries in
   * the same order (the event runGroup schedules for them). The dropped fault and the new one leave `tries` as it
   * was (replayThrottled's decrement, translate's increment).
   */
  private retryFlushed(ws: Int32Array, n: number, flush: number): void {
    if (this.error !== null) return this.release(ws);
    const d = this.driver;
    let bulk = d.walk4kPs > 0;
    for (let k = 0; k < n && bulk; k++) bulk = this.noEntry(ws[k]!);
    if (!bulk) {
      const tries = this.tries;
      for (let k = 0; k < n; k++) {
        const w = ws[k]!;
        if (tries[w]! > 0) tries[w]!--;
        ws[k] = w * OPS + OP_TRANSLATE;
      }
      this.runGroup(ws, n);
      return;
    }
    d.tlb.misses += n;
    this.faults += n;
    d.engine.schedule(d.engine.now + d.walk4kPs, () => this.raiseGroup(ws, n, flush));
  }

  /** runGroup of n OP_RAISE steps: the warps ws[0..n) write their fault entries, in order (`flush`: raiseWarps). */
  private raiseGroup(ws: Int32Array, n: number, flush: number): void {
    if (this.error === null) this.driver.faults.raiseWarps(this.space, ws, n, this.addr, this.write, this.gen, flush);
    this.release(ws);
  }

  /** Would translate(w) find no valid device entry for the warp's access (its no-entry path)? No side effect but the block cache. */
  private noEntry(w: number): boolean {
    // The warp's last translation was of this access (it faulted and waits), so the block cache holds its key.
    const slot = this.blockSlot(w, this.key[w]!);
    return slot < 0 || (this.driver.blocks.pte[slot * CHUNK_PAGES + pageIndex(this.addr[w]!)]! & GPU_PTE_VALID) === 0;
  }

  /** The slot of VA block `key` (-1: none yet) for warp w, through the warp's block cache (`key`, `slot`, `keyBlocks`). */
  private blockSlot(w: number, key: number): number {
    const blocks = this.driver.blocks;
    if (this.key[w] === key && (this.slot[w]! >= 0 || this.keyBlocks[w] === blocks.size)) return this.slot[w]!;
    const slot = blocks.findKey(key);
    this.key[w] = key;
    this.slot[w] = slot;
    this.keyBlocks[w] = blocks.size;
    return slot;
  }

  // Coalescing. While a group runs (all synchronous, inside one engine event), the steps its warps schedule are
  // collected, then scheduled as one event per distinct time, in order of first appearance, each running its
  // steps in the order they were scheduled. This is the order one event per step gives in FIFO tie-breaking:
  // nothing else can schedule between them (the group is one synchronous run), only times later than now are
  // collected (a zero-cost step, possible with a zero-cycle spec, is scheduled at once), and steps due at one time
  // ran back to back anyway. A step is a code, warp × OPS + op (no closure per step, a typed array per group).
  private collecting = false;
  private readonly cTime: Float64Array;
  private readonly cOp: Int32Array;
  /** Scratch: each collected step's group (runGroup). */
  private readonly cGroup: Int32Array;
  private cN = 0;

  /**
   * Schedules the warp's step `op` at (now + d1) + d2. Delays, not the time, are passed: a delay is a small integer
   * number of ps (a tagged small integer), a time beyond 2^31 ps a double, boxed — a heap allocation per step —
   * whenever the JIT does not inline this.
   */
  private sched(d1: number, w: number, op: number, d2 = 0): void {
    const t = this.driver.engine.now + d1 + d2;
    if (this.collecting && t > this.driver.engine.now && this.cN < this.cTime.length) {
      this.cTime[this.cN] = t;
      this.cOp[this.cN++] = w * OPS + op;
      return;
    }
    const fn = op === OP_ISSUE ? this.issueFn[w]! : op === OP_TRANSLATE ? this.translateFn[w]! : op === OP_RAISE ? this.raiseFn[w]! : this.remoteFn[w]!;
    this.driver.engine.schedule(t, fn);
  }

  // Group arrays are pooled by power-of-two capacity: a group's array goes back to the pool once its steps ran (a
  // fresh typed array per group, kilobytes each, costs an allocation outside the heap every event).
  private readonly pool: Int32Array[][] = [];

  private take(n: number): Int32Array {
    const cls = n <= 1 ? 0 : 32 - Math.clz32(n - 1);
    const free = this.pool[cls];
    return free !== undefined && free.length > 0 ? free.pop()! : new Int32Array(1 << cls);
  }

  private release(ops: Int32Array): void {
    const cls = 31 - Math.clz32(ops.length);
    (this.pool[cls] ??= []).push(ops);
  }

  private runGroup(ops: Int32Array, len: number): void {
    this.collecting = true;
    try {
      for (let k = 0; k < len; k++) {
        const x = ops[k]!;
        const w = x >> OP_BITS;
        switch (x & OP_MASK) {
          case OP_ISSUE:
            this.issue(w);
            break;
          case OP_TRANSLATE:
            this.translate(w);
            break;
          case OP_RAISE:
            this.raise(w);
            break;
          default:
            this.remoteStep(w);
        }
      }
    } finally {
      this.collecting = false;
      this.release(ops);
    }
    const n = this.cN;
    if (n === 0) return;
    this.cN = 0;
    const e = this.driver.engine;
    const times = this.cTime;
    const t0 = times[0]!;
    let k1 = 1; // the first step at another time than t0
    while (k1 < n && times[k1] === t0) k1++;
    if (k1 === n) {
      const g = this.take(n);
      g.set(this.cOp.subarray(0, n));
      e.schedule(t0, () => this.runGroup(g, n));
      return;
    }
    // Several times: give each step its time's group (times in order of first appearance; a short linear search,
    // as a group's steps share a few times), count the steps per group, then fill a group each.
    const tg = this.cGroup;
    const at: number[] = [t0];
    const counts: number[] = [k1];
    let index: Map<number, number> | null = null; // past SCAN distinct times (varied compute times): a map
    for (let k = 0; k < k1; k++) tg[k] = 0;
    for (let k = k1; k < n; k++) {
      const t = times[k]!;
      let g = 0;
      if (index === null) {
        while (g < at.length && at[g] !== t) g++;
      } else {
        g = index.get(t) ?? at.length;
      }
      if (g === at.length) {
        at.push(t);
        counts.push(0);
        if (index !== null) index.set(t, g);
        else if (at.length > SCAN) index = new Map(at.map((x, i) => [x, i]));
      }
      counts[g]!++;
      tg[k] = g;
    }
    const groups = counts.map((c) => this.take(c));
    const fill = counts.map(() => 0);
    for (let k = 0; k < n; k++) {
      const g = tg[k]!;
      groups[g]![fill[g]!++] = this.cOp[k]!;
    }
    for (let g = 0; g < groups.length; g++) {
      const ops = groups[g]!;
      const len = counts[g]!;
      e.schedule(at[g]!, () => this.runGroup(ops, len));
    }
  }

  /** The kernel cannot go on (a fault that cannot be serviced): every warp stops at its next step. */
  fail(err: Error): void {
    if (this.error !== null) return;
    this.error = err;
    this.done.complete();
  }

  private finishWarp(): void {
    if (--this.active === 0 && this.error === null) this.done.complete();
  }

  private next(w: number): number {
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
      this.fail(new GpuInputError("accesses[].addr", "must be a user address in [0, 2^47)", a));
      return -1;
    }
    this.addr[w] = a;
    this.write[w] = this.buf.write[i]!;
    this.accesses++;
    return this.buf.computePs[i]!;
  }

  private issue(w: number): void {
    if (this.error !== null) return;
    const c = this.next(w);
    if (c < 0) {
      if (this.error === null) this.finishWarp();
      return;
    }
    if (c > 0) this.sched(c, w, OP_TRANSLATE);
    else this.translate(w);
  }

  /** The warp's access faulted: the GPU writes its fault-buffer entry. */
  private raise(w: number): void {
    if (this.error === null) this.driver.raiseFault(this.space, this.addr[w]!, this.write[w] === 1, w, this.gen);
  }

  /** The warp's access goes over the link (system memory or a peer's); it issues its next access when done. */
  private remoteStep(w: number): void {
    if (this.error === null) this.driver.remoteAccess(this.write[w] === 1, this.issueFn[w]!, this.via[w]!);
  }

  private translate(w: number): void {
    if (this.error !== null) return;
    const d = this.driver;
    const a = this.addr[w]!;
    const write = this.write[w] === 1;
    const slot = this.blockSlot(w, VaBlocks.key(this.space, a));
    const r = d.translate(this.space, this.addr, w, write, slot);
    const cost = d.translateCost;
    if (r === 0 || r === 1) {
      const n = this.tries[w]!;
      if (n > this.worstFaultsPerAccess) this.worstFaultsPerAccess = n;
      this.tries[w] = 0;
    }
    if (r === 0) {
      this.sched(cost, w, OP_ISSUE, d.memAccessPs);
    } else if (r === 1) {
      this.remote++;
      this.via[w] = d.translatePeer;
      this.sched(cost, w, OP_REMOTE);
    } else {
      const n = ++this.tries[w]!;
      if (n > this.maxTries) {
        this.fail(new GpuForwardProgressError(d.name, w, a, n, this.maxTries, d.progressDiagnosis(this.warps)));
        return;
      }
      this.faults++;
      this.sched(cost, w, OP_RAISE);
    }
  }
}

