/**
 * createMachine: the composition root. One tsyringe child container per machine (two machines in one process
 * share nothing: not the engine, the kernel, the links, the hooks, the taps). Order:
 *
 *  1. the plugin registry (PluginRegistry: every plugin's shape, no duplicate name, no name of a kind provided
 *     twice: MachineCompositionError);
 *  2. parse the spec and resolve its names through the registry: one SpecError lists every schema problem, every
 *     device driver, policy and link kind no plugin provides (with the available names) and every problem the
 *     providers report about their part (driverSpec, policySpec, a link's fields), each with its path;
 *  3. child container; register MachineSpec, Engine (seeded by spec.seed), Kernel (from @hmmsim/core), CostLedger,
 *     LinkRegistry, PgmapOwners (the devices' dev_pagemap owners, grouped by peer links), DeviceDrivers, TraceHooks;
 *  4. each plugin's `register(container)` (later registrations of a token win);
 *  5. resolve CostLedger, CostModel, DmaCost; build the Machine (registered under the `Machine` class token);
 *  6. build each spec link with the InterconnectFactory of the plugin that provides its kind (a link with `peers`
 *     must come out a PeerInterconnect joining those devices);
 *  7. build every MachineComponent (constructor injection); each plugin's `apply(machine)`;
 *  8. wire the kernel (cost sink, trace points); `hooks.init`.
 *
 * Only this file (and tests/apps) resolves from a container.
 */
import { type InjectionToken, Lifecycle, container as rootContainer } from "tsyringe";
import { Engine as EngineClass, type EngineOptions } from "@hmmsim/engine";
import { TaskCostLedger } from "./cost-ledger.js";
import { CostModelPlugin } from "./cost-model-plugin.js";
import { DeviceDriverRegistry } from "./device-driver.js";
import { type LinkTransferRecord, isCoherentInterconnect, isPeerInterconnect } from "./interconnect.js";
import { type MachineKernel, createMachineKernel, wireKernel } from "./kernel-wiring.js";
import { MapLinkRegistry } from "./link-registry.js";
import { Machine } from "./machine.js";
import { type MachineSpec, SpecError, parseMachineSpec } from "./machine-spec.js";
import { SPEC_LIMITS } from "./spec-limits.js";
import { parseSpecText } from "./spec-text.js";
import type { MachinePlugin } from "./plugin.js";
import { PgmapOwnerGroups } from "./pgmap-owners.js";
import { MachineCompositionError, type PartialSpec, PluginRegistry } from "./plugin-registry.js";
import { StatsPlugin } from "./stats-plugin.js";
import {
  CostLedger,
  CostModel,
  DeviceDrivers,
  DmaCost,
  Engine,
  Interconnect,
  InterconnectFactory,
  Kernel,
  LinkRegistry,
  MachineComponent,
  MachineSpec as MachineSpecToken,
  PgmapOwners,
  TraceHooks,
} from "./tokens.js";
import { MachineTrace } from "./trace-points.js";

export interface CreateMachineOptions {
  /** YAML/JSON text or an object (raw or already normalized). */
  spec: string | object;
  /**
   * Default: defaultPlugins(). Every name the spec uses must be provided by one of them: a driver plugin for each
   * device's driver, a policy plugin for each device's policy, an interconnect plugin for each link kind.
   */
  plugins?: readonly MachinePlugin[];
  /** Engine options other than the seed (which is spec.seed): tieBreak, trace, livelockBound, pct. */
  engine?: Omit<EngineOptions, "seed">;
  /** Build the kernel (default: createKernel from @hmmsim/core with spec.ram.size and spec.bytes). */
  createKernel?: (spec: MachineSpec) => MachineKernel | null;
}

export { MachineCompositionError };

/** The built-in behaviour, as plugins: default cost models and statistics. */
export function defaultPlugins(): MachinePlugin[] {
  return [new CostModelPlugin(), new StatsPlugin()];
}

/**
 * The problems of `spec` (text or object) against the plugins that would compose it: the schema's and the
 * registry's (names no plugin provides, component specs the providers reject), each with its path, in one
 * SpecError; returns the normalized spec. Throws MachineCompositionError when the plugins themselves conflict.
 */
export function validateMachineSpec(spec: string | object, plugins: readonly MachinePlugin[] | PluginRegistry): MachineSpec {
  const registry = plugins instanceof PluginRegistry ? plugins : new PluginRegistry(plugins);
  let parsed: MachineSpec;
  try {
    parsed = parseMachineSpec(spec);
  } catch (e) {
    if (!(e instanceof SpecError)) throw e;
    // Report what the plugins see of the parts that did parse, with the schema's problems.
    const partial = partialSpec(spec);
    const more = partial ? registry.specIssues(partial) : [];
    const seen = new Set(e.issues.map((i) => i.path));
    throw new SpecError([...e.issues, ...more.filter((i) => !seen.has(i.path))]);
  }
  const issues = registry.specIssues(parsed);
  if (issues.length > 0) throw new SpecError(issues);
  return parsed;
}

/**
 * The devices and links of a spec that failed the schema, each normalized alone; null where an entry does not
 * parse (the schema reports it), so indices stay those of the spec.
 */
