// Run by every workspace's `prepack` (before `tsc -b`): deletes the files in ./dist whose source is gone, so a
// tarball never ships the output of a file that was renamed, moved or deleted since the last build (tsc -b does
// not remove stale outputs). Only orphans are deleted: outputs of existing sources stay, so a concurrent reader of
// dist (another workspace's type-check) never sees a file disappear that it needs.
//
//   node ../../scripts/prune-dist.mjs     # in a workspace; prints what it deleted
import { existsSync, readdirSync, rmSync, rmdirSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const OUTPUT = /\.(d\.ts\.map|d\.ts|js\.map|js)$/;

/** The source file `dist/<path>` was compiled from (`src/<path>.ts`), or null for a file tsc does not emit from a source. */
export function sourceOf(distRelative) {
  return OUTPUT.test(distRelative) ? distRelative.replace(OUTPUT, ".ts") : null;
}

/** Deletes the orphaned outputs under `pkgDir`/dist (and folders left empty); returns their paths relative to pkgDir. */
export function pruneDist(pkgDir) {
  const dist = join(pkgDir, "dist");
  const removed = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        walk(p);
        if (readdirSync(p).length === 0) rmdirSync(p);
        continue;
      }
      const src = sourceOf(relative(dist, p));
      if (src !== null && !existsSync(join(pkgDir, "src", src))) {
        rmSync(p);
        removed.push(relative(pkgDir, p));
      }
    }
  };
  if (existsSync(dist)) walk(dist);
  return removed;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const removed = pruneDist(process.cwd());
  if (removed.length > 0) console.error(`prune-dist: removed ${removed.length} stale output(s): ${removed.join(", ")}`);
}
