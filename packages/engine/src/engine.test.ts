import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Completion } from "./completion.js";
import { Engine } from "./engine.js";
import {
  DeadlockError,
  EngineOptionError,
  EngineUsageError,
  ForeignAwaitError,
  LivelockError,
  VirtualTimeError,
} from "./errors.js";
import { explore } from "./explore.js";
import { Mutex } from "./mutex.js";
import { propertyConfig, propertyParameters, withPropertyReport } from "./seed-config.js";
import { MAX_TIME_PS, PS_PER_NS } from "./time.js";
import { WaitQueue } from "./wait-queue.js";

// fast-check: HMMSIM_PROPERTY_RUNS overrides the 200 runs; the seed derives from the commit (seed-config.ts).
const PROPERTY = propertyConfig(process.env, { defaultRuns: 200 });

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a rejection");
}

/** Three tasks that each log their id around several yield points. */
function yieldingScenario(engine: Engine, log: string[]): void {
  for (const name of ["A", "B", "C"]) {
    engine.spawn(name, async () => {
      for (let i = 0; i < 4; i++) {
        log.push(`${name}${i}`);
        await engine.yieldPoint(`step${i}`);
      }
    });
  }
}

describe("Engine: events and virtual time", () => {
  it("runs plain events in time order, FIFO among equal times, and advances now", async () => {
    const e = new Engine();
    const seen: string[] = [];
    e.schedule(30, () => seen.push(`c@${e.now}`));
    e.schedule(10, () => seen.push(`a@${e.now}`));
    e.schedule(10, () => seen.push(`b@${e.now}`));
    e.after(20, () => {
      seen.push(`d@${e.now}`);
      e.after(5, () => seen.push(`e@${e.now}`));
    });
    await e.run();
    expect(seen).toEqual(["a@10", "b@10", "d@20", "e@25", "c@30"]);
    expect(e.now).toBe(30);
    expect(e.pendingEvents).toBe(0);
  });

  it("runUntil(t) runs events at times ≤ t, then sets now = t", async () => {
    const e = new Engine();
    const seen: number[] = [];
    for (const t of [5, 10, 15]) e.schedule(t, () => seen.push(t));
    await e.runUntil(10);
    expect(seen).toEqual([5, 10]);
    expect(e.now).toBe(10);
    await e.runUntil(12);
    expect(e.now).toBe(12);
    await e.run();
    expect(seen).toEqual([5, 10, 15]);
  });

  it("rejects bad times (VirtualTimeError) and non-function callbacks (EngineUsageError), leaving the queue unchanged", async () => {
    const e = new Engine();
    e.schedule(100, () => {});
    await e.runUntil(50);
    expect(() => e.schedule(49, () => {})).toThrow(/at = 49: .*past \(now = 50 ps\)/);
    expect(() => e.schedule(60.5, () => {})).toThrow(VirtualTimeError);
    expect(() => e.after(-1, () => {})).toThrow(/dt = -1: a duration must not be negative/);
    expect(() => e.after(MAX_TIME_PS, () => {})).toThrow(/exceeds Number.MAX_SAFE_INTEGER/);
    expect(() => e.schedule(60, undefined as unknown as () => void)).toThrow(/schedule\(at, fn\): fn = undefined: must be a function/);
    expect(() => e.after(1, 42 as unknown as () => void)).toThrow(EngineUsageError);
    expect(() => e.spawn(7 as unknown as string, async () => {})).toThrow(/spawn\(name, fn\): name = 7: must be a string/);
    expect(() => e.spawn("t", null as unknown as () => void)).toThrow(/spawn\("t", fn\): fn must be a function/);
    expect(e.pendingEvents).toBe(1);
    await expect(e.runUntil(10)).rejects.toThrow(/t = 10: .*past/);
    const task = new Engine();
    task.spawn("sleeper", async () => {
      await task.sleep(0.5);
    });
    const err = await rejection(task.run());
    expect(err).toBeInstanceOf(VirtualTimeError);
    expect(task.failedTask?.name).toBe("sleeper");
  });

  it("validates its options: a typed EngineOptionError naming the field and the rule (issue #15)", () => {
    const bad = (opts: unknown): EngineOptionError => {
      try {
        new Engine(opts as object);
      } catch (e) {
        expect(e).toBeInstanceOf(EngineOptionError);
        expect(e).toBeInstanceOf(EngineUsageError);
        return e as EngineOptionError;
      }
      throw new Error(`new Engine(${JSON.stringify(opts)}) did not throw`);
    };
    const seed = bad({ seed: -1 });
    expect([seed.field, seed.value, seed.rule]).toEqual(["seed", -1, "must be an integer >= 0 (at most 2^53 - 1)"]);
    expect(seed.message).toBe("Engine opts.seed = -1: must be an integer >= 0 (at most 2^53 - 1)");
    for (const s of [1.5, NaN, 2 ** 53, "7"]) expect(bad({ seed: s }).field).toBe("seed");
    expect(bad({ livelockBound: 0 }).message).toBe("Engine opts.livelockBound = 0: must be an integer >= 1");
    expect(bad({ tieBreak: "lifo" }).message).toBe('Engine opts.tieBreak = "lifo": must be "fifo" or "random"');
    expect(bad({ trace: "yes" }).message).toBe('Engine opts.trace = "yes": must be true or false');
    expect(bad({ pct: 3 }).field).toBe("pct");
    expect(bad({ pct: { depth: 0, steps: 4 } }).field).toBe("pct.depth");
    expect(bad({ pct: { depth: 2, steps: -4 } }).message).toBe("Engine opts.pct.steps = -4: must be an integer >= 1");
    expect(() => new Engine(null as unknown as object)).toThrow(/Engine opts = null: must be an object/);
    // the edges that are fine
    expect(new Engine({ seed: 0 }).seed).toBe(0);
    expect(new Engine({ seed: Number.MAX_SAFE_INTEGER }).seed).toBe(Number.MAX_SAFE_INTEGER);
    expect(new Engine({ trace: false, livelockBound: 1, tieBreak: "random", pct: { depth: 1, steps: 1 } }).seed).toBe(0);
  });

  it("propagates the first error of a plain event or a task", async () => {
    const e = new Engine();
    e.schedule(1, () => {
      throw new Error("boom in event");
    });
    await expect(e.run()).rejects.toThrow("boom in event");
    await expect(e.run()).rejects.toThrow(EngineUsageError);

    const t = new Engine();
    t.spawn("ok", async () => {
      await t.sleep(10);
    });
    t.spawn("bad", async () => {
      await t.sleep(5);
      throw new Error("task bad broke");
    });
    await expect(t.run()).rejects.toThrow("task bad broke");
    expect(t.failedTask?.name).toBe("bad");
    expect(t.now).toBe(5);
  });
});

