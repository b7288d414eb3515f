// The discrete-event engine: integer virtual time (ps), a typed-array event queue, tasks, seeded ordering.
//
// Tasks are async functions that await only engine primitives (sleep, yieldPoint, Mutex, RwSemaphore, WaitQueue,
// Completion, Task.join). Exactly one task runs at a time. How it works:
//  - The run loop ("pump") pops events in (time, order) order. A plain event is a synchronous callback. A task
//    event resumes a task: the pump resolves the promise that task is awaiting and stops; the task runs in the
//    following microtasks until it blocks on an engine primitive or finishes, which "reports back" by queueing
//    the pump again (one queueMicrotask). So a run is a single chain of microtasks and never yields to the event
//    loop.
//  - Foreign-await detection: run() arms one setImmediate and one setTimeout(0) watchdog. A macrotask can only run
//    once every microtask has drained; while the engine is healthy the microtask chain never breaks until run()
//    settles. If a watchdog fires while run() is pending, the task being stepped neither blocked on an engine
//    primitive nor finished: it awaited something foreign (a timer, I/O, a promise nobody in the engine will
//    settle). run() then rejects with ForeignAwaitError naming the task. Cost: two timers per run() call, nothing
//    per step. Limit: a foreign promise that settles in an earlier macrotask than both watchdogs (I/O completing in
//    the poll phase right after run() was called from a check-phase callback) lets the task go on unnoticed.
//  - Ordering among events at the same time: "fifo" (schedule order), "random" (a seeded 32-bit key, so the seed
//    decides which ready task proceeds at a yield point) or PCT priorities (explorer, see explore.ts).
import {
  DeadlockError,
  EngineOptionError,
  EngineUsageError,
  ForeignAwaitError,
  LivelockError,
  type BlockedTask,
} from "./errors.js";
import { EventQueue } from "./event-queue.js";
import { Rng } from "./rng.js";
import { addTime, checkTime, MAX_TIME_PS } from "./time.js";

export type TieBreak = "fifo" | "random";

/** PCT (probabilistic concurrency testing) scheduling: random task priorities plus depth-1 priority change points. */
export interface PctOptions {
  /** Bug depth d ≥ 1: d - 1 priority change points are drawn. */
  depth: number;
  /** Estimated number of task steps k in one run; change points are uniform in [1, k]. */
  steps: number;
}

export interface EngineOptions {
  /** Seed of engine.rng and of the seeded tie-break (default 0). */
  seed?: number;
  /** Order of events at equal time: "fifo" (default) or "random" (seeded). */
  tieBreak?: TieBreak;
  /** Max consecutive events without virtual time advancing before LivelockError (default 10_000_000). */
  livelockBound?: number;
  /** Record engine.eventTrace (one line per event / task step). */
  trace?: boolean;
  /** PCT ordering (used by explore({ strategy: "pct" })); overrides tieBreak. */
  pct?: PctOptions;
}

export interface SpawnOptions {
  /**
   * A daemon task (a device fault handler, a copy engine) may stay blocked forever, e.g. on its work queue:
   * when the queue runs dry with only daemons blocked, run() returns normally instead of reporting a deadlock.
   */
  daemon?: boolean;
}

/** Something a task can block on; describes itself for deadlock reports. */
export interface Waitable {
  describeWait(task: Task): string;
}

export type TaskState = "new" | "ready" | "running" | "blocked" | "done" | "failed";

const SLEEP = "sleep";
const YIELD = "yieldPoint";
const RESOLVED: Promise<void> = Promise.resolve();

/** A simulated thread of control (a CPU thread, a device fault handler, a workload). */
export class Task implements Waitable {
  state: TaskState = "new";
  /** What the task is blocked on; null unless blocked. */
  blockedOn: Waitable | string | null = null;
  /** The error the task failed with (state "failed"). */
  error: unknown = undefined;
  /** @internal */ _fn: (() => Promise<void> | void) | null;
  /** @internal */ _resume: (() => void) | null = null;
  /** @internal */ _resumedFrom: Waitable | string | null = null;
  /** @internal */ _yieldLabel = "";
  /** @internal */ _sleepUntil = 0;
  /** @internal */ _priority = 0;
  /** @internal */ _lastStepTime = -1;
  /** @internal */ _joiners: Task[] | null = null;

