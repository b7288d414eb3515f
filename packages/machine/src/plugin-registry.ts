/**
 * The machine's plugin registry: every plugin by name, and for each named kind (driver, policy, interconnect) the
 * plugin that provides each name. Built-in plugins register through it exactly as third-party ones do. It
 * resolves a spec's names to plugins and collects the problems of a spec that only the plugins can see (a name no
 * plugin provides, a driverSpec / policySpec / link field the provider rejects), each with its spec path.
 */
import { type DevicePolicies, type ResolvedPolicy, resolveDevicePolicies } from "./device-policies.js";
import type { DeviceSpec, LinkSpec, MachineSpec, SpecIssue } from "./machine-spec.js";
import { type ComponentRef, type MachinePlugin, NAMED_PLUGIN_KINDS, type NamedPluginKind } from "./plugin.js";

/** The machine could not be composed from its plugins (a malformed plugin, a duplicate name or claim, …). */
export class MachineCompositionError extends Error {
  override readonly name = "MachineCompositionError";
}

/** A spec's devices and links, with null where an entry did not parse (its schema errors are reported instead). */
export interface PartialSpec {
  devices: readonly (DeviceSpec | null)[];
  links: readonly (LinkSpec | null)[];
}

const NAMED = Object.keys(NAMED_PLUGIN_KINDS) as NamedPluginKind[];
const WHAT: Record<NamedPluginKind, string> = { driver: "driver", policy: "policy", interconnect: "link kind" };

export class PluginRegistry {
  readonly plugins: readonly MachinePlugin[];
  readonly #byName = new Map<string, MachinePlugin>();
  readonly #provided: Record<NamedPluginKind, Map<string, MachinePlugin>> = { driver: new Map(), policy: new Map(), interconnect: new Map() };
  readonly #bundles = new Map<string, readonly string[]>();
  readonly #resolved = new WeakMap<object, DevicePolicies>();

  /** Checks every plugin's shape and claims; throws one MachineCompositionError listing every problem. */
  constructor(plugins: readonly unknown[]) {
    if (!Array.isArray(plugins)) throw new MachineCompositionError(`plugins: expected an array of plugins, got ${typeof plugins}`);
    const problems: string[] = [];
    plugins.forEach((raw, i) => {
      const p = raw as MachinePlugin | null;
      const at = `plugins[${i}]`;
      if (p === null || typeof p !== "object") return void problems.push(`${at}: expected a plugin object, got ${p === null ? "null" : typeof p}`);
      if (typeof p.name !== "string" || p.name === "") return void problems.push(`${at}: a plugin needs a non-empty string name (its PLUGIN_NAME)`);
      const who = `${at} (${JSON.stringify(p.name)})`;
      if (typeof p.apply !== "function") problems.push(`${who}: a plugin needs apply(machine)`);
      if (typeof p.kind !== "string" || p.kind === "") problems.push(`${who}: a plugin needs a kind (driver, policy, interconnect, exporter, or its own)`);
      if (p.register !== undefined && typeof p.register !== "function") problems.push(`${who}: register must be a function`);
      if (this.#byName.has(p.name)) return void problems.push(`${who}: duplicate plugin name (two plugins named ${JSON.stringify(p.name)})`);
      this.#byName.set(p.name, p);
      if (p.provides === undefined) return;
      if (!Array.isArray(p.provides) || p.provides.some((n) => typeof n !== "string" || n === "")) {
        return void problems.push(`${who}: provides must be an array of non-empty names`);
      }
      if (!NAMED.includes(p.kind as NamedPluginKind)) {
        return void problems.push(`${who}: only driver, policy and interconnect plugins provide names; this one is kind ${JSON.stringify(p.kind)}`);
      }
      const map = this.#provided[p.kind as NamedPluginKind];
      for (const n of p.provides) {
        const other = map.get(n);
        if (other && other !== p) problems.push(`${who}: ${WHAT[p.kind as NamedPluginKind]} ${JSON.stringify(n)} is provided by two plugins, ${JSON.stringify(other.name)} and ${JSON.stringify(p.name)}`);
        else map.set(n, p);
      }
      if (p.bundles !== undefined) this.#addBundles(p, who, problems);
    });
    if (problems.length > 0) throw new MachineCompositionError(`cannot compose the machine from its plugins:\n  ${problems.join("\n  ")}`);
    this.plugins = Object.freeze([...(plugins as MachinePlugin[])]);
  }

  #addBundles(p: MachinePlugin, who: string, problems: string[]): void {
    const b = p.bundles as unknown;
    if (p.kind !== "policy") return void problems.push(`${who}: only policy plugins declare bundles; this one is kind ${JSON.stringify(p.kind)}`);
    if (b === null || typeof b !== "object" || Array.isArray(b)) return void problems.push(`${who}: bundles must map bundle names to lists of policy names`);
    for (const [name, members] of Object.entries(b)) {
      if (!(p.provides ?? []).includes(name)) problems.push(`${who}: bundle ${JSON.stringify(name)} is not among the names the plugin provides`);
      else if (!Array.isArray(members) || members.length === 0 || members.some((m) => typeof m !== "string" || m === "")) {
        problems.push(`${who}: bundle ${JSON.stringify(name)} must list one or more policy names`);
      } else this.#bundles.set(name, Object.freeze([...(members as string[])]));
    }
  }

  get(name: string): MachinePlugin | undefined {
    return this.#byName.get(name);
  }

