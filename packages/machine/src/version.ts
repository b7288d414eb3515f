/**
 * The version of a package, read from its package.json (one directory up from both src/ and dist/), so a plugin
 * can report it in run summaries without restating it.
 */
import { readFileSync } from "node:fs";

/** The `version` of the package.json one directory above the module at `moduleUrl` (import.meta.url), or "0.0.0". */
export function packageVersion(moduleUrl: string | URL): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", moduleUrl), "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : "0.0.0";
  } catch {
    return "0.0.0";
  }
}

/** @hmmsim/machine's own version. */
export const MACHINE_VERSION: string = packageVersion(import.meta.url);
