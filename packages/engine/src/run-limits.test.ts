// The engine's horizon and limits: a time past 2^53 - 1 ps is a VirtualTimeOverflowError (a VirtualTimeError) a
// runner can tell from a malformed time; runUntil(t, { advance: false }) stops at a virtual-time limit without moving
// the clock; setEventHook calls back every N events without changing the run.
import { describe, expect, it } from "vitest";
import { Engine } from "./engine.js";
import { EngineOptionError, VirtualTimeError, VirtualTimeOverflowError } from "./errors.js";
import { MAX_TIME_PS, addTime, checkDuration, checkTime } from "./time.js";

describe("virtual-time overflow", () => {
  it("is a VirtualTimeOverflowError (still a VirtualTimeError) with the time it happened at; malformed times are not", () => {
    const e = (() => {
      try {
        addTime("dt", MAX_TIME_PS - 5, 10);
      } catch (x) {
        return x;
      }
    })() as VirtualTimeOverflowError;
    expect(e).toBeInstanceOf(VirtualTimeOverflowError);
    expect(e).toBeInstanceOf(VirtualTimeError);
    expect([e.field, e.now]).toEqual(["dt", MAX_TIME_PS - 5]);
    expect(() => checkTime("at", 2 ** 60, 7)).toThrow(VirtualTimeOverflowError);
    expect(() => checkDuration("dt", Infinity)).toThrow(VirtualTimeOverflowError);
    for (const bad of [1.5, -1, NaN]) {
      let got: unknown;
      try {
        checkDuration("dt", bad);
      } catch (x) {
        got = x;
      }
      expect(got).toBeInstanceOf(VirtualTimeError);
      expect(got).not.toBeInstanceOf(VirtualTimeOverflowError);
    }
  });

  it("a task sleeping past the horizon fails the run with VirtualTimeOverflowError at the time it asked", async () => {
    const e = new Engine();
    e.spawn("long", async () => {
      await e.sleep(1_000);
      await e.sleep(MAX_TIME_PS);
    });
    const err = await e.run().then(
      () => null,
      (x: unknown) => x,
    );
    expect(err).toBeInstanceOf(VirtualTimeOverflowError);
    expect((err as VirtualTimeOverflowError).now).toBe(1_000);
  });
});

describe("runUntil(t, { advance: false })", () => {
  it("stops before the first event past t and leaves the clock at the last event run", async () => {
    const e = new Engine();
    const seen: number[] = [];
    e.spawn("ticker", async () => {
      for (let i = 0; i < 10; i++) {
        await e.sleep(100);
        seen.push(e.now);
      }
    });
    await e.runUntil(450, { advance: false });
    expect(seen).toEqual([100, 200, 300, 400]);
    expect(e.now).toBe(400);
    expect(e.pendingEvents).toBeGreaterThan(0);
  });

  it("ends like run() when the queue runs dry first (the clock is not moved to t)", async () => {
    const e = new Engine();
    e.spawn("short", async () => {
      await e.sleep(70);
    });
    await e.runUntil(1_000_000, { advance: false });
    expect(e.now).toBe(70);
    expect(e.pendingEvents).toBe(0);
  });

  it("without the option keeps moving the clock to t", async () => {
    const e = new Engine();
    e.spawn("short", async () => {
      await e.sleep(70);
    });
    await e.runUntil(1_000);
    expect(e.now).toBe(1_000);
  });
});

describe("setEventHook", () => {
  const workload = (e: Engine, out: number[]) => {
    for (let t = 0; t < 3; t++) {
      e.spawn(`t${t}`, async () => {
        for (let i = 0; i < 50; i++) {
          await e.sleep(1 + ((i * 7 + t) % 5));
          out.push(e.now * 10 + t);
        }
      });
    }
  };

  it("calls back every N events and changes nothing in the run", async () => {
    const plain: number[] = [];
    const a = new Engine({ seed: 3, tieBreak: "random" });
    workload(a, plain);
    await a.run();

    const hooked: number[] = [];
    const b = new Engine({ seed: 3, tieBreak: "random" });
    let calls = 0;
    b.setEventHook(10, () => calls++);
    workload(b, hooked);
    await b.run();
    expect(hooked).toEqual(plain);
    expect(b.events).toBe(a.events);
    expect(b.now).toBe(a.now);
    expect(calls).toBe(Math.floor(b.events / 10));
  });

  it("a hook that throws fails the run with its error; a bad period is an EngineOptionError; null removes it", async () => {
    const e = new Engine();
    e.setEventHook(5, () => {
      throw new Error("stop here");
    });
    workload(e, []);
    await expect(e.run()).rejects.toThrow("stop here");
    const f = new Engine();
    expect(() => f.setEventHook(0, () => {})).toThrow(EngineOptionError);
    expect(() => f.setEventHook(1.5, () => {})).toThrow(/events = 1.5: must be an integer >= 1/);
    let calls = 0;
    f.setEventHook(1, () => calls++);
    f.setEventHook(1, null);
    workload(f, []);
    await f.run();
    expect(calls).toBe(0);
  });
});
