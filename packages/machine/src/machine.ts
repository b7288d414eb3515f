/**
 * One simulated machine: its spec, engine, kernel, links, cost models and lifecycle hooks. Built by
 * createMachine (the composition root); two machines share nothing (each has its own child container, engine,
 * kernel, hooks).
 *
 * Lifecycle: createMachine → plugins register → links and components built → plugins apply → `hooks.init` →
 * `run()`: `hooks.beforeRun` → engine.run() → `hooks.afterRun` → `dispose()`: `hooks.dispose`, components
 * disposed, container disposed.
 */
import type { DependencyContainer } from "tsyringe";
import { AsyncSeriesHook, SyncHook } from "tapable";
import type { Engine as EngineClass, SpawnOptions, Task } from "@hmmsim/engine";
import { type PatternContext, type Workload, createWorkload } from "@hmmsim/workloads";
import type { CostLedger } from "./cost-ledger.js";
import type { CostModel, DmaCost } from "./cost-model.js";
import type { Interconnect, LinkRegistry } from "./interconnect.js";
import type { MachineKernel } from "./kernel-wiring.js";
import type { DeviceSpec, MachineSpec } from "./machine-spec.js";
import type { DeviceDriver, DeviceDriverRegistry } from "./device-driver.js";
import { MachineError } from "./machine-error.js";
import { type PgmapOwner, PgmapOwnerGroups, type PgmapOwners } from "./pgmap-owners.js";
import type { DisposableComponent, MachineComponent, MachinePlugin } from "./plugin.js";
import type { PluginRegistry } from "./plugin-registry.js";

export interface RunResult {
  /** Virtual time when run() started and ended, ps. */
  startPs: number;
  endPs: number;
  /** endPs − startPs. */
  simulatedPs: number;
  /** Engine events processed during the run. */
  events: number;
  /** Charged time no task settled (a task that forgot `await machine.settle()`), ps. */
  unsettledPs: number;
  /** True when run({ maxSimulatedPs }) stopped at its limit with events still pending (the work is not done). */
  stoppedAtLimit: boolean;
}

export interface MachineRunOptions {
  /**
   * Stop once this much virtual time has passed since run() started (ps, an integer > 0): events later than that
   * do not run and the clock stays at the last event that did; `stoppedAtLimit` tells. Default: run to the end.
   */
  maxSimulatedPs?: number;
}

export interface MachineHooks {
  /** After every plugin applied: the machine is complete. */
  readonly init: SyncHook<[Machine]>;
  /** Before the engine runs (spawn the workload's tasks here). App-level, may do I/O. */
  readonly beforeRun: AsyncSeriesHook<[Machine]>;
  /** After the engine ran dry. */
  readonly afterRun: AsyncSeriesHook<[Machine, RunResult]>;
  /** At dispose(), before the container is disposed. */
  readonly dispose: SyncHook<[Machine]>;
}

export { MachineError };

/** Parts createMachine hands to the Machine it builds. */
export interface MachineParts {
  container: DependencyContainer;
  spec: MachineSpec;
  engine: EngineClass;
  kernel: MachineKernel | null;
  ledger: CostLedger;
  costs: CostModel;
  links: LinkRegistry;
  dma: DmaCost;
  plugins: PluginRegistry;
  drivers: DeviceDriverRegistry;
  /** The devices' pgmap owners (default: grouped from the spec's peer links). */
  owners?: PgmapOwners;
}

export class Machine {
  readonly hooks: MachineHooks = Object.freeze({
    init: new SyncHook<[Machine]>(["machine"]),
    beforeRun: new AsyncSeriesHook<[Machine]>(["machine"]),
    afterRun: new AsyncSeriesHook<[Machine, RunResult]>(["machine", "result"]),
    dispose: new SyncHook<[Machine]>(["machine"]),
  });
  readonly spec: MachineSpec;
  readonly engine: EngineClass;
  /** The kernel mm model (@hmmsim/core); null only when createMachine was given a createKernel returning null. */
  readonly kernel: MachineKernel | null;
  readonly ledger: CostLedger;
  readonly costs: CostModel;
  readonly links: LinkRegistry;
  readonly dma: DmaCost;
  /** The plugins the machine was composed from, by name and by what they provide. */
  readonly plugins: PluginRegistry;
  /** The dev_pagemap owners of the devices (the `PgmapOwners` token's service; see pgmap-owners.ts). */
  readonly owners: PgmapOwners;
  readonly #drivers: DeviceDriverRegistry;
  readonly #container: DependencyContainer;
  #components: readonly MachineComponent[] = [];
  #disposed = false;
  #running = false;

