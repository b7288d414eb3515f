import { defineConfig } from "vitest/config";

// Shared by every workspace's vitest.config.ts (the @hmmsim/source condition: docs/architecture.md, "Layers").
export default defineConfig({
  // Vite 8 compiles TS with Oxc. Legacy (experimental) decorators for every file; hmmsim does NOT rely on
  // decorator metadata: every injected constructor parameter carries an explicit @inject(Token).
  oxc: { decorator: { legacy: true, emitDecoratorMetadata: false } },
  // Workspace packages resolve to their TypeScript source through the "@hmmsim/source" export condition,
  // so tests need no build. Setting conditions replaces Vite's defaults, so they are re-listed.
  ssr: { resolve: { conditions: ["@hmmsim/source", "module", "node", "development|production"] } },
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    setupFiles: ["reflect-metadata"],
    testTimeout: 60_000,
    passWithNoTests: true,
  },
});
