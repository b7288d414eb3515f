/**
 * The FPGA driver as a machine plugin (kind "driver", provides "fpga" — the default driver of `kind: fpga` devices):
 *
 *  - `componentSpecIssues(ref)`: a device's `driverSpec` (fpgaDriverSpecIssues over the plugin's spec) and what the
 *    driver needs of the device (card memory in whole 2 MiB chunks), reported with the machine's one SpecError;
 *  - `register(c)`: the plugin's spec under the `FpgaDriverSpec` token and the `FpgaDevices` component, which the
 *    machine's container builds by constructor injection: one `FpgaDriver` per device whose `driver` is "fpga", each
 *    with its own dev_pagemap (its own pgmap owner), added to the machine's `DeviceDrivers`;
 *  - `apply(machine)`: nothing to tap. Each job's per-stream stall time goes into the driver-neutral result
 *    (DeviceKernelResult.streams), so the run summary shows it for every device phase; `streamStallRows` formats a
 *    driver's whole job history for a library user.
 *
 *   createMachine({ spec, plugins: [...defaultPlugins(), new PciePlugin(), new FpgaDriverPlugin(), new OnDemandPolicyPlugin()] })
 *   const fpga = FpgaDriver.of(machine, "fpga0");
 */
import { Lifecycle, inject, injectable } from "tsyringe";
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
  formatTime,
  packageVersion,
  type ComponentRef,
  type DependencyContainer,
  type MachinePlugin,
  type SpecIssue,
} from "@hmmsim/machine";
import { Policy } from "@hmmsim/policy";
import { BLOCK_SIZE } from "./device-mappings.js";
import { FpgaInputError } from "./errors.js";
import { FpgaDriver } from "./fpga-driver.js";
import { defaultSpec, fpgaDriverSpecIssues, resolveFpgaSpec } from "./fpga-spec.js";
import { FpgaDriverSpec } from "./tokens.js";

export const PLUGIN_NAME = "FpgaDriverPlugin";
/** The driver name devices select with `driver:` (the default for `kind: fpga`). */
export const DRIVER_NAME = "fpga";

const VERSION = packageVersion(import.meta.url);

/**
 * The machine component holding one FpgaDriver per device whose driver is "fpga". Built by the machine's container
 * (every dependency injected); each driver gets the engine, kernel, ledger, its link, the trace points and the
 * machine's policy hooks, and is added to the machine's DeviceDrivers (`machine.driver(name)`, `FpgaDriver.of`).
 */
@injectable()
export class FpgaDevices implements MachineComponent {
  /** The FPGA drivers by device name, in spec order. */
  readonly drivers = new Map<string, FpgaDriver>();

  constructor(
    @inject(MachineSpec) spec: MachineSpec,
    @inject(Engine) engine: Engine,
    @inject(Kernel, { isOptional: true }) kernel: Kernel | undefined,
    @inject(CostLedger) ledger: CostLedger,
    @inject(LinkRegistry) links: LinkRegistry,
    @inject(DeviceDrivers) registry: DeviceDrivers,
    @inject(TraceHooks) trace: TraceHooks,
    @inject(FpgaDriverSpec) base: Readonly<FpgaDriverSpec>,
    @inject(PgmapOwners) owners: PgmapOwners,
    // Only to reach the machine's policy hooks (Policy.getHooks is keyed by the machine).
    @inject(Machine) machine: Machine,
  ) {
    const devices = spec.devices.filter((d) => d.driver === DRIVER_NAME);
    if (devices.length === 0) return;
    if (!kernel) throw new FpgaInputError(`devices.${devices[0]!.name}`, "the FPGA driver needs the machine's kernel (createMachine's createKernel returned null)");
    const policy = Policy.getHooks(machine);
    for (const device of devices) {
      const d = new FpgaDriver({
        device,
        spec: device.driverSpec ? resolveFpgaSpec(device.driverSpec as Partial<FpgaDriverSpec>, base) : base,
        kernel,
        engine,
        ledger,
        link: links.ofDevice(device.name),
        trace,
        policy,
        owner: owners.ownerOf(device.name),
        ownerShared: owners.ownerOf(device.name).devices.length > 1,
      });
      this.drivers.set(device.name, d);
      registry.add(d);
    }
  }
}

/**
 * The per-stream stall rows of a machine's FPGA drivers, one per device and job: for each stream its stall time
 * (page-fault and TLB-miss interrupts serviced one at a time), its interrupts and its share of the job's time.
 */
export function streamStallRows(drivers: readonly FpgaDriver[]): [string, string][] {
  const rows: [string, string][] = [];
  for (const d of drivers) {
    d.jobs.forEach((j, n) => {
      const span = j.endPs - j.startPs;
      const parts = j.streams.map((s, i) => `stream ${i} stalled ${formatTime(s.stallPs)} (${span > 0 ? ((100 * s.stallPs) / span).toFixed(1) : "0.0"} %) in ${s.faults.toLocaleString("en-US")} interrupts`);
      const prep = j.mode === "fault" ? "" : `; ${j.mode} of ${j.prepare.pages.toLocaleString("en-US")} pages took ${formatTime(j.prepare.endPs - j.prepare.startPs)} before launch`;
      rows.push([`${d.name} job ${n + 1}`, `${j.mode}, ${j.streams.length} stream${j.streams.length === 1 ? "" : "s"} over ${formatTime(span)}: ${parts.join("; ")}${prep}`]);
    });
  }
  return rows;
}

export class FpgaDriverPlugin implements MachinePlugin {
  /** Coyote's shell figures [S62] and assumed service costs (see fpga-spec.ts). */
  static readonly defaultSpec: Readonly<FpgaDriverSpec> = defaultSpec;
  readonly name = PLUGIN_NAME;
  readonly kind = "driver";
  readonly version = VERSION;
  readonly provides = [DRIVER_NAME] as const;
  readonly spec: Readonly<FpgaDriverSpec>;

  /** `spec` is laid over defaultSpec and validated now (FpgaSpecError lists every bad field). */
  constructor(spec: Partial<FpgaDriverSpec> = {}) {
    this.spec = resolveFpgaSpec(spec);
  }

  /**
   * The problems of one FPGA device's part of the machine spec: its `driverSpec` laid over this plugin's spec (paths
   * relative to the driverSpec), and its memory (path "^memory"): whole 2 MiB chunks, at least one.
   */
  componentSpecIssues(ref: ComponentRef): SpecIssue[] {
    if (ref.kind !== "driver") return [];
    const out: SpecIssue[] = ref.spec === undefined ? [] : fpgaDriverSpecIssues(ref.spec, this.spec).map((i) => ({ path: i.field === "spec" ? "" : i.field, message: i.rule }));
    const mem = ref.device.memory;
    if (mem < BLOCK_SIZE || mem % BLOCK_SIZE !== 0) {
      out.push({ path: "^memory", message: `the FPGA driver allocates card memory in 2 MiB chunks: it must be a whole number of them (at least one), got ${mem} B` });
    }
    return out;
  }

  register(c: DependencyContainer): void {
    c.register(FpgaDriverSpec, { useValue: this.spec });
    c.register(MachineComponent, { useClass: FpgaDevices }, { lifecycle: Lifecycle.ContainerScoped });
  }

  apply(): void {}
}