  constructor(
    readonly engine: Engine,
    readonly id: number,
    readonly name: string,
    fn: () => Promise<void> | void,
    readonly daemon: boolean,
  ) {
    this._fn = fn;
  }

  /** True once the task finished or failed. */
  get done(): boolean {
    return this.state === "done" || this.state === "failed";
  }

  /** Human-readable description of what the task waits on (null unless blocked). */
  get waitsOn(): string | null {
    return this.state === "blocked" ? describe(this.blockedOn, this) : null;
  }

  /** Blocks the calling task until this task has finished (an engine primitive). */
  join(): Promise<void> {
    if (this.done) return RESOLVED;
    const e = this.engine;
    const me = e._taskFor(`task "${this.name}".join()`);
    if (me === this) throw new EngineUsageError(`task "${this.name}" joins itself (it would never finish)`);
    (this._joiners ??= []).push(me);
    return e._block(me, this);
  }

  describeWait(): string {
    return `task "${this.name}" to finish`;
  }
}

function describe(on: Waitable | string | null, task: Task): string {
  if (on === null) return "nothing";
  if (on === SLEEP) return `sleep until t=${task._sleepUntil}`;
  if (on === YIELD) return `yieldPoint "${task._yieldLabel}"`;
  if (typeof on === "string") return on;
  return on.describeWait(task);
}

const PCT_SPAN = 2097152; // 2^21: PCT priorities live in [1, 2^21)
const TWO_POW_32 = 4294967296;
const TWO_POW_21 = 2097152;

type Payload = (() => void) | Task;

export class Engine {
  private _now = 0;
  /** The engine's seeded RNG: every random choice of a simulation draws from it (or from rng.derive(label)). */
  readonly rng: Rng;
  readonly livelockBound: number;
  readonly seed: number;
  private readonly queue = new EventQueue<Payload>();
  private seq = 0;
  private readonly mode: 0 | 1 | 2; // fifo | random | pct
  private readonly tieRng: Rng;
  private readonly pctDepth: number;
  private readonly pctChangePoints: number[];
  private pctNext = 0;
  private readonly traceOn: boolean;
  private readonly _trace: string[] = [];
  private current: Task | null = null;
  private stepping: Task | null = null;
  private running = false;
  private inPump = false;
  private pumpQueued = false;
  private limit = 0;
  private advanceTo = -1;
  private sameTime = 0;
  private runResolve: (() => void) | null = null;
  private runReject: ((e: unknown) => void) | null = null;
  private watchdog: ReturnType<typeof setImmediate> | null = null;
  private watchdogTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly live = new Set<Task>();
  private nextTaskId = 0;
  private failed = false;
  private failure: unknown = undefined;
  private captured: (() => void) | null = null;
  private readonly capture = (resolve: () => void): void => {
    this.captured = resolve;
  };
  private hookFn: (() => void) | null = null;
  private hookEvery = Number.MAX_SAFE_INTEGER;
  private hookLeft = Number.MAX_SAFE_INTEGER;
  /** Task steps (starts + resumes) executed so far. */
  steps = 0;
  /** Events popped so far. */
  events = 0;
  /** The task whose error failed the run, if any. */
  failedTask: Task | null = null;

