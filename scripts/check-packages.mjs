// The packaging check (turbo root task `//#check-packages`, part of `npm test`): what a user gets from the
// registry, tried the way a user would, outside the repository.
//
//  1. pack: `npm pack --workspaces` (each workspace's prepack prunes stale outputs and runs `tsc -b`);
//  2. every tarball: only what users import ships (no tests, benchmarks, test doubles in src/testing or build
//     info; LICENSE equal to the root's; every dist/*.js built from a shipped src/*.ts), every `exports` target
//     and `bin` file is in it, every source map and declaration map resolves inside it, every bare import of the
//     shipped JavaScript is a declared dependency or a node builtin, the manifest has `^` ranges on its siblings
//     (the sibling's version), repository/homepage/bugs/engines/sideEffects/license; then publint (warnings as
//     errors) and @arethetypeswrong/core with attw's `esm-only` profile (the packages are ESM only);
//  3. a project in os.tmpdir(): every tarball installed by path in one `npm install` (third-party packages from
//     npm's cache, --prefer-offline), the @hmmsim scope pointed at a registry on 127.0.0.1 that serves only the
//     tarballs just packed, so nothing @hmmsim comes from the public registry; scripts/consumer-app/main.ts
//     type-checked with `tsc --noEmit` (nodenext, declarations checked) against the installed types, then built
//     and run;
//  4. every package alone: `npm install @hmmsim/<name>` by name from that registry in an empty project, then its
//     entry point imported;
//  5. `npm install -g <the cli tarball>` into a temporary prefix: its 16 @hmmsim dependencies are resolved by name
//     and range from that loopback registry, as they would be from npm once published; the installed
//     `hmmsim run gh200-c2c --json` must print the repository's summary (apart from the spec file's path and the
//     plugin versions), and `hmmsim selftest --filter migrate` must pass.
//
//   node scripts/check-packages.mjs           # exits 1 on any problem; --keep keeps the temporary folder
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, posix, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(fileURLToPath(new URL(".", import.meta.url)), "..");
/** attw's `esm-only` profile: CommonJS resolution modes are not checked (the packages are ESM only, `type: module`). */
const ATTW_IGNORED_RESOLUTIONS = ["node10", "node16-cjs"];
const NODE_RANGE = ">=20.19";
const SELFTEST_FILTER = "migrate";

// ---------------------------------------------------------------------------------------------------------------
// Pure checks (exported for scripts/check-packages.test.mjs)

