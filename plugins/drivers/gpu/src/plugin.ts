/**
 * The GPU driver as a machine plugin: `GpuDriverPlugin.register` puts a `GpuDevices` component (holding the
 * resolved spec) in the machine's child container; createMachine attaches it, which creates one `GpuDriver` for
 * every spec device whose `driver` is "gpu" (the default for `kind: gpu`).
 *
 *   createMachine({ spec, plugins: [...defaultPlugins(), new PciePlugin(), new GpuDriverPlugin(), new OnDemandPolicyPlugin()] })
 *   const gpu = GpuDriver.of(machine, "gpu0");
 */
import {
  MachineComponent,
  type DependencyContainer,
  type Machine,
  type MachinePlugin,
} from "@hmmsim/machine";
import { GpuInputError } from "./errors.js";
import { GpuDriver } from "./gpu-driver.js";
import { defaultSpec, resolveGpuSpec, type GpuDriverSpec } from "./gpu-spec.js";

export const PLUGIN_NAME = "GpuDriverPlugin";

/**
 * The machine component holding one GpuDriver per GPU device. Registered as an instance per machine (register()
 * runs once per machine's child container); it takes the engine, kernel, ledger and links from the machine it is
 * attached to, so it needs no constructor injection.
 */
export class GpuDevices implements MachineComponent {
  readonly drivers = new Map<string, GpuDriver>();

  constructor(readonly spec: Readonly<GpuDriverSpec>) {}

  attach(machine: Machine): void {
    for (const device of machine.spec.devices) {
      if (device.driver !== "gpu") continue;
      if (!machine.kernel) throw new GpuInputError(`devices.${device.name}`, "the GPU driver needs the machine's kernel (createKernel returned null)");
      const d = new GpuDriver({
        machine,
        device,
        spec: this.spec,
        kernel: machine.kernel,
        engine: machine.engine,
        ledger: machine.ledger,
        link: machine.links.ofDevice(device.name),
      });
      this.drivers.set(device.name, d);
    }
  }
}

export class GpuDriverPlugin implements MachinePlugin {
  /** Batch 256 [S1], TLB 4096 entries [S14], walk 100/66 cycles @ 1481 MHz [S14], … (see gpu-spec.ts). */
  static readonly defaultSpec: Readonly<GpuDriverSpec> = defaultSpec;
  readonly name = PLUGIN_NAME;
  readonly spec: Readonly<GpuDriverSpec>;

  constructor(spec: Partial<GpuDriverSpec> = {}) {
    this.spec = resolveGpuSpec(spec);
  }

  register(c: DependencyContainer): void {
    c.register(MachineComponent, { useValue: new GpuDevices(this.spec) });
  }

  apply(_machine: Machine): void {}
}
