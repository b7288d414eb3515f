// struct mutex (kernel/locking/mutex.c: mutex_lock, mutex_trylock, mutex_unlock), simulated.
//
// FIFO-fair handoff: unlock() with waiters hands ownership straight to the first waiter (it resumes at the same
// virtual time), so a task arriving later, or a tryLock(), can never barge in ahead of a waiter. (The kernel's
// mutex may let a spinner steal the lock before setting MUTEX_FLAG_HANDOFF; the model always hands off.)
// Without an engine (the functional plane), tryLock()/unlock() work synchronously and lock() throws
// WouldBlockError when it would have to wait.
import { _RESOLVED, type Engine, type Task, type Waitable } from "./engine.js";
import { LockMisuseError, WouldBlockError } from "./errors.js";
import { Fifo } from "./fifo.js";

export class Mutex implements Waitable {
  /** The engine that blocks waiters; may be attached after construction (null: synchronous use only). */
  engine: Engine | null;
  private _locked = false;
  /** The task holding the mutex (null if free, or held by non-task code). */
  owner: Task | null = null;
  private readonly waiters = new Fifo<Task>();

  constructor(
    readonly name: string,
    engine: Engine | null = null,
  ) {
    this.engine = engine;
  }

  get locked(): boolean {
    return this._locked;
  }

  /** Number of tasks waiting for the mutex. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** mutex_trylock(): takes the mutex if free (never when waiters are queued: it is handed off to them). */
  tryLock(): boolean {
    if (this._locked) return false;
    this._locked = true;
    this.owner = this.engine?.currentTask ?? null;
    return true;
  }

  /** mutex_lock(): takes the mutex, waiting in FIFO order behind earlier waiters. */
  lock(): Promise<void> {
    const e = this.engine;
    if (!this._locked) {
      this._locked = true;
      this.owner = e?.currentTask ?? null;
      return _RESOLVED;
    }
    if (e === null) {
      throw new WouldBlockError(
        `mutex "${this.name}".lock(): the mutex is held and has no engine, so it cannot wait (use tryLock() in non-task code)`,
      );
    }
    const task = e._taskFor(`mutex "${this.name}".lock()`);
    if (task === this.owner) {
      throw new LockMisuseError(
        `mutex "${this.name}".lock(): task "${task.name}" already holds it (recursive locking would self-deadlock)`,
      );
    }
    this.waiters.push(task);
    return e._block(task, this);
  }

  /** mutex_unlock(): releases the mutex, handing it to the first waiter. */
  unlock(): void {
    if (!this._locked) {
      throw new LockMisuseError(`mutex "${this.name}".unlock(): the mutex is not locked (unlock of an unlocked mutex)`);
    }
    const next = this.waiters.shift();
    if (next === undefined) {
      this._locked = false;
      this.owner = null;
      return;
    }
    this.owner = next;
    this.engine!._wake(next);
  }

  describeWait(): string {
    return `mutex "${this.name}"` + (this.owner ? ` (held by "${this.owner.name}")` : this._locked ? " (held by non-task code)" : "");
  }
}
