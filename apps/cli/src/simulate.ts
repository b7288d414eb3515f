/**
 * Composes a machine from a validated spec (the app is the composition root: it picks the plugins), runs its
 * workload and returns the summary. Plugins: defaultPlugins() (cost models, stats), the PCIe and coherent
 * interconnects, one driver plugin per device kind and the devices' policy plugins.
 */
import { type MachinePlugin, type MachineSpec, createMachine, defaultPlugins, getMachineStats } from "@hmmsim/machine";
import { CoherentPlugin } from "@hmmsim/interconnect-coherent";
import { PciePlugin } from "@hmmsim/interconnect-pcie";
import * as gpuDriver from "@hmmsim/driver-gpu";
import { type Workload, createWorkload } from "@hmmsim/workloads";
import { CliError } from "./cli-error.js";
import { type RunSummary, buildSummary } from "./run-summary.js";
import type { SpecSource } from "./spec-source.js";

export interface SimulateOptions {
  /** Simulated progress: `done` of `total` workload accesses completed at simulated time `nowPs`. */
  onProgress?: (done: number, total: number, nowPs: number) => void;
}

/**
 * Builds the spec's workload once before the run, so a bad trace line (TraceParseError naming the line) or a
 * missing trace file is reported before any simulation starts.
 */
export function prepareWorkload(spec: MachineSpec): Workload | null {
  return spec.workload ? createWorkload(spec.workload, { seed: spec.seed }) : null;
}

/** The plugins a machine of `spec` needs. */
export function machinePlugins(spec: MachineSpec): MachinePlugin[] {
  const plugins: MachinePlugin[] = [...defaultPlugins(), new PciePlugin(), new CoherentPlugin()];
  const drivers = new Set(spec.devices.map((d) => d.driver));
  for (const driver of drivers) {
    if (driver === "gpu") {
      if (!("GpuDriverPlugin" in gpuDriver)) {
        throw new CliError(
          `cannot run ${spec.name}: the GPU driver plugin (@hmmsim/driver-gpu) is not available in this build ` +
            `(it exports no GpuDriverPlugin yet), so there is no driver to run devices of kind "gpu". No summary was produced.`,
        );
      }
    } else {
      throw new CliError(`cannot run ${spec.name}: no driver plugin "${driver}" in this build (drivers: gpu)`);
    }
  }
  return plugins;
}

export async function simulate(source: SpecSource, _opts: SimulateOptions = {}): Promise<RunSummary> {
  const spec = source.spec;
  prepareWorkload(spec);
  const plugins = machinePlugins(spec);
  const machine = createMachine({ spec, plugins });
  try {
    const result = await machine.run();
    return buildSummary(machine, getMachineStats(machine), result, source);
  } finally {
    await machine.dispose();
  }
}
