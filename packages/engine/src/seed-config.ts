// Seeds and run counts of hmmsim's randomized tests (fast-check property tests and schedule-explorer scenarios),
// read from the environment, and the report a failure prints so that its seed replays it.
//
// - HMMSIM_PROPERTY_RUNS: sequences per property test (default: the test's own count, 2000 for the model tests).
// - HMMSIM_PROPERTY_SEED: fast-check's seed. Default: derived from the current git commit (`git rev-parse HEAD`),
//   so every commit checks new sequences, and a commit checks the same ones on every machine and every rerun (a red
//   CI is a replayable failure, never a lucky draw). Without git (an unpacked tarball) the seed derives from the UTC
//   date. `random` draws a fresh one.
// - HMMSIM_PROPERTY_PATH: fast-check's counterexample path; with the seed it replays a shrunk failure at once.
// - HMMSIM_EXPLORE_RUNS / HMMSIM_EXPLORE_SEED: runs and base seed of an explorer scenario (default: the test's own,
//   fixed).
// A bad value is an error naming the variable, never a silent default.
//
// A test wraps its fc.assert in `withPropertyReport` (an explorer scenario ends with `checkExplore`): a failure's
// message then starts with the seed, where the seed came from, the counterexample path, and the command that replays
// it. With HMMSIM_SOAK_REPORT set (`npm run soak`), each outcome is also appended to that file as a JSON line.
import { execFileSync } from "node:child_process";
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

export type Env = Record<string, string | undefined>;

export interface PropertyConfig {
  numRuns: number;
  /** fast-check's seed: always set (a `random` seed is drawn here, so the report can name it). */
  seed: number;
  /** Where the seed came from: "HMMSIM_PROPERTY_SEED", "commit 0123456789ab", "date 2026-01-31 (no git)", "random". */
  seedSource: string;
  /** fast-check's counterexample path (HMMSIM_PROPERTY_PATH), or undefined. */
  path: string | undefined;
  /** A vitest timeout that grows with numRuns (the default 60 s is sized for the default run count). */
  timeoutMs: number;
}

/** The seed of a commit or a day: a 32-bit signed integer (fast-check's seed range; it prints them signed). */
export interface DerivedSeed {
  seed: number;
  source: string;
}

/**
 * FNV-1a 32-bit hash of a string, finished by murmur3's fmix32 (so that strings differing in one character, "x/1"
 * and "x/2", give unrelated seeds), as a signed 32-bit integer. scripts/soak.mjs derives its seeds with it.
 */
export function seedHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

/** `git rev-parse HEAD` in the current directory, or null when git or the repository is unavailable. */
export function gitHead(cwd: string = process.cwd()): string | null {
  try {
    const out = execFileSync("git", ["rev-parse", "HEAD"], { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 10_000 }).trim();
    return /^[0-9a-f]{40,64}$/.test(out) ? out : null;
  } catch {
    return null;
  }
}

/**
 * The default seed: a hash of the commit id (`head`, default `git rev-parse HEAD`), or, when there is no commit,
 * of the UTC date (`today`, default now: the host clock is read here only, never by a simulation).
 */
export function derivedSeed(head: string | null = cachedHead(), today: Date = new Date()): DerivedSeed {
  if (head !== null) return { seed: seedHash(head), source: `commit ${head.slice(0, 12)}` };
  const day = today.toISOString().slice(0, 10);
  return { seed: seedHash(day), source: `date ${day} (no git)` };
}

let headCache: string | null | undefined;
function cachedHead(): string | null {
  if (headCache === undefined) headCache = gitHead();
  return headCache;
}

function wholeNumber(env: Env, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined) return fallback;
  const n = Number(text);
  if (text.trim() === "" || !Number.isSafeInteger(n) || n < 1) throw new RangeError(`${name}: expected a whole number >= 1, got ${JSON.stringify(text)}`);
  return n;
}

