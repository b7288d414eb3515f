import { describe, expect, it } from "vitest";
import { Engine } from "./engine.js";
import { WouldBlockError } from "./errors.js";
import { WaitQueue } from "./wait-queue.js";

describe("WaitQueue", () => {
  it("waitEvent re-checks its condition after each wake-up; wakeUpOne wakes the first waiter", async () => {
    const e = new Engine();
    const wq = new WaitQueue("wq", e);
    let level = 0;
    const log: string[] = [];
    e.spawn("needs2", async () => {
      await wq.waitEvent(() => level >= 2);
      log.push(`needs2@${e.now}`);
    });
    e.spawn("plain1", async () => {
      await e.sleep(1);
      await wq.wait();
      log.push(`plain1@${e.now}`);
    });
    e.spawn("raiser", async () => {
      await e.sleep(10);
      level = 1;
      wq.wakeUpAll(); // needs2 re-checks and sleeps again; plain1 wakes
      await e.sleep(10);
      level = 2;
      wq.wakeUpOne();
    });
    await e.run();
    expect(log).toEqual(["plain1@10", "needs2@20"]);
    expect(wq.waiting).toBe(0);
  });

  it("without an engine: waitEvent passes if the condition holds, otherwise WouldBlockError", async () => {
    const wq = new WaitQueue("sync");
    await wq.waitEvent(() => true);
    expect(() => wq.waitEvent(() => false)).toThrow(WouldBlockError);
    expect(() => wq.wait()).toThrow(/wait queue "sync".wait\(\): no engine/);
    wq.wakeUpAll(); // nothing to wake: no-op
  });
});