  /** The plugin that provides `name` of `kind`, or undefined. */
  provider(kind: NamedPluginKind, name: string): MachinePlugin | undefined {
    return this.#provided[kind].get(name);
  }

  /** The members of policy bundle `name` (as its plugin declares them), or undefined when `name` is not a bundle. */
  bundle(name: string): readonly string[] | undefined {
    return this.#bundles.get(name);
  }

  /**
   * The policies `device` runs, bundles expanded, each with its own policySpec (see device-policies.ts), and the
   * problems of its `policy` / `policySpec` with paths relative to the device. Memoized per device object.
   */
  resolvePolicies(device: Pick<DeviceSpec, "policy" | "policySpec">): DevicePolicies {
    let r = this.#resolved.get(device);
    if (r === undefined) {
      r = resolveDevicePolicies(device, {
        bundle: (n) => this.#bundles.get(n),
        provided: (n) => this.#provided.policy.has(n),
        missing: (n) => this.#missing("policy", n),
      });
      this.#resolved.set(device, r);
    }
    return r;
  }

  /** The policies a device of a valid spec runs (`resolvePolicies(device).policies`). */
  devicePolicies(device: Pick<DeviceSpec, "policy" | "policySpec">): readonly ResolvedPolicy[] {
    return this.resolvePolicies(device).policies;
  }

  #missing(kind: NamedPluginKind, name: string, note = ""): string {
    const have = this.available(kind);
    return `no plugin provides ${WHAT[kind]} ${JSON.stringify(name)} (${note}available: ${have.length ? have.join(", ") : "none"}; load one with plugins: in the spec or --plugin)`;
  }

  /** The names of `kind` the plugins provide, sorted. */
  available(kind: NamedPluginKind): string[] {
    return [...this.#provided[kind].keys()].sort();
  }

  /**
   * The problems of a parsed spec that the plugins see: every device driver, policy and link kind no plugin
   * provides (with the names available), and every issue a provider reports about its part of the spec, each with
   * its full path. Empty when the spec can be composed.
   */
  specIssues(spec: Pick<MachineSpec, "devices" | "links"> | PartialSpec): SpecIssue[] {
    const out: SpecIssue[] = [];
    const ask = (p: MachinePlugin, ref: ComponentRef, prefix: string, owner: string): void => {
      if (!p.componentSpecIssues) {
        if (ref.kind !== "interconnect" && ref.spec !== undefined) out.push({ path: prefix, message: `plugin ${p.name} takes no ${ref.kind}Spec` });
        return;
      }
      let issues: SpecIssue[];
      try {
        issues = p.componentSpecIssues(ref);
      } catch (e) {
        issues = [{ path: "", message: `plugin ${p.name} could not validate it: ${(e as Error)?.message ?? String(e)}` }];
      }
      if (!Array.isArray(issues)) issues = [{ path: "", message: `plugin ${p.name}'s componentSpecIssues returned ${typeof issues}, not a list of issues` }];
      for (const i of issues) {
        const rel = typeof i?.path === "string" ? i.path : "";
        // "^field" is relative to the device (or link) the part belongs to, not to the part: "^memory" → devices[0].memory.
        out.push({ path: rel.startsWith("^") ? joinPath(owner, rel.slice(1)) : joinPath(prefix, rel), message: String(i?.message) });
      }
    };
    const missing = (kind: NamedPluginKind, name: string, note = ""): string => this.#missing(kind, name, note);
    const linkByName = new Map<string, LinkSpec>();
    spec.links.forEach((l: LinkSpec | null, i) => {
      if (l === null) return;
      if (!linkByName.has(l.name)) linkByName.set(l.name, l);
      const p = this.provider("interconnect", l.kind);
      if (!p) out.push({ path: `links[${i}].kind`, message: missing("interconnect", l.kind) });
      else ask(p, { kind: "interconnect", name: l.kind, spec: l, link: l }, `links[${i}]`, `links[${i}]`);
    });
    spec.devices.forEach((d: DeviceSpec | null, i) => {
      if (d === null) return;
      const dp = this.provider("driver", d.driver);
      if (!dp) out.push({ path: `devices[${i}].driver`, message: missing("driver", d.driver, d.driver === d.kind ? `the default driver of kind ${JSON.stringify(d.kind)}; ` : "") });
      else ask(dp, { kind: "driver", name: d.driver, spec: d.driverSpec, device: d }, `devices[${i}].driverSpec`, `devices[${i}]`);
      const resolved = this.resolvePolicies(d);
      for (const issue of resolved.issues) out.push({ path: joinPath(`devices[${i}]`, issue.path), message: issue.message });
      for (const rp of resolved.policies) {
        ask(this.provider("policy", rp.name)!, { kind: "policy", name: rp.name, spec: rp.spec, device: d }, joinPath(`devices[${i}]`, rp.specPath), `devices[${i}]`);
      }
      const link = linkByName.get(d.link);
      if (d.memoryType === "coherent" && link) {
        const lp = this.provider("interconnect", link.kind);
        if (lp && !(lp.isCoherentLink?.(link) ?? false)) {
          out.push({ path: `devices[${i}].memoryType`, message: `DEVICE_COHERENT memory needs a coherent link; link ${JSON.stringify(link.name)} (kind ${link.kind}, plugin ${lp.name}) is not coherent` });
        }
      }
    });
    return out;
  }
}

function joinPath(prefix: string, rel: string): string {
  if (!rel) return prefix;
  return rel.startsWith("[") ? prefix + rel : `${prefix}.${rel}`;
}