  constructor(opts: EngineOptions = {}) {
    if (typeof opts !== "object" || opts === null) throw new EngineUsageError(`Engine opts = ${String(opts)}: must be an object (or omitted)`);
    const seed = opts.seed ?? 0;
    // README: a seed is an integer >= 0 (a machine spec's seed, explore's seeds); Rng would take any safe integer.
    if (typeof seed !== "number" || !Number.isSafeInteger(seed) || seed < 0) {
      throw new EngineOptionError("Engine opts", "seed", seed, "must be an integer >= 0 (at most 2^53 - 1)");
    }
    this.seed = seed;
    this.rng = new Rng(seed);
    this.tieRng = this.rng.derive("engine.tie-break");
    const bound = opts.livelockBound ?? 10_000_000;
    if (typeof bound !== "number" || !Number.isSafeInteger(bound) || bound < 1) {
      throw new EngineOptionError("Engine opts", "livelockBound", bound, "must be an integer >= 1");
    }
    this.livelockBound = bound;
    const trace = opts.trace ?? false;
    if (typeof trace !== "boolean") throw new EngineOptionError("Engine opts", "trace", trace, "must be true or false");
    this.traceOn = trace;
    const tb = opts.tieBreak ?? "fifo";
    if (tb !== "fifo" && tb !== "random") {
      throw new EngineOptionError("Engine opts", "tieBreak", tb, 'must be "fifo" or "random"');
    }
    this.pctDepth = 0;
    this.pctChangePoints = [];
    if (opts.pct !== undefined) {
      if (typeof opts.pct !== "object" || opts.pct === null) throw new EngineOptionError("Engine opts", "pct", opts.pct, "must be { depth, steps } (or omitted)");
      const { depth, steps } = opts.pct;
      if (!Number.isSafeInteger(depth) || depth < 1 || depth >= 1 << 20) {
        throw new EngineOptionError("Engine opts", "pct.depth", depth, "must be an integer in [1, 2^20)");
      }
      if (!Number.isSafeInteger(steps) || steps < 1) {
        throw new EngineOptionError("Engine opts", "pct.steps", steps, "must be an integer >= 1");
      }
      this.mode = 2;
      this.pctDepth = depth;
      const pts: number[] = [];
      for (let i = 0; i < depth - 1; i++) pts.push(1 + this.tieRng.int(steps));
      // Change point i (in draw order) lowers a task to priority depth-1-i; apply them in step order.
      this.pctChangePoints = pts;
    } else {
      this.mode = tb === "random" ? 1 : 0;
    }
  }

  /** Current virtual time, ps. */
  get now(): number {
    return this._now;
  }

  /** The task whose code is running, or null in plain events / outside the run. */
  get currentTask(): Task | null {
    return this.current;
  }

  /** One line per event / task step (only when constructed with trace: true). */
  get eventTrace(): readonly string[] {
    return this._trace;
  }

  /** Number of pending events. */
  get pendingEvents(): number {
    return this.queue.size;
  }

  /** Number of tasks spawned and not yet finished. */
  get liveTasks(): number {
    return this.live.size;
  }

  /** True while run()/runUntil() is in progress. */
  get isRunning(): boolean {
    return this.running;
  }

  /** Live tasks that are blocked, with what they wait on. */
  blockedTasks(): BlockedTask[] {
    const out: BlockedTask[] = [];
    for (const t of this.live) {
      if (t.state === "blocked") out.push({ task: t.name, waitsOn: describe(t.blockedOn, t) });
    }
    return out;
  }

  private ordFor(task: Task | null): number {
    const seq = this.seq++;
    if (this.mode === 0) return seq;
    if (this.mode === 1) return this.tieRng.nextU32() * TWO_POW_21 + (seq % TWO_POW_21);
    const prio = task === null ? PCT_SPAN : task._priority;
    return (PCT_SPAN - prio) * TWO_POW_32 + (seq % TWO_POW_32);
  }

  /** Schedules fn at absolute virtual time `at` (ps, integer, ≥ now, ≤ 2^53-1). */
  schedule(at: number, fn: () => void): void {
    checkTime("at", at, this._now);
    if (typeof fn !== "function") throw new EngineUsageError(`schedule(at, fn): fn = ${String(fn)}: must be a function`);
    this.queue.push(at, this.ordFor(this.current), fn);
  }

