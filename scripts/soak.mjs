// `npm run soak`: every property test of the repository at 10^5 sequences under 10 seeds, and every explorer
// scenario at 10^4 runs, in parallel worker processes; then a summary of sequences, seeds, violations and bytes
// lost, and a replay command for every failure. Exits 1 on any failure. Not part of `npm test`.
//
// The suites are found, not listed: a test file that calls propertyConfig() is a property suite, one that calls
// exploreConfig() an explorer suite (seed-config.test.ts, the settings' own unit test, is neither). Each (suite,
// seed) is one `vitest run <file>` in the suite's package, with the tests' own knobs in its environment:
//
//   HMMSIM_PROPERTY_RUNS   sequences per property test and seed        (soak default 100000; npm test: the test's own)
//   HMMSIM_SOAK_SEEDS      how many seeds (default 10), or a comma-separated list of seeds; the first derived seed is
//                          the commit's (the one npm test uses), the others hash the commit with 1, 2, ...
//   HMMSIM_PROPERTY_SEED   one seed instead (like HMMSIM_SOAK_SEEDS=<seed>)
//   HMMSIM_EXPLORE_RUNS    runs per explorer scenario                  (soak default 10000)
//   HMMSIM_SOAK_JOBS       worker processes (default: the CPU count, at most 2 on this 2-core machine's default)
//   HMMSIM_SOAK_ONLY       a regular expression: only suites whose path matches
//
// Each run appends one JSON line per property check / explorer scenario to the file HMMSIM_SOAK_REPORT names
// (@hmmsim/engine seed-config.ts); the summary is built from those lines and the workers' exit codes. Logs stay in
// the printed directory.
//
//   npm run soak
//   HMMSIM_PROPERTY_RUNS=2000 HMMSIM_SOAK_SEEDS=2 HMMSIM_SOAK_ONLY=migrate npm run soak    # a quick one
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { gitHead, seedHash } from "@hmmsim/engine"; // the compiled engine (npm ci builds it): the seeds npm test derives

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const VITEST = join(root, "node_modules", "vitest", "vitest.mjs");

function wholeNumber(name, fallback) {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name}: expected a whole number >= 1, got ${JSON.stringify(text)}`);
  return n;
}

/** The seeds: HMMSIM_PROPERTY_SEED, or HMMSIM_SOAK_SEEDS (a count or a list), derived from the commit (or the date). */
export function soakSeeds(env, head, today = new Date()) {
  if (env.HMMSIM_PROPERTY_SEED !== undefined && env.HMMSIM_PROPERTY_SEED !== "") return [Number(env.HMMSIM_PROPERTY_SEED) | 0];
  const text = env.HMMSIM_SOAK_SEEDS ?? "10";
  if (text.includes(",")) {
    return text.split(",").map((s) => {
      const n = Number(s.trim());
      if (s.trim() === "" || !Number.isSafeInteger(n) || n < -(2 ** 31) || n >= 2 ** 32) throw new Error(`HMMSIM_SOAK_SEEDS: ${JSON.stringify(s)} is not a 32-bit integer`);
      return n | 0;
    });
  }
  const count = Number(text);
  if (!Number.isSafeInteger(count) || count < 1) throw new Error(`HMMSIM_SOAK_SEEDS: expected a count >= 1 or a list of seeds, got ${JSON.stringify(text)}`);
  const key = head ?? today.toISOString().slice(0, 10);
  return Array.from({ length: count }, (_, k) => seedHash(k === 0 ? key : `${key}/${k}`));
}

function seedSource(env, head) {
  if (env.HMMSIM_PROPERTY_SEED) return "HMMSIM_PROPERTY_SEED";
  if ((env.HMMSIM_SOAK_SEEDS ?? "").includes(",")) return "HMMSIM_SOAK_SEEDS";
  return head ? `derived from commit ${head.slice(0, 12)}; the first is npm test's` : "derived from the date: no git";
}

