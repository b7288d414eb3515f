import type { DependencyContainer } from "tsyringe";
import type { Machine } from "./machine.js";
import type { DeviceSpec, LinkSpec, SpecIssue } from "./machine-spec.js";

/**
 * The kinds of plugin the machine resolves spec names through (`devices[i].driver`, `devices[i].policy`,
 * `links[i].kind`), and the kinds that are only composed (`exporter`, `cost`, `stats`). A plugin may declare any
 * other kind (a string): it is then composed like an exporter (registered, applied) and listed in the summary.
 */
export const PLUGIN_KINDS = Object.freeze(["driver", "policy", "interconnect", "exporter", "cost", "stats"] as const);
export type BuiltinPluginKind = (typeof PLUGIN_KINDS)[number];
export type PluginKind = BuiltinPluginKind | (string & {});

/** The kinds whose plugins provide names the machine spec refers to, and the spec field each name sits in. */
export const NAMED_PLUGIN_KINDS = Object.freeze({
  driver: "devices[i].driver (default: the device's kind)",
  policy: "devices[i].policy (a name, a bundle, or a list of them)",
  interconnect: "links[i].kind",
} as const);
export type NamedPluginKind = keyof typeof NAMED_PLUGIN_KINDS;

/**
 * One component of a machine spec that a plugin provides, handed to the plugin to validate its own part of the
 * spec: a device's `driverSpec` (kind "driver"), a device's `policySpec` (kind "policy"), or a link's fields
 * (kind "interconnect": the whole link object, `name` and `kind` included).
 */
export type ComponentRef =
  | { readonly kind: "driver"; readonly name: string; readonly spec: unknown; readonly device: DeviceSpec }
  | { readonly kind: "policy"; readonly name: string; readonly spec: unknown; readonly device: DeviceSpec }
  | { readonly kind: "interconnect"; readonly name: string; readonly spec: LinkSpec; readonly link: LinkSpec };

/**
 * A machine plugin: the one contract of every driver, policy, interconnect, exporter and built-in behaviour
 * (webpack's `apply` + credo-ts's `register`). Two phases, one job each:
 *
 *  - `register(container)`: provide implementations in the machine's child container, by token (classes the
 *    container builds with their dependencies injected, factories, values). Nothing is resolved or tapped here.
 *  - `apply(machine)`: tap hooks (the machine's, a subsystem's `X.getHooks(machine)`) and wire the components the
 *    container built (`machine.component(Class)`) to them. Runs once every plugin has registered and the links
 *    and components are built, in plugin order.
 *
 * A plugin of kind driver, policy or interconnect `provides` names the machine spec refers to (driver names,
 * policy names, link kinds); createMachine resolves every name of the spec to exactly one plugin and validates
 * the spec's part that belongs to it with `componentSpecIssues`. Loading a plugin module runs its code: see
 * loadPlugins.
 */
export interface MachinePlugin {
  /** Unique in a machine: the plugin's PLUGIN_NAME. */
  readonly name: string;
  /** driver, policy, interconnect, exporter, cost, stats, or a kind the plugin declares. */
  readonly kind: PluginKind;
  /** The plugin's version (its package's), shown in run summaries. */
  readonly version?: string;
  /** The plugin's own plain-JSON spec (its class's static `defaultSpec` when not given). */
  readonly spec?: unknown;
  /**
   * Names this plugin provides in its kind's namespace: device driver names (kind driver), policy names (kind
   * policy), link kinds (kind interconnect). Two plugins may not provide the same name of one kind.
   */
  readonly provides?: readonly string[];
  /**
   * Policy plugins: names among `provides` that are bundles — each expands to a list of policy names (members, which
   * other plugins may provide, and which may be bundles themselves) when a device's `policy` names it:
   * `{ "uvm-default": ["tree-prefetch", "thrashing", "evict-lru"] }`. A device that names a bundle runs its members,
   * each with its own policySpec (`policySpec` keyed by member name). A bundle answers no hook itself. Unknown
   * members, cycles and a policy reached twice are reported as SpecErrors at the device's `policy` when a spec uses
   * the bundle.
   */
  readonly bundles?: Readonly<Record<string, readonly string[]>>;
  /**
   * The problems of the spec part of one component this plugin provides (`ref.spec`: a device's driverSpec or
   * policySpec, absent = undefined; a link object). Each issue's `path` is relative to that part ("" = the part
   * itself, "threshold", "lanes"); createMachine prefixes it (`devices[0].policySpec.threshold`) and reports every
   * plugin's issues together with the schema's in one SpecError. Unknown fields must be issues.
   *
   * A path that starts with "^" is relative to the device (driver and policy parts) or link (interconnect parts)
   * the part belongs to instead: a driver that needs something of the device's own fields reports it there
   * (`"^memory"` → `devices[0].memory`, `"^"` → `devices[0]`).
   */
  componentSpecIssues?(ref: ComponentRef): SpecIssue[];
  /** Interconnect plugins: can the CPU access device memory behind this link coherently (DEVICE_COHERENT possible)? */
  isCoherentLink?(link: LinkSpec): boolean;
  register?(container: DependencyContainer): void;
  apply(machine: Machine): void;
}

/**
 * A stateful service a plugin registers under the `MachineComponent` token (multi): createMachine builds it with
 * constructor injection (every parameter an explicit `@inject(Token)`, or a `useFactory` registration for code
 * written without decorators) after the links exist and before the plugins' `apply`; `machine.component(Class)`
 * finds it; `dispose()` runs at `machine.dispose()`, in reverse order.
 */
export type MachineComponent = object;

/** A component with a `dispose()` (called at machine.dispose()). */
export interface DisposableComponent {
  dispose(): void | Promise<void>;
}

/** What a plugin module exports (the default export): a plugin, several, or a function that returns them. */
export type PluginModuleExport = MachinePlugin | readonly MachinePlugin[] | (() => MachinePlugin | readonly MachinePlugin[]);

/** The shape of a plugin module (`export default …`), for `satisfies PluginModule` in a plugin's entry file. */
export interface PluginModule {
  readonly default: PluginModuleExport;
}
