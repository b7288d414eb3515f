// node --test: the layering check finds each kind of violation in a small repository it builds, and passes a clean one.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { checkLayers } from "./check-layers.mjs";

function repo(files) {
  const root = mkdtempSync(join(tmpdir(), "hmmsim-layers-"));
  const all = {
    "package.json": { workspaces: ["packages/*", "plugins/*/*", "apps/*"], devDependencies: { vitest: "*" } },
    "packages/machine/package.json": { name: "@hmmsim/machine", dependencies: {} },
    "packages/machine/src/index.ts": `export const x = 1;\n`,
    "packages/policy/package.json": { name: "@hmmsim/policy", dependencies: { "@hmmsim/machine": "*" } },
    "packages/policy/src/index.ts": `import { x } from "@hmmsim/machine";\nexport const y = x;\n`,
    "plugins/drivers/gpu/package.json": { name: "@hmmsim/driver-gpu", dependencies: { "@hmmsim/policy": "*" } },
    "plugins/drivers/gpu/src/index.ts": `import { y } from "@hmmsim/policy";\nexport const g = y;\n`,
    "plugins/policies/p/package.json": { name: "@hmmsim/policy-p", dependencies: { "@hmmsim/policy": "*" } },
    "plugins/policies/p/src/index.ts": `import type { y } from "@hmmsim/policy";\nexport type P = typeof y;\n`,
    ...files,
  };
  for (const [f, c] of Object.entries(all)) {
    mkdirSync(join(root, f, ".."), { recursive: true });
    writeFileSync(join(root, f), typeof c === "string" ? c : JSON.stringify(c));
  }
  return root;
}

test("a clean repository passes", () => {
  assert.deepEqual(checkLayers(repo({})), []);
});

test("a policy importing a driver fails, in src and in tests", () => {
  const root = repo({
    "plugins/policies/p/package.json": { name: "@hmmsim/policy-p", dependencies: { "@hmmsim/policy": "*", "@hmmsim/driver-gpu": "*" } },
    "plugins/policies/p/src/index.ts": `import { y } from "@hmmsim/policy";\nimport { g } from "@hmmsim/driver-gpu";\nexport const p = [y, g];\n`,
    "plugins/policies/p/src/p.test.ts": `import { g } from "@hmmsim/driver-gpu";\nimport { it } from "vitest";\nit("x", () => void g);\n`,
  });
  const v = checkLayers(root);
  assert.equal(v.filter((s) => s.includes("a policy imports the driver @hmmsim/driver-gpu")).length, 2);
});

test("a package importing a plugin, an undeclared import and an unused dependency fail", () => {
  const root = repo({
    "packages/machine/package.json": { name: "@hmmsim/machine", dependencies: { "@hmmsim/driver-gpu": "*", left: "*" } },
    "packages/machine/src/index.ts": `import { g } from "@hmmsim/driver-gpu";\nimport z from "zod";\nexport const x = [g, z];\n`,
  });
  const v = checkLayers(root);
  assert.ok(v.some((s) => /packages\/machine\/src\/index.ts: a framework package imports plugin @hmmsim\/driver-gpu/.test(s)), v.join("\n"));
  assert.ok(v.some((s) => /imports zod, which packages\/machine\/package.json does not declare/.test(s)));
  assert.ok(v.some((s) => /declares left but nothing in src imports it/.test(s)));
});

test("a plugin importing another plugin fails; examples may not deep-import", () => {
  const root = repo({
    "plugins/drivers/gpu/package.json": { name: "@hmmsim/driver-gpu", dependencies: { "@hmmsim/policy": "*", "@hmmsim/policy-p": "*" } },
    "plugins/drivers/gpu/src/index.ts": `import { y } from "@hmmsim/policy";\nimport type { P } from "@hmmsim/policy-p";\nexport const g: P | typeof y = y;\n`,
    "examples/x/plugin.ts": `import { y } from "@hmmsim/policy/dist/hooks.js";\nexport default y;\n`,
  });
  const v = checkLayers(root);
  assert.ok(v.some((s) => s.includes("a plugin imports the plugin @hmmsim/policy-p")), v.join("\n"));
  assert.ok(v.some((s) => s.includes("examples import only published entry points")));
});

test("test doubles in src/testing may use devDependencies; the same import elsewhere in src may not", () => {
  const root = repo({
    "packages/machine/package.json": { name: "@hmmsim/machine", dependencies: {}, devDependencies: { "@hmmsim/testing": "*" } },
    "packages/testing/package.json": { name: "@hmmsim/testing", dependencies: {} },
    "packages/testing/src/index.ts": `export const t = 1;\n`,
    "packages/machine/src/testing/test-link.ts": `import { t } from "@hmmsim/testing";\nexport const l = t;\n`,
    "packages/machine/src/test-machine.ts": `import { t } from "@hmmsim/testing";\nexport const m = t;\n`,
  });
  const v = checkLayers(root);
  assert.deepEqual(v, ["packages/machine/src/test-machine.ts: imports @hmmsim/testing, which packages/machine/package.json does not declare in dependencies"]);
});

test("a peer dependency is a declaration for src", () => {
  const root = repo({
    "packages/machine/package.json": { name: "@hmmsim/machine", peerDependencies: { tsyringe: "^4.10.0" } },
    "packages/machine/src/index.ts": `import { container } from "tsyringe";\nexport const x = container;\n`,
  });
  assert.deepEqual(checkLayers(root), []);
});
