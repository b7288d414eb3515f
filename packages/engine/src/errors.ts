// Typed errors of @hmmsim/engine. Every message names the task, field or rule involved.

/** Base class of every error the engine throws. */
export class EngineError extends Error {
  override name = "EngineError";
}

/** A virtual time or duration is not a non-negative safe integer number of picoseconds, or lies in the past. */
export class VirtualTimeError extends EngineError {
  override name = "VirtualTimeError";
  constructor(
    readonly field: string,
    readonly value: number,
    readonly rule: string,
  ) {
    super(`${field} = ${value}: ${rule}`);
  }
}

/**
 * A virtual time or duration would pass the engine's horizon, 2^53 - 1 ps (Number.MAX_SAFE_INTEGER, ≈ 9007 s of
 * simulated time): past it a JS number no longer holds every integer ps. A VirtualTimeError (so existing
 * `instanceof VirtualTimeError` checks hold) that a runner can tell apart from a malformed time: the run is too
 * long for the engine, not wrong. `now` is the virtual time when it happened.
 */
export class VirtualTimeOverflowError extends VirtualTimeError {
  override name = "VirtualTimeOverflowError";
  constructor(field: string, value: number, rule: string, readonly now: number) {
    super(field, value, rule);
  }
}

/** One blocked task in a {@link DeadlockError}. */
export interface BlockedTask {
  /** Task name. */
  task: string;
  /** What it waits on, e.g. `mutex "A" (held by "t2")`, `completion "done"`, `wait queue "wq"`. */
  waitsOn: string;
}

/** No event is pending, but tasks are still blocked on engine primitives: nothing can ever wake them. */
export class DeadlockError extends EngineError {
  override name = "DeadlockError";
  constructor(
    readonly blocked: BlockedTask[],
    readonly now: number,
  ) {
    super(
      `deadlock at t=${now} ps: no event pending and ${blocked.length} task(s) blocked: ` +
        blocked.map((b) => `task "${b.task}" waits on ${b.waitsOn}`).join("; "),
    );
  }
}

/** More than `livelockBound` consecutive events ran without virtual time advancing. */
export class LivelockError extends EngineError {
  override name = "LivelockError";
  constructor(
    readonly tasks: string[],
    readonly events: number,
    readonly now: number,
    readonly bound: number,
  ) {
    super(
      `livelock at t=${now} ps: ${events} consecutive events without virtual time advancing (livelockBound = ${bound}); ` +
        `tasks that ran at this time: ${tasks.length ? tasks.map((t) => `"${t}"`).join(", ") : "(none: plain events only)"}`,
    );
  }
}

/** A task awaited something that is not an engine primitive (a foreign promise, timer, I/O). */
export class ForeignAwaitError extends EngineError {
  override name = "ForeignAwaitError";
  constructor(
    readonly task: string,
    readonly lastResume: string,
  ) {
    super(
      `task "${task}" awaited something that is not an engine primitive (only sleep, yieldPoint, Mutex, RwSemaphore, ` +
        `WaitQueue, Completion, Task.join may be awaited inside a task); it last resumed ${lastResume}`,
    );
  }
}

/** An engine API was used against its rules (sleep outside a task, two blocking calls in one step, run() while running...). */
export class EngineUsageError extends EngineError {
  override name = "EngineUsageError";
}

/**
 * An option of `new Engine(opts)` / `explore(scenario, opts)` breaks its rule: `field` names it (`seed`,
 * `livelockBound`, `pct.depth`...), `rule` says what it must be. A usage error, so `instanceof EngineUsageError` holds.
 */
export class EngineOptionError extends EngineUsageError {
  override name = "EngineOptionError";
  constructor(
    /** Where: "Engine opts" or "explore opts". */
    readonly where: string,
    readonly field: string,
    readonly value: unknown,
    readonly rule: string,
  ) {
    super(`${where}.${field} = ${typeof value === "string" ? JSON.stringify(value) : String(value)}: ${rule}`);
  }
}

/** A lock/wait primitive would have to wait but cannot: it has no engine, or the caller is not a task. */
export class WouldBlockError extends EngineError {
  override name = "WouldBlockError";
}

/** A lock was released that is not held (the kernel would WARN / BUG), or similar lock misuse. */
export class LockMisuseError extends EngineError {
  override name = "LockMisuseError";
}
