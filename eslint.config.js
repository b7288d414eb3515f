// Lint for every workspace (`eslint src` in each). typescript-eslint's recommended rules plus the DI rules of
// docs/architecture.md, "Wiring: DI and hooks", that a selector can express (no type information: the rules match
// syntax, so they name tsyringe's decorators and calls). packages/engine/src/eslint-di-rules.test.ts lints
// violating and clean snippets through this very file and asserts each rule fires where it should.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/** Composition roots: the only library file that may touch the root container and resolve (plus apps and tests). */
export const COMPOSITION_ROOTS = ["packages/machine/src/create-machine.ts"];

const INJECTABLE = "Decorator > CallExpression[callee.name=/^(injectable|scoped)$/]";

/** Rules for every TypeScript file, tests and apps included. */
export const DI_RULES = [
  {
    selector: "Decorator > CallExpression[callee.name='singleton']",
    message: "docs/architecture.md: no @singleton() — it registers in the global container; register per machine (child container) instead.",
  },
  {
    selector: "Decorator > CallExpression[callee.name='injectable'][arguments.length>0]",
    message: "docs/architecture.md: no @injectable({ token }) — it registers globally; register tokens in the machine's child container.",
  },
  {
    selector: "Decorator > CallExpression[callee.name=/^(scoped|registry|autoInjectable)$/]",
    message:
      "docs/architecture.md: no @scoped/@registry/@autoInjectable — they register in or resolve from the global container; " +
      "register with Lifecycle.ContainerScoped in the machine's child container.",
  },
  {
    selector: `ClassDeclaration:has(${INJECTABLE}) MethodDefinition[kind='constructor'] > FunctionExpression > :matches(Identifier, TSParameterProperty, AssignmentPattern, RestElement)[decorators.length=0]`,
    message: "docs/architecture.md: every injected constructor parameter carries an explicit @inject(Token) (no decorator metadata).",
  },
  {
    selector: "Decorator > CallExpression[callee.name=/^inject(All)?$/]:matches([arguments.length=0], [arguments.0.type=/^(Literal|TemplateLiteral)$/])",
    message: "docs/architecture.md: inject a token — a Symbol named like its interface, from the owning package's tokens.ts — not a string.",
  },
  {
    selector: "MemberExpression[object.name='container'][property.name=/^(register\\w*|resolve\\w*|reset|clearInstances)$/]",
    message: "docs/architecture.md: never touch tsyringe's global container; use the machine's child container.",
  },
];

/** Extra rules for library code (packages/plugins src, not tests, not composition roots). */
export const LIBRARY_RULES = [
  {
    // A `useFactory` registration resolves its dependencies from the container it is handed: that is injection
    // (the way to write a component without decorators), not a service locator.
    selector:
      "CallExpression[callee.property.name=/^(resolve|resolveAll)$/][arguments.0.type='Identifier'][arguments.0.name=/^[A-Z]/]:not([callee.object.name='Promise']):not(Property[key.name='useFactory'] CallExpression)",
    message: "docs/architecture.md: only composition roots (createMachine, apps), tests and useFactory registrations resolve from a container.",
  },
  {
    selector: "ImportDeclaration[source.value='tsyringe'] > ImportSpecifier[imported.name='container']",
    message: "docs/architecture.md: library code never imports tsyringe's global container (only the composition root createMachine does).",
  },
];

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", "**/.turbo/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    rules: {
      "no-restricted-syntax": ["error", ...DI_RULES],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-non-null-assertion": "off",
      "no-constant-condition": ["error", { checkLoops: false }],
    },
  },
  {
    // Determinism (packages/engine/README.md "Determinism rules"): simulation code and its tests draw every random
    // choice from engine.rng (or rng.derive(label)) and read virtual time, never the host's. Benchmarks measure
    // wall time with performance.now(), which stays allowed.
    files: ["packages/**/src/**/*.ts", "plugins/**/src/**/*.ts"],
    rules: {
      "no-restricted-properties": [
        "error",
        { object: "Math", property: "random", message: "Determinism: draw from engine.rng (or engine.rng.derive(label)), never Math.random." },
        { object: "Date", property: "now", message: "Determinism: use virtual time (engine.now), never the host clock." },
      ],
    },
  },
  {
    // Composition roots and tests may resolve from a container; library code may not.
    files: ["packages/**/src/**/*.ts", "plugins/**/src/**/*.ts"],
    ignores: ["**/*.test.ts", ...COMPOSITION_ROOTS],
    rules: {
      "no-restricted-syntax": ["error", ...DI_RULES, ...LIBRARY_RULES],
    },
  },
);
