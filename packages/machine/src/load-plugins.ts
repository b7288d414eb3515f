/**
 * Loading third-party plugin modules: a machine spec's `plugins:` and the command line's `--plugin`.
 *
 * Loading a plugin runs its code with the rights of the process that loads it, as `import` of any package does.
 * So a spec (a file that may come from someone else) may name only what its reader already trusts: an installed
 * package (a bare name, resolved from the spec's folder as node does: its node_modules, then the folders above)
 * or a relative path inside the spec's own folder. Anything else (an absolute path, a path that leaves the
 * folder, a URL) needs an explicit `--plugin` on the command line (`trust: "command-line"`).
 *
 * A plugin module's default export is a MachinePlugin, an array of them, or a function (sync or async) returning
 * either (see PluginModule in plugin.ts).
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import type { MachinePlugin } from "./plugin.js";

/** A plugin module that could not be loaded or does not export plugins; names the module and why. */
export class PluginLoadError extends Error {
  override readonly name = "PluginLoadError";
  constructor(
    /** Where the module was named ("plugins[0]" of a spec file, "--plugin"). */
    readonly where: string,
    /** The module as written. */
    readonly module: string,
    readonly reason: string,
  ) {
    super(`${where}: plugin module ${JSON.stringify(module)}: ${reason}`);
  }
}

export interface LoadPluginsOptions {
  /** Relative module paths and package names resolve from here (the spec file's folder, or the current folder). */
  baseDir: string;
  /**
   * "spec": only installed package names and relative paths inside baseDir (default); "command-line": also
   * absolute paths and paths outside baseDir.
   */
  trust?: "spec" | "command-line";
  /** How errors name where the module was listed: `where(i)` (default "plugins[i]"). */
  where?: (index: number) => string;
}

/** A plugin and the module it came from. */
export interface LoadedPlugin {
  plugin: MachinePlugin;
  /** The module as written, and the file it resolved to. */
  module: string;
  file: string;
}