function walk(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir)) {
    if (e === "node_modules" || e === "dist" || e.startsWith(".")) continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (e.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

/** Every workspace's test files that call propertyConfig() / exploreConfig(). */
export function findSuites(rootDir) {
  const pkg = JSON.parse(readFileSync(join(rootDir, "package.json"), "utf8"));
  const suites = [];
  for (const pattern of pkg.workspaces) {
    let dirs = [rootDir];
    for (const part of pattern.split("/")) {
      dirs = dirs.flatMap((d) => (part === "*" ? (existsSync(d) ? readdirSync(d).map((e) => join(d, e)).filter((p) => statSync(p).isDirectory()) : []) : [join(d, part)]));
    }
    for (const dir of dirs) {
      if (!existsSync(join(dir, "package.json"))) continue;
      for (const file of walk(join(dir, "src"))) {
        if (file.endsWith(`${sep}seed-config.test.ts`)) continue;
        // Calls in code only: a comment that names propertyConfig() does not make a suite.
        const text = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
        const kind = /\bpropertyConfig\(/.test(text) ? "property" : /\bexploreConfig\(/.test(text) ? "explore" : null;
        if (kind) suites.push({ kind, dir, file: relative(dir, file), path: relative(rootDir, file).split(sep).join("/") });
      }
    }
  }
  return suites;
}

function fmtSeconds(ms) {
  const s = ms / 1000;
  return s < 120 ? `${s.toFixed(1)} s` : s < 7200 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(2)} h`;
}

function runJob(job, outDir) {
  return new Promise((resolve) => {
    const started = Date.now();
    const env = { ...process.env, NO_COLOR: "1", HMMSIM_SOAK_REPORT: job.report, HMMSIM_PROPERTY_RUNS: String(job.propertyRuns), HMMSIM_EXPLORE_RUNS: String(job.exploreRuns) };
    delete env.HMMSIM_PROPERTY_PATH;
    if (job.seed === undefined) delete env.HMMSIM_PROPERTY_SEED;
    else env.HMMSIM_PROPERTY_SEED = String(job.seed);
    const child = spawn(process.execPath, [VITEST, "run", job.suite.file, "--reporter=dot"], { cwd: job.suite.dir, env, stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    child.stdout.on("data", (d) => (log += d));
    child.stderr.on("data", (d) => (log += d));
    child.on("close", (code) => {
      writeFileSync(job.log, log);
      resolve({ code: code ?? 1, ms: Date.now() - started, log });
    });
  });
}

async function main() {
  const propertyRuns = wholeNumber("HMMSIM_PROPERTY_RUNS", 100_000);
  const exploreRuns = wholeNumber("HMMSIM_EXPLORE_RUNS", 10_000);
  const jobsMax = wholeNumber("HMMSIM_SOAK_JOBS", Math.max(1, Math.min(2, availableParallelism())));
  const head = gitHead(root);
  const seeds = soakSeeds(process.env, head);
  const only = process.env.HMMSIM_SOAK_ONLY ? new RegExp(process.env.HMMSIM_SOAK_ONLY) : null;
  const suites = findSuites(root).filter((s) => !only || only.test(s.path));
  if (suites.length === 0) throw new Error(`no suite matches HMMSIM_SOAK_ONLY=${process.env.HMMSIM_SOAK_ONLY}`);
  const outDir = mkdtempSync(join(tmpdir(), "hmmsim-soak-"));
  const jobs = [];
  for (const suite of suites) {
    const jobSeeds = suite.kind === "property" ? seeds : [undefined];
    for (const seed of jobSeeds) {
      const n = jobs.length;
      jobs.push({ n, suite, seed, propertyRuns, exploreRuns, report: join(outDir, `job-${n}.jsonl`), log: join(outDir, `job-${n}.log`) });
    }
  }
  console.log(
    `soak: ${suites.filter((s) => s.kind === "property").length} property suites × ${seeds.length} seed(s) at ${propertyRuns} sequences, ` +
      `${suites.filter((s) => s.kind === "explore").length} explorer suites at ${exploreRuns} runs; ${jobs.length} jobs on ${jobsMax} worker(s)\n` +
      `seeds (${seedSource(process.env, head)}): ${seeds.join(", ")}\nlogs and reports: ${outDir}`,
  );
  const started = Date.now();
  const results = new Array(jobs.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const job = jobs[next++];
      const r = await runJob(job, outDir);
      results[job.n] = r;
      done++;
      const recs = existsSync(job.report) ? readFileSync(job.report, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : [];
      const bad = recs.filter((x) => !x.ok).length;
      console.log(
        `[${done}/${jobs.length}] ${job.suite.path}${job.seed === undefined ? "" : ` seed ${job.seed}`}: ${r.code === 0 ? "ok" : `FAILED (exit ${r.code})`}, ` +
          `${recs.reduce((s, x) => s + x.runs, 0)} ${job.suite.kind === "property" ? "sequences" : "runs"} in ${recs.length} check(s)${bad ? `, ${bad} failed` : ""}, ${fmtSeconds(r.ms)}`,
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobsMax, jobs.length) }, worker));
  const wall = Date.now() - started;

  // Summary per check (package, file, test).
  const rows = new Map();
  const failures = [];
  const broken = [];
  for (const job of jobs) {
    const recs = existsSync(job.report) ? readFileSync(job.report, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : [];
    for (const x of recs) {
      const key = `${x.package}/${x.file} › ${x.test}`;
      const row = rows.get(key) ?? { kind: x.kind, seeds: new Set(), runs: 0, failed: 0, violations: 0, bytesLost: 0 };
      row.seeds.add(x.seed);
      row.runs += x.runs;
      row.failed += x.ok ? 0 : 1;
      row.violations += x.violations;
      row.bytesLost += x.bytesLost;
      rows.set(key, row);
      if (!x.ok) failures.push({ key, x });
    }
    const r = results[job.n];
    if (r.code !== 0 && !recs.some((x) => !x.ok)) broken.push({ job, r });
  }
  const total = { property: 0, explore: 0, failed: 0, violations: 0, bytesLost: 0 };
  const sorted = [...rows].sort((a, b) => a[0].localeCompare(b[0]));
  const w = Math.max(5, ...sorted.map(([key]) => key.length));
  const line = (cells) => `${cells[0].padEnd(w)}  ${cells.slice(1).map((c, i) => String(c).padStart([8, 5, 15, 6, 10, 10][i])).join("  ")}`;
  console.log("\n" + line(["check", "kind", "seeds", "sequences/runs", "failed", "violations", "bytes lost"]));
  for (const [key, row] of sorted) {
    total[row.kind] += row.runs;
    total.failed += row.failed;
    total.violations += row.violations;
    total.bytesLost += row.bytesLost;
    console.log(line([key, row.kind, row.seeds.size, row.runs, row.failed, row.violations, row.bytesLost]));
  }
  console.log(
    `\nsoak: ${total.property} property sequences over ${seeds.length} seed(s), ${total.explore} explorer runs; ` +
      `${total.failed} failed check(s), ${total.violations} violation(s), ${total.bytesLost} byte(s) lost; ${broken.length} job(s) failed outside a check; wall ${fmtSeconds(wall)}`,
  );
  for (const { key, x } of failures) console.log(`\nFAILED ${key} (seed ${x.seed}, ${x.seedSource}) after ${x.runs}: ${x.failure}\n  replay: ${x.replay}`);
  for (const { job, r } of broken) {
    const tail = r.log.trim().split("\n").slice(-25).join("\n    ");
    console.log(`\nFAILED ${job.suite.path}${job.seed === undefined ? "" : ` seed ${job.seed}`} (exit ${r.code}; log ${job.log}):\n    ${tail}`);
  }
  process.exitCode = failures.length > 0 || broken.length > 0 ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e) => {
    console.error(`soak: ${e instanceof Error ? e.message : e}`);
    process.exitCode = 2;
  });
}
