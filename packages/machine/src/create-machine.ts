/**
 * createMachine: the composition root. One tsyringe child container per machine (two machines in one process
 * share nothing: not the engine, the kernel, the links, the hooks, the taps). Order:
 *
 *  1. parse the spec (SpecError lists every problem);
 *  2. child container; register MachineSpec, Engine (seeded by spec.seed), Kernel (from @hmmsim/core),
 *     CostLedger, LinkRegistry;
 *  3. each plugin's `register(container)` (later registrations of a token win);
 *  4. resolve CostLedger, CostModel, DmaCost; build the Machine (registered under the `Machine` class token);
 *  5. build each spec link with the first InterconnectFactory that accepts it (registered by interconnect plugins);
 *  6. resolve every MachineComponent and `attach(machine)` it; each plugin's `apply(machine)`;
 *  7. wire the kernel (cost sink, trace points); `hooks.init`.
 *
 * Only this file (and tests/apps) resolves from a container.
 */
import { type InjectionToken, Lifecycle, container as rootContainer } from "tsyringe";
import { Engine as EngineClass, type EngineOptions } from "@hmmsim/engine";
import { TaskCostLedger } from "./cost-ledger.js";
import { CostModelPlugin } from "./cost-model-plugin.js";
import { type LinkTransferRecord, isCoherentInterconnect } from "./interconnect.js";
import { type MachineKernel, createMachineKernel, wireKernel } from "./kernel-wiring.js";
import { MapLinkRegistry } from "./link-registry.js";
import { Machine } from "./machine.js";
import { parseMachineSpec } from "./machine-spec.js";
import type { MachinePlugin } from "./plugin.js";
import { StatsPlugin } from "./stats-plugin.js";
import {
  CostLedger,
  CostModel,
  DmaCost,
  Engine,
  Interconnect,
  InterconnectFactory,
  Kernel,
  LinkRegistry,
  MachineComponent,
  MachineSpec,
} from "./tokens.js";
import { MachineTrace } from "./trace-points.js";

export interface CreateMachineOptions {
  /** YAML/JSON text or an object (raw or already normalized). */
  spec: string | object;
  /** Default: defaultPlugins(). Interconnect plugins must be added for machines with links. */
  plugins?: readonly MachinePlugin[];
  /** Engine options other than the seed (which is spec.seed): tieBreak, trace, livelockBound, pct. */
  engine?: Omit<EngineOptions, "seed">;
  /** Build the kernel (default: createKernel from @hmmsim/core with spec.ram.size and spec.bytes). */
  createKernel?: (spec: MachineSpec) => MachineKernel | null;
}

/** The machine could not be composed from its plugins (a missing implementation, a duplicate plugin, …). */
export class MachineCompositionError extends Error {
  override readonly name = "MachineCompositionError";
}

/** The built-in behaviour, as plugins: default cost models and statistics. */
export function defaultPlugins(): MachinePlugin[] {
  return [new CostModelPlugin(), new StatsPlugin()];
}

export function createMachine(options: CreateMachineOptions): Machine {
  const spec = parseMachineSpec(options.spec);
  const plugins = options.plugins ?? defaultPlugins();
  const names = new Set<string>();
  plugins.forEach((p, i) => {
    if (!p || typeof p.apply !== "function" || typeof p.name !== "string" || !p.name) {
      throw new MachineCompositionError(`plugins[${i}]: a plugin needs a name (its PLUGIN_NAME) and apply(machine)`);
    }
    if (names.has(p.name)) throw new MachineCompositionError(`plugins[${i}]: duplicate plugin ${JSON.stringify(p.name)}`);
    names.add(p.name);
  });

  const c = rootContainer.createChildContainer();
  try {
    const engine = new EngineClass({ ...options.engine, seed: spec.seed });
    const kernel = (options.createKernel ?? createMachineKernel)(spec);
    const links = new MapLinkRegistry(spec);
    c.register(MachineSpec, { useValue: spec });
    c.register(Engine, { useValue: engine });
    if (kernel) c.register(Kernel, { useValue: kernel });
    c.register(LinkRegistry, { useValue: links });
    c.register(CostLedger, { useClass: TaskCostLedger }, { lifecycle: Lifecycle.ContainerScoped });

    for (const p of plugins) p.register?.(c);

    const required: [InjectionToken<unknown>, string][] = [
      [CostModel, "CostModel"],
      [DmaCost, "DmaCost"],
    ];
    for (const [token, what] of required) {
      if (!c.isRegistered(token, true)) {
        throw new MachineCompositionError(`no ${what} registered: add new CostModelPlugin() (in defaultPlugins()) or a plugin that registers ${what}`);
      }
    }
    const machine = new Machine({
      container: c,
      spec,
      engine,
      kernel,
      ledger: c.resolve(CostLedger),
      costs: c.resolve(CostModel),
      links,
      dma: c.resolve(DmaCost),
    });
    c.register(Machine, { useValue: machine });

    const trace = MachineTrace.getHooks(machine);
    const onTransfer = (r: LinkTransferRecord): void => {
      if (trace.dmaTransfer.isUsed()) trace.dmaTransfer.call(r);
    };
    const factories = c.isRegistered(InterconnectFactory, true) ? c.resolveAll(InterconnectFactory) : [];
    spec.links.forEach((ls, i) => {
      const f = factories.find((x) => x.accepts(ls));
      if (!f) {
        const have = factories.map((x) => x.name).join(", ") || "none";
        throw new MachineCompositionError(
          `links[${i}] (${JSON.stringify(ls.name)}, kind ${ls.kind}): no interconnect plugin accepts it (factories: ${have}); ` +
            `add PciePlugin (@hmmsim/interconnect-pcie) or CoherentPlugin (@hmmsim/interconnect-coherent)`,
        );
      }
      const link = f.create(ls, { engine, onTransfer });
      links.add(link);
      c.register(Interconnect, { useValue: link });
    });
    spec.devices.forEach((d, i) => {
      if (d.memoryType === "coherent" && !isCoherentInterconnect(links.get(d.link))) {
        throw new MachineCompositionError(`devices[${i}].memoryType: DEVICE_COHERENT memory needs a link with supportsCoherentAccess; ${JSON.stringify(d.link)} has none`);
      }
    });

    const components = c.isRegistered(MachineComponent, true) ? c.resolveAll(MachineComponent) : [];
    machine._setComponents(components);
    for (const comp of components) comp.attach?.(machine);
    for (const p of plugins) p.apply(machine);
    if (kernel) wireKernel(kernel, machine.ledger, machine);
    machine.hooks.init.call(machine);
    return machine;
  } catch (e) {
    void c.dispose();
    throw e;
  }
}
