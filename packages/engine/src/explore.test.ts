import { describe, expect, it } from "vitest";
import type { Engine } from "./engine.js";
import { DeadlockError } from "./errors.js";
import { explore, replay } from "./explore.js";
import { Mutex } from "./mutex.js";
import { checkExplore, exploreConfig } from "./seed-config.js";

/** Check-then-act across a yield point: two withdrawals of 10 from a balance of 10. */
async function racyBank(engine: Engine): Promise<void> {
  let balance = 10;
  for (const name of ["alice", "bob"]) {
    engine.spawn(name, async () => {
      if (balance >= 10) {
        await engine.yieldPoint("between check and withdraw");
        balance -= 10;
      }
    });
  }
  await engine.run();
  if (balance < 0) throw new Error(`balance went negative: ${balance}`);
}

/** The same with the check and the act under one mutex: correct under every interleaving. */
async function lockedBank(engine: Engine): Promise<void> {
  let balance = 10;
  const m = new Mutex("account", engine);
  for (const name of ["alice", "bob", "carol"]) {
    engine.spawn(name, async () => {
      await m.lock();
      if (balance >= 10) {
        await engine.yieldPoint("between check and withdraw");
        balance -= 10;
      }
      m.unlock();
    });
  }
  await engine.run();
  if (balance < 0) throw new Error(`balance went negative: ${balance}`);
}

describe("explore", () => {
  for (const strategy of ["random", "pct"] as const) {
    it(`finds the check-then-act race (${strategy}) and its seed replays the identical failure and trace`, async () => {
      const opts = { strategy, depth: 2, steps: 4 };
      const res = await explore(racyBank, { runs: 200, seed: 7, ...opts });
      expect(res.ok).toBe(false);
      const f = res.failure!;
      expect(f.kind).toBe("error");
      expect(f.message).toBe("Error: balance went negative: -10");
      expect(f.trace.some((l) => l.includes('yieldPoint "between check and withdraw"'))).toBe(true);
      expect(res.seeds[f.run]).toBe(f.seed);
      expect(res.runs).toBe(f.run + 1); // stops at the first failure
      expect(f.run).toBeGreaterThan(0); // found on a derived seed (runSeed), not just opts.seed
      expect(res.distinctTraces).toBeGreaterThan(f.run > 1 ? 1 : 0);

      const again = await replay(racyBank, f.seed, opts);
      expect(again.failure?.message).toBe(f.message);
      expect(again.failure?.trace).toEqual(f.trace);
      const viaExplore = await explore(racyBank, { runs: 1, seed: f.seed, ...opts });
      expect(viaExplore.failure?.trace).toEqual(f.trace);
    });
  }

  it("pct depth matters: depth 1 (no change point) never preempts the race; depth 2 does", async () => {
    const d1 = await explore(racyBank, { runs: 100, seed: 5, strategy: "pct", depth: 1, steps: 4 });
    expect(d1.ok).toBe(true);
    const d2 = await explore(racyBank, { runs: 100, seed: 5, strategy: "pct", depth: 2, steps: 4 });
    expect(d2.ok).toBe(false);
    expect(d2.failure!.message).toMatch(/balance went negative/);
  });

  it("some schedules of the racy scenario pass: the seed really decides the interleaving", async () => {
    let passed = 0;
    let failed = 0;
    for (let seed = 0; seed < 40; seed++) {
      const r = await replay(racyBank, seed);
      if (r.ok) passed++;
      else failed++;
    }
    expect(passed).toBeGreaterThan(0);
    expect(failed).toBeGreaterThan(0);
  });

  // HMMSIM_EXPLORE_RUNS / HMMSIM_EXPLORE_SEED override the runs and base seed (npm run soak: 10^4 runs).
  const locked = exploreConfig({ runs: 100, seed: 3 });
  it(`a correctly locked scenario passes every run (${locked.runs}) and covers several interleavings`, async () => {
    for (const strategy of ["random", "pct"] as const) {
      const res = await explore(lockedBank, { runs: locked.runs, seed: locked.seed, strategy, depth: 3, steps: 12 });
      checkExplore({ file: import.meta.url, test: `a correctly locked scenario (${strategy})`, filter: "a correctly locked scenario" }, locked, res);
      expect(res.runs).toBe(locked.runs);
      expect(res.distinctTraces).toBeGreaterThan(1);
    }
  }, Math.max(60_000, locked.runs * 10));

  it("reports a deadlock only some schedules reach, with the blocked tasks, and replays it", async () => {
    const scenario = (engine: Engine): void => {
      const a = new Mutex("A", engine);
      const b = new Mutex("B", engine);
      engine.spawn("t1", async () => {
        await a.lock();
        await engine.yieldPoint("t1 holds A");
        await b.lock();
        b.unlock();
        a.unlock();
      });
      engine.spawn("t2", async () => {
        await b.lock();
        await engine.yieldPoint("t2 holds B");
        await a.lock();
        a.unlock();
        b.unlock();
      });
    };
    const res = await explore(scenario, { runs: 100, seed: 11 });
    expect(res.ok).toBe(false);
    const f = res.failure!;
    expect(f.kind).toBe("deadlock");
    expect((f.error as DeadlockError).blocked.map((x) => x.task).sort()).toEqual(["t1", "t2"]);
    expect(f.message).toMatch(/task "t1" waits on mutex "B" \(held by "t2"\)/);
    const again = await replay(scenario, f.seed);
    expect(again.failure?.trace).toEqual(f.trace);
  });

  it("validates its options", async () => {
    await expect(explore(racyBank, { runs: 0, seed: 1 })).rejects.toThrow(/opts.runs = 0/);
    await expect(explore(racyBank, { runs: 1, seed: -1 })).rejects.toThrow(/opts.seed = -1/);
    await expect(explore(racyBank, { runs: 1, seed: 1, strategy: "bfs" as "pct" })).rejects.toThrow('explore opts.strategy = "bfs": must be "random" or "pct"');
    // typed, naming the field and the rule, and thrown before the first run (not reported as that run's failure)
    await expect(explore(racyBank, { runs: 1, seed: -1 })).rejects.toMatchObject({ name: "EngineOptionError", field: "seed", rule: "must be an integer >= 0 (at most 2^53 - 1)" });
    await expect(explore(racyBank, { runs: 1, seed: 1, strategy: "pct", depth: 0 })).rejects.toThrow("explore opts.depth = 0: must be an integer >= 1");
    await expect(explore(racyBank, { runs: 1, seed: 1, livelockBound: -5 })).rejects.toThrow("Engine opts.livelockBound = -5: must be an integer >= 1");
  });
});
