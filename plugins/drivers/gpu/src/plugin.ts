/**
 * The GPU driver as a machine plugin (kind "driver", provides "gpu" — the default driver of `kind: gpu` devices):
 *
 *  - `componentSpecIssues(ref)`: a device's `driverSpec` (gpuDriverSpecIssues over the plugin's spec) and what the
 *    driver needs of the device (at least one 2 MiB root chunk of memory), reported with the machine's one SpecError;
 *  - `register(c)`: the plugin's spec under the `GpuDriverSpec` token and the `GpuDevices` component, which the
 *    machine's container builds by constructor injection: one `GpuDriver` per device whose `driver` is "gpu", each
 *    added to the machine's `DeviceDrivers`;
 *  - `apply(machine)`: nothing to tap (see below).
 *
 *   createMachine({ spec, plugins: [...defaultPlugins(), new PciePlugin(), new GpuDriverPlugin(), new OnDemandPolicyPlugin()] })
 *   const gpu = GpuDriver.of(machine, "gpu0");
 */
import { Lifecycle, inject, injectable } from "tsyringe";
import type { DevPagemap } from "@hmmsim/core";
import {
  CostLedger,
  DeviceDrivers,
  Engine,
  Kernel,
  LinkRegistry,
  Machine,
  MachineComponent,
  MachineSpec,
  PgmapOwners,
  TraceHooks,
  packageVersion,
  type ComponentRef,
  type DependencyContainer,
  type MachinePlugin,
  type SpecIssue,
} from "@hmmsim/machine";
import { Policy } from "@hmmsim/policy";
import { GpuInputError } from "./errors.js";
import { GpuDriver, type GpuPeer } from "./gpu-driver.js";
import { defaultSpec, gpuDriverSpecIssues, resolveGpuSpec } from "./gpu-spec.js";
import { GpuDriverSpec } from "./tokens.js";
import { VA_BLOCK_SIZE } from "./va-block.js";

export const PLUGIN_NAME = "GpuDriverPlugin";
/** The driver name devices select with `driver:` (the default for `kind: gpu`). */
export const DRIVER_NAME = "gpu";

const VERSION = packageVersion(import.meta.url);

/**
 * The machine component holding one GpuDriver per device whose driver is "gpu". Built by the machine's container
 * (every dependency injected); each driver gets the engine, kernel, ledger, its link, the trace points and the
 * machine's policy hooks, and is added to the machine's DeviceDrivers (`machine.driver(name)`, `GpuDriver.of`).
 */
@injectable()
export class GpuDevices implements MachineComponent {
  /** The GPU drivers by device name, in spec order. */
  readonly drivers = new Map<string, GpuDriver>();

  constructor(
    @inject(MachineSpec) spec: MachineSpec,
    @inject(Engine) engine: Engine,
    @inject(Kernel, { isOptional: true }) kernel: Kernel | undefined,
    @inject(CostLedger) ledger: CostLedger,
    @inject(LinkRegistry) links: LinkRegistry,
    @inject(DeviceDrivers) registry: DeviceDrivers,
    @inject(TraceHooks) trace: TraceHooks,
    @inject(GpuDriverSpec) base: Readonly<GpuDriverSpec>,
    @inject(PgmapOwners) owners: PgmapOwners,
    // Only to reach the machine's policy hooks (Policy.getHooks is keyed by the machine).
    @inject(Machine) machine: Machine,
  ) {
    const devices = spec.devices.filter((d) => d.driver === DRIVER_NAME);
    if (devices.length === 0) return;
    if (!kernel) throw new GpuInputError(`devices.${devices[0]!.name}`, "the GPU driver needs the machine's kernel (createMachine's createKernel returned null)");
    const policy = Policy.getHooks(machine);
    // The device memory of another owner (a device outside this device's peer-link group) is faulted back to RAM
    // before it migrates here; a peer's is migrated over the peer link.
    const foreignOwners = owners.all().length > 1;
    const peerPgmap = (name: string): DevPagemap | null => {
      if (!registry.has(name)) return null;
      const pg = registry.get(name).pgmap;
      return pg !== null && typeof pg === "object" && "owner" in pg ? (pg as DevPagemap) : null;
    };
    for (const device of devices) {
      const peers: GpuPeer[] = links.peersOf(device.name).map((p) => ({
        device: p,
        link: links.peer(device.name, p)!,
        fromPeer: links.peerDirection(p, device.name),
        toPeer: links.peerDirection(device.name, p),
      }));
      // createMachine validated every driverSpec with componentSpecIssues before anything was built.
      const d = new GpuDriver({
        device,
        spec: device.driverSpec ? resolveGpuSpec(device.driverSpec as Partial<GpuDriverSpec>, base) : base,
        kernel,
        engine,
        ledger,
        link: links.ofDevice(device.name),
        trace,
        policy,
        deviceNames: spec.devices.map((x) => x.name),
        owner: owners.ownerOf(device.name),
        peers,
        peerPgmap,
        foreignOwners,
      });
      this.drivers.set(device.name, d);
      registry.add(d);
    }
  }
}

export class GpuDriverPlugin implements MachinePlugin {
  /** Batch 256 [S1], TLB 4096 entries [S14], walk 100/66 cycles @ 1481 MHz [S14], … (see gpu-spec.ts). */
  static readonly defaultSpec: Readonly<GpuDriverSpec> = defaultSpec;
  readonly name = PLUGIN_NAME;
  readonly kind = "driver";
  readonly version = VERSION;
  readonly provides = [DRIVER_NAME] as const;
  readonly spec: Readonly<GpuDriverSpec>;

  /** `spec` is laid over defaultSpec and validated now (GpuSpecError lists every bad field). */
  constructor(spec: Partial<GpuDriverSpec> = {}) {
    this.spec = resolveGpuSpec(spec);
  }

  /**
   * The problems of one GPU device's part of the machine spec: its `driverSpec` laid over this plugin's spec
   * (paths relative to the driverSpec: `batchSize`, "" for the driverSpec itself), and its memory (reported at the
   * device's `memory`: path "^memory"), which the driver manages in 2 MiB root chunks: at least one, and a whole
   * number of them (a 3 MiB device would be shown as 3 MiB and run as 2).
   */
  componentSpecIssues(ref: ComponentRef): SpecIssue[] {
    if (ref.kind !== "driver") return [];
    const out: SpecIssue[] = ref.spec === undefined ? [] : gpuDriverSpecIssues(ref.spec, this.spec).map((i) => ({ path: i.field === "spec" ? "" : i.field, message: i.rule }));
    const mem = ref.device.memory;
    if (mem < VA_BLOCK_SIZE || mem % VA_BLOCK_SIZE !== 0) {
      const whole = Math.floor(mem / VA_BLOCK_SIZE);
      out.push({
        path: "^memory",
        message:
          `the GPU driver manages device memory in 2 MiB root chunks: it must be a whole number of them (at least one), got ${mem} B` +
          (whole >= 1 ? ` (${whole * 2} MiB or ${(whole + 1) * 2} MiB would do)` : ""),
      });
    }
    return out;
  }

  register(c: DependencyContainer): void {
    c.register(GpuDriverSpec, { useValue: this.spec });
    c.register(MachineComponent, { useClass: GpuDevices }, { lifecycle: Lifecycle.ContainerScoped });
  }

  /**
   * Nothing to tap: GpuDevices built the drivers with everything they need (the policy hooks they call, the trace
   * points they fire), and the driver taps no hook of its own — policies tap @hmmsim/policy's hooks, statistics
   * and exporters tap the trace points.
   */
  apply(_machine: Machine): void {}
}
