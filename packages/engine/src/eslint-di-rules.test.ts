// The DI rules of docs/architecture.md ("Wiring: DI and hooks") are lint rules in the repo's root eslint.config.js. This test
// lints snippets through that very config file, as if they sat at real paths of the repo, and asserts that each
// rule reports a violation where it should and stays quiet on the allowed forms (library code vs tests vs the
// composition root). It lives in the engine package because the engine is the root of the package graph and owns
// no DI itself; the config file is a turbo globalDependency, so editing it reruns this test.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ESLint } from "eslint";
import { beforeAll, describe, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const LIB = "packages/demo/src/demo-widget.ts";
const PLUGIN_LIB = "plugins/drivers/demo/src/plugin.ts";
const TEST = "packages/demo/src/demo-widget.test.ts";
const ROOT = "packages/machine/src/create-machine.ts";

let eslint: ESLint;
beforeAll(() => {
  eslint = new ESLint({ cwd: root, overrideConfigFile: path.join(root, "eslint.config.js") });
});

/** All messages of one rule ESLint reports for `code` at `file`. */
async function ruleMessages(rule: string, code: string, file: string): Promise<string[]> {
  const [res] = await eslint.lintText(code, { filePath: path.join(root, file) });
  return res!.messages.filter((m) => m.ruleId === rule).map((m) => `${m.line}: ${m.message}`);
}

/** The DI (no-restricted-syntax) messages ESLint reports for `code` at `file`; fails on parse errors. */
async function diMessages(code: string, file: string): Promise<string[]> {
  const [res] = await eslint.lintText(code, { filePath: path.join(root, file) });
  const fatal = res!.messages.filter((m) => m.fatal);
  expect(fatal, `parse error in snippet: ${fatal.map((m) => m.message).join("; ")}`).toEqual([]);
  return res!.messages.filter((m) => m.ruleId === "no-restricted-syntax").map((m) => `${m.line}: ${m.message}`);
}

const HEADER = `import { inject, injectable, Lifecycle, scoped, singleton, type DependencyContainer } from "tsyringe";
export interface Dep { x: number }
export const Dep = Symbol("Dep");
export const Other = Symbol("Other");
`;

describe("eslint DI rules (docs/architecture.md: Wiring)", () => {
  it("the config is the one `eslint src` uses: a TypeScript file under packages/*/src is linted, not ignored", async () => {
    expect(await eslint.isPathIgnored(path.join(root, LIB))).toBe(false);
    expect(await eslint.isPathIgnored(path.join(root, "packages/demo/dist/demo-widget.js"))).toBe(true);
  });

  it("@singleton() is reported (it registers in the global container)", async () => {
    const msgs = await diMessages(`${HEADER}\n@singleton()\nexport class Engine {}\n`, LIB);
    expect(msgs).toEqual([expect.stringMatching(/^6: docs\/architecture.md: no @singleton\(\)/)]);
  });

  it("@injectable({ token }) is reported, a bare @injectable() is not", async () => {
    const bad = await diMessages(`${HEADER}\n@injectable({ token: Dep })\nexport class A {}\n`, LIB);
    expect(bad).toEqual([expect.stringMatching(/no @injectable\(\{ token \}\)/)]);
    expect(await diMessages(`${HEADER}\n@injectable()\nexport class A {}\n`, LIB)).toEqual([]);
  });

  it("@scoped(...) is reported (global registration)", async () => {
    const msgs = await diMessages(`${HEADER}\n@scoped(Lifecycle.ContainerScoped)\nexport class A {}\n`, PLUGIN_LIB);
    expect(msgs).toEqual([expect.stringMatching(/no @scoped\/@registry\/@autoInjectable/)]);
  });

  it("a constructor parameter of an @injectable class without @inject(Token) is reported, one report per parameter", async () => {
    const code = `${HEADER}
@injectable()
export class Svc {
  constructor(
    @inject(Dep) readonly a: Dep,
    readonly b: Dep,
    c: Dep,
    @inject(Other) private readonly d: Dep,
  ) {
    void c;
  }
}
`;
    const msgs = await diMessages(code, LIB);
    expect(msgs).toHaveLength(2);
    expect(msgs[0]).toMatch(/^10: docs\/architecture.md: every injected constructor parameter carries an explicit @inject\(Token\)/);
    expect(msgs[1]).toMatch(/^11: /);
  });

  it("a fully @inject-ed constructor, and constructors of classes that are not injectable, are clean", async () => {
    const code = `${HEADER}
@injectable()
export class Svc {
  constructor(
    @inject(Dep) readonly a: Dep,
    @inject(Other) private readonly b: Dep,
  ) {}
  get sum(): number { return this.a.x + this.b.x; }
}
export class Plain {
  constructor(readonly n: number) {}
}
`;
    expect(await diMessages(code, LIB)).toEqual([]);
  });

  it("@inject with a string token is reported (tokens are Symbols from tokens.ts)", async () => {
    const code = `${HEADER}
@injectable()
export class Svc {
  constructor(@inject("Dep") readonly a: Dep) {}
}
`;
    expect(await diMessages(code, LIB)).toEqual([expect.stringMatching(/^8: docs\/architecture.md: inject a token/)]);
  });

  it("the global container is reported everywhere, tests included", async () => {
    const code = `import { container } from "tsyringe";
export class A {}
container.register(A, { useClass: A });
container.registerSingleton(A);
`;
    const lib = await diMessages(code, LIB);
    expect(lib.filter((m) => /never touch tsyringe's global container/.test(m))).toHaveLength(2);
    expect(lib.filter((m) => /never imports tsyringe's global container/.test(m))).toHaveLength(1);
    const test = await diMessages(code, TEST);
    expect(test).toEqual([
      expect.stringMatching(/^3: docs\/architecture.md: never touch tsyringe's global container/),
      expect.stringMatching(/^4: docs\/architecture.md: never touch tsyringe's global container/),
    ]);
  });

  it("importing the global container under another name is reported in library code, allowed in the composition root", async () => {
    const code = `import { container as rootContainer } from "tsyringe";
export const child = rootContainer.createChildContainer();
`;
    expect(await diMessages(code, LIB)).toEqual([expect.stringMatching(/^1: docs\/architecture.md: library code never imports/)]);
    expect(await diMessages(code, ROOT)).toEqual([]);
  });

  it("resolving from a container is reported in library code, allowed in tests and the composition root", async () => {
    const code = `${HEADER}
export class CostLedger {}
export function build(c: DependencyContainer): CostLedger {
  void Promise.resolve(CostLedger);
  return c.resolve(CostLedger);
}
`;
    expect(await diMessages(code, LIB)).toEqual([expect.stringMatching(/^9: docs\/architecture.md: only composition roots/)]);
    expect(await diMessages(code, PLUGIN_LIB)).toHaveLength(1);
    expect(await diMessages(code, TEST)).toEqual([]);
    expect(await diMessages(code, ROOT)).toEqual([]);
  });
});

describe("eslint determinism rules (engine README: Determinism rules)", () => {
  const code = `export const roll = (): number => Math.random();
export const stamp = (): number => Date.now();
export const wall = (): number => performance.now();
`;
  it("Math.random and Date.now are reported in packages and plugins, library code and tests alike", async () => {
    for (const file of [LIB, PLUGIN_LIB, TEST]) {
      expect(await ruleMessages("no-restricted-properties", code, file)).toEqual([
        expect.stringMatching(/^1: .*Determinism: draw from engine.rng/),
        expect.stringMatching(/^2: .*Determinism: use virtual time/),
      ]);
    }
  });

  it("apps (composition roots, the CLI) may read the host clock", async () => {
    expect(await ruleMessages("no-restricted-properties", code, "apps/cli/src/main.ts")).toEqual([]);
  });
});
