import { describe, expect, it } from "vitest";
import { Engine } from "./engine.js";
import { LockMisuseError, WouldBlockError } from "./errors.js";
import { RwSemaphore } from "./rw-semaphore.js";

describe("RwSemaphore", () => {
  it("synchronous use without an engine: readers share, writer exclusive, try* report contention", () => {
    const s = new RwSemaphore("mmap_lock");
    expect(s.tryDownRead()).toBe(true);
    expect(s.tryDownRead()).toBe(true);
    expect(s.readers).toBe(2);
    expect(s.tryDownWrite()).toBe(false);
    expect(() => s.downWrite()).toThrow(WouldBlockError);
    s.upRead();
    s.upRead();
    expect(s.isLocked()).toBe(false);
    expect(s.tryDownWrite()).toBe(true);
    expect(s.writeLocked).toBe(true);
    expect(s.tryDownRead()).toBe(false);
    expect(() => s.downRead()).toThrow(/rwsem "mmap_lock".downRead\(\): the lock is write-locked and has no engine/);
    s.downgradeWrite();
    expect([s.writeLocked, s.readers]).toEqual([false, 1]);
    s.upRead();
    expect(() => s.upRead()).toThrow(LockMisuseError);
    expect(() => s.upWrite()).toThrow(/not write-locked/);
  });

  it("a waiting writer blocks new readers (no writer starvation), then readers go together", async () => {
    const e = new Engine();
    const s = new RwSemaphore("mmap_lock", e);
    const log: string[] = [];
    const reader = (name: string, at: number, hold: number) =>
      e.spawn(name, async () => {
        await e.sleep(at);
        await s.downRead();
        log.push(`${name}+${e.now}`);
        await e.sleep(hold);
        s.upRead();
      });
    reader("r1", 0, 100);
    e.spawn("w", async () => {
      await e.sleep(10);
      await s.downWrite();
      log.push(`w+${e.now} readers=${s.readers}`);
      await e.sleep(50);
      s.upWrite();
    });
    reader("r2", 20, 10); // arrives while w waits: must queue behind w
    reader("r3", 30, 10);
    e.spawn("trier", async () => {
      await e.sleep(40);
      log.push(`tryDownRead=${s.tryDownRead()}`);
    });
    await e.run();
    expect(log).toEqual(["r1+0", "tryDownRead=false", "w+100 readers=0", "r2+150", "r3+150"]);
    expect(s.isLocked()).toBe(false);
  });

  it("hands off in queue order: writer, then the reader phase (kernel wakes all queued readers), then writer", async () => {
    const e = new Engine();
    const s = new RwSemaphore("sem", e);
    const log: string[] = [];
    s.engine = e;
    e.spawn("w0", async () => {
      await s.downWrite();
      await e.sleep(100);
      s.upWrite();
    });
    const queue: [string, boolean, number][] = [
      ["rA", false, 10],
      ["w1", true, 20],
      ["rB", false, 30],
    ];
    for (const [name, write, at] of queue) {
      e.spawn(name, async () => {
        await e.sleep(at);
        if (write) await s.downWrite();
        else await s.downRead();
        log.push(`${name}@${e.now}`);
        await e.sleep(10);
        if (write) s.upWrite();
        else s.upRead();
      });
    }
    await e.run();
    // rA heads the queue when w0 releases, so every queued reader (rA, rB) is granted; w1 keeps its place.
    expect(log).toEqual(["rA@100", "rB@100", "w1@110"]);
  });

  it("downgradeWrite lets queued readers in but keeps a queued writer waiting", async () => {
    const e = new Engine();
    const s = new RwSemaphore("sem", e);
    const log: string[] = [];
    e.spawn("owner", async () => {
      await s.downWrite();
      await e.sleep(50);
      s.downgradeWrite();
      log.push(`downgraded readers=${s.readers}`);
      await e.sleep(50);
      s.upRead();
    });
    e.spawn("reader", async () => {
      await e.sleep(10);
      await s.downRead();
      log.push(`reader@${e.now}`);
      s.upRead();
    });
    e.spawn("writer", async () => {
      await e.sleep(20);
      await s.downWrite();
      log.push(`writer@${e.now}`);
      s.upWrite();
    });
    await e.run();
    expect(log).toEqual(["downgraded readers=2", "reader@50", "writer@100"]);
  });

  it("deadlock on an rwsem names the mode and holder", async () => {
    const e = new Engine();
    const s = new RwSemaphore("mmap_lock", e);
    e.spawn("upgrader", async () => {
      await s.downRead();
      await s.downWrite();
    });
    await expect(e.run()).rejects.toThrow(/task "upgrader" waits on rwsem "mmap_lock" for write \(read-locked by 1 reader\(s\)\)/);
  });
});
