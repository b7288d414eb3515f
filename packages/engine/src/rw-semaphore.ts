// struct rw_semaphore (kernel/locking/rwsem.c: down_read, down_write, down_read_trylock, down_write_trylock,
// up_read, up_write, downgrade_write, rwsem_is_locked), simulated. mm->mmap_lock is one.
//
// Rules modelled:
//  - readers share the lock; a writer holds it exclusively;
//  - a queued writer blocks new readers: down_read() and down_read_trylock() fail / wait whenever any waiter is
//    queued (no writer starvation; the kernel's trylock also fails once RWSEM_FLAG_WAITERS is set);
//  - handoff in queue order (rwsem_mark_wake): when the lock becomes free and the first waiter is a writer, it
//    gets the lock; when the first waiter is a reader, the readers are granted the lock together — the kernel
//    wakes the readers of the whole queue (up to MAX_READERS_WAKEUP = 256), writers keep their place and order;
//  - up_read()/up_write() of a lock not held that way throws LockMisuseError (the kernel would DEBUG_RWSEMS_WARN).
// Not modelled: optimistic spinning and reader lock stealing (timing details of the real lock).
// Without an engine, the try* methods and up* work synchronously; downRead()/downWrite() throw WouldBlockError
// when they would have to wait.
import { _RESOLVED, type Engine, type Task, type Waitable } from "./engine.js";
import { LockMisuseError, WouldBlockError } from "./errors.js";
import { Fifo } from "./fifo.js";

/** Readers woken at once when a reader heads the queue (kernel/locking/rwsem.c MAX_READERS_WAKEUP). */
export const MAX_READERS_WAKEUP = 256;

interface RwWaiter {
  task: Task;
  write: boolean;
}

export class RwSemaphore implements Waitable {
  /** The engine that blocks waiters; may be attached after construction (null: synchronous use only). */
  engine: Engine | null;
  private _readers = 0;
  private _writeLocked = false;
  /** The task holding the write lock (null if none, or held by non-task code). */
  writer: Task | null = null;
  private readonly waiters = new Fifo<RwWaiter>();

  constructor(
    readonly name: string,
    engine: Engine | null = null,
  ) {
    this.engine = engine;
  }

  get readers(): number {
    return this._readers;
  }

  get writeLocked(): boolean {
    return this._writeLocked;
  }

  /** Number of queued waiters. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** rwsem_is_locked(). */
  isLocked(): boolean {
    return this._readers > 0 || this._writeLocked;
  }

  /** down_read_trylock(): succeeds if not write-locked and no waiter is queued. */
  tryDownRead(): boolean {
    if (this._writeLocked || this.waiters.length > 0) return false;
    this._readers++;
    return true;
  }

  /** down_write_trylock(): succeeds if the lock is completely free. */
  tryDownWrite(): boolean {
    if (this._writeLocked || this._readers > 0 || this.waiters.length > 0) return false;
    this._writeLocked = true;
    this.writer = this.engine?.currentTask ?? null;
    return true;
  }

  /** down_read(). */
  downRead(): Promise<void> {
    if (this.tryDownRead()) return _RESOLVED;
    return this.wait(false, "downRead");
  }

  /** down_write(). */
  downWrite(): Promise<void> {
    if (this.tryDownWrite()) return _RESOLVED;
    return this.wait(true, "downWrite");
  }

  private wait(write: boolean, op: string): Promise<void> {
    const e = this.engine;
    if (e === null) {
      throw new WouldBlockError(
        `rwsem "${this.name}".${op}(): the lock is ${this._writeLocked ? "write-locked" : this._readers > 0 ? "read-locked with writers queued" : "contended"} ` +
          `and has no engine, so it cannot wait (use tryDown${write ? "Write" : "Read"}() in non-task code)`,
      );
    }
    const task = e._taskFor(`rwsem "${this.name}".${op}()`);
    if (this._writeLocked && this.writer === task) {
      throw new LockMisuseError(`rwsem "${this.name}".${op}(): task "${task.name}" already holds the write lock (self-deadlock)`);
    }
    this.waiters.push({ task, write });
    return e._block(task, this);
  }

  /** up_read(). */
  upRead(): void {
    if (this._readers === 0) {
      throw new LockMisuseError(`rwsem "${this.name}".upRead(): not read-locked (up_read without down_read)`);
    }
    if (--this._readers === 0) this.wakeWaiters();
  }

  /** up_write(). */
  upWrite(): void {
    if (!this._writeLocked) {
      throw new LockMisuseError(`rwsem "${this.name}".upWrite(): not write-locked (up_write without down_write)`);
    }
    this._writeLocked = false;
    this.writer = null;
    this.wakeWaiters();
  }

  /** downgrade_write(): turns the caller's write lock into a read lock and lets queued readers in. */
  downgradeWrite(): void {
    if (!this._writeLocked) {
      throw new LockMisuseError(`rwsem "${this.name}".downgradeWrite(): not write-locked`);
    }
    this._writeLocked = false;
    this.writer = null;
    this._readers = 1;
    this.wakeWaiters(); // a writer at the head keeps waiting; readers at the head join the new reader
  }

  // rwsem_mark_wake()
  private wakeWaiters(): void {
    const head = this.waiters.peek();
    if (head === undefined) return;
    if (head.write) {
      if (this._readers === 0 && !this._writeLocked) {
        this.waiters.shift();
        this._writeLocked = true;
        this.writer = head.task;
        this.engine!._wake(head.task);
      }
      return;
    }
    this.wakeReaders();
  }

  private wakeReaders(): void {
    if (this._writeLocked) return;
    let n = 0;
    const granted = this.waiters.removeWhere((w) => !w.write && n++ < MAX_READERS_WAKEUP);
    for (const w of granted) {
      this._readers++;
      this.engine!._wake(w.task);
    }
  }

  describeWait(task: Task): string {
    const w = this.waiters.toArray().find((x) => x.task === task);
    const mode = w ? (w.write ? "write" : "read") : "?";
    const holder = this._writeLocked
      ? ` (write-locked by ${this.writer ? `"${this.writer.name}"` : "non-task code"})`
      : this._readers > 0
        ? ` (read-locked by ${this._readers} reader(s))`
        : "";
    return `rwsem "${this.name}" for ${mode}${holder}`;
  }
}
