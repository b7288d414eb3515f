/**
 * Why a run ended before its workload did, and the error a runner (simulate, the CLI) reports then. Two kinds:
 *
 *  - a limit the user set: `max-simulated-time` (spec `maxSimulatedTime`, `--max-simulated-time`) or
 *    `interrupted` (SimulateOptions.interrupt answered a reason: a wall-clock limit of an embedder or a test). The run
 *    stops cleanly: simulate() returns the partial summary with `stopped` filled in;
 *  - a limit of the machine or the engine, which the input ran into: `virtual-time-limit` (virtual time would pass
 *    2^53 − 1 ps ≈ 9007 s, the engine's horizon), `out-of-memory` (RAM, or RAM + device memory, cannot hold what
 *    the workload touched) or `forward-progress` (a device's driver saw an access fault again and again without
 *    completing: thrash). simulate() throws SimulationStoppedError carrying the partial summary.
 *
 * Anything else a run throws is a failure inside the simulation (a driver bug, a deadlock) and is rethrown as is.
 */
import { VirtualTimeOverflowError } from "@hmmsim/engine";
import { SegmentationFault, VM_FAULT_OOM } from "@hmmsim/core";
import { MachineError } from "./machine-error.js";
import type { RunSummary } from "./run-summary.js";

export type StopReason = "max-simulated-time" | "interrupted" | "virtual-time-limit" | "out-of-memory" | "forward-progress";

/** The reasons that are limits the user set (a clean stop) rather than limits the input ran into (an error). */
export const REQUESTED_STOPS: readonly StopReason[] = Object.freeze(["max-simulated-time", "interrupted"]);

/** How a run that did not finish its workload ended (RunSummary.stopped). */
export interface RunStop {
  reason: StopReason;
  /** Virtual time the run stopped at, ps. */
  atPs: number;
  /** What happened, in a sentence (the error's message for the error kinds). */
  message: string;
  /**
   * Accesses that ran before the stop (the finished phases' and the cut phase's: a CPU phase's completed accesses,
   * a device phase's started ones), and the workload's in all (null when not known in advance: BFS).
   */
  accessesDone: number;
  accessesTotal: number | null;
}

/**
 * What a driver (or any component) throws when the run cannot go on because the input is too big for the machine
 * — not because of a bug: `runLimit` says which limit ("memory": no page frame left; "forward-progress": an access
 * keeps faulting without completing), `device` names the device when there is one. simulate() reports such an
 * error as a stopped run with its partial summary; the CLI prints it without a stack. Any Error with these fields
 * qualifies (a driver package need not import a class from here).
 */
export interface RunLimitFailure {
  readonly runLimit: "memory" | "forward-progress";
  readonly device?: string;
}

export function isRunLimitFailure(e: unknown): e is Error & RunLimitFailure {
  return e instanceof Error && ((e as { runLimit?: unknown }).runLimit === "memory" || (e as { runLimit?: unknown }).runLimit === "forward-progress");
}

/** The stop reason of an error a run failed with, or null when the error is a failure inside the simulation. */
export function stopReasonOf(e: unknown): StopReason | null {
  if (e instanceof VirtualTimeOverflowError) return "virtual-time-limit";
  if (e instanceof RunInterrupted) return "interrupted";
  if (isRunLimitFailure(e)) return e.runLimit === "memory" ? "out-of-memory" : "forward-progress";
  if (e instanceof SegmentationFault && (e.fault & VM_FAULT_OOM) !== 0) return "out-of-memory";
  return null;
}

/** @internal Thrown from the engine's event hook when SimulateOptions.interrupt answers a reason. */
export class RunInterrupted extends Error {
  override readonly name = "RunInterrupted";
}

/**
 * A run that stopped at a limit of the machine or the engine (see StopReason): the message says what ran out and
 * how much was simulated; `summary` is the partial summary (its `stopped` says the same); `cause` is the error the
 * run failed with (VirtualTimeOverflowError, the driver's error, …).
 */
export class SimulationStoppedError extends MachineError {
  override readonly name: string = "SimulationStoppedError";
  constructor(
    message: string,
    readonly reason: StopReason,
    readonly summary: RunSummary,
    override readonly cause: unknown,
  ) {
    super(message);
  }
}
