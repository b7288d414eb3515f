/**
 * The dmirror driver as a machine plugin: a machine spec's `devices: [{ kind: dmirror, name: d0, memory: 256MiB,
 * link: l0 }]` runs lib/test_hmm.c's device on the machine's kernel.
 *
 *   createMachine({ spec, plugins: [...defaultPlugins(), new PciePlugin(), new DmirrorDriverPlugin(), policyPlugin] })
 *   const d0 = DmirrorDriver.of(machine, "d0");      // or machine.driver("d0")
 *
 * `register` puts the DmirrorDevices component in the machine's container; the container builds it with its
 * dependencies injected (every constructor parameter an explicit @inject(Token)) once the links exist. It loads the
 * module with one device per spec device whose driver is "dmirror" (hmmDmirrorInitDevices: minor = the device's
 * place among them, MEMORY_DEVICE_PRIVATE or, for `memoryType: coherent`, MEMORY_DEVICE_COHERENT, the spec's memory
 * size) and adds a DmirrorDriver for each to the machine's DeviceDrivers. At machine.dispose() it releases every
 * open file (dmirror_fops_release: device pages go back to system memory) and unloads the module (hmm_dmirror_exit).
 */
import { Lifecycle, inject, injectable } from "tsyringe";
import {
  type ComponentRef,
  CostLedger,
  type DependencyContainer,
  DeviceDrivers,
  Engine,
  Kernel,
  LinkRegistry,
  type Machine,
  MachineComponent,
  MachineCompositionError,
  type MachinePlugin,
  MachineSpec,
  type SpecIssue,
  TraceHooks,
  packageVersion,
} from "@hmmsim/machine";
import { DmirrorDriver } from "./dmirror-driver.js";
import { HMM_DMIRROR_MEMORY_DEVICE_COHERENT, HMM_DMIRROR_MEMORY_DEVICE_PRIVATE } from "./test-hmm-uapi.js";
import { type HmmDmirrorModule, hmmDmirrorInitDevices } from "./test-hmm.js";

export const PLUGIN_NAME = "DmirrorDriverPlugin";
/** The driver name the plugin provides (the default driver of `kind: dmirror` devices). */
export const DMIRROR_DRIVER_NAME = "dmirror";
/** @hmmsim/driver-dmirror's version (its package.json). */
export const DMIRROR_VERSION: string = packageVersion(import.meta.url);

/** The plugin's spec: the kernel driver has no tunables (its module parameters are the spec's memory types). */
export type DmirrorDriverSpec = Record<string, never>;

const PAGE = 4096;

/** The machine's dmirror module and its devices' drivers (a MachineComponent; `machine.component(DmirrorDevices)`). */
@injectable()
export class DmirrorDevices implements MachineComponent {
  /** The loaded module: `module.devices[i]` is the i-th dmirror device of the spec. */
  readonly module: HmmDmirrorModule;
  /** The drivers, in spec order. */
  readonly drivers: readonly DmirrorDriver[];

  constructor(
    @inject(MachineSpec) spec: MachineSpec,
    @inject(Kernel) kernel: Kernel,
    @inject(Engine) engine: Engine,
    @inject(CostLedger) ledger: CostLedger,
    @inject(LinkRegistry) links: LinkRegistry,
    @inject(DeviceDrivers) registry: DeviceDrivers,
    @inject(TraceHooks) trace: TraceHooks,
  ) {
    const devices = spec.devices.filter((d) => d.driver === DMIRROR_DRIVER_NAME);
    this.module = hmmDmirrorInitDevices(
      kernel,
      devices.map((d) => ({
        zoneDeviceType: d.memoryType === "coherent" ? HMM_DMIRROR_MEMORY_DEVICE_COHERENT : HMM_DMIRROR_MEMORY_DEVICE_PRIVATE,
        name: d.name,
        memoryPages: d.memory / PAGE,
      })),
    );
    this.drivers = Object.freeze(
      devices.map((d, minor) => new DmirrorDriver({ spec: d, module: this.module, mdevice: this.module.devices[minor]!, engine, ledger, link: links.ofDevice(d.name), trace })),
    );
    for (const d of this.drivers) registry.add(d);
  }

  /** The driver's own page references, for @hmmsim/testing's checkInvariants `extraRefs`. */
  driverRefs(): Map<number, number> {
    return this.module.driverRefs();
  }

  /** dmirror_fops_release of every open file, then hmm_dmirror_exit. */
  dispose(): void {
    for (const d of this.drivers) d.release();
    this.module.exit();
  }
}

/** Registered instead of DmirrorDevices on a machine without a kernel: a dmirror device there is an error. */
@injectable()
export class DmirrorWithoutKernel implements MachineComponent {
  constructor(@inject(MachineSpec) spec: MachineSpec) {
    const i = spec.devices.findIndex((d) => d.driver === DMIRROR_DRIVER_NAME);
    if (i >= 0) throw new MachineCompositionError(`devices[${i}] (${JSON.stringify(spec.devices[i]!.name)}): the dmirror driver runs on the machine's kernel, and this machine has none (createKernel returned null)`);
  }
  dispose(): void {}
}

export class DmirrorDriverPlugin implements MachinePlugin {
  static readonly defaultSpec: Readonly<DmirrorDriverSpec> = Object.freeze({});
  readonly name = PLUGIN_NAME;
  readonly kind = "driver";
  readonly version = DMIRROR_VERSION;
  readonly provides: readonly string[] = Object.freeze([DMIRROR_DRIVER_NAME]);
  readonly spec: Readonly<DmirrorDriverSpec> = DmirrorDriverPlugin.defaultSpec;

  /** The plugin takes no spec fields; throws RangeError naming any. */
  constructor(spec: Partial<DmirrorDriverSpec> = {}) {
    if (spec === null || typeof spec !== "object") throw new RangeError(`${PLUGIN_NAME} spec: must be an object, got ${spec === null ? "null" : typeof spec}`);
    for (const k of Object.keys(spec)) throw new RangeError(`${PLUGIN_NAME} spec.${k}: unknown field (the dmirror driver has no tunables)`);
  }

  /** A device's driverSpec: the dmirror driver takes no fields, so each one is an unknown key. */
  componentSpecIssues(ref: ComponentRef): SpecIssue[] {
    if (ref.kind !== "driver") return [{ path: "", message: `plugin ${PLUGIN_NAME} provides a driver, not a ${ref.kind}` }];
    if (ref.spec === undefined) return [];
    if (ref.spec === null || typeof ref.spec !== "object" || Array.isArray(ref.spec)) return [{ path: "", message: "expected a mapping (the dmirror driver takes no fields)" }];
    return Object.keys(ref.spec).map((k) => ({ path: k, message: "unknown key" }));
  }

  register(c: DependencyContainer): void {
    const component = c.isRegistered(Kernel, true) ? DmirrorDevices : DmirrorWithoutKernel;
    c.register(MachineComponent, { useClass: component }, { lifecycle: Lifecycle.ContainerScoped });
  }

  apply(_machine: Machine): void {
    // Nothing to tap: the DmirrorDevices component builds the devices and adds their drivers to DeviceDrivers.
  }
}
