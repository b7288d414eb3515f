/**
 * Running a spec's workload as a library call: what `hmmsim run` does, for an app that composes its own machine.
 *
 *   const summary = await simulate({ spec, plugins: [...defaultPlugins(), new PciePlugin(), new GpuDriverPlugin(), new OnDemandPolicyPlugin()] });
 *   process.stdout.write(formatSummary(summary));
 *
 * A run ends in one of three ways:
 *  - its workload finished: the summary, `stopped: null`;
 *  - it reached a limit the caller set (`maxSimulatedPs` / the spec's `maxSimulatedTime`, or `interrupt`): the
 *    partial summary, `stopped.reason` "max-simulated-time" / "interrupted";
 *  - it ran into a limit of the machine or the engine (virtual time past 2^53 ps, memory exhausted, a device
 *    making no forward progress: see run-stop.ts): SimulationStoppedError, whose message says what ran out and how
 *    much was simulated and whose `summary` is the partial summary.
 * Any other error (a driver bug, a deadlock) is thrown as is.
 */
import { type Workload, createWorkload } from "@hmmsim/workloads";
import { type CreateMachineOptions, createMachine, validateMachineSpec } from "./create-machine.js";
import type { RunResult } from "./machine.js";
import type { MachineSpec } from "./machine-spec.js";
import type { MachinePlugin } from "./plugin.js";
import { type RunSummary, buildSummary, formatBytes, formatTime } from "./run-summary.js";
import { type RunStop, type StopReason, REQUESTED_STOPS, RunInterrupted, SimulationStoppedError, stopReasonOf } from "./run-stop.js";
import { type WorkloadRun, type WorkloadRunOptions, startWorkload } from "./run-workload.js";
import { getMachineStats } from "./stats-plugin.js";

/** Engine events between two progress calls (and wall-clock checks) made from the engine's event hook. */
export const PROGRESS_EVERY_EVENTS = 4096;

export interface SimulateOptions extends WorkloadRunOptions {
  /** The machine spec: YAML/JSON text, an object, or a normalized MachineSpec. */
  spec: string | object;
  /** The plugins that compose the machine (every name the spec uses must be provided; StatsPlugin is needed). */
  plugins: readonly MachinePlugin[];
  /** Where the spec came from, for the summary (default: no preset, file "(inline spec)"). */
  source?: { preset: string | null; file: string };
  /** Engine options other than the seed. */
  engine?: CreateMachineOptions["engine"];
  /**
   * Stop the run after this much virtual time (ps, an integer > 0), with a partial summary (`stopped.reason`
   * "max-simulated-time"). Default: the spec's `maxSimulatedTime`; absent both, the run goes to its end.
   */
  maxSimulatedPs?: number;
  /**
   * Asked between events, every PROGRESS_EVERY_EVENTS events: a sentence stops the run there, with its partial
   * summary (`stopped.reason` "interrupted", the sentence as its message); null goes on. For an embedder's or a
   * test's wall-clock limit (`() => Date.now() > deadline ? "…" : null`): the library reads no clock itself, and
   * where such a run stops depends on the host, so its summary is not reproducible.
   */
  interrupt?: () => string | null;
}

/**
 * The spec's workload (seeded by the spec's seed), built before the machine so that a bad trace line or a missing
 * trace file is reported before anything runs.
 */
export function prepareWorkload(spec: MachineSpec): Workload | null {
  return spec.workload ? createWorkload(spec.workload, { seed: spec.seed }) : null;
}

