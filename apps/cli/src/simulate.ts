/**
 * Composes a machine from a validated spec (the app is the composition root: it picks the plugins), runs its
 * workload and returns the summary. Plugins: defaultPlugins() (cost models, stats), the PCIe and coherent
 * interconnects, the GPU driver for devices whose driver is "gpu", and the devices' policy plugins.
 */
import { type MachinePlugin, type MachineSpec, SpecError, createMachine, defaultPlugins, getMachineStats } from "@hmmsim/machine";
import { CoherentPlugin } from "@hmmsim/interconnect-coherent";
import { PciePlugin } from "@hmmsim/interconnect-pcie";
import { GpuDriverPlugin } from "@hmmsim/driver-gpu";
import { OnDemandPolicyPlugin, POLICY_NAME as ON_DEMAND } from "@hmmsim/policy-on-demand";
import { type Workload, createWorkload } from "@hmmsim/workloads";
import { type RunSummary, buildSummary } from "./run-summary.js";
import { DRIVERS, POLICIES, runSpecIssues } from "./run-spec-issues.js";
import type { SpecSource } from "./spec-source.js";
import { spawnWorkload } from "./workload-runner.js";

export interface SimulateOptions {
  /**
   * Simulated progress: `done` of `total` workload accesses handed out, at simulated time `nowPs`; `total` is
   * undefined when a phase's length is not known in advance (BFS).
   */
  onProgress?: (done: number, total: number | undefined, nowPs: number) => void;
}

export { DRIVERS, POLICIES };

/**
 * Builds the spec's workload (seeded by the spec's seed). Called before the machine is built, so a bad trace line
 * (TraceParseError naming the file and line) or a missing trace file is reported before anything runs.
 */
export function prepareWorkload(spec: MachineSpec): Workload | null {
  return spec.workload ? createWorkload(spec.workload, { seed: spec.seed }) : null;
}

/**
 * The plugins a machine of `spec` needs. Throws a SpecError listing, with their paths, every device whose driver or
 * policy this build does not provide and every bad GPU `driverSpec` field (runSpecIssues; loadSpecSource has
 * already reported these with the schema's errors, so this only fires for a spec built by other code).
 */
export function machinePlugins(spec: MachineSpec): MachinePlugin[] {
  const plugins: MachinePlugin[] = [...defaultPlugins(), new PciePlugin(), new CoherentPlugin()];
  const issues = runSpecIssues(spec);
  if (issues.length > 0) throw new SpecError(issues);
  if (spec.devices.some((d) => d.driver === "gpu")) plugins.push(new GpuDriverPlugin());
  if (spec.devices.some((d) => d.policy === ON_DEMAND)) plugins.push(new OnDemandPolicyPlugin());
  return plugins;
}

/** Builds the machine, runs its workload to the end and returns the summary (the machine is disposed). */
export async function simulate(source: SpecSource, opts: SimulateOptions = {}): Promise<RunSummary> {
  const spec = source.spec;
  const workload = prepareWorkload(spec);
  // A normalized spec without a workload has `workload: null`, which parseMachineSpec does not take back: omit it.
  const { workload: w, ...noWorkload } = spec;
  const machine = createMachine({ spec: w === null ? noWorkload : spec, plugins: machinePlugins(spec) });
  try {
    const phases = workload ? spawnWorkload(machine, workload, opts) : [];
    const result = await machine.run();
    return buildSummary(machine, getMachineStats(machine), result, source, phases);
  } finally {
    await machine.dispose();
  }
}
