/**
 * The plugins `hmmsim` composes every machine from, registered in the machine's plugin registry exactly as a
 * third-party plugin is: the cost models and statistics (defaultPlugins), the PCIe and coherent interconnects,
 * the GPU and dmirror drivers, and the on-demand policy (the spec's default policy). A spec's `plugins:` and
 * `--plugin` add to them.
 */
import { type MachinePlugin, defaultPlugins } from "@hmmsim/machine";
import { CoherentPlugin } from "@hmmsim/interconnect-coherent";
import { PciePlugin } from "@hmmsim/interconnect-pcie";
import { DmirrorDriverPlugin } from "@hmmsim/driver-dmirror";
import { GpuDriverPlugin } from "@hmmsim/driver-gpu";
import { OnDemandPolicyPlugin } from "@hmmsim/policy-on-demand";

export function builtinPlugins(): MachinePlugin[] {
  return [...defaultPlugins(), new PciePlugin(), new CoherentPlugin(), new GpuDriverPlugin(), new DmirrorDriverPlugin(), new OnDemandPolicyPlugin()];
}
