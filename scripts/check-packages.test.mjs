// node --test: the packaging check's rules find each kind of problem, and publint and attw (as the check calls
// them) fail a package whose exports point at files it does not ship.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { attwProblems, exportTargets, forbiddenFile, importsOf, publintProblems, tarballProblems } from "./check-packages.mjs";
import { sourceOf } from "./prune-dist.mjs";

const LICENSE = "MIT License\n";
const goodPkg = {
  name: "@hmmsim/a",
  version: "0.2.0",
  license: "MIT",
  type: "module",
  sideEffects: false,
  engines: { node: ">=20.19" },
  repository: { type: "git", url: "git+https://example.org/hmmsim.git", directory: "packages/a" },
  homepage: "https://example.org/hmmsim",
  bugs: { url: "https://example.org/hmmsim/issues" },
  exports: { ".": { "@hmmsim/source": "./src/index.ts", types: "./dist/index.d.ts", default: "./dist/index.js" } },
  dependencies: { "@hmmsim/b": "^0.2.0", yaml: "^2.9.1" },
};
const goodFiles = () =>
  new Map([
    ["package.json", null],
    ["LICENSE", LICENSE],
    ["README.md", "# a\n"],
    ["src/index.ts", "export const a = 1;\n"],
    ["dist/index.js", `import { b } from "@hmmsim/b";\nimport { parse } from "yaml";\nimport { readFileSync } from "node:fs";\nimport { join } from "path";\nexport const a = [b, parse, readFileSync, join];\n//# sourceMappingURL=index.js.map`],
    ["dist/index.js.map", JSON.stringify({ version: 3, file: "index.js", sources: ["../src/index.ts"], mappings: "" })],
    ["dist/index.d.ts", "export declare const a: unknown[];\n"],
    ["dist/index.d.ts.map", JSON.stringify({ version: 3, file: "index.d.ts", sources: ["../src/index.ts"], mappings: "" })],
  ]);
const check = (files, pkg = goodPkg) => tarballProblems({ files, pkg, siblings: { "@hmmsim/a": "0.2.0", "@hmmsim/b": "0.2.0" }, license: LICENSE, rel: "packages/a" });

test("a clean package passes", () => {
  assert.deepEqual(check(goodFiles()), []);
});

test("tests, benchmarks, test doubles, build info and stale outputs are found", () => {
  const files = goodFiles();
  for (const f of ["dist/a.test.js", "src/b.bench.ts", "dist/testing/test-driver.js", "src/testing/test-util.ts", "dist/.tsbuildinfo", "dist/gone.js"]) files.set(f, null);
  const p = check(files);
  for (const f of ["dist/a.test.js", "src/b.bench.ts", "dist/testing/test-driver.js", "src/testing/test-util.ts", "dist/.tsbuildinfo"]) assert.ok(p.some((s) => s.startsWith(`ships ${f}:`)), `${f}\n${p.join("\n")}`);
  assert.ok(p.some((s) => s.includes("ships dist/gone.js but not its source src/gone.ts")));
});

test("an export target, a map source or a LICENSE that is not shipped is found", () => {
  const files = goodFiles();
  files.delete("src/index.ts");
  files.delete("LICENSE");
  const p = check(files);
  assert.ok(p.some((s) => s.includes("exports names ./src/index.ts")), p.join("\n"));
  assert.ok(p.some((s) => s.includes("dist/index.js.map: source ../src/index.ts")));
  assert.ok(p.includes("has no LICENSE"));
});

test("the manifest: * ranges, a sibling range that is not the sibling's version, missing fields, undeclared imports", () => {
  const pkg = structuredClone(goodPkg);
  pkg.dependencies = { "@hmmsim/b": "*", zod: "latest" };
  delete pkg.engines;
  delete pkg.sideEffects;
  pkg.repository.directory = "elsewhere";
  const p = check(goodFiles(), pkg);
  for (const want of ["dependencies.@hmmsim/b is \"*\"", "expected \"^0.2.0\"", "dependencies.zod is \"latest\"", "engines.node", "sideEffects", "repository", "imports yaml, which package.json does not declare"]) {
    assert.ok(p.some((s) => s.includes(want)), `${want}\n${p.join("\n")}`);
  }
});

test("helpers", () => {
  assert.deepEqual(exportTargets({ ".": { types: "./a.d.ts", default: "./a.js" }, "./x": "./x.js" }), ["./a.d.ts", "./a.js", "./x.js"]);
  assert.deepEqual(importsOf(`import a from "x";\nexport { b } from "@s/y/z";\nawait import("w");\nimport "side";`), ["x", "@s/y/z", "w", "side"]);
  assert.equal(forbiddenFile("dist/index.js"), null);
  assert.equal(sourceOf("a/b.d.ts.map"), "a/b.ts");
  assert.equal(sourceOf(".tsbuildinfo"), null);
});

test("publint and attw fail a package whose exports point at files it does not ship", async () => {
  const dir = mkdtempSync(join(tmpdir(), "hmmsim-check-packages-"));
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "broken-exports", version: "1.0.0", type: "module", exports: { ".": { types: "./index.d.ts", default: "./index.js" } }, files: ["index.js"] }));
  writeFileSync(join(dir, "index.js"), "export const x = 1;\n");
  writeFileSync(join(dir, "index.d.ts"), "export declare const x: number;\n");
  execFileSync("npm", ["pack", "--pack-destination", dir], { cwd: dir, stdio: "ignore" });
  const tarball = join(dir, readdirSync(dir).find((f) => f.endsWith(".tgz")));
  assert.ok((await publintProblems(tarball)).some((s) => s.includes("FILE_DOES_NOT_EXIST")));
  assert.ok((await attwProblems(tarball)).length > 0);
});
