import { describe, expect, it } from "vitest";
import { Completion } from "./completion.js";
import { Engine } from "./engine.js";
import { WouldBlockError } from "./errors.js";

describe("Completion", () => {
  it("complete() wakes one waiter in FIFO order; completeAll() wakes the rest and stays done", async () => {
    const e = new Engine();
    const c = new Completion("c", e);
    const log: string[] = [];
    for (const n of ["a", "b", "c"]) {
      e.spawn(n, async () => {
        await c.wait();
        log.push(`${n}@${e.now}`);
      });
    }
    e.spawn("completer", async () => {
      await e.sleep(10);
      c.complete();
      await e.sleep(10);
      c.completeAll();
    });
    await e.run();
    expect(log).toEqual(["a@10", "b@20", "c@20"]);
    expect(c.done).toBe(true);
    expect(c.tryWait()).toBe(true);
    expect(c.done).toBe(true);
    c.reinit();
    expect(c.done).toBe(false);
  });

  it("complete() with no waiter banks one completion, consumed by the next wait", async () => {
    const c = new Completion("sync");
    c.complete();
    expect(c.done).toBe(true);
    await c.wait(); // consumes it, no engine needed
    expect(c.done).toBe(false);
    expect(() => c.wait()).toThrow(WouldBlockError);
    expect(() => c.wait()).toThrow(/completion "sync".wait\(\): not completed and no engine/);
  });
});
