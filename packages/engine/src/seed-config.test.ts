import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkExplore, derivedSeed, exploreConfig, exploreFailure, gitHead, propertyConfig, propertyParameters, replayCommand, withPropertyReport, type SoakRecord } from "./seed-config.js";

const HEAD = "617a4a4c1d2e3f405162738495a6b7c8d9e0f1a2";
const DAY = new Date("2026-02-03T12:00:00Z");

describe("propertyConfig", () => {
  it("defaults: 2000 runs (or the test's own count), the seed from the commit, no path", () => {
    const c = propertyConfig({}, { head: HEAD });
    expect(c).toEqual({ numRuns: 2000, seed: derivedSeed(HEAD).seed, seedSource: "commit 617a4a4c1d2e", path: undefined, timeoutMs: 300_000 });
    expect(Number.isInteger(c.seed) && c.seed >= -(2 ** 31) && c.seed < 2 ** 31).toBe(true);
    expect(propertyConfig({}, { head: HEAD, defaultRuns: 200 }).numRuns).toBe(200);
    // another commit, another seed; the same commit, the same seed
    expect(derivedSeed(HEAD.replace("6", "7")).seed).not.toBe(c.seed);
    expect(propertyConfig({}, { head: HEAD }).seed).toBe(c.seed);
  });

  it("without git the seed comes from the UTC date", () => {
    const c = propertyConfig({}, { head: null, today: DAY });
    expect(c.seedSource).toBe("date 2026-02-03 (no git)");
    expect(c.seed).toBe(derivedSeed(null, DAY).seed);
    expect(derivedSeed(null, new Date("2026-02-04T00:00:00Z")).seed).not.toBe(c.seed);
    expect(gitHead(mkdtempSync(join(tmpdir(), "hmmsim-nogit-")))).toBeNull();
  });

  it("in this repository the default seed is the commit's", () => {
    const head = gitHead();
    if (head === null) return; // an unpacked tarball: nothing to compare
    expect(propertyConfig({}).seedSource).toBe(`commit ${head.slice(0, 12)}`);
  });

  it("reads runs, seed and path; 'random' draws a seed and names it", () => {
    expect(propertyConfig({ HMMSIM_PROPERTY_RUNS: "50", HMMSIM_PROPERTY_SEED: "-1371124346" })).toEqual({
      numRuns: 50,
      seed: -1371124346,
      seedSource: "HMMSIM_PROPERTY_SEED",
      path: undefined,
      timeoutMs: 60_000,
    });
    expect(propertyConfig({ HMMSIM_PROPERTY_SEED: "4294967295" }).seed).toBe(-1); // the same 32 bits, as fast-check prints them
    const r = propertyConfig({ HMMSIM_PROPERTY_SEED: "random" });
    expect(r.seedSource).toBe("random");
    expect(Number.isInteger(r.seed)).toBe(true);
    const p = propertyConfig({ HMMSIM_PROPERTY_SEED: "2", HMMSIM_PROPERTY_PATH: "662:0:0:4" });
    expect(propertyParameters(p)).toEqual({ numRuns: 2000, seed: 2, path: "662:0:0:4" });
    expect(propertyParameters(propertyConfig({ HMMSIM_PROPERTY_SEED: "2" }))).toEqual({ numRuns: 2000, seed: 2 });
  });

  it("rejects bad values naming the variable", () => {
    expect(() => propertyConfig({ HMMSIM_PROPERTY_RUNS: "lots" })).toThrowError('HMMSIM_PROPERTY_RUNS: expected a whole number >= 1, got "lots"');
    expect(() => propertyConfig({ HMMSIM_PROPERTY_RUNS: "0" })).toThrowError(/HMMSIM_PROPERTY_RUNS/);
    expect(() => propertyConfig({ HMMSIM_PROPERTY_RUNS: "" })).toThrowError(/HMMSIM_PROPERTY_RUNS/);
    expect(() => propertyConfig({ HMMSIM_PROPERTY_SEED: "1.5" })).toThrowError('HMMSIM_PROPERTY_SEED: expected a 32-bit integer or "random", got "1.5"');
    expect(() => propertyConfig({ HMMSIM_PROPERTY_SEED: "" })).toThrowError(/HMMSIM_PROPERTY_SEED/);
    expect(() => propertyConfig({ HMMSIM_PROPERTY_PATH: "1:x" })).toThrowError(/HMMSIM_PROPERTY_PATH: expected fast-check's counterexample path/);
  });
});

describe("exploreConfig", () => {
  it("the test's runs and seed unless HMMSIM_EXPLORE_RUNS / HMMSIM_EXPLORE_SEED say otherwise", () => {
    expect(exploreConfig({ runs: 600, seed: 4 }, {})).toEqual({ runs: 600, seed: 4, seedSource: "the test's seed" });
    expect(exploreConfig({ runs: 600, seed: 4 }, { HMMSIM_EXPLORE_RUNS: "10000", HMMSIM_EXPLORE_SEED: "99" })).toEqual({ runs: 10_000, seed: 99, seedSource: "HMMSIM_EXPLORE_SEED" });
    expect(() => exploreConfig({ runs: 1, seed: 1 }, { HMMSIM_EXPLORE_RUNS: "1e9x" })).toThrowError(/HMMSIM_EXPLORE_RUNS: expected a whole number >= 1/);
    expect(() => exploreConfig({ runs: 1, seed: 1 }, { HMMSIM_EXPLORE_SEED: "-3" })).toThrowError('HMMSIM_EXPLORE_SEED: expected an integer >= 0, got "-3"');
  });
});

describe("failure reports", () => {
  it("replayCommand: cd into the package (relative to the workspace root), the variables, the file and the test name", () => {
    const root = mkdtempSync(join(tmpdir(), "hmmsim-root-"));
    writeFileSync(join(root, "package.json"), JSON.stringify({ workspaces: ["packages/*"] }));
    mkdirSync(join(root, "packages/migrate/src"), { recursive: true });
    writeFileSync(join(root, "packages/migrate/package.json"), "{}");
    const file = join(root, "packages/migrate/src/migrate-property.test.ts");
    expect(replayCommand({ file, test: "random sequences" }, { HMMSIM_PROPERTY_SEED: -5, HMMSIM_PROPERTY_PATH: "1:2" })).toBe(
      "cd packages/migrate && HMMSIM_PROPERTY_SEED=-5 HMMSIM_PROPERTY_PATH=1:2 npx vitest run src/migrate-property.test.ts -t 'random sequences'",
    );
    expect(replayCommand({ file: import.meta.url }, { X: 1 })).toBe("cd packages/engine && X=1 npx vitest run src/seed-config.test.ts");
    // -t takes a regular expression: a name is matched literally, a filter as written
    expect(replayCommand({ file, test: "pops in (time, ord) order" }, {})).toBe("cd packages/migrate && npx vitest run src/migrate-property.test.ts -t 'pops in \\(time, ord\\) order'");
    expect(replayCommand({ file, test: "keeps (pct)", filter: "keeps under \\d+ \\(pct\\)" }, {})).toBe("cd packages/migrate && npx vitest run src/migrate-property.test.ts -t 'keeps under \\d+ \\(pct\\)'");
  });

  it("a failing property names its seed, where the seed came from, the path, the figures and the replay command", () => {
    const cfg = propertyConfig({}, { head: HEAD, defaultRuns: 100 });
    let err: Error | undefined;
    try {
      withPropertyReport(cfg, { file: import.meta.url, test: "x" }, () =>
        fc.assert(
          fc.property(fc.nat(), (n) => {
            if (n > 20) throw Object.assign(new Error(`model: ${n} is too big`), { violations: 2, bytesLost: 7 });
          }),
          propertyParameters(cfg),
        ),
      );
    } catch (e) {
      err = e as Error;
    }
    expect(err).toBeDefined();
    const [head, replay] = err!.message.split("\n");
    expect(head).toMatch(new RegExp(`^property failed with seed ${cfg.seed} \\(from commit 617a4a4c1d2e\\), counterexample path "[\\d:]+" after \\d+ sequence\\(s\\): 2 invariant violation\\(s\\), 7 byte\\(s\\) differ from the model$`));
    expect(replay).toMatch(new RegExp(`^replay: cd packages/engine && HMMSIM_PROPERTY_SEED=${cfg.seed} HMMSIM_PROPERTY_PATH=[\\d:]+ npx vitest run src/seed-config.test.ts -t x$`));
    expect(err!.message).toMatch(/Counterexample: \[21\]/); // fast-check's own report follows, shrunk
    expect((err!.cause as Error).message).toBe("model: 21 is too big");
    expect(err).toMatchObject({ violations: 2, bytesLost: 7 });
    // The printed seed and path replay the shrunk counterexample at once.
    const path = /HMMSIM_PROPERTY_PATH=([\d:]+)/.exec(replay!)![1]!;
    const again = propertyConfig({ HMMSIM_PROPERTY_SEED: String(cfg.seed), HMMSIM_PROPERTY_PATH: path });
    const seen: number[] = [];
    expect(() =>
      fc.assert(
        fc.property(fc.nat(), (n) => {
          seen.push(n);
          if (n > 20) throw new Error("too big");
        }),
        propertyParameters(again),
      ),
    ).toThrow(/^Property failed after 1 tests?\n[^]*Counterexample: \[21\]/);
    expect(seen[0]).toBe(21);
  });

  it("async checks are reported too, and a passing check returns its value", async () => {
    const cfg = propertyConfig({ HMMSIM_PROPERTY_SEED: "7" }, { defaultRuns: 10 });
    await expect(
      withPropertyReport(cfg, { file: "/x/y.test.ts" }, () => fc.assert(fc.asyncProperty(fc.nat(), async (n) => expect(n).toBeLessThan(0)), propertyParameters(cfg))),
    ).rejects.toThrow(/^property failed with seed 7 \(from HMMSIM_PROPERTY_SEED\)/);
    expect(withPropertyReport(cfg, { file: "/x/y.test.ts" }, () => 42)).toBe(42);
  });

  it("exploreFailure: the failing run's seed, replayed as a one-run exploration", () => {
    expect(exploreFailure({ file: import.meta.url, test: "keeps" }, 123, "stale device mapping").message).toBe(
      "explorer run failed with seed 123: stale device mapping\nreplay: cd packages/engine && HMMSIM_EXPLORE_SEED=123 HMMSIM_EXPLORE_RUNS=1 npx vitest run src/seed-config.test.ts -t keeps",
    );
  });

  it("with HMMSIM_SOAK_REPORT set, every property check and explorer verdict is appended as a JSON line", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "hmmsim-soak-")), "records.jsonl");
    const before = process.env.HMMSIM_SOAK_REPORT;
    process.env.HMMSIM_SOAK_REPORT = out;
    try {
      const cfg = propertyConfig({ HMMSIM_PROPERTY_SEED: "5" }, { defaultRuns: 30 });
      withPropertyReport(cfg, { file: import.meta.url, test: "ok" }, () => fc.assert(fc.property(fc.nat(), () => {}), propertyParameters(cfg)));
      await withPropertyReport(cfg, { file: import.meta.url, test: "async ok" }, () => fc.assert(fc.asyncProperty(fc.nat(), async () => {}), propertyParameters(cfg)));
      expect(() =>
        withPropertyReport(cfg, { file: import.meta.url, test: "bad" }, () =>
          fc.assert(
            fc.property(fc.nat(), (n) => {
              if (n > 3) throw Object.assign(new Error("3 bytes lost\nsteps..."), { bytesLost: 3 });
            }),
            propertyParameters(cfg),
          ),
        ),
      ).toThrow(/^property failed with seed 5/);
      checkExplore({ file: import.meta.url, test: "explore ok" }, { seed: 4 }, { ok: true, runs: 100, distinctTraces: 9, failure: null });
      expect(() => checkExplore({ file: import.meta.url, test: "explore bad" }, { seed: 4, seedSource: "HMMSIM_EXPLORE_SEED" }, { ok: false, runs: 7, distinctTraces: 5, failure: { seed: 77, message: "stale device mapping at 0x1000\ntrace..." } })).toThrow(
        /^explorer run failed with seed 77: stale device mapping at 0x1000/,
      );
      const recs = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l) as SoakRecord);
      const base = { package: "packages/engine", file: "src/seed-config.test.ts" };
      expect(recs[0]).toEqual({ ...base, test: "ok", kind: "property", seed: 5, seedSource: "HMMSIM_PROPERTY_SEED", runs: 30, ok: true, violations: 0, bytesLost: 0 });
      expect(recs[1]).toMatchObject({ test: "async ok", ok: true, runs: 30 });
      expect(recs[2]).toMatchObject({ ...base, test: "bad", kind: "property", seed: 5, ok: false, violations: 0, bytesLost: 3, failure: "3 bytes lost" });
      expect(recs[2]!.runs).toBeGreaterThan(0);
      expect(recs[2]!.replay).toMatch(/^cd packages\/engine && HMMSIM_PROPERTY_SEED=5 HMMSIM_PROPERTY_PATH=[\d:]+ npx vitest run src\/seed-config.test.ts -t bad$/);
      expect(recs[3]).toEqual({ ...base, test: "explore ok", kind: "explore", seed: 4, seedSource: "the test's seed", runs: 100, ok: true, violations: 0, bytesLost: 0, distinctTraces: 9 });
      expect(recs[4]).toMatchObject({ test: "explore bad", seed: 4, seedSource: "HMMSIM_EXPLORE_SEED", runs: 7, ok: false, violations: 1, failure: "stale device mapping at 0x1000" });
      expect(recs[4]!.replay).toBe("cd packages/engine && HMMSIM_EXPLORE_SEED=77 HMMSIM_EXPLORE_RUNS=1 npx vitest run src/seed-config.test.ts -t 'explore bad'");
      expect(recs).toHaveLength(5);
    } finally {
      if (before === undefined) delete process.env.HMMSIM_SOAK_REPORT;
      else process.env.HMMSIM_SOAK_REPORT = before;
    }
  });
});
