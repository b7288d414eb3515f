// Lint for every workspace (`eslint src` in each). typescript-eslint's recommended rules plus the DI rules of
// ../shared/DESIGN.md "Wiring: DI + hooks" that a selector can express.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const DI_RULES = [
  {
    selector: "Decorator > CallExpression[callee.name='singleton']",
    message: "DESIGN.md: no @singleton() — it registers in the global container; register per machine (child container) instead.",
  },
  {
    selector: "Decorator > CallExpression[callee.name='injectable'][arguments.length>0]",
    message: "DESIGN.md: no @injectable({ token }) — it registers globally; register tokens in the machine's child container.",
  },
  {
    selector:
      "ClassDeclaration:has(Decorator > CallExpression[callee.name='injectable']) MethodDefinition[kind='constructor'] > FunctionExpression > :matches(Identifier, TSParameterProperty)[decorators.length=0]",
    message: "DESIGN.md: every injected constructor parameter carries an explicit @inject(Token) (no decorator metadata).",
  },
  {
    selector: "MemberExpression[object.name='container'][property.name=/^(register|registerSingleton|registerInstance|resolve)$/]",
    message: "DESIGN.md: never touch tsyringe's global container; use the machine's child container.",
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
    // Composition roots and tests may resolve from a container; library code may not.
    files: ["packages/**/src/**/*.ts", "plugins/**/src/**/*.ts"],
    ignores: ["**/*.test.ts", "packages/machine/src/create-machine.ts"],
    rules: {
      "no-restricted-syntax": [
        "error",
        ...DI_RULES,
        {
          selector: "CallExpression[callee.property.name=/^(resolve|resolveAll)$/][callee.object.name=/[cC]ontainer$/]",
          message: "DESIGN.md: only composition roots (createMachine, apps) and tests resolve from a container.",
        },
      ],
    },
  },
);
