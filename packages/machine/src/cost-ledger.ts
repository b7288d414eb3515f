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
 * Totals per kind (`chargedPs`, `chargedCount`) feed the stats.
 */
import { inject, injectable } from "tsyringe";
import type { Engine as EngineClass, Task } from "@hmmsim/engine";
import { COST_KINDS, type CostKind } from "./cost-model.js";
import { CostModel, Engine } from "./tokens.js";

export interface CostLedger {
  /** Adds cost(kind, count) to the current task's pending time (or to detachedPs outside tasks). */
  charge(kind: CostKind, count: number): void;
  /** Adds `ps` directly (a cost computed by the caller) to the current task's pending time. */
  chargePs(ps: number): void;
  /** Pending time of the current task, ps. */
  readonly pendingPs: number;
  /** Sleeps the current task's pending time (resolves at once when there is none). Call inside a task. */
  settle(): Promise<void>;
  /** Total pending time of every task that has not settled, ps. */
  readonly unsettledPs: number;
  /** Time charged outside any task, ps. */
  readonly detachedPs: number;
  /** Total ps charged per kind (including detached). */
  readonly chargedPs: Readonly<Record<CostKind, number>>;
  /** Total count charged per kind. */
  readonly chargedCount: Readonly<Record<CostKind, number>>;
}

const RESOLVED = Promise.resolve();

function zeroes(): Record<CostKind, number> {
  return Object.fromEntries(COST_KINDS.map((k) => [k, 0])) as Record<CostKind, number>;
}

@injectable()
export class TaskCostLedger implements CostLedger {
  private readonly pending = new Map<Task, number>();
  private detached = 0;
  readonly chargedPs = zeroes();
  readonly chargedCount = zeroes();

  constructor(
    @inject(CostModel) private readonly model: CostModel,
    @inject(Engine) private readonly engine: EngineClass,
  ) {}

  charge(kind: CostKind, count: number): void {
    const ps = this.model.cost(kind, count);
    this.chargedPs[kind] += ps;
    this.chargedCount[kind] += count;
    this.chargePs(ps);
  }

  chargePs(ps: number): void {
    if (!(ps > 0)) return;
    const t = this.engine.currentTask;
    if (t === null) this.detached += ps;
    else this.pending.set(t, (this.pending.get(t) ?? 0) + ps);
  }

  get pendingPs(): number {
    const t = this.engine.currentTask;
    return t === null ? 0 : (this.pending.get(t) ?? 0);
  }

  settle(): Promise<void> {
    const t = this.engine.currentTask;
    if (t === null) return RESOLVED;
    const ps = this.pending.get(t);
    if (ps === undefined) return RESOLVED;
    this.pending.delete(t);
    return this.engine.sleep(ps);
  }

  get unsettledPs(): number {
    let s = 0;
    for (const v of this.pending.values()) s += v;
    return s;
  }

  get detachedPs(): number {
    return this.detached;
  }
}
