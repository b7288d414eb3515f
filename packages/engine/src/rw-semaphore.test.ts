import { describe, expect, it } from "vitest";
import { Completion } from "./completion.js";
import { Engine } from "./engine.js";
import { DeadlockError, LockMisuseError, WouldBlockError } from "./errors.js";
import { MAX_READERS_WAKEUP, RwSemaphore } from "./rw-semaphore.js";

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

  it("writers are granted in FIFO order among themselves, and tryDownWrite fails while the lock is held either way", async () => {
    const e = new Engine({ tieBreak: "random", seed: 3 });
    const s = new RwSemaphore("sem", e);
    const log: string[] = [];
    e.spawn("r0", async () => {
      await s.downRead();
      await e.sleep(50);
      log.push(`tryDownWrite while read-locked=${s.tryDownWrite()}`);
      s.upRead();
    });
    for (const [name, at] of [["w1", 10], ["w2", 20], ["w3", 30]] as const) {
      e.spawn(name, async () => {
        await e.sleep(at);
        await s.downWrite();
        log.push(`${name}@${e.now} writer=${s.writer?.name}`);
        await e.sleep(5);
        s.upWrite();
      });
    }
    e.spawn("trier", async () => {
      await e.sleep(52);
      log.push(`tryDownWrite while write-locked=${s.tryDownWrite()} tryDownRead=${s.tryDownRead()}`);
    });
    await e.run();
    expect(log).toEqual([
      "tryDownWrite while read-locked=false",
      "w1@50 writer=w1",
      "tryDownWrite while write-locked=false tryDownRead=false",
      "w2@55 writer=w2",
      "w3@60 writer=w3",
    ]);
    expect(s.isLocked()).toBe(false);
    expect(s.tryDownWrite()).toBe(true); // free and no waiter: succeeds
  });

  it(`a reader phase wakes at most MAX_READERS_WAKEUP (${MAX_READERS_WAKEUP}) readers; the rest follow when those release`, async () => {
    const e = new Engine();
    const s = new RwSemaphore("mmap_lock", e);
    const grantedAt = new Map<number, number>();
    e.spawn("w", async () => {
      await s.downWrite();
      await e.sleep(100);
      s.upWrite();
    });
    const n = MAX_READERS_WAKEUP + 44;
    for (let i = 0; i < n; i++) {
      e.spawn(`r${i}`, async () => {
        await e.sleep(1);
        await s.downRead();
        grantedAt.set(e.now, (grantedAt.get(e.now) ?? 0) + 1);
        await e.sleep(10);
        s.upRead();
      });
    }
    await e.run();
    expect([...grantedAt]).toEqual([
      [100, MAX_READERS_WAKEUP],
      [110, 44],
    ]);
  });

  it("lock misuse: down* while holding the write lock, up* in the wrong mode", async () => {
    const e = new Engine();
    const s = new RwSemaphore("mmap_lock", e);
    e.spawn("w", async () => {
      await s.downWrite();
      expect(() => s.upRead()).toThrow(/upRead\(\): not read-locked/);
      await s.downRead();
    });
    await expect(e.run()).rejects.toThrow(/rwsem "mmap_lock".downRead\(\): task "w" already holds the write lock \(self-deadlock\)/);
    const r = new RwSemaphore("r");
    expect(r.tryDownRead()).toBe(true);
    expect(() => r.upWrite()).toThrow(LockMisuseError);
    expect(() => r.downgradeWrite()).toThrow(/downgradeWrite\(\): not write-locked/);
  });

  it("a reader blocked behind a writer that never releases is reported as a deadlock naming the writer", async () => {
    const e = new Engine();
    const s = new RwSemaphore("mmap_lock", e);
    const done = new Completion("never", e);
    e.spawn("writer", async () => {
      await s.downWrite();
      await done.wait();
    });
    e.spawn("reader", async () => {
      await e.sleep(1);
      await s.downRead();
    });
    const err = await e.run().then(
      () => null,
      (x: unknown) => x,
    );
    expect(err).toBeInstanceOf(DeadlockError);
    expect((err as DeadlockError).blocked).toEqual([
      { task: "writer", waitsOn: 'completion "never"' },
      { task: "reader", waitsOn: 'rwsem "mmap_lock" for read (write-locked by "writer")' },
    ]);
  });
});