  /** Schedules fn `dt` ps from now. */
  after(dt: number, fn: () => void): void {
    const at = addTime("dt", this._now, dt);
    if (typeof fn !== "function") throw new EngineUsageError(`after(dt, fn): fn = ${String(fn)}: must be a function`);
    this.queue.push(at, this.ordFor(this.current), fn);
  }

  /** Creates a task that starts at `now` (when the run reaches it). */
  spawn(name: string, fn: () => Promise<void> | void, opts: SpawnOptions = {}): Task {
    if (typeof name !== "string") throw new EngineUsageError(`spawn(name, fn): name = ${String(name)}: must be a string`);
    if (typeof fn !== "function") throw new EngineUsageError(`spawn("${name}", fn): fn must be a function`);
    const task = new Task(this, this.nextTaskId++, name, fn, opts.daemon ?? false);
    if (this.mode === 2) task._priority = this.pctDepth + this.tieRng.int(1 << 20);
    this.live.add(task);
    task.state = "ready";
    if (this.traceOn) this._trace.push(`${this._now} spawn ${name}`);
    this.queue.push(this._now, this.ordFor(task), task);
    return task;
  }

  /** Blocks the calling task for dt ps. */
  sleep(dt: number): Promise<void> {
    const task = this._taskFor("sleep()");
    const at = addTime("dt", this._now, dt);
    task._sleepUntil = at;
    this.queue.push(at, this.ordFor(task), task);
    return this._block(task, SLEEP);
  }

  /**
   * A place where another ready task may run (where the kernel code being modelled drops a lock or may be
   * preempted). The calling task becomes ready again at the same virtual time; which ready task proceeds first
   * is decided by the tie-break (fifo: the others first; random / pct: the seed).
   */
  yieldPoint(label: string): Promise<void> {
    const task = this._taskFor(`yieldPoint("${label}")`);
    task._yieldLabel = label;
    this.queue.push(this._now, this.ordFor(task), task);
    return this._block(task, YIELD);
  }

  /** Runs until no event is pending. Rejects with DeadlockError / LivelockError / ForeignAwaitError / the first task or event error. */
  run(): Promise<void> {
    return this.start(MAX_TIME_PS, -1);
  }