  constructor(parts: MachineParts) {
    this.#container = parts.container;
    this.spec = parts.spec;
    this.engine = parts.engine;
    this.kernel = parts.kernel;
    this.ledger = parts.ledger;
    this.costs = parts.costs;
    this.links = parts.links;
    this.dma = parts.dma;
    this.plugins = parts.plugins;
    this.#drivers = parts.drivers;
    this.owners = parts.owners ?? new PgmapOwnerGroups(parts.spec);
  }

  /**
   * The dev_pagemap owner a driver of `device` uses for its pagemap, `hmmRangeFault`'s devPrivateOwner and
   * `migrateVma*`'s pgmapOwner: shared by the devices joined by peer links, distinct otherwise
   * (`owners.ownerOf(device)`; pgmap-owners.ts explains it, and the MMU_NOTIFY_MIGRATE trap).
   */
  pgmapOwner(device: string): PgmapOwner {
    return this.owners.ownerOf(device);
  }

  /** The plugin named `name` (its PLUGIN_NAME), or undefined. */
  plugin(name: string): MachinePlugin | undefined {
    return this.plugins.get(name);
  }

  /** The driver of device `name` (built by its driver plugin); throws MachineError if no driver runs it. */
  driver(name: string): DeviceDriver {
    this.device(name);
    return this.#drivers.get(name);
  }

  /** Every device driver of the machine. */
  get drivers(): readonly DeviceDriver[] {
    return this.#drivers.all();
  }

  /** @internal createMachine sets the resolved components. */
  _setComponents(components: readonly MachineComponent[]): void {
    this.#components = Object.freeze([...components]);
  }

  get components(): readonly MachineComponent[] {
    return this.#components;
  }

  /** The component that is an instance of `ctor` (registered by a plugin), or undefined. */
  component<T extends MachineComponent>(ctor: abstract new (...args: never[]) => T): T | undefined {
    return this.#components.find((c): c is T => c instanceof ctor);
  }

  get now(): number {
    return this.engine.now;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  device(name: string): DeviceSpec {
    const d = this.spec.devices.find((x) => x.name === name);
    if (!d) throw new MachineError(`no device named ${JSON.stringify(name)} (devices: ${this.spec.devices.map((x) => x.name).join(", ") || "none"})`);
    return d;
  }

  link(name: string): Interconnect {
    return this.links.get(name);
  }

  /** Spawns an engine task that settles its pending cost when `fn` returns. */
  spawn(name: string, fn: () => Promise<void> | void, opts?: SpawnOptions): Task {
    return this.engine.spawn(
      name,
      async () => {
        await fn();
        await this.ledger.settle();
      },
      opts,
    );
  }

  /** Sleeps the current task's pending charged cost (see cost-ledger.ts). */
  settle(): Promise<void> {
    return this.ledger.settle();
  }

  /** Builds the spec's workload (seeded from the machine's seed through the engine's RNG), or null if the spec has none. */
  createWorkload(ctx: PatternContext = {}): Workload | null {
    // Random patterns draw their seed from the engine's RNG (a derived stream: other components' draws never shift
    // it), unless the caller or the params give one.
    return this.spec.workload ? createWorkload(this.spec.workload, { rng: this.engine.rng.derive("workload"), ...ctx }) : null;
  }

  /** beforeRun → engine.run() (or engine.runUntil(start + maxSimulatedPs, { advance: false })) → afterRun. */
  async run(opts: MachineRunOptions = {}): Promise<RunResult> {
    if (this.#disposed) throw new MachineError("run(): the machine is disposed");
    if (this.#running) throw new MachineError("run(): already running");
    const limit = opts?.maxSimulatedPs;
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit <= 0)) {
      throw new MachineError(`run(): opts.maxSimulatedPs = ${String(limit)}: must be an integer number of ps > 0`);
    }
    this.#running = true;
    try {
      await this.hooks.beforeRun.promise(this);
      const startPs = this.engine.now;
      const events0 = this.engine.events;
      let stoppedAtLimit = false;
      if (limit === undefined) await this.engine.run();
      else {
        await this.engine.runUntil(Math.min(startPs + limit, Number.MAX_SAFE_INTEGER), { advance: false });
        stoppedAtLimit = this.engine.pendingEvents > 0;
      }
      const endPs = this.engine.now;
      const result: RunResult = Object.freeze({
        startPs,
        endPs,
        simulatedPs: endPs - startPs,
        events: this.engine.events - events0,
        unsettledPs: this.ledger.unsettledPs,
        stoppedAtLimit,
      });
      await this.hooks.afterRun.promise(this, result);
      return result;
    } finally {
      this.#running = false;
    }
  }

  /** Fires hooks.dispose, disposes the components and the machine's container. Idempotent. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    this.hooks.dispose.call(this);
    for (const c of [...this.#components].reverse()) await (c as Partial<DisposableComponent>).dispose?.();
    if (this.kernel) {
      this.kernel.charge = null;
    }
    await this.#container.dispose();
  }
}
