import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { PluginLoadError, loadPluginModule, loadPlugins } from "./load-plugins.js";

const PLUGIN = `export default { name: "P1", kind: "policy", provides: ["p1"], apply() {} };\n`;
let dir: string;
let specDir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "hmmsim-load-"));
  specDir = join(dir, "specs");
  mkdirSync(join(specDir, "lib"), { recursive: true });
  writeFileSync(join(specDir, "lib", "p1.mjs"), PLUGIN);
  writeFileSync(join(specDir, "lib", "many.mjs"), `export default () => [{ name: "A", kind: "exporter", apply() {} }, { name: "B", kind: "exporter", apply() {} }];\n`);
  writeFileSync(join(specDir, "lib", "async.mjs"), `export default async () => ({ name: "C", kind: "exporter", apply() {} });\n`);
  writeFileSync(join(specDir, "lib", "none.mjs"), `export const x = 1;\n`);
  writeFileSync(join(specDir, "lib", "bad.mjs"), `export default { name: "NoKind", apply() {} };\n`);
  writeFileSync(join(specDir, "lib", "throws.mjs"), `throw new Error("boom at load");\n`);
  writeFileSync(join(dir, "outside.mjs"), PLUGIN);
  // an installed package above the spec's folder, ESM-only exports
  const pkg = join(dir, "node_modules", "@acme", "hmmsim-plugin");
  mkdirSync(join(pkg, "dist"), { recursive: true });
  writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "@acme/hmmsim-plugin", version: "1.2.3", type: "module", exports: { ".": { import: "./dist/index.js" } } }));
  writeFileSync(join(pkg, "dist", "index.js"), `export default { name: "Acme", kind: "interconnect", version: "1.2.3", provides: ["acme"], apply() {} };\n`);
});

async function loadError(p: Promise<unknown>): Promise<PluginLoadError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof PluginLoadError) return e;
    throw e;
  }
  throw new Error("expected a PluginLoadError");
}

describe("loadPlugins", () => {
  it("loads relative paths inside the spec's folder and installed packages from it upwards", async () => {
    const got = await loadPlugins(["./lib/p1.mjs", "@acme/hmmsim-plugin", "./lib/many.mjs", "./lib/async.mjs"], { baseDir: specDir });
    expect(got.map((g) => g.plugin.name)).toEqual(["P1", "Acme", "A", "B", "C"]);
    expect(got[1]!.file).toBe(join(dir, "node_modules", "@acme", "hmmsim-plugin", "dist", "index.js"));
    expect(got[1]!.plugin.version).toBe("1.2.3");
  });

  it("a spec may not name absolute paths, paths outside its folder or URLs; the command line may name paths", async () => {
    expect((await loadError(loadPlugins(["../outside.mjs"], { baseDir: specDir }))).message).toMatch(/^plugins\[0\]: plugin module "..\/outside.mjs": leaves the spec's folder/);
    expect((await loadError(loadPlugins([join(dir, "outside.mjs")], { baseDir: specDir }))).message).toMatch(/load an absolute path with --plugin/);
    expect((await loadError(loadPlugins(["https://example.invalid/p.js"], { baseDir: specDir }))).message).toMatch(/URLs are not loaded/);
    expect((await loadError(loadPlugins(["file:///tmp/p.js"], { baseDir: specDir, trust: "command-line" }))).message).toMatch(/URLs are not loaded/);
    const cli = await loadPluginModule("../outside.mjs", { baseDir: specDir, trust: "command-line", where: () => "--plugin" });
    expect(cli[0]!.plugin.name).toBe("P1");
    // on the command line an existing file needs no ./ (in a spec a bare name is a package)
    expect((await loadPluginModule("lib/p1.mjs", { baseDir: specDir, trust: "command-line" }))[0]!.plugin.name).toBe("P1");
    expect((await loadError(loadPlugins(["lib/p1.mjs"], { baseDir: specDir }))).message).toMatch(/package lib is not installed/);
  });

  it("names the module and why when it does not load or does not export a plugin", async () => {
    const msg = async (m: string) => (await loadError(loadPlugins([m], { baseDir: specDir }))).message;
    expect(await msg("./lib/missing.mjs")).toMatch(/not found: .*missing\.mjs$/);
    expect(await msg("./lib/none.mjs")).toMatch(/has no default export/);
    expect(await msg("./lib/bad.mjs")).toMatch(/is not a plugin: NoKind has no kind/);
    expect(await msg("./lib/throws.mjs")).toMatch(/does not load .*Error: boom at load/);
    expect(await msg("hmmsim-not-installed")).toMatch(/package hmmsim-not-installed is not installed/);
    expect(await msg("Not A Name")).toMatch(/expected an installed package name/);
    const e = await loadError(loadPlugins(["./lib/p1.mjs", "./lib/none.mjs"], { baseDir: specDir }));
    expect(e.where).toBe("plugins[1]");
    expect(e.module).toBe("./lib/none.mjs");
  });
});
