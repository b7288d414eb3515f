import { describe, expect, it } from "vitest";
import { Engine } from "./engine.js";
import { LockMisuseError, WouldBlockError } from "./errors.js";
import { Mutex } from "./mutex.js";

describe("Mutex", () => {
  it("hands the lock to waiters in FIFO order, even when later arrivals are ready first", async () => {
    const e = new Engine({ tieBreak: "random", seed: 9 });
    const m = new Mutex("m", e);
    const order: string[] = [];
    e.spawn("holder", async () => {
      await m.lock();
      await e.sleep(100);
      m.unlock();
    });
    for (const [name, at] of [["w1", 10], ["w2", 20], ["w3", 30]] as const) {
      e.spawn(name, async () => {
        await e.sleep(at);
        await m.lock();
        order.push(`${name}@${e.now}`);
        await e.sleep(5);
        m.unlock();
      });
    }
    // A late task trying at the moment of the handoff must not barge in.
    e.spawn("barger", async () => {
      await e.sleep(100);
      order.push(m.tryLock() ? "barger got it" : "barger refused");
    });
    await e.run();
    expect(order).toEqual(["barger refused", "w1@100", "w2@105", "w3@110"]);
    expect(m.locked).toBe(false);
  });

  it("works synchronously without an engine through tryLock/unlock; lock() throws when it would wait", async () => {
    const m = new Mutex("mmap-ish");
    expect(m.tryLock()).toBe(true);
    expect(m.locked).toBe(true);
    expect(m.tryLock()).toBe(false);
    expect(() => m.lock()).toThrow(WouldBlockError);
    expect(() => m.lock()).toThrow(/mutex "mmap-ish".lock\(\): the mutex is held and has no engine/);
    m.unlock();
    await m.lock(); // uncontended: fine without an engine
    expect(m.locked).toBe(true);
    m.unlock();
  });

  it("unlock of an unlocked mutex and recursive locking are LockMisuseErrors", async () => {
    const m = new Mutex("m");
    expect(() => m.unlock()).toThrow(LockMisuseError);
    expect(() => m.unlock()).toThrow(/not locked/);
    const e = new Engine();
    const r = new Mutex("r", e);
    e.spawn("selfish", async () => {
      await r.lock();
      await r.lock();
    });
    await expect(e.run()).rejects.toThrow(/task "selfish" already holds it/);
  });

  it("a contended lock() from non-task code is a WouldBlockError even with an engine", async () => {
    const e = new Engine();
    const m = new Mutex("m", e);
    m.tryLock();
    expect(() => m.lock()).toThrow(/must be called inside a running task/);
  });
});
