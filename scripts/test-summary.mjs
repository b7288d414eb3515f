// Sums the vitest JSON reports every workspace's `test` task writes (.vitest-report.json) and prints the
// closing line CI reads: "N passed, N failed". Exits 1 when a report is missing or a test failed.
import fs from "node:fs";
import path from "node:path";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
let passed = 0, failed = 0, skipped = 0, missing = [];
for (const pattern of pkg.workspaces) {
  const parts = pattern.split("/");
  let dirs = [root];
  for (const part of parts) {
    dirs = dirs.flatMap((d) =>
      part === "*"
        ? fs.readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(d, e.name))
        : [path.join(d, part)],
    );
  }
  for (const dir of dirs) {
    if (!fs.existsSync(path.join(dir, "package.json"))) continue;
    const report = path.join(dir, ".vitest-report.json");
    if (!fs.existsSync(report)) { missing.push(path.relative(root, dir)); continue; }
    const r = JSON.parse(fs.readFileSync(report, "utf8"));
    passed += r.numPassedTests;
    failed += r.numFailedTests;
    skipped += r.numPendingTests + (r.numTodoTests ?? 0);
  }
}
if (missing.length) console.log(`no test report from: ${missing.join(", ")}`);
console.log(`vitest: ${passed} passed, ${failed + missing.length} failed, ${skipped} skipped`);
process.exit(failed || missing.length ? 1 : 0);
