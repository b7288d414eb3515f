// The layering rule of the repository, checked in `npm test` (turbo's root task `//#check-layers`):
//
//   packages/  (the framework)  import only other packages/ workspaces;
//   plugins/   import packages/ workspaces; never another plugin (two plugins meet through a package they both
//              build on, e.g. a policy and a driver through @hmmsim/policy). A plugin's *tests* may compose a
//              machine with another plugin as a devDependency, except that a policy never imports a driver,
//              not even in a test;
//   apps/      import anything;
//   examples/  (not workspaces) import only published entry points (`@hmmsim/<name>`, no deep paths);
//
// and every workspace declares what it imports (dependencies or peerDependencies for src, devDependencies allowed
// for tests and benchmarks) and imports what it declares (no dependency nothing uses).
//
//   node scripts/check-layers.mjs            # prints the violations, exits 1 if any
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const IMPORT = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g;
/** Declared dependencies that are used without an import statement (tools, type packages, polyfills loaded by config). */
const USED_WITHOUT_IMPORT = new Set(["reflect-metadata", "typescript", "vitest"]);

function walk(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir)) {
    if (e === "node_modules" || e === "dist" || e.startsWith(".")) continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.(ts|mts|js|mjs)$/.test(e) && !e.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

function importsOf(file) {
  const text = readFileSync(file, "utf8");
  const out = [];
  for (const m of text.matchAll(IMPORT)) out.push(m[1] ?? m[2]);
  return out;
}

/** The package name an import specifier names ("@a/b/c" → "@a/b", "x/y" → "x"), or null for relative/node: imports. */
function packageOf(spec) {
  if (spec.startsWith(".") || spec.startsWith("/") || spec.startsWith("node:")) return null;
  const parts = spec.split("/");
  return spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/**
 * Tests, benchmarks and the test doubles they share: the doubles live in src/testing/, which no tarball ships
 * (every workspace's package.json "files" excludes src/testing and dist/testing).
 */
export const isTestFile = (f) =>
  /\.(test|bench)\.[mc]?[tj]s$/.test(f) || f.includes(`${sep}test${sep}`) || f.includes(`${sep}src${sep}testing${sep}`);

/** Every workspace: { dir, rel, name, layer, group, pkg }. */
function workspaces(root) {
  const rootPkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const out = [];
  for (const pattern of rootPkg.workspaces) {
    const parts = pattern.split("/");
    let dirs = [root];
    for (const part of parts) {
      dirs = dirs.flatMap((d) => (part === "*" ? (existsSync(d) ? readdirSync(d).map((e) => join(d, e)).filter((p) => statSync(p).isDirectory()) : []) : [join(d, part)]));
    }
    for (const dir of dirs) {
      if (!existsSync(join(dir, "package.json"))) continue;
      const rel = relative(root, dir).split(sep).join("/");
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
      const [layer, group] = rel.split("/");
      out.push({ dir, rel, name: pkg.name, layer, group: layer === "plugins" ? group : null, pkg });
    }
  }
  return out;
}

/** The violations of the layering rule in the repository at `root`, as strings. */
export function checkLayers(root) {
  const ws = workspaces(root);
  // The root's devDependencies are the repository's tools (vitest, fast-check, eslint): any test may use them.
  const rootDev = new Set(Object.keys(JSON.parse(readFileSync(join(root, "package.json"), "utf8")).devDependencies ?? {}));
  const byName = new Map(ws.map((w) => [w.name, w]));
  const problems = [];
  for (const w of ws) {
    const deps = new Set(Object.keys(w.pkg.dependencies ?? {}));
    // A peer dependency is declared for src too (tsyringe: one copy shared by @hmmsim/machine and every plugin).
    const peers = new Set(Object.keys(w.pkg.peerDependencies ?? {}));
    const devDeps = new Set(Object.keys(w.pkg.devDependencies ?? {}));
    const used = new Set();
    for (const file of walk(join(w.dir, "src"))) {
      const test = isTestFile(file);
      const where = relative(root, file).split(sep).join("/");
      for (const spec of importsOf(file)) {
        const name = packageOf(spec);
        if (name === null) continue;
        used.add(name);
        if (name === w.name) continue;
        if (!deps.has(name) && !peers.has(name) && !(test && (devDeps.has(name) || rootDev.has(name)))) {
          problems.push(`${where}: imports ${name}, which ${w.rel}/package.json does not declare${test ? " (dependencies or devDependencies)" : " in dependencies"}`);
        }
        const target = byName.get(name);
        if (!target) continue;
        if (w.layer === "packages" && target.layer !== "packages") problems.push(`${where}: a framework package imports ${target.layer.replace(/s$/, "")} ${name} (${target.rel}); packages/ import only packages/`);
        if (w.layer === "plugins" && target.layer === "apps") problems.push(`${where}: a plugin imports the app ${name}`);
        if (w.layer === "plugins" && target.layer === "plugins") {
          if (w.group === "policies" && target.group === "drivers") problems.push(`${where}: a policy imports the driver ${name}; policies and drivers meet at @hmmsim/policy`);
          else if (!test) problems.push(`${where}: a plugin imports the plugin ${name}; plugins share code only through a package they both build on`);
        }
      }
    }
    for (const d of deps) {
      if (!used.has(d) && !USED_WITHOUT_IMPORT.has(d) && !(w.pkg.bin && d.startsWith("@hmmsim/"))) problems.push(`${w.rel}/package.json: declares ${d} but nothing in src imports it`);
    }
  }
  const examples = join(root, "examples");
  for (const file of walk(examples)) {
    const where = relative(root, file).split(sep).join("/");
    for (const spec of importsOf(file)) {
      if (spec.startsWith("@hmmsim/") && spec.split("/").length > 2) problems.push(`${where}: imports ${spec}; examples import only published entry points (@hmmsim/<name>)`);
      if (spec.startsWith(".") && relative(examples, join(file, "..", spec)).startsWith("..")) problems.push(`${where}: imports ${spec}, outside examples/; use the published packages`);
    }
  }
  return problems;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = join(fileURLToPath(new URL(".", import.meta.url)), "..");
  const problems = checkLayers(root);
  if (problems.length > 0) {
    console.error(`layering: ${problems.length} violation${problems.length === 1 ? "" : "s"}\n  ${problems.join("\n  ")}`);
    process.exit(1);
  }
  console.log(`layering: ok (${workspaces(root).length} workspaces and examples/)`);
}