/** Builds the machine, runs its workload to the end (or a limit) and returns the summary (the machine is disposed). */
export async function simulate(opts: SimulateOptions): Promise<RunSummary> {
  const spec = validateMachineSpec(opts.spec, opts.plugins);
  const maxSimulatedPs = opts.maxSimulatedPs ?? spec.maxSimulatedTime;
  if (maxSimulatedPs !== undefined && (!Number.isSafeInteger(maxSimulatedPs) || maxSimulatedPs <= 0)) {
    throw new SimulateOptionError("maxSimulatedPs", maxSimulatedPs, "must be an integer number of ps > 0");
  }
  if (opts.interrupt !== undefined && typeof opts.interrupt !== "function") {
    throw new SimulateOptionError("interrupt", opts.interrupt, "must be a function returning a reason to stop, or null");
  }
  const workload = prepareWorkload(spec);
  // A normalized spec without a workload has `workload: null`, which parseMachineSpec does not take back: omit it.
  const { workload: w, ...noWorkload } = spec;
  const machine = createMachine({ spec: w === null ? noWorkload : spec, plugins: opts.plugins, ...(opts.engine ? { engine: opts.engine } : {}) });
  try {
    const run: WorkloadRun | null = workload ? startWorkload(machine, workload, opts) : null;
    const engine = machine.engine;
    // Between events, every PROGRESS_EVERY_EVENTS: progress (so a display moves while a phase hands out no new
    // accesses, e.g. while a device thrashes) and the caller's interrupt. Adds no event: results do not change.
    const interrupt = opts.interrupt;
    if (opts.onProgress !== undefined || interrupt !== undefined) {
      engine.setEventHook(PROGRESS_EVERY_EVENTS, () => {
        if (run !== null) opts.onProgress?.(run.done, run.total, engine.now);
        const why = interrupt?.();
        if (typeof why === "string") throw new RunInterrupted(why);
      });
    }
    const startPs = engine.now;
    const events0 = engine.events;
    let result: RunResult;
    let stopped: RunStop | null = null;
    let failure: unknown = null;
    try {
      result = await machine.run(maxSimulatedPs === undefined ? {} : { maxSimulatedPs });
      if (result.stoppedAtLimit) {
        stopped = stopOf(run, "max-simulated-time", result.endPs, `the run reached its time limit (maxSimulatedTime ${formatTime(maxSimulatedPs!)}) before its workload ended`);
      }
    } catch (e) {
      const reason = stopReasonOf(e);
      if (reason === null) throw e;
      failure = e;
      const endPs = engine.now;
      result = Object.freeze({ startPs, endPs, simulatedPs: endPs - startPs, events: engine.events - events0, unsettledPs: machine.ledger.unsettledPs, stoppedAtLimit: false });
      stopped = stopOf(run, reason, endPs, stopMessage(reason, e, machine.spec, run));
    } finally {
      engine.setEventHook(1, null);
    }
    // The run stopped at a limit of the machine: the SimulationStoppedError says how far it got (howFar).
    const phases = run ? run.snapshot() : [];
    // A stop counts the accesses that ran: the finished phases' and the cut phase's so far.
    if (stopped !== null) stopped.accessesDone = phases.reduce((n, p) => n + p.accesses, 0);
    const summary = buildSummary(machine, getMachineStats(machine), result, opts.source ?? { preset: null, file: "(inline spec)" }, phases, {
      workingSetBytes: run?.workingSetBytes ?? 0,
      stopped,
    });
    if (stopped !== null && !REQUESTED_STOPS.includes(stopped.reason)) {
      throw new SimulationStoppedError(`${stopped.message} (${howFar(stopped)})`, stopped.reason, summary, failure);
    }
    return summary;
  } finally {
    await machine.dispose();
  }
}

/** A bad simulate() option (names the option and the rule). */
export class SimulateOptionError extends TypeError {
  override readonly name = "SimulateOptionError";
  constructor(
    readonly option: string,
    readonly value: unknown,
    readonly rule: string,
  ) {
    super(`simulate opts.${option} = ${String(value)}: ${rule}`);
  }
}

function stopOf(run: WorkloadRun | null, reason: StopReason, atPs: number, message: string): RunStop {
  return { reason, atPs, message, accessesDone: run?.done ?? 0, accessesTotal: run?.total ?? null };
}

/** "simulated 12.3 ms, 8,192 of 524,288 accesses" */
function howFar(s: RunStop): string {
  const n = (x: number) => x.toLocaleString("en-US");
  return `stopped at ${formatTime(s.atPs)} of simulated time, after ${n(s.accessesDone)}${s.accessesTotal === null ? "" : ` of ${n(s.accessesTotal)}`} accesses`;
}

/** What ran out, in the user's terms. */
function stopMessage(reason: StopReason, e: unknown, spec: MachineSpec, run: WorkloadRun | null): string {
  const why = e instanceof Error ? e.message : String(e);
  switch (reason) {
    case "virtual-time-limit":
      return (
        `the run's virtual time would pass 2^53 - 1 ps (≈ 9007 s of simulated time), the most the engine counts exactly (${why}); ` +
        `something takes far longer than a real machine would (a link or memory bandwidth orders of magnitude too low, a huge compute time, or a huge workload)`
      );
    case "out-of-memory": {
      const dev = spec.devices.reduce((a, d) => a + d.memory, 0);
      const ws = run ? `; the workload's working set is ${formatBytes(run.workingSetBytes)}` : "";
      return `the run ran out of memory: ${why}. RAM (${formatBytes(spec.ram.size)}) and device memory (${formatBytes(dev)}) hold ${formatBytes(spec.ram.size + dev)}${ws}`;
    }
    case "forward-progress":
      return `a device made no forward progress: ${why}`;
    case "interrupted":
      return why;
    case "max-simulated-time":
      return why;
  }
}