describe("Engine: tasks", () => {
  it("tasks sleep in virtual time and interleave by time", async () => {
    const e = new Engine();
    const log: string[] = [];
    e.spawn("fast", async () => {
      for (let i = 0; i < 3; i++) {
        await e.sleep(10 * PS_PER_NS);
        log.push(`fast@${e.now}`);
      }
    });
    e.spawn("slow", async () => {
      await e.sleep(25 * PS_PER_NS);
      log.push(`slow@${e.now}`);
    });
    await e.run();
    expect(log).toEqual(["fast@10000", "fast@20000", "slow@25000", "fast@30000"]);
    expect(e.liveTasks).toBe(0);
  });

  it("currentTask names the running task, and nested async helpers may await primitives", async () => {
    const e = new Engine();
    const names: (string | null)[] = [];
    const helper = async (): Promise<void> => {
      await e.sleep(3);
      names.push(e.currentTask?.name ?? null);
    };
    e.spawn("outer", async () => {
      names.push(e.currentTask?.name ?? null);
      await helper();
      await helper();
    });
    e.schedule(1, () => names.push(e.currentTask?.name ?? null));
    await e.run();
    expect(names).toEqual(["outer", null, "outer", "outer"]);
    expect(e.now).toBe(6);
  });

  it("Task.join waits for another task to finish", async () => {
    const e = new Engine();
    const log: string[] = [];
    const worker = e.spawn("worker", async () => {
      await e.sleep(100);
      log.push("worker done");
    });
    e.spawn("joiner", async () => {
      await worker.join();
      log.push(`joined at ${e.now}`);
    });
    await e.run();
    expect(log).toEqual(["worker done", "joined at 100"]);
    expect(worker.state).toBe("done");
  });

  it("sleep/yieldPoint outside a task, and two blocking calls in one step, are usage errors", async () => {
    const e = new Engine();
    expect(() => e.sleep(1)).toThrow(/sleep\(\) must be called inside a running task/);
    expect(() => e.yieldPoint("x")).toThrow(EngineUsageError);
    e.spawn("greedy", async () => {
      const a = e.sleep(1);
      const b = e.sleep(2);
      await Promise.all([a, b]);
    });
    await expect(e.run()).rejects.toThrow(/task "greedy" already blocked on sleep until t=1 in this step/);
  });

  it("run() while running is rejected", async () => {
    const e = new Engine();
    let inner: Promise<void> | null = null;
    e.spawn("t", async () => {
      inner = e.run();
      await e.sleep(1);
    });
    await e.run();
    await expect(inner!).rejects.toThrow(/already running/);
  });
});