/**
 * A property test's settings (see the file comment). `defaultRuns` is the test's own sequence count, used unless
 * HMMSIM_PROPERTY_RUNS is set.
 */
export function propertyConfig(
  env: Env = process.env,
  /** defaultRuns: the test's own count; head / today: stand-ins for `git rev-parse HEAD` (null: no git) and the date. */
  opts: { defaultRuns?: number; head?: string | null; today?: Date } = {},
): PropertyConfig {
  const numRuns = wholeNumber(env, "HMMSIM_PROPERTY_RUNS", opts.defaultRuns ?? 2000);
  const seedText = env.HMMSIM_PROPERTY_SEED;
  let seed: number;
  let seedSource: string;
  if (seedText === undefined) {
    const d = derivedSeed("head" in opts ? (opts.head ?? null) : cachedHead(), opts.today ?? new Date());
    seed = d.seed;
    seedSource = d.source;
  } else if (seedText === "random") {
    seed = globalThis.crypto.getRandomValues(new Int32Array(1))[0]!;
    seedSource = "random";
  } else {
    seed = Number(seedText);
    // fast-check seeds are 32-bit integers (it prints negative ones too).
    if (seedText.trim() === "" || !Number.isSafeInteger(seed) || seed < -(2 ** 31) || seed >= 2 ** 32) {
      throw new RangeError(`HMMSIM_PROPERTY_SEED: expected a 32-bit integer or "random", got ${JSON.stringify(seedText)}`);
    }
    seed |= 0;
    seedSource = "HMMSIM_PROPERTY_SEED";
  }
  const path = env.HMMSIM_PROPERTY_PATH;
  if (path !== undefined && !/^\d+(:\d+)*$/.test(path)) {
    throw new RangeError(`HMMSIM_PROPERTY_PATH: expected fast-check's counterexample path (e.g. "662:0:3"), got ${JSON.stringify(path)}`);
  }
  // ~25 ms a run alone on the 2-core dev machine; turbo runs other packages' tests beside it, so allow 6×.
  return { numRuns, seed, seedSource, path, timeoutMs: Math.max(60_000, numRuns * 150) };
}

/** fast-check's parameters for a config: `fc.assert(property, propertyParameters(cfg))`. */
export function propertyParameters(cfg: PropertyConfig): { numRuns: number; seed: number; path?: string } {
  return cfg.path === undefined ? { numRuns: cfg.numRuns, seed: cfg.seed } : { numRuns: cfg.numRuns, seed: cfg.seed, path: cfg.path };
}

export interface ExploreConfig {
  runs: number;
  seed: number;
  /** "HMMSIM_EXPLORE_SEED" or "the test's seed". */
  seedSource: string;
}

/** An explorer scenario's runs and base seed: the test's own unless HMMSIM_EXPLORE_RUNS / HMMSIM_EXPLORE_SEED say otherwise. */
export function exploreConfig(defaults: { runs: number; seed: number }, env: Env = process.env): ExploreConfig {
  const runs = wholeNumber(env, "HMMSIM_EXPLORE_RUNS", defaults.runs);
  const text = env.HMMSIM_EXPLORE_SEED;
  if (text === undefined) return { runs, seed: defaults.seed, seedSource: "the test's seed" };
  const seed = Number(text);
  if (text.trim() === "" || !Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`HMMSIM_EXPLORE_SEED: expected an integer >= 0, got ${JSON.stringify(text)}`);
  return { runs, seed, seedSource: "HMMSIM_EXPLORE_SEED" };
}

/**
 * Where a test lives: its file (`import.meta.url` or a path) and its name, which narrows the replay (vitest -t:
 * the name as a literal, or `filter`, a regular expression, when the name varies, e.g. with a run count).
 */