const PACKAGE_NAME = /^(@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*(\/[A-Za-z0-9._~/-]+)?$/;
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/** Loads each module in order; the first that fails throws PluginLoadError. */
export async function loadPlugins(modules: readonly string[], opts: LoadPluginsOptions): Promise<LoadedPlugin[]> {
  const out: LoadedPlugin[] = [];
  for (let i = 0; i < modules.length; i++) out.push(...(await loadPluginModule(modules[i]!, { ...opts, where: () => (opts.where ?? defaultWhere)(i) })));
  return out;
}

const defaultWhere = (i: number): string => `plugins[${i}]`;

/** Resolves and imports one plugin module; returns its plugins. */
export async function loadPluginModule(module: string, opts: LoadPluginsOptions): Promise<LoadedPlugin[]> {
  const where = (opts.where ?? defaultWhere)(0);
  const fail = (reason: string): never => {
    throw new PluginLoadError(where, module, reason);
  };
  if (typeof module !== "string" || module === "") fail("expected a package name or a relative path");
  const file = resolveModule(module, opts, fail);
  let ns: { default?: unknown };
  try {
    ns = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (e) {
    const err = e as Error;
    return fail(`does not load (${file}): ${err?.name ?? "Error"}: ${err?.message ?? String(e)}`);
  }
  if (!("default" in ns) || ns.default === undefined) {
    return fail(`has no default export; a plugin module does \`export default new MyPlugin()\` (or an array of plugins, or a function returning them)`);
  }
  let exported: unknown = ns.default;
  if (typeof exported === "function" && !isPlugin(exported)) {
    try {
      exported = await (exported as () => unknown)();
    } catch (e) {
      return fail(`its default export (a function) threw: ${(e as Error)?.message ?? String(e)}`);
    }
  }
  const list = Array.isArray(exported) ? exported : [exported];
  if (list.length === 0) fail("exports an empty list of plugins");
  return list.map((p, k) => {
    const problem = pluginProblem(p);
    if (problem) fail(`its default export${Array.isArray(exported) ? `[${k}]` : ""} is not a plugin: ${problem}`);
    return { plugin: p as MachinePlugin, module, file };
  });
}

function isPlugin(v: unknown): boolean {
  return pluginProblem(v) === null;
}

/** Why `v` is not a MachinePlugin, or null. */
function pluginProblem(v: unknown): string | null {
  if (v === null || (typeof v !== "object" && typeof v !== "function")) return `expected an object with name, kind and apply(machine), got ${v === null ? "null" : typeof v}`;
  const p = v as Partial<MachinePlugin>;
  if (typeof p.name !== "string" || p.name === "") return "it has no name (a non-empty string)";
  if (typeof p.kind !== "string" || p.kind === "") return `${p.name} has no kind (driver, policy, interconnect, exporter, or its own)`;
  if (typeof p.apply !== "function") return `${p.name} has no apply(machine)`;
  return null;
}

function resolveModule(module: string, opts: LoadPluginsOptions, fail: (reason: string) => never): string {
  const trust = opts.trust ?? "spec";
  const base = resolve(opts.baseDir);
  if (SCHEME.test(module) && !(isAbsolute(module) && /^[A-Za-z]:/.test(module))) {
    fail("URLs are not loaded: give an installed package name or a path");
  }
  // On the command line a name that is an existing file or folder is a path (`--plugin examples/x.js`).
  const isPath =
    module.startsWith("./") || module.startsWith("../") || module === "." || module === ".." || isAbsolute(module) || module.startsWith(".\\") ||
    (trust === "command-line" && existsSync(resolve(base, module)));
  if (isPath) {
    const file = resolve(base, module);
    if (trust === "spec") {
      if (isAbsolute(module)) fail(`a spec may name only installed packages and relative paths inside its own folder (${base}); load an absolute path with --plugin`);
      const rel = relative(base, file);
      if (rel === "" || rel.startsWith("..") || isAbsolute(rel) || rel.split(sep).includes("..")) {
        fail(`leaves the spec's folder (${base}); a spec may name only installed packages and paths inside its own folder (use --plugin for others)`);
      }
    }
    if (!existsSync(file)) fail(`not found: ${file}`);
    if (statSync(file).isDirectory()) {
      const entry = packageEntry(file);
      if (!entry) fail(`${file} is a folder without a package.json entry point`);
      return entry!;
    }
    return file;
  }
  if (!PACKAGE_NAME.test(module)) fail("expected an installed package name (like hmmsim-plugin-x or @scope/name) or a relative path starting with ./");
  const [pkgName, subpath] = splitPackage(module);
  for (let dir = base; ; dir = dirname(dir)) {
    const pkgDir = join(dir, "node_modules", pkgName);
    if (existsSync(join(pkgDir, "package.json"))) {
      const entry = packageEntry(pkgDir, subpath);
      if (!entry) fail(`package ${pkgName} (${pkgDir}) has no entry point for ${subpath ? "./" + subpath : "its main module"} (package.json exports, module or main)`);
      return entry!;
    }
    if (dirname(dir) === dir) break;
  }
  return fail(`package ${pkgName} is not installed (looked in node_modules from ${base} upwards; npm install it next to the spec)`);
}

function splitPackage(module: string): [string, string] {
  const parts = module.split("/");
  const n = module.startsWith("@") ? 2 : 1;
  return [parts.slice(0, n).join("/"), parts.slice(n).join("/")];
}

/** The file a package's `exports` (conditions import, node, default), `module` or `main` gives for `subpath`. */
function packageEntry(pkgDir: string, subpath = ""): string | null {
  const pjPath = join(pkgDir, "package.json");
  if (!existsSync(pjPath)) return subpath ? null : existsSync(join(pkgDir, "index.js")) ? join(pkgDir, "index.js") : null;
  let pj: { exports?: unknown; module?: unknown; main?: unknown };
  try {
    pj = JSON.parse(readFileSync(pjPath, "utf8")) as typeof pj;
  } catch {
    return null;
  }
  const key = subpath ? `./${subpath}` : ".";
  if (pj.exports !== undefined) {
    const ex = pj.exports;
    const isMap = typeof ex === "object" && ex !== null && !Array.isArray(ex) && Object.keys(ex).some((k) => k.startsWith("."));
    const target = isMap ? (ex as Record<string, unknown>)[key] : key === "." ? ex : undefined;
    const t = pickCondition(target);
    return t ? join(pkgDir, t) : null;
  }
  if (subpath) return join(pkgDir, subpath);
  const main = typeof pj.module === "string" ? pj.module : typeof pj.main === "string" ? pj.main : "index.js";
  return join(pkgDir, main);
}

function pickCondition(t: unknown): string | null {
  if (typeof t === "string") return t;
  if (Array.isArray(t)) {
    for (const x of t) {
      const r = pickCondition(x);
      if (r) return r;
    }
    return null;
  }
  if (t && typeof t === "object") {
    const o = t as Record<string, unknown>;
    for (const c of ["import", "node", "default"]) if (c in o) return pickCondition(o[c]);
  }
  return null;
}
