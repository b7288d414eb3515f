// wait_queue_head_t (include/linux/wait.h, kernel/sched/wait.c: wait_event, wake_up, wake_up_all), simulated.
//
// wait() blocks the calling task until a wakeUpOne()/wakeUpAll(); waitEvent(cond) is wait_event(wq, cond):
// returns at once if cond() holds, otherwise sleeps and re-checks cond() after every wake-up (so a wake-up
// with cond() still false puts the task back to sleep, as in the kernel). Woken tasks resume at the same virtual
// time in FIFO order (ordered by the engine's tie-break among other same-time events).
// Without an engine, wait() throws WouldBlockError and waitEvent(cond) succeeds only if cond() already holds.
import { _RESOLVED, type Engine, type Task, type Waitable } from "./engine.js";
import { WouldBlockError } from "./errors.js";
import { Fifo } from "./fifo.js";

export class WaitQueue implements Waitable {
  /** The engine that blocks waiters; may be attached after construction (null: synchronous use only). */
  engine: Engine | null;
  private readonly waiters = new Fifo<Task>();

  constructor(
    readonly name: string,
    engine: Engine | null = null,
  ) {
    this.engine = engine;
  }

  /** Number of tasks waiting (waitqueue_active()). */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Sleeps until woken. */
  wait(): Promise<void> {
    const e = this.engine;
    if (e === null) {
      throw new WouldBlockError(`wait queue "${this.name}".wait(): no engine, so the caller cannot sleep`);
    }
    const task = e._taskFor(`wait queue "${this.name}".wait()`);
    this.waiters.push(task);
    return e._block(task, this);
  }

  /** wait_event(wq, cond): sleeps until cond() is true, re-checking after each wake-up. */
  waitEvent(cond: () => boolean): Promise<void> {
    if (cond()) return _RESOLVED;
    if (this.engine === null) {
      throw new WouldBlockError(
        `wait queue "${this.name}".waitEvent(cond): cond() is false and there is no engine, so the caller cannot sleep`,
      );
    }
    return this.waitLoop(cond);
  }

  private async waitLoop(cond: () => boolean): Promise<void> {
    do await this.wait();
    while (!cond());
  }

  /** wake_up(): wakes the first waiter. */
  wakeUpOne(): void {
    const t = this.waiters.shift();
    if (t !== undefined) this.engine!._wake(t);
  }

  /** wake_up_all(): wakes every waiter. */
  wakeUpAll(): void {
    let t: Task | undefined;
    while ((t = this.waiters.shift()) !== undefined) this.engine!._wake(t);
  }

  describeWait(): string {
    return `wait queue "${this.name}"`;
  }
}
