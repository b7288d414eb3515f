/**
 * Charging time to the task that is running.
 *
 * Kernel code is synchronous: a CPU fault zeroes a page, writes PTEs, shoots down TLBs, and none of that can
 * `await`. So the kernel's cost sink (`kernel.charge(kind, count)`, installed by kernel-wiring.ts) does not
 * sleep; it adds the cost (CostModel) to the *pending time of the current engine task* (`engine.currentTask`).
 * The task pays it at a point of its choosing with `await machine.settle()` (= `ledger.settle()`): it sleeps
 * its pending time and resets it. The rule: **a task settles before it awaits anything else** (an engine lock, a
 * link transfer, another sleep) so its costs land before what follows; `machine.spawn()` settles automatically
 * when the task function returns. Charges made outside any task (setup code, plain events) go to the
 * `detachedPs` bucket: counted in the totals, slept by nobody.
 *
 * A DMA that synchronous code performs (a driver's migrate_to_ram copying a page inside a CPU fault) is queued with
 * `chargeTransfer(link, dir, bytes)`: at settle() the task first sleeps its pending time, then performs each queued
 * transfer on the link for real (awaiting `link.transfer`: it shares the link with other traffic, counts in its
 * busy time, bytes and transfers, and fires the link's DMA trace point). Outside a task the transfer cannot
 * happen: its uncontended time goes to `detachedPs`.
 *
 * Totals per kind (`chargedPs`, `chargedCount`) feed the stats.
 */
import { inject, injectable } from "tsyringe";
import type { Engine as EngineClass, Task } from "@hmmsim/engine";
import { COST_KINDS, type CostKind } from "./cost-model.js";
import type { Interconnect, LinkDirection } from "./interconnect.js";
import { CostModel, Engine } from "./tokens.js";

export interface CostLedger {
  /** Adds cost(kind, count) to the current task's pending time (or to detachedPs outside tasks). */
  charge(kind: CostKind, count: number): void;
  /** Adds `ps` directly (a cost computed by the caller) to the current task's pending time. */
  chargePs(ps: number): void;
  /** Queues a DMA of `bytes` over `link` in `dir` for the current task, performed at its next settle(). */
  chargeTransfer(link: Interconnect, dir: LinkDirection, bytes: number): void;
  /** Pending time of the current task, ps (queued transfers not included: their time depends on the link). */
  readonly pendingPs: number;
  /** The current task has pending time or queued transfers: settle() would wait. */
  readonly hasPending: boolean;
  /** Sleeps the current task's pending time (resolves at once when there is none). Call inside a task. */
  settle(): Promise<void>;
  /** Total pending time of every task that has not settled, ps (queued transfers at their uncontended time). */
  readonly unsettledPs: number;
  /** Time charged outside any task, ps. */
  readonly detachedPs: number;
  /** Total ps charged per kind (including detached). */
  readonly chargedPs: Readonly<Record<CostKind, number>>;
  /** Total count charged per kind. */
  readonly chargedCount: Readonly<Record<CostKind, number>>;
}

const RESOLVED = Promise.resolve();

/** Index of a kind in COST_KINDS (a switch on interned strings: no keyed property access on the hot path). */
function kindIndex(kind: CostKind): number {
  switch (kind) {
    case "CPU_FAULT":
      return 0;
    case "PAGE_ZERO":
      return 1;
    case "PAGE_COPY":
      return 2;
    case "PTE_UPDATE":
      return 3;
    case "TLB_SHOOTDOWN":
      return 4;
    case "DEVICE_FAULT":
      return 5;
    case "DMA":
      return 6;
    default:
      throw new RangeError(`CostLedger: unknown cost kind ${String(kind)}`);
  }
}

COST_KINDS.forEach((k, i) => {
  if (kindIndex(k) !== i) throw new Error(`cost-ledger: kindIndex(${k}) must be ${i}, its place in COST_KINDS`);
});