export interface TestLocation {
  file: string;
  test?: string;
  filter?: string;
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

const shellQuote = (s: string): string => (/^[\w./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** A test file's package directory (relative to the workspace root when there is one) and its path in the package. */
function locate(where: TestLocation): { pkg: string; file: string } {
  const file = where.file.startsWith("file:") ? fileURLToPath(where.file) : where.file;
  let pkg = dirname(file);
  while (!existsSync(join(pkg, "package.json")) && dirname(pkg) !== pkg) pkg = dirname(pkg);
  let root = dirname(pkg);
  while (dirname(root) !== root && !isWorkspaceRoot(root)) root = dirname(root);
  return { pkg: isWorkspaceRoot(root) ? relative(root, pkg) || "." : pkg, file: relative(pkg, file) };
}

/**
 * The shell command that reruns a test with the given environment: `cd <package> && VAR=value npx vitest run
 * <file> -t <name>`, the package directory relative to the repository root (the nearest package.json with
 * `workspaces`) when it can be found.
 */
export function replayCommand(where: TestLocation, vars: Record<string, string | number>): string {
  const at = locate(where);
  const env = Object.entries(vars).map(([k, v]) => `${k}=${shellQuote(String(v))}`);
  const filter = where.filter ?? (where.test === undefined ? undefined : escapeRegExp(where.test));
  const name = filter === undefined ? [] : ["-t", shellQuote(filter)];
  return [`cd ${shellQuote(at.pkg)} &&`, ...env, "npx vitest run", shellQuote(at.file), ...name].join(" ");
}

/**
 * One line of the soak report: with HMMSIM_SOAK_REPORT set (by `npm run soak`), every property check and explorer
 * scenario appends what it ran and found to that file, as a JSON line.
 */
export interface SoakRecord {
  kind: "property" | "explore";
  /** Package directory and test file, as in the replay command. */
  package: string;
  file: string;
  test: string;
  seed: number;
  seedSource: string;
  /** Sequences (property) or runs (explorer) executed. */
  runs: number;
  ok: boolean;
  /** Invariant violations / stale mappings found (0 when ok). */
  violations: number;
  /** Bytes that differed from the model (0 when ok). */
  bytesLost: number;
  /** Explorer: distinct event traces. */
  distinctTraces?: number;
  /** On failure: the first line of the failing step's error, and the command that replays it. */
  failure?: string;
  replay?: string;
}

function soakRecord(where: TestLocation, rec: Omit<SoakRecord, "package" | "file" | "test">, env: Env = process.env): void {
  const out = env.HMMSIM_SOAK_REPORT;
  if (out === undefined || out === "") return;
  const at = locate(where);
  appendFileSync(out, JSON.stringify({ ...rec, package: at.pkg, file: at.file, test: where.test ?? "" } satisfies SoakRecord) + "\n");
}

function isWorkspaceRoot(dir: string): boolean {
  const p = join(dir, "package.json");
  if (!existsSync(p)) return false;
  try {
    return (JSON.parse(readFileSync(p, "utf8")) as { workspaces?: unknown }).workspaces !== undefined;
  } catch {
    return false;
  }
}

/** Numbers a model's failure may carry (on the error or its causes) for the report: what broke, how much. */
interface FailureFigures {
  /** Invariant violations at the failing step. */
  violations?: number;
  /** Bytes that differ from the model at the failing step. */
  bytesLost?: number;
}

function figures(e: unknown): Required<FailureFigures> | null {
  for (let x: unknown = e, depth = 0; typeof x === "object" && x !== null && depth < 8; x = (x as { cause?: unknown }).cause, depth++) {
    const f = x as FailureFigures;
    if (typeof f.violations === "number" || typeof f.bytesLost === "number") return { violations: f.violations ?? 0, bytesLost: f.bytesLost ?? 0 };
  }
  return null;
}

/**
 * The error a failed property test throws: fast-check's message (counterexample, shrinking) after a header with the
 * seed, its source, the counterexample path, the sequences run, and the command that replays the failure; its cause
 * is fast-check's cause (the failing step's error).
 */
export function propertyFailure(cfg: PropertyConfig, where: TestLocation, e: unknown): Error {
  const message = e instanceof Error ? e.message : String(e);
  const seed = Number(/seed: (-?\d+)/.exec(message)?.[1] ?? cfg.seed);
  const path = /path: "([\d:]*)"/.exec(message)?.[1];
  const after = /failed after (\d+) tests?/.exec(message)?.[1];
  const f = figures(e);
  const replay = replayCommand(where, { HMMSIM_PROPERTY_SEED: seed, ...(path ? { HMMSIM_PROPERTY_PATH: path } : {}) });
  const cause = e instanceof Error && e.cause instanceof Error ? e.cause.message : message;
  soakRecord(where, {
    kind: "property",
    seed,
    seedSource: cfg.seedSource,
    runs: after === undefined ? 0 : Number(after),
    ok: false,
    violations: f?.violations ?? 0,
    bytesLost: f?.bytesLost ?? 0,
    failure: cause.split("\n")[0],
    replay,
  });
  const head =
    `property failed with seed ${seed} (${seedNote(cfg, seed)})${path ? `, counterexample path "${path}"` : ""}` +
    `${after ? ` after ${after} sequence(s)` : ""}` +
    (f ? `: ${f.violations} invariant violation(s), ${f.bytesLost} byte(s) differ from the model` : "") +
    `\nreplay: ${replay}\n\n`;
  const err = new Error(head + message, { cause: e instanceof Error && e.cause !== undefined ? e.cause : e });
  if (f) Object.assign(err, f);
  return err;
}

function seedNote(cfg: PropertyConfig, seed: number): string {
  return seed === cfg.seed ? `from ${cfg.seedSource}` : "fast-check's";
}

/**
 * Run a property check (`() => fc.assert(...)`, sync or async): a failure is reported with `propertyFailure`; with
 * HMMSIM_SOAK_REPORT set, the outcome is appended to the soak report.
 */
export function withPropertyReport<T>(cfg: PropertyConfig, where: TestLocation, check: () => T): T {
  const passed = (): void => {
    soakRecord(where, { kind: "property", seed: cfg.seed, seedSource: cfg.seedSource, runs: cfg.path === undefined ? cfg.numRuns : 1, ok: true, violations: 0, bytesLost: 0 });
  };
  let r: T;
  try {
    r = check();
  } catch (e) {
    throw propertyFailure(cfg, where, e);
  }
  if (r instanceof Promise) {
    return r.then(
      (v: unknown) => {
        passed();
        return v;
      },
      (e: unknown) => {
        throw propertyFailure(cfg, where, e);
      },
    ) as T;
  }
  passed();
  return r;
}

/** The message an explorer test throws for a failed run: the seed that replays it, then the command. */
export function exploreFailure(where: TestLocation, failureSeed: number, message: string): Error {
  const replay = replayCommand(where, { HMMSIM_EXPLORE_SEED: failureSeed, HMMSIM_EXPLORE_RUNS: 1 });
  return new Error(`explorer run failed with seed ${failureSeed}: ${message}\nreplay: ${replay}`);
}

/**
 * An explorer scenario's verdict: appended to the soak report (HMMSIM_SOAK_REPORT), and a failure thrown as
 * `exploreFailure` (its seed and the command that replays it). `res` is explore()'s result.
 */
export function checkExplore(
  where: TestLocation,
  cfg: { seed: number; seedSource?: string },
  res: { ok: boolean; runs: number; distinctTraces: number; failure: { seed: number; message: string } | null },
): void {
  const f = res.failure;
  const err = f === null ? null : exploreFailure(where, f.seed, f.message);
  soakRecord(where, {
    kind: "explore",
    seed: cfg.seed,
    seedSource: cfg.seedSource ?? "the test's seed",
    runs: res.runs,
    ok: res.ok,
    violations: res.ok ? 0 : 1,
    bytesLost: 0,
    distinctTraces: res.distinctTraces,
    ...(f === null ? {} : { failure: f.message.split("\n")[0], replay: err!.message.split("\nreplay: ")[1] }),
  });
  if (err !== null) throw err;
}
