#!/usr/bin/env node
// The `hmmsim` command. Runs the compiled CLI (dist/), which `npm ci` builds through the root `prepare` script.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const main = fileURLToPath(new URL("../dist/main.js", import.meta.url));
if (!existsSync(main)) {
  console.error("hmmsim: the CLI is not built yet (apps/cli/dist/main.js is missing). Run `npm run build` at the repository root.");
  process.exit(2);
}
const { main: run } = await import("../dist/main.js");
process.exitCode = await run(process.argv.slice(2));