  /**
   * Runs the events at times ≤ t, then sets now = t. Same errors as run() (a deadlock when the queue runs dry before t).
   * With `{ advance: false }` the run stops before the first event later than t, leaving now at the last event run
   * (a time limit: `pendingEvents > 0` afterwards says the run was cut short), and a queue that runs dry before t
   * ends the run as run() does.
   */
  runUntil(t: number, opts: { advance?: boolean } = {}): Promise<void> {
    try {
      checkTime("t", t, this._now);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.start(t, opts.advance === false ? -1 : t);
  }

  /**
   * Calls `fn` after every `events` events run()/runUntil() process (a progress display, a wall-clock watchdog);
   * `fn` runs between events, may read the engine and may throw (the run then fails with that error), but must not
   * schedule or await. `null` removes it. The hook adds no event and draws nothing from the RNG: a run's events
   * and results are the same with or without it.
   */
  setEventHook(events: number, fn: (() => void) | null): void {
    if (fn === null) {
      this.hookFn = null;
      this.hookEvery = this.hookLeft = Number.MAX_SAFE_INTEGER;
      return;
    }
    if (!Number.isSafeInteger(events) || events < 1) throw new EngineOptionError("setEventHook", "events", events, "must be an integer >= 1");
    if (typeof fn !== "function") throw new EngineUsageError(`setEventHook(events, fn): fn = ${String(fn)}: must be a function or null`);
    this.hookFn = fn;
    this.hookEvery = this.hookLeft = events;
  }

  private start(limit: number, advanceTo: number): Promise<void> {
    if (this.running) return Promise.reject(new EngineUsageError("run()/runUntil() called while the engine is already running"));
    if (this.failed) {
      return Promise.reject(
        new EngineUsageError(`run()/runUntil() on an engine whose run already failed: ${errorMessage(this.failure)}`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.runResolve = resolve;
      this.runReject = reject;
      this.running = true;
      this.limit = limit;
      this.advanceTo = advanceTo;
      this.armWatchdogs();
      this.pump();
    });
  }

  private readonly pump = (): void => {
    this.pumpQueued = false;
    if (!this.running || this.stepping !== null) return;
    this.current = null;
    this.inPump = true;
    const q = this.queue;
    const limit = this.limit;
    const bound = this.livelockBound;
    try {
      while (this.stepping === null && this.running) {
        if (q.size === 0) {
          this.finishDry();
          break;
        }
        const t = q.peekTime();
        if (t > limit) {
          this.finishOk();
          break;
        }
        if (--this.hookLeft === 0) {
          this.hookLeft = this.hookEvery;
          this.hookFn!();
        }
        const ev = q.pop();
        this.events++;
        if (t !== this._now) {
          this._now = t;
          this.sameTime = 1;
        } else if (++this.sameTime > bound) {
          this.livelock();
          break;
        }
        if (typeof ev === "function") {
          if (this.traceOn) this._trace.push(`${t} event ${ev.name || "fn"}`);
          ev();
        } else {
          this.step(ev);
          if (this.stepping === null) this.current = null;
        }
      }
    } catch (e) {
      this.fail(e);
    } finally {
      this.inPump = false;
    }
  };

  private step(task: Task): void {
    this.steps++;
    task._lastStepTime = this._now;
    task.state = "running";
    this.stepping = task;
    this.current = task;
    if (this.mode === 2 && this.pctNext < this.pctChangePoints.length) {
      const idx = this.pctChangePoints.indexOf(this.steps);
      if (idx >= 0) {
        task._priority = this.pctDepth - 1 - idx;
        this.pctNext++;
      }
    }
    const fn = task._fn;
    if (fn !== null) {
      if (this.traceOn) this._trace.push(`${this._now} start ${task.name}`);
      task._fn = null;
      let p: Promise<void> | void;
      try {
        p = fn();
      } catch (e) {
        p = Promise.reject(e);
      }
      Promise.resolve(p).then(
        () => this.taskDone(task),
        (e: unknown) => this.taskFailed(task, e),
      );
    } else {
      if (this.traceOn) this._trace.push(`${this._now} resume ${task.name} after ${describe(task.blockedOn, task)}`);
      const r = task._resume!;
      task._resume = null;
      task._resumedFrom = task.blockedOn;
      task.blockedOn = null;
      r();
    }
  }

  private taskDone(task: Task): void {
    task.state = "done";
    this.live.delete(task);
    if (this.traceOn) this._trace.push(`${this._now} done ${task.name}`);
    const joiners = task._joiners;
    if (joiners !== null) {
      task._joiners = null;
      for (const j of joiners) this._wake(j);
    }
    this.reportBack(task);
  }

  private taskFailed(task: Task, e: unknown): void {
    task.state = "failed";
    task.error = e;
    this.live.delete(task);
    if (this.traceOn) this._trace.push(`${this._now} failed ${task.name}: ${errorMessage(e)}`);
    if (this.stepping === task) this.stepping = null;
    if (!this.failed) this.failedTask = task;
    this.fail(e);
  }

  private reportBack(task: Task): void {
    if (this.stepping !== task) {
      if (this.running) {
        this.fail(
          new EngineUsageError(
            `task "${task.name}" blocked or finished while it was not the task being run (it awaited two engine ` +
              `primitives at once, or was resumed by something other than the engine)`,
          ),
        );
      }
      return;
    }
    this.stepping = null;
    if (!this.inPump && !this.pumpQueued && this.running) {
      this.pumpQueued = true;
      queueMicrotask(this.pump);
    }
  }

  private finishDry(): void {
    let stuck = false;
    const blocked: BlockedTask[] = [];
    for (const t of this.live) {
      if (!t.daemon) stuck = true;
      blocked.push({ task: t.name, waitsOn: describe(t.blockedOn, t) + (t.daemon ? " [daemon]" : "") });
    }
    if (stuck) {
      this.fail(new DeadlockError(blocked, this._now));
      return;
    }
    this.finishOk();
  }

  private finishOk(): void {
    if (this.advanceTo > this._now) this._now = this.advanceTo;
    this.running = false;
    this.current = null;
    this.disarmWatchdogs();
    const r = this.runResolve!;
    this.runResolve = this.runReject = null;
    r();
  }

  private fail(e: unknown): void {
    if (this.failed || !this.running) return;
    this.failed = true;
    this.failure = e;
    this.running = false;
    if (this.traceOn) this._trace.push(`${this._now} run failed: ${errorMessage(e)}`);
    this.disarmWatchdogs();
    const r = this.runReject!;
    this.runResolve = this.runReject = null;
    r(e);
  }

  private livelock(): void {
    const tasks: string[] = [];
    // Tasks that ran at this virtual time, except those that went to sleep past it (they are not part of the loop).
    for (const t of this.live) {
      if (t._lastStepTime !== this._now) continue;
      if (t.state === "blocked" && t.blockedOn === SLEEP && t._sleepUntil > this._now) continue;
      tasks.push(t.name);
    }
    this.fail(new LivelockError(tasks, this.sameTime, this._now, this.livelockBound));
  }

  // Two watchdogs per run() call: a setImmediate (check phase) and a setTimeout(0) (timers phase, armed before any
  // task can arm a timer, so it expires no later than a task's own timer). Either one firing while run() is
  // pending means the microtask chain broke: the task being stepped awaits something foreign.
  private armWatchdogs(): void {
    this.watchdog = setImmediate(this.onWatchdog);
    this.watchdogTimer = setTimeout(this.onWatchdog, 0);
  }

  private disarmWatchdogs(): void {
    if (this.watchdog !== null) clearImmediate(this.watchdog);
    if (this.watchdogTimer !== null) clearTimeout(this.watchdogTimer);
    this.watchdog = null;
    this.watchdogTimer = null;
  }

  private readonly onWatchdog = (): void => {
    if (!this.running) return;
    const t = this.stepping;
    if (t === null) {
      // Not reachable while the engine is healthy (the pump is queued as a microtask); re-arm defensively.
      this.disarmWatchdogs();
      this.armWatchdogs();
      return;
    }
    const from = t._resumedFrom === null ? "at its start" : `after ${describe(t._resumedFrom, t)}`;
    this.fail(new ForeignAwaitError(t.name, `${from} at t=${this._now} ps`));
  };

  // ---- internal API for primitives (Mutex, RwSemaphore, WaitQueue, Completion) ----

  /** @internal The task calling a blocking primitive; throws if none is running. */
  _taskFor(op: string): Task {
    const t = this.stepping;
    if (t !== null) return t;
    const c = this.current;
    if (c !== null) {
      throw new EngineUsageError(
        `${op}: task "${c.name}" already blocked on ${describe(c.blockedOn, c)} in this step; await one engine primitive at a time`,
      );
    }
    throw new EngineUsageError(`${op} must be called inside a running task of this engine (see engine.spawn)`);
  }

  /** @internal Blocks `task` on `on`; returns the promise the task must await. */
  _block(task: Task, on: Waitable | string): Promise<void> {
    task.state = "blocked";
    task.blockedOn = on;
    if (this.traceOn) this._trace.push(`${this._now} block ${task.name} on ${describe(on, task)}`);
    const p = new Promise<void>(this.capture);
    task._resume = this.captured;
    this.captured = null;
    this.reportBack(task);
    return p;
  }

  /** @internal Makes a blocked task ready: it resumes at `now`, ordered by the tie-break. */
  _wake(task: Task): void {
    task.state = "ready";
    this.queue.push(this._now, this.ordFor(task), task);
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

export { RESOLVED as _RESOLVED };