describe("Engine: determinism", () => {
  it("the same seed gives the identical event trace", async () => {
    const traces: string[] = [];
    for (let i = 0; i < 2; i++) {
      const e = new Engine({ seed: 1234, tieBreak: "random", trace: true });
      const log: string[] = [];
      yieldingScenario(e, log);
      e.spawn("timer", async () => {
        for (let j = 0; j < 3; j++) await e.sleep(e.rng.int(5));
      });
      await e.run();
      traces.push(e.eventTrace.join("\n"));
    }
    expect(traces[0]).toBe(traces[1]);
    expect(traces[0]!.split("\n").length).toBeGreaterThan(30);
  });

  it("different seeds give different interleavings at yield points", async () => {
    const orders = new Set<string>();
    for (let seed = 0; seed < 20; seed++) {
      const e = new Engine({ seed, tieBreak: "random" });
      const log: string[] = [];
      yieldingScenario(e, log);
      await e.run();
      expect(log).toHaveLength(12);
      orders.add(log.join(","));
    }
    expect(orders.size).toBeGreaterThan(10);
  });

  it("fifo tie-break: the yielding task goes behind every task already ready", async () => {
    const e = new Engine({ trace: true });
    const log: string[] = [];
    yieldingScenario(e, log);
    await e.run();
    expect(log.slice(0, 6)).toEqual(["A0", "B0", "C0", "A1", "B1", "C1"]);
  });

  it("fifo: plain events and task wake-ups at equal times run in exactly the order they were scheduled (reference model)", async () => {
    // One scenario written against a tiny interface, run on the Engine and on a reference simulator that keeps
    // pending entries in a list and always takes the earliest time, first scheduled. Delays are 0..2 ps, so
    // most entries tie; any deviation from schedule order changes the log (and what is scheduled next).
    interface Sim {
      readonly now: number;
      after(dt: number, fn: () => void): void;
      spawn(name: string, step: () => number | null): void;
    }
    function scenario(sim: Sim, delays: number[], tasks: number): string[] {
      const log: string[] = [];
      let cursor = 0;
      let nextId = 0;
      const event = (): void => {
        const id = nextId++;
        log.push(`e${id}@${sim.now}`);
        const n = cursor < delays.length ? 1 + (delays[cursor]! & 1) : 0;
        for (let k = 0; k < n && cursor < delays.length; k++) sim.after(delays[cursor++]!, event);
      };
      for (let k = 0; k < tasks; k++) {
        let steps = 0;
        sim.spawn(`T${k}`, () => {
          log.push(`T${k}.${steps}@${sim.now}`);
          if (cursor < delays.length) sim.after(delays[cursor++]!, event);
          return ++steps < 5 && cursor < delays.length ? delays[cursor++]! : null;
        });
      }
      sim.after(0, event);
      return log;
    }
    class Reference implements Sim {
      now = 0;
      private seq = 0;
      private pending: { t: number; seq: number; fn: () => void }[] = [];
      after(dt: number, fn: () => void): void {
        this.pending.push({ t: this.now + dt, seq: this.seq++, fn });
      }
      spawn(_name: string, step: () => number | null): void {
        const resume = (): void => {
          const d = step();
          if (d !== null) this.after(d, resume);
        };
        this.after(0, resume);
      }
      run(): void {
        while (this.pending.length > 0) {
          let best = 0;
          for (let i = 1; i < this.pending.length; i++) {
            const a = this.pending[i]!;
            const b = this.pending[best]!;
            if (a.t < b.t || (a.t === b.t && a.seq < b.seq)) best = i;
          }
          const [ev] = this.pending.splice(best, 1);
          this.now = ev!.t;
          ev!.fn();
        }
      }
    }
    await withPropertyReport(PROPERTY, { file: import.meta.url, test: "reference model" }, () =>
      fc.assert(
        fc.asyncProperty(
          fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 10, maxLength: 150 }),
          fc.integer({ min: 0, max: 4 }),
          async (delays, tasks) => {
            const ref = new Reference();
            const want = scenario(ref, delays, tasks);
            ref.run();
            const e = new Engine();
            const got = scenario(
              {
                get now() {
                  return e.now;
                },
                after: (dt, fn) => e.after(dt, fn),
                spawn: (name, step) => {
                  e.spawn(name, async () => {
                    for (;;) {
                      const d = step();
                      if (d === null) return;
                      await e.sleep(d);
                    }
                  });
                },
              },
              delays,
              tasks,
            );
            await e.run();
            expect(got).toEqual(want);
            expect(got.length).toBeGreaterThan(0);
          },
        ),
        propertyParameters(PROPERTY),
      ),
    );
  }, PROPERTY.timeoutMs);
});