/** Files no tarball may ship: tests, benchmarks, test doubles (src/testing, dist/testing), TypeScript build info. */
export function forbiddenFile(path) {
  if (/\.(test|bench)\.[^/]+$/.test(path)) return "a test or benchmark";
  if (/^(src|dist)\/testing\//.test(path)) return "a test double (src/testing is for the package's own tests)";
  if (/\.tsbuildinfo$/.test(path)) return "TypeScript build info";
  return null;
}

/** Every file path an `exports` value names (all conditions, all subpaths). */
export function exportTargets(exports) {
  if (typeof exports === "string") return [exports];
  if (exports === null || typeof exports !== "object") return [];
  return Object.values(exports).flatMap(exportTargets);
}

/** The package an import specifier names ("@a/b/c" → "@a/b", "x/y" → "x"), or null for relative and node: imports. */
export function packageOf(spec) {
  if (spec.startsWith(".") || spec.startsWith("/") || spec.startsWith("node:") || spec.startsWith("#")) return null;
  const parts = spec.split("/");
  return spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

const IMPORT = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g;

/** The bare module specifiers a JavaScript file imports. */
export function importsOf(text) {
  return [...text.matchAll(IMPORT)].map((m) => m[1] ?? m[2]);
}

/**
 * Problems with a packed package: `files` maps each path in the tarball (relative to package/) to its text (or
 * null for files not read), `pkg` is its package.json, `siblings` maps every workspace name to its version,
 * `license` is the root LICENSE text and `rel` the workspace folder.
 */
export function tarballProblems({ files, pkg, siblings, license, rel }) {
  const problems = [];
  const has = (p) => files.has(posix.normalize(p).replace(/^\.\//, ""));
  for (const f of files.keys()) {
    const why = forbiddenFile(f);
    if (why) problems.push(`ships ${f}: ${why}`);
    const m = /^dist\/(.+)\.(d\.ts\.map|d\.ts|js\.map|js)$/.exec(f);
    if (m && !has(`src/${m[1]}.ts`)) problems.push(`ships ${f} but not its source src/${m[1]}.ts (a stale output, or src not shipped)`);
  }
  if (!has("LICENSE")) problems.push("has no LICENSE");
  else if (files.get("LICENSE") !== license) problems.push("LICENSE differs from the repository's LICENSE");
  if (!has("README.md")) problems.push("has no README.md");

  // The manifest.
  if (pkg.private) problems.push('package.json: "private" (it would not publish)');
  if (pkg.license !== "MIT") problems.push(`package.json: license ${JSON.stringify(pkg.license)}, expected "MIT"`);
  if (pkg.type !== "module") problems.push('package.json: type is not "module"');
  if (pkg.engines?.node !== NODE_RANGE) problems.push(`package.json: engines.node ${JSON.stringify(pkg.engines?.node)}, expected "${NODE_RANGE}"`);
  if (pkg.repository?.directory !== rel || !/^git\+https:\/\//.test(pkg.repository?.url ?? "")) problems.push(`package.json: repository must be { url: "git+https://…", directory: "${rel}" }`);
  if (typeof pkg.homepage !== "string" || typeof pkg.bugs?.url !== "string") problems.push("package.json: homepage and bugs.url are required");
  if (typeof pkg.sideEffects !== "boolean" && !Array.isArray(pkg.sideEffects)) problems.push("package.json: sideEffects is not declared");
  if (!pkg.exports) problems.push("package.json: no exports");
  for (const field of ["dependencies", "peerDependencies", "optionalDependencies"]) {
    for (const [name, range] of Object.entries(pkg[field] ?? {})) {
      if (range === "*" || range === "" || range === "latest") problems.push(`package.json: ${field}.${name} is ${JSON.stringify(range)}; use a ^ range`);
      if (name in siblings && range !== `^${siblings[name]}`) problems.push(`package.json: ${field}.${name} is ${JSON.stringify(range)}, expected "^${siblings[name]}" (the workspace's version)`);
    }
  }
  for (const target of exportTargets(pkg.exports)) if (!has(target)) problems.push(`package.json: exports names ${target}, which the tarball does not ship`);
  for (const [name, target] of Object.entries(typeof pkg.bin === "string" ? { [pkg.name]: pkg.bin } : (pkg.bin ?? {}))) {
    if (!has(target)) problems.push(`package.json: bin ${name} is ${target}, which the tarball does not ship`);
    else if (!files.get(posix.normalize(target))?.startsWith("#!/usr/bin/env node")) problems.push(`bin ${target} does not start with "#!/usr/bin/env node"`);
  }

  // Source maps and declaration maps resolve inside the tarball.
  for (const [f, text] of files) {
    if (!f.endsWith(".map") || text === null) continue;
    const map = JSON.parse(text);
    for (const s of map.sources ?? []) {
      const target = posix.normalize(posix.join(posix.dirname(f), map.sourceRoot ?? "", s));
      if (!has(target)) problems.push(`${f}: source ${s} (${target}) is not in the tarball`);
    }
  }

  // Shipped JavaScript imports only declared dependencies and node builtins.
  const declared = new Set([pkg.name, ...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {})]);
  for (const [f, text] of files) {
    if (!/\.(m?js)$/.test(f) || text === null) continue;
    for (const spec of importsOf(text)) {
      const name = packageOf(spec);
      if (name === null || builtinModules.includes(name) || declared.has(name)) continue;
      problems.push(`${f}: imports ${spec}, which package.json does not declare in dependencies or peerDependencies`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// Running it

/** The environment for npm in the temporary project: none of the npm_* variables of the `npm test` running us. */
function cleanEnv(extra = {}) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== "INIT_CWD"));
  return { ...env, ...extra };
}

/**
 * Runs a command to its end and resolves to its stdout; rejects with its last lines of output when it fails or
 * takes longer than 5 minutes. Asynchronous: the loopback registry answers from this process meanwhile.
 */
function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGTERM"), 5 * 60_000);
    child.on("error", (e) => (clearTimeout(timer), reject(e)));
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve(stdout);
      const out = `${stdout}${stderr}`.trim().split("\n").slice(-40).join("\n");
      reject(new Error(`${[cmd, ...args].join(" ")} (in ${opts.cwd ?? process.cwd()}) exited ${code ?? signal}:\n${out}`));
    });
  });
}

