// `npm run bench`: runs every workspace's compiled benchmarks (dist/**/*.bench.js, built from src/**/*.bench.ts),
// writes bench-results.json at the root and prints a table.
//
// A bench module's default export is `async () => BenchEntry[]`, where BenchEntry is
//   { name, opsPerSec, unit?, baseline?, ratio?, goal?, pass?, extra? }
// `ratio` compares with a baseline measured in the same run (never a stored number), `goal` says what the
// issue asked for, `pass` whether this run met it.
//
// `npm run bench` at the root is `turbo run bench`: each workspace with benchmarks runs this script with its own
// directory as the first filter (one at a time, so the measurements do not share the CPUs). Every argument is a
// path substring the bench file must contain, so `npm run bench -- drivers/gpu` runs only the GPU driver's.
// bench-results.json keeps the entries of the files not run this time and replaces those that were.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const filters = process.argv.slice(2).filter((a) => a !== "");
function walk(dir, out) {
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) { if (e.name !== "node_modules") walk(p, out); }
    else if (e.name.endsWith(".bench.js")) out.push(p);
  }
  return out;
}
const files = [];
for (const top of ["packages", "plugins", "apps"]) {
  const base = path.join(root, top);
  if (!fs.existsSync(base)) continue;
  const stack = [base];
  while (stack.length) {
    const d = stack.pop();
    if (fs.existsSync(path.join(d, "package.json"))) walk(path.join(d, "dist"), files);
    else for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) stack.push(path.join(d, e.name));
  }
}
files.sort();
const results = [];
for (const f of files) {
  const rel = path.relative(root, f);
  if (!filters.every((f) => rel.includes(f))) continue;
  process.stderr.write(`bench: ${rel}\n`);
  const mod = await import(pathToFileURL(f).href);
  const entries = await mod.default();
  for (const e of entries) results.push({ file: rel, ...e });
}
const fmt = (n) => (n === undefined ? "" : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(2));
const where = filters.join(" ");
if (results.length === 0) {
  console.log(`bench ${where}: no benchmark here matches`);
  process.exit(0);
}
const rows = results.map((r) => [r.name, `${fmt(r.opsPerSec)} ${r.unit ?? "ops/s"}`, r.ratio === undefined ? "" : `${r.ratio.toFixed(2)}× ${r.baseline ?? ""}`, r.goal ?? "", r.pass === undefined ? "" : r.pass ? "met" : "NOT MET"]);
const head = ["benchmark", "rate", "ratio to baseline (same run)", "goal", ""];
const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r) => r.map((c, i) => c.padEnd(w[i])).join("  ").trimEnd();
console.log(line(head));
console.log(w.map((n) => "-".repeat(n)).join("  "));
for (const r of rows) console.log(line(r));
const outFile = path.join(root, "bench-results.json");
let kept = [];
if (fs.existsSync(outFile)) {
  try {
    const ran = new Set(results.map((r) => r.file));
    kept = (JSON.parse(fs.readFileSync(outFile, "utf8")).results ?? []).filter((r) => !ran.has(r.file));
  } catch {
    kept = []; // an unreadable file is replaced
  }
}
const all = [...kept, ...results].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
const out = { date: new Date().toISOString(), node: process.version, results: all };
fs.writeFileSync(outFile, JSON.stringify(out, null, 2) + "\n");
console.log(`\nwrote bench-results.json (${results.length} entries from this run, ${all.length} in all)`);
