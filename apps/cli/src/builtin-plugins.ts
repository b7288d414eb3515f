/**
 * The plugins `hmmsim` composes every machine from, registered in the machine's plugin registry exactly as a
 * third-party plugin is: the cost models and statistics (defaultPlugins), the PCIe and coherent interconnects,
 * the GPU, FPGA and dmirror drivers, and the policies: on-demand (the spec's default), advise, tree-prefetch,
 * thrashing, access-counters, the evict-* eviction policies and the uvm-default bundle. A spec's `plugins:` and
 * `--plugin` add to them.
 */
import { type MachinePlugin, defaultPlugins } from "@hmmsim/machine";
import { CoherentPlugin } from "@hmmsim/interconnect-coherent";
import { PciePlugin } from "@hmmsim/interconnect-pcie";
import { DmirrorDriverPlugin } from "@hmmsim/driver-dmirror";
import { FpgaDriverPlugin } from "@hmmsim/driver-fpga";
import { GpuDriverPlugin } from "@hmmsim/driver-gpu";
import { AccessCountersPolicyPlugin } from "@hmmsim/policy-access-counters";
import { AdvisePolicyPlugin } from "@hmmsim/policy-advise";
import { EvictionPolicyPlugin } from "@hmmsim/policy-eviction";
import { OnDemandPolicyPlugin } from "@hmmsim/policy-on-demand";
import { ThrashingPolicyPlugin } from "@hmmsim/policy-thrashing";
import { TreePrefetchPolicyPlugin } from "@hmmsim/policy-tree-prefetch";
import { UvmDefaultPolicyPlugin } from "@hmmsim/policy-uvm-default";

export function builtinPlugins(): MachinePlugin[] {
  return [
    ...defaultPlugins(),
    new PciePlugin(),
    new CoherentPlugin(),
    new GpuDriverPlugin(),
    new FpgaDriverPlugin(),
    new DmirrorDriverPlugin(),
    new OnDemandPolicyPlugin(),
    new AdvisePolicyPlugin(),
    new TreePrefetchPolicyPlugin(),
    new ThrashingPolicyPlugin(),
    new AccessCountersPolicyPlugin(),
    new EvictionPolicyPlugin(),
    new UvmDefaultPolicyPlugin(),
  ];
}