describe("Engine: deadlock, livelock, foreign await", () => {
  it("reports a lock-order deadlock naming both tasks and the mutexes they wait on", async () => {
    const e = new Engine();
    const a = new Mutex("A", e);
    const b = new Mutex("B", e);
    e.spawn("t1", async () => {
      await a.lock();
      await e.sleep(10);
      await b.lock();
    });
    e.spawn("t2", async () => {
      await b.lock();
      await e.sleep(10);
      await a.lock();
    });
    const err = await rejection(e.run());
    expect(err).toBeInstanceOf(DeadlockError);
    const d = err as DeadlockError;
    expect(d.blocked).toEqual([
      { task: "t1", waitsOn: 'mutex "B" (held by "t2")' },
      { task: "t2", waitsOn: 'mutex "A" (held by "t1")' },
    ]);
    expect(d.message).toMatch(/deadlock at t=10 ps/);
  });

  it("reports a task waiting on a completion nobody completes", async () => {
    const e = new Engine();
    const c = new Completion("dma-done", e);
    e.spawn("waiter", async () => {
      await c.wait();
    });
    e.spawn("bystander", async () => {
      await e.sleep(5);
    });
    const err = (await rejection(e.run())) as DeadlockError;
    expect(err).toBeInstanceOf(DeadlockError);
    expect(err.blocked).toEqual([{ task: "waiter", waitsOn: 'completion "dma-done"' }]);
  });

  it("daemon tasks may stay blocked: no deadlock when only daemons wait", async () => {
    const e = new Engine();
    const wq = new WaitQueue("faults", e);
    let handled = 0;
    let pending = 0;
    e.spawn(
      "fault-handler",
      async () => {
        for (;;) {
          await wq.waitEvent(() => pending > 0);
          pending--;
          handled++;
        }
      },
      { daemon: true },
    );
    e.spawn("producer", async () => {
      for (let i = 0; i < 3; i++) {
        await e.sleep(10);
        pending++;
        wq.wakeUpAll();
      }
    });
    await e.run();
    expect(handled).toBe(3);
    expect(e.blockedTasks()).toEqual([{ task: "fault-handler", waitsOn: 'wait queue "faults"' }]);
  });

  it("reports a livelock (time stops advancing) with the spinning tasks named", async () => {
    const e = new Engine({ livelockBound: 1000 });
    let flag = false;
    const spin = (name: string) =>
      e.spawn(name, async () => {
        while (!flag) await e.yieldPoint("spin");
      });
    spin("spinner1");
    spin("spinner2");
    e.spawn("sleeper", async () => {
      await e.sleep(1_000_000);
      flag = true;
    });
    const err = (await rejection(e.run())) as LivelockError;
    expect(err).toBeInstanceOf(LivelockError);
    expect(err.tasks).toEqual(["spinner1", "spinner2"]);
    expect(err.now).toBe(0);
    expect(err.message).toMatch(/livelockBound = 1000/);
  });

  it("detects a task awaiting a foreign promise and names it", async () => {
    const e = new Engine();
    e.spawn("good", async () => {
      await e.sleep(1);
    });
    e.spawn("leaky", async () => {
      await e.sleep(2);
      await new Promise<void>((r) => e.after(5, r)); // an engine event, but a foreign promise
    });
    const err = (await rejection(e.run())) as ForeignAwaitError;
    expect(err).toBeInstanceOf(ForeignAwaitError);
    expect(err.task).toBe("leaky");
    expect(err.message).toMatch(/last resumed after sleep until t=2/);

    const t = new Engine();
    t.spawn("timer-user", async () => {
      await new Promise((r) => setTimeout(r, 1));
    });
    await expect(t.run()).rejects.toThrow(/task "timer-user" awaited something that is not an engine primitive/);
  });

  it("detects a foreign promise another task would resolve, at the waiter's first step, and under Promise.all with a primitive", async () => {
    // A hand-made promise between two tasks: the engine cannot see it, so the waiter never reports back.
    const e = new Engine();
    let release: (() => void) | null = null;
    const gate = new Promise<void>((r) => (release = r));
    let resolverRan = false;
    e.spawn("waiter", async () => {
      await gate;
    });
    e.spawn("resolver", async () => {
      resolverRan = true;
      release!();
    });
    const err = (await rejection(e.run())) as ForeignAwaitError;
    expect(err).toBeInstanceOf(ForeignAwaitError);
    expect(err.task).toBe("waiter");
    expect(err.message).toMatch(/^task "waiter" awaited something that is not an engine primitive .*it last resumed at its start at t=0 ps$/);
    expect(resolverRan).toBe(false); // detection happens before anything else runs: the run stays deterministic

    const m = new Engine();
    m.spawn("mixed", async () => {
      await Promise.all([m.sleep(3), new Promise((r) => setImmediate(r))]);
    });
    const err2 = (await rejection(m.run())) as ForeignAwaitError;
    expect(err2).toBeInstanceOf(ForeignAwaitError);
    expect(err2.message).toMatch(/task "mixed" .* last resumed after sleep until t=3 at t=3 ps/);
  });

  it("the explorer classifies a foreign await as kind \"foreign-await\" and names the task", async () => {
    const res = await explore(
      async (engine) => {
        engine.spawn("io-user", async () => {
          await engine.yieldPoint("before io");
          await new Promise((r) => setTimeout(r, 0));
        });
        await engine.run();
      },
      { runs: 3, seed: 1 },
    );
    expect(res.ok).toBe(false);
    expect(res.failure!.kind).toBe("foreign-await");
    expect(res.failure!.run).toBe(0);
    expect(res.failure!.message).toMatch(/ForeignAwaitError: task "io-user" .* last resumed after yieldPoint "before io"/);
  });

  it("awaiting an already-settled value inside a task is harmless", async () => {
    const e = new Engine();
    let done = false;
    e.spawn("t", async () => {
      await Promise.resolve();
      await e.sleep(1);
      await 0;
      done = true;
    });
    await e.run();
    expect(done).toBe(true);
  });
});
