/**
 * Running a spec's workload as a library call: what `hmmsim run` does, for an app that composes its own machine.
 *
 *   const summary = await simulate({ spec, plugins: [...defaultPlugins(), new PciePlugin(), new GpuDriverPlugin(), new OnDemandPolicyPlugin()] });
 *   process.stdout.write(formatSummary(summary));
 */
import { type Workload, createWorkload } from "@hmmsim/workloads";
import { type CreateMachineOptions, createMachine, validateMachineSpec } from "./create-machine.js";
import type { MachineSpec } from "./machine-spec.js";
import type { MachinePlugin } from "./plugin.js";
import { type RunSummary, buildSummary } from "./run-summary.js";
import { type WorkloadRunOptions, spawnWorkload } from "./run-workload.js";
import { getMachineStats } from "./stats-plugin.js";

export interface SimulateOptions extends WorkloadRunOptions {
  /** The machine spec: YAML/JSON text, an object, or a normalized MachineSpec. */
  spec: string | object;
  /** The plugins that compose the machine (every name the spec uses must be provided; StatsPlugin is needed). */
  plugins: readonly MachinePlugin[];
  /** Where the spec came from, for the summary (default: no preset, file "(inline spec)"). */
  source?: { preset: string | null; file: string };
  /** Engine options other than the seed. */
  engine?: CreateMachineOptions["engine"];
}

/**
 * The spec's workload (seeded by the spec's seed), built before the machine so that a bad trace line or a missing
 * trace file is reported before anything runs.
 */
export function prepareWorkload(spec: MachineSpec): Workload | null {
  return spec.workload ? createWorkload(spec.workload, { seed: spec.seed }) : null;
}

/** Builds the machine, runs its workload to the end and returns the summary (the machine is disposed). */
export async function simulate(opts: SimulateOptions): Promise<RunSummary> {
  const spec = validateMachineSpec(opts.spec, opts.plugins);
  const workload = prepareWorkload(spec);
  // A normalized spec without a workload has `workload: null`, which parseMachineSpec does not take back: omit it.
  const { workload: w, ...noWorkload } = spec;
  const machine = createMachine({ spec: w === null ? noWorkload : spec, plugins: opts.plugins, ...(opts.engine ? { engine: opts.engine } : {}) });
  try {
    const phases = workload ? spawnWorkload(machine, workload, opts) : [];
    const result = await machine.run();
    return buildSummary(machine, getMachineStats(machine), result, opts.source ?? { preset: null, file: "(inline spec)" }, phases);
  } finally {
    await machine.dispose();
  }
}
