// struct completion (kernel/sched/completion.c: complete, complete_all, wait_for_completion,
// try_wait_for_completion, completion_done, reinit_completion), simulated.
//
// `done` counts completions not yet consumed, as the kernel's x->done: complete() wakes the first waiter (or,
// with none, banks one completion for the next wait()); completeAll() sets it to "infinite" (UINT_MAX) and wakes
// every waiter; wait() consumes one banked completion or sleeps. Waiters resume in FIFO order.
// Without an engine, wait() succeeds only if a completion is banked and throws WouldBlockError otherwise.
import { _RESOLVED, type Engine, type Task, type Waitable } from "./engine.js";
import { WouldBlockError } from "./errors.js";
import { Fifo } from "./fifo.js";

/** completeAll() sets the count to this (the kernel's UINT_MAX): every later wait() returns at once. */
const COMPLETE_ALL = Infinity;

export class Completion implements Waitable {
  /** The engine that blocks waiters; may be attached after construction (null: synchronous use only). */
  engine: Engine | null;
  private count = 0;
  private readonly waiters = new Fifo<Task>();

  constructor(
    readonly name: string,
    engine: Engine | null = null,
  ) {
    this.engine = engine;
  }

  /** completion_done(): true if a wait() would not sleep (a completion is banked, or completeAll() was called). */
  get done(): boolean {
    return this.count > 0;
  }

  /** Number of tasks waiting. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** wait_for_completion(). */
  wait(): Promise<void> {
    if (this.tryWait()) return _RESOLVED;
    const e = this.engine;
    if (e === null) {
      throw new WouldBlockError(`completion "${this.name}".wait(): not completed and no engine, so the caller cannot sleep`);
    }
    const task = e._taskFor(`completion "${this.name}".wait()`);
    this.waiters.push(task);
    return e._block(task, this);
  }

  /** try_wait_for_completion(): consumes a banked completion without sleeping; false if none. */
  tryWait(): boolean {
    if (this.count === 0) return false;
    if (this.count !== COMPLETE_ALL) this.count--;
    return true;
  }

  /** complete(): wakes one waiter, or banks one completion. */
  complete(): void {
    const t = this.waiters.shift();
    if (t !== undefined) this.engine!._wake(t);
    else if (this.count !== COMPLETE_ALL) this.count++;
  }

  /** complete_all(): wakes every waiter; every later wait() returns at once until reinit(). */
  completeAll(): void {
    this.count = COMPLETE_ALL;
    let t: Task | undefined;
    while ((t = this.waiters.shift()) !== undefined) this.engine!._wake(t);
  }

  /** reinit_completion(). */
  reinit(): void {
    this.count = 0;
  }

  describeWait(): string {
    return `completion "${this.name}"`;
  }
}
