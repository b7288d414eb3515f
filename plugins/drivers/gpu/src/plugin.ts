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
  SpecError,
  type DependencyContainer,
  type Machine,
  type MachinePlugin,
} from "@hmmsim/machine";
import { GpuDriver } from "./gpu-driver.js";
import { defaultSpec, gpuDriverSpecIssues, resolveGpuSpec, type GpuDriverSpec } from "./gpu-spec.js";

export const PLUGIN_NAME = "GpuDriverPlugin";

/**
 * The machine component holding one GpuDriver per GPU device. Registered as an instance per machine (register()
 * runs once per machine's child container); it takes the engine, kernel, ledger and links from the machine it is
 * attached to, so it needs no constructor injection.
 */
export class GpuDevices implements MachineComponent {
  readonly drivers = new Map<string, GpuDriver>();

  constructor(readonly spec: Readonly<GpuDriverSpec>) {}

  /**
   * One GpuDriver per device with driver "gpu". A device's `driverSpec` is laid over the plugin's spec for that
   * device only; every bad field of every device is reported at once as a SpecError with its spec path
   * (`devices[1].driverSpec.batchSize`), before any driver is built.
   */
  attach(machine: Machine): void {
    const issues: { path: string; message: string }[] = [];
    machine.spec.devices.forEach((device, i) => {
      if (device.driver !== "gpu") return;
      const over = device.driverSpec ?? {};
      for (const p of gpuDriverSpecIssues(over, this.spec)) {
        issues.push({ path: `devices[${i}].driverSpec${p.field === "spec" ? "" : `.${p.field}`}`, message: p.rule });
      }
      if (!machine.kernel) issues.push({ path: `devices[${i}]`, message: "the GPU driver needs the machine's kernel (createKernel returned null)" });
    });
    if (issues.length > 0) throw new SpecError(issues);
    for (const device of machine.spec.devices) {
      if (device.driver !== "gpu") continue;
      const d = new GpuDriver({
        machine,
        device,
        spec: device.driverSpec ? resolveGpuSpec(device.driverSpec as Partial<GpuDriverSpec>, this.spec) : this.spec,
        kernel: machine.kernel!,
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