function partialSpec(spec: string | object): PartialSpec | null {
  let raw: unknown = spec;
  if (typeof spec === "string") {
    try {
      raw = parseSpecText(spec);
    } catch {
      return null;
    }
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return null;
  const r = raw as { devices?: unknown; links?: unknown };
  // Past the schema's list bounds only the bound is reported (the entries beyond it are not looked at).
  const links = Array.isArray(r.links) ? (r.links as unknown[]).slice(0, SPEC_LIMITS.maxLinks) : [];
  const devices = Array.isArray(r.devices) ? (r.devices as unknown[]).slice(0, SPEC_LIMITS.maxDevices) : [];
  const alone = (devs: unknown[], lks: unknown[]): MachineSpec | null => {
    try {
      return parseMachineSpec({ cpus: { count: 1 }, ram: { size: "2MiB" }, devices: devs, links: lks });
    } catch {
      return null;
    }
  };
  // The first link of each name (what a device's `link` finds), looked up in a Map: linear in devices + links.
  const linkByName = new Map<unknown, unknown>();
  for (const l of links) {
    const name = (l as { name?: unknown } | null)?.name;
    if (!linkByName.has(name)) linkByName.set(name, l);
  }
  // A peer link names devices this one-entry spec does not have: it is normalized without its peers, which are put
  // back as written when they have the right shape (the schema reports them otherwise), so its plugin sees them.
  const withoutPeers = (l: unknown): unknown => {
    if (typeof l !== "object" || l === null || !("peers" in l)) return l;
    const { peers: _peers, ...rest } = l as Record<string, unknown>;
    return rest;
  };
  const peersOf = (l: unknown): { peers?: readonly [string, string] } => {
    const p = (l as { peers?: unknown } | null)?.peers;
    return Array.isArray(p) && p.length === 2 && typeof p[0] === "string" && typeof p[1] === "string" ? { peers: [p[0], p[1]] as const } : {};
  };
  return {
    links: links.map((l) => {
      const parsed = alone([], [withoutPeers(l)])?.links[0];
      return parsed ? { ...parsed, ...peersOf(l) } : null;
    }),
    devices: devices.map((d) => {
      const name = (d as { link?: unknown } | null)?.link;
      return alone([d], linkByName.has(name) ? [withoutPeers(linkByName.get(name))] : [])?.devices[0] ?? null;
    }),
  };
}

export function createMachine(options: CreateMachineOptions): Machine {
  if (options === null || typeof options !== "object") {
    throw new MachineCompositionError(`createMachine: expected options { spec, plugins? }, got ${options === null ? "null" : typeof options}`);
  }
  if (options.spec === undefined || options.spec === null) throw new SpecError([{ path: "", message: "required: createMachine({ spec }) needs a machine spec (YAML/JSON text or an object)" }]);
  const registry = new PluginRegistry(options.plugins ?? defaultPlugins());
  const spec = validateMachineSpec(options.spec, registry);
  const plugins = registry.plugins;

  const c = rootContainer.createChildContainer();
  try {
    const engine = new EngineClass({ ...options.engine, seed: spec.seed });
    const kernel = (options.createKernel ?? createMachineKernel)(spec);
    const links = new MapLinkRegistry(spec);
    const owners = new PgmapOwnerGroups(spec);
    const drivers = new DeviceDriverRegistry();
    c.register(MachineSpecToken, { useValue: spec });
    c.register(Engine, { useValue: engine });
    if (kernel) c.register(Kernel, { useValue: kernel });
    c.register(LinkRegistry, { useValue: links });
    c.register(PgmapOwners, { useValue: owners });
    c.register(DeviceDrivers, { useValue: drivers });
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
      plugins: registry,
      drivers,
      owners,
    });
    c.register(Machine, { useValue: machine });
    const trace = MachineTrace.getHooks(machine);
    c.register(TraceHooks, { useValue: trace });

    const onTransfer = (r: LinkTransferRecord): void => {
      if (trace.dmaTransfer.isUsed()) trace.dmaTransfer.call(r);
    };
    const factories = c.isRegistered(InterconnectFactory, true) ? c.resolveAll(InterconnectFactory) : [];
    spec.links.forEach((ls, i) => {
      const provider = registry.provider("interconnect", ls.kind)!;
      const f = factories.find((x) => x.name === provider.name);
      if (!f) {
        throw new MachineCompositionError(
          `links[${i}] (${JSON.stringify(ls.name)}, kind ${ls.kind}): plugin ${provider.name} provides the kind but registered no InterconnectFactory named ${JSON.stringify(provider.name)}`,
        );
      }
      const link = f.create(ls, { engine, onTransfer });
      if (ls.peers && !(isPeerInterconnect(link) && link.peers[0] === ls.peers[0] && link.peers[1] === ls.peers[1])) {
        throw new MachineCompositionError(
          `links[${i}] (${JSON.stringify(ls.name)}, kind ${ls.kind}): the spec makes it a peer link of ${JSON.stringify(ls.peers)}, but plugin ${provider.name} built ` +
            `${isPeerInterconnect(link) ? `a peer link of ${JSON.stringify(link.peers)}` : "a link that is no PeerInterconnect"} (build peer links with PeerLink from @hmmsim/machine)`,
        );
      }
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
    for (const p of plugins) p.apply(machine);
    spec.devices.forEach((d, i) => {
      if (!drivers.has(d.name)) {
        throw new MachineCompositionError(`devices[${i}] (${JSON.stringify(d.name)}): driver plugin ${registry.provider("driver", d.driver)!.name} provides driver ${JSON.stringify(d.driver)} but built no driver for the device (add it to DeviceDrivers)`);
      }
    });
    if (kernel) wireKernel(kernel, machine.ledger, machine);
    machine.hooks.init.call(machine);
    return machine;
  } catch (e) {
    void c.dispose();
    throw e;
  }
}