/** The public workspaces: { name, version, rel, dir }. */
function publicWorkspaces() {
  const rootPkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const out = [];
  for (const pattern of rootPkg.workspaces) {
    let dirs = [ROOT];
    for (const part of pattern.split("/")) {
      dirs = dirs.flatMap((d) => (part === "*" ? (existsSync(d) ? readdirSync(d).map((e) => join(d, e)).filter((p) => statSync(p).isDirectory()) : []) : [join(d, part)]));
    }
    for (const dir of dirs) {
      if (!existsSync(join(dir, "package.json"))) continue;
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
      out.push({ name: pkg.name, version: pkg.version, private: pkg.private === true, rel: relative(ROOT, dir).split(sep).join("/"), dir });
    }
  }
  return out;
}

/** Every file of an unpacked package folder: path → text (null for files over 2 MiB). */
function readTree(dir) {
  const files = new Map();
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else files.set(relative(dir, p).split(sep).join("/"), statSync(p).size > 2 * 1024 * 1024 ? null : readFileSync(p, "utf8"));
    }
  };
  walk(dir);
  return files;
}

export async function publintProblems(tarball) {
  const { publint } = await import("publint");
  const { formatMessage } = await import("publint/utils");
  const data = readFileSync(tarball);
  const { messages, pkg } = await publint({ pack: { tarball: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) }, strict: true });
  return messages.map((m) => `publint ${m.type} ${m.code}: ${formatMessage(m, pkg, { color: false }) ?? ""}`);
}

export async function attwProblems(tarball) {
  const attw = await import("@arethetypeswrong/core");
  const analysis = await attw.checkPackage(attw.createPackageFromTarballData(new Uint8Array(readFileSync(tarball))));
  if (!analysis.types) return ["attw: the package ships no types"];
  return analysis.problems
    .filter((p) => !("resolutionKind" in p) || !ATTW_IGNORED_RESOLUTIONS.includes(p.resolutionKind))
    .map((p) => `attw ${p.kind}: ${JSON.stringify(p)} (reproduce: npx attw --pack <dir> --profile esm-only)`);
}