function totals(a: Float64Array): Record<CostKind, number> {
  const out = {} as Record<CostKind, number>;
  for (let i = 0; i < COST_KINDS.length; i++) out[COST_KINDS[i]!] = a[i]!;
  return out;
}

@injectable()
export class TaskCostLedger implements CostLedger {
  private readonly pending = new Map<Task, number>();
  private readonly transfers = new Map<Task, { link: Interconnect; dir: LinkDirection; bytes: number }[]>();
  private detached = 0;
  private readonly psByKind = new Float64Array(COST_KINDS.length);
  private readonly countByKind = new Float64Array(COST_KINDS.length);

  /** A snapshot of the per-kind totals (a fresh object per read). */
  get chargedPs(): Readonly<Record<CostKind, number>> {
    return totals(this.psByKind);
  }
  get chargedCount(): Readonly<Record<CostKind, number>> {
    return totals(this.countByKind);
  }

  constructor(
    @inject(CostModel) private readonly model: CostModel,
    @inject(Engine) private readonly engine: EngineClass,
  ) {}

  charge(kind: CostKind, count: number): void {
    const ps = this.model.cost(kind, count);
    const i = kindIndex(kind);
    this.psByKind[i] += ps;
    this.countByKind[i] += count;
    this.chargePs(ps);
  }

  chargePs(ps: number): void {
    if (!(ps > 0)) return;
    const t = this.engine.currentTask;
    if (t === null) this.detached += ps;
    else if (t === this.hotTask) this.hotPs += ps;
    else {
      this.flush();
      this.hotTask = t;
      this.hotPs = ps;
    }
  }

  /**
   * The last charged task's time is summed here and moved into `pending` when another task charges or anything
   * reads the ledger: a kernel path charges many small costs in a row for one task, and this keeps them off the Map.
   */
  private hotTask: Task | null = null;
  private hotPs = 0;
  private flush(): void {
    const t = this.hotTask;
    if (t === null) return;
    this.pending.set(t, (this.pending.get(t) ?? 0) + this.hotPs);
    this.hotTask = null;
    this.hotPs = 0;
  }

  chargeTransfer(link: Interconnect, dir: LinkDirection, bytes: number): void {
    if (!(bytes > 0)) return;
    const t = this.engine.currentTask;
    if (t === null) {
      this.detached += link.transferTime(dir, bytes);
      return;
    }
    let q = this.transfers.get(t);
    if (q === undefined) this.transfers.set(t, (q = []));
    q.push({ link, dir, bytes });
  }

  get pendingPs(): number {
    this.flush();
    const t = this.engine.currentTask;
    return t === null ? 0 : (this.pending.get(t) ?? 0);
  }

  get hasPending(): boolean {
    this.flush();
    const t = this.engine.currentTask;
    return t !== null && (this.pending.has(t) || this.transfers.has(t));
  }

  settle(): Promise<void> {
    const t = this.engine.currentTask;
    if (t === null) return RESOLVED;
    this.flush();
    const ps = this.pending.get(t);
    const q = this.transfers.get(t);
    if (ps === undefined && q === undefined) return RESOLVED;
    this.pending.delete(t);
    if (q === undefined) return this.engine.sleep(ps!);
    this.transfers.delete(t);
    return this.settleTransfers(ps ?? 0, q);
  }

  private async settleTransfers(ps: number, q: { link: Interconnect; dir: LinkDirection; bytes: number }[]): Promise<void> {
    if (ps > 0) await this.engine.sleep(ps);
    for (const x of q) await x.link.transfer(x.dir, x.bytes);
  }

  get unsettledPs(): number {
    this.flush();
    let s = 0;
    for (const v of this.pending.values()) s += v;
    for (const q of this.transfers.values()) for (const x of q) s += x.link.transferTime(x.dir, x.bytes);
    return s;
  }

  get detachedPs(): number {
    return this.detached;
  }
}