/** An npm registry on 127.0.0.1 serving the packed tarballs (packuments and tarballs), and nothing else. */
async function startRegistry(packages) {
  const byName = new Map();
  const tarballs = new Map();
  const served = [];
  const server = createServer((req, res) => {
    const url = decodeURIComponent(req.url ?? "/").slice(pathPrefix.length);
    served.push(url);
    const tgz = tarballs.get(url);
    if (tgz) {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      return res.end(readFileSync(tgz));
    }
    const doc = byName.get(url.slice(1));
    if (!doc) {
      res.writeHead(404, { "content-type": "application/json" });
      return res.end(JSON.stringify({ error: "not found" }));
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(doc));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  // A path unique to this run: npm caches packuments by URL, and a later run on the same port must not be
  // answered from this run's (--prefer-offline) with tarballs built from other sources.
  const base = `http://127.0.0.1:${server.address().port}/${randomBytes(8).toString("hex")}`;
  const pathPrefix = new URL(base).pathname;
  for (const p of packages) {
    const data = readFileSync(p.tarball);
    const path = `/${p.pkg.name}/-/${p.tarball.split(sep).pop()}`;
    tarballs.set(path, p.tarball);
    const dist = {
      tarball: `${base}${path}`,
      integrity: `sha512-${createHash("sha512").update(data).digest("base64")}`,
      shasum: createHash("sha1").update(data).digest("hex"),
    };
    byName.set(p.pkg.name, {
      name: p.pkg.name,
      "dist-tags": { latest: p.pkg.version },
      versions: { [p.pkg.version]: { ...p.pkg, _id: `${p.pkg.name}@${p.pkg.version}`, dist } },
    });
  }
  return { url: `${base}/`, served, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** A run summary without what legitimately differs between the repository and an install: the spec's path, plugin versions. */
function comparable(summaryJson) {
  const s = JSON.parse(summaryJson);
  delete s.machine.specFile;
  s.plugins = (s.plugins ?? []).map(({ version: _version, ...rest }) => rest);
  return s;
}

function firstDifference(a, b, path = "$") {
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return Object.is(a, b) ? null : `${path}: ${JSON.stringify(a)} ≠ ${JSON.stringify(b)}`;
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const d = firstDifference(a[k], b[k], `${path}.${k}`);
    if (d) return d;
  }
  return null;
}

async function main() {
  const keep = process.argv.includes("--keep");
  const started = Date.now();
  const timings = [];
  const step = async (name, fn) => {
    const t0 = Date.now();
    const r = await fn();
    timings.push(`${name} ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return r;
  };
  const work = mkdtempSync(join(tmpdir(), "hmmsim-packages-"));
  const problems = [];
  let registry;
  try {
    const workspaces = publicWorkspaces().filter((w) => !w.private);
    const siblings = Object.fromEntries(publicWorkspaces().map((w) => [w.name, w.version]));
    const license = readFileSync(join(ROOT, "LICENSE"), "utf8");

    // 1. pack
    const tarDir = join(work, "tarballs");
    mkdirSync(tarDir);
    const packed = await step("pack", async () => {
      const out = await run("npm", ["pack", "--workspaces", "--pack-destination", tarDir, "--json"], { cwd: ROOT, env: cleanEnv({ npm_config_loglevel: "warn" }) });
      return JSON.parse(out.slice(out.search(/^\[/m)));
    });
    if (packed.length !== workspaces.length) problems.push(`npm pack packed ${packed.length} packages, expected the ${workspaces.length} public workspaces`);

    // 2. every tarball
    const packages = [];
    await step("lint tarballs", async () => {
      for (const w of workspaces) {
        const entry = packed.find((p) => p.name === w.name);
        if (!entry) {
          problems.push(`${w.name}: not packed`);
          continue;
        }
        const tarball = join(tarDir, entry.filename);
        const unpacked = join(work, "unpacked", entry.filename.replace(/\.tgz$/, ""));
        mkdirSync(unpacked, { recursive: true });
        await run("tar", ["-xzf", tarball, "-C", unpacked]);
        const files = readTree(join(unpacked, "package"));
        const pkg = JSON.parse(files.get("package.json"));
        packages.push({ ...w, tarball, pkg });
        const found = [...tarballProblems({ files, pkg, siblings, license, rel: w.rel }), ...(await publintProblems(tarball)), ...(await attwProblems(tarball))];
        problems.push(...found.map((p) => `${w.name}: ${p}`));
      }
    });
    if (problems.length > 0) throw new Error("the tarballs have problems");

    // 3. a user's project outside the repository
    registry = await startRegistry(packages);
    const npmInstallFlags = ["--prefer-offline", "--no-audit", "--no-fund", "--fetch-retries=0", `--@hmmsim:registry=${registry.url}`];
    const app = join(work, "app");
    mkdirSync(app);
    for (const f of ["main.ts", "tsconfig.json"]) copyFileSync(join(ROOT, "scripts", "consumer-app", f), join(app, f));
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "hmmsim-consumer-app", private: true, type: "module" }, null, 2));
    const rootLock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8"));
    const lockedVersion = (name) => rootLock.packages[`node_modules/${name}`].version;
    await step("install (project)", () =>
      run("npm", ["install", ...npmInstallFlags, ...packages.map((p) => p.tarball), `reflect-metadata@${lockedVersion("reflect-metadata")}`, `@types/node@${lockedVersion("@types/node")}`], { cwd: app, env: cleanEnv() }),
    );
    const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
    await step("tsc --noEmit", () => run(process.execPath, [tsc, "--noEmit", "-p", "tsconfig.json"], { cwd: app }));
    const appOut = await step("build + run app", async () => {
      await run(process.execPath, [tsc, "-p", "tsconfig.json", "--noEmit", "false"], { cwd: app });
      return run(process.execPath, [join(app, "out", "main.js")], { cwd: app });
    });
    if (!/consumer-app: ok/.test(appOut)) problems.push(`the consumer app did not finish:\n${appOut}`);

    // 4. every package alone, by name from the loopback registry, in a project of its own: it installs with its
    //    @hmmsim dependencies and its entry point imports (after reflect-metadata, as an app does)
    await step("each package alone", async () => {
      const queue = [...packages];
      const worker = async () => {
        for (let p = queue.shift(); p; p = queue.shift()) {
          const dir = join(work, "alone", p.name.replace("/", "+"));
          mkdirSync(dir, { recursive: true });
          writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "alone", private: true, type: "module" }));
          try {
            await run("npm", ["install", ...npmInstallFlags, `${p.name}@${p.pkg.version}`, `reflect-metadata@${lockedVersion("reflect-metadata")}`], { cwd: dir, env: cleanEnv() });
            const probe = `import "reflect-metadata"; const m = await import(${JSON.stringify(p.name)}); if (Object.keys(m).length === 0) throw new Error("no exports");`;
            await run(process.execPath, ["--input-type=module", "-e", probe], { cwd: dir });
          } catch (e) {
            problems.push(`${p.name} alone: ${e instanceof Error ? e.message : String(e)}`);
          }
        }
      };
      await Promise.all([worker(), worker()]);
    });

    // 5. the command, installed globally from its tarball
    const prefix = join(work, "global");
    await step("install -g cli", () => run("npm", ["install", "-g", "--prefix", prefix, ...npmInstallFlags, packages.find((p) => p.name === "@hmmsim/cli").tarball], { cwd: work, env: cleanEnv() }));
    const cliDeps = join(prefix, "lib", "node_modules", "@hmmsim", "cli", "node_modules", "@hmmsim");
    const nested = existsSync(cliDeps) ? readdirSync(cliDeps).length : 0;
    if (nested !== packages.length - 1) problems.push(`npm install -g of the cli tarball installed ${nested} @hmmsim dependencies, expected ${packages.length - 1}`);
    const hmmsim = join(prefix, "bin", "hmmsim");
    const [installed, repo] = await step("hmmsim run gh200-c2c --json (installed, repo)", () =>
      Promise.all([
        run(hmmsim, ["run", "gh200-c2c", "--json"], { cwd: work }),
        run(process.execPath, [join(ROOT, "apps", "cli", "bin", "hmmsim.js"), "run", "gh200-c2c", "--json"], { cwd: ROOT }),
      ]),
    );
    const diff = firstDifference(comparable(installed), comparable(repo));
    if (diff) problems.push(`the installed hmmsim's summary differs from the repository's at ${diff}`);
    if (!JSON.parse(installed).machine.specFile.startsWith(prefix)) problems.push("the installed hmmsim did not read the preset it installed");
    const tap = await step(`hmmsim selftest --filter ${SELFTEST_FILTER}`, () => run(hmmsim, ["selftest", "--filter", SELFTEST_FILTER], { cwd: work }));
    const totals = /# Totals: pass:(\d+) fail:(\d+)/.exec(tap);
    if (!totals || Number(totals[1]) === 0 || Number(totals[2]) !== 0) problems.push(`the installed hmmsim selftest did not pass:\n${tap.split("\n").slice(-5).join("\n")}`);

    if (problems.length === 0) {
      console.log(
        `check-packages: ok — ${packages.length} packages packed, linted (contents, manifest, maps, imports, publint, attw esm-only), ` +
          `installed together in a project in ${tmpdir()} (tsc --noEmit and the app ran), @hmmsim/cli installed -g with its ${nested} @hmmsim dependencies from the ` +
          `loopback registry, each package installed and imported alone; hmmsim run gh200-c2c --json matches the repository; selftest ${totals[1]} passed\n` +
          `  ${timings.join(", ")}; total ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    }
  } catch (e) {
    if (problems.length === 0 || e.message !== "the tarballs have problems") problems.push(e instanceof Error ? e.message : String(e));
  } finally {
    await registry?.close();
    if (!keep) rmSync(work, { recursive: true, force: true });
    else console.log(`check-packages: kept ${work}`);
  }
  if (problems.length > 0) {
    console.error(`check-packages: ${problems.length} problem${problems.length === 1 ? "" : "s"}\n  ${problems.join("\n  ")}`);
    process.exit(1);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
