// Benchmarks of @hmmsim/engine (`npm run bench -- engine`).
//  1. engine events/s: schedule + run N plain events at random-ish times through Engine.after()/run().
//  2. bare heap events/s: the same work on an inline 4-ary typed-array heap with no engine around it (baseline);
//     entry 1 reports ratio = engine / bare with goal ≥ 0.5.
//  3. task switches/s: two tasks ping-ponging through yieldPoint (and, in `extra`, through sleep).
import { Engine } from "./engine.js";
import { measure, measureAsync } from "./measure.js";

interface BenchEntry {
  name: string;
  opsPerSec: number;
  unit?: string;
  baseline?: string;
  ratio?: number;
  goal?: string;
  pass?: boolean;
  extra?: Record<string, number>;
}

const N = 100_000;

/** Deterministic random-ish delays (xorshift32), the same sequence for the engine and the bare heap. */
function delays(n: number): Float64Array {
  const out = new Float64Array(n);
  let x = 0x12345678;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x >>> 0) % 1_000_000;
  }
  return out;
}

/** Baseline: a bare 4-ary min-heap on typed arrays (time, seq, slot) with callbacks in a slot array. */
class BareHeap {
  times = new Float64Array(1024);
  seqs = new Float64Array(1024);
  slots = new Int32Array(1024);
  fns: ((() => void) | undefined)[] = [];
  free: number[] = [];
  size = 0;
  seq = 0;
  push(time: number, fn: () => void): void {
    if (this.size === this.times.length) {
      const grow = <A extends Float64Array | Int32Array>(a: A, b: A): A => (b.set(a), b);
      this.times = grow(this.times, new Float64Array(this.size * 2));
      this.seqs = grow(this.seqs, new Float64Array(this.size * 2));
      this.slots = grow(this.slots, new Int32Array(this.size * 2));
    }
    const slot = this.free.length > 0 ? this.free.pop()! : this.fns.length;
    this.fns[slot] = fn;
    const seq = this.seq++;
    const { times, seqs, slots } = this;
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 2;
      if (times[p]! < time || (times[p] === time && seqs[p]! <= seq)) break;
      times[i] = times[p]!;
      seqs[i] = seqs[p]!;
      slots[i] = slots[p]!;
      i = p;
    }
    times[i] = time;
    seqs[i] = seq;
    slots[i] = slot;
  }
  pop(): () => void {
    const { times, seqs, slots } = this;
    const slot = slots[0]!;
    const fn = this.fns[slot]!;
    this.fns[slot] = undefined;
    this.free.push(slot);
    const n = --this.size;
    if (n > 0) {
      const time = times[n]!;
      const seq = seqs[n]!;
      const s = slots[n]!;
      let i = 0;
      for (;;) {
        const c = (i << 2) + 1;
        if (c >= n) break;
        let m = c;
        const end = c + 4 < n ? c + 4 : n;
        for (let k = c + 1; k < end; k++) {
          if (times[k]! < times[m]! || (times[k] === times[m] && seqs[k]! < seqs[m]!)) m = k;
        }
        if (times[m]! > time || (times[m] === time && seqs[m]! >= seq)) break;
        times[i] = times[m]!;
        seqs[i] = seqs[m]!;
        slots[i] = slots[m]!;
        i = m;
      }
      times[i] = time;
      seqs[i] = seq;
      slots[i] = s;
    }
    return fn;
  }
}

export default async (): Promise<BenchEntry[]> => {
  const dts = delays(N);
  let sink = 0;
  const fn = (): void => {
    sink++;
  };

  const engine = new Engine();
  const eng = measure("engine: schedule+run plain events", () => {
    for (let i = 0; i < N; i++) engine.after(dts[i]!, fn);
    void engine.run(); // plain events only: the run completes synchronously inside run()
    if (engine.pendingEvents !== 0) throw new Error("engine run did not drain");
    return N;
  });

  const heap = new BareHeap();
  let now = 0;
  const bare = measure("bare 4-ary typed-array heap", () => {
    for (let i = 0; i < N; i++) heap.push(now + dts[i]!, fn);
    while (heap.size > 0) {
      now = heap.times[0]!;
      heap.pop()();
    }
    return N;
  });

  const SWITCHES = 20_000;
  const switches = await measureAsync("engine: task switches (yieldPoint ping-pong)", async () => {
    const e = new Engine();
    for (const name of ["ping", "pong"]) {
      e.spawn(name, async () => {
        for (let i = 0; i < SWITCHES / 2; i++) await e.yieldPoint("ping-pong");
      });
    }
    await e.run();
    return SWITCHES;
  });
  const sleeps = await measureAsync("engine: task switches (sleep ping-pong)", async () => {
    const e = new Engine();
    for (const [name, off] of [["ping", 0], ["pong", 1]] as const) {
      e.spawn(name, async () => {
        await e.sleep(off);
        for (let i = 0; i < SWITCHES / 2; i++) await e.sleep(2);
      });
    }
    await e.run();
    return SWITCHES;
  });
  // Fixed cost of one run() call (arming + clearing the two foreign-await watchdogs): run an engine with one task.
  const emptyRuns = await measureAsync("engine: run() with one trivial task", async () => {
    const e = new Engine();
    e.spawn("t", async () => {
      await e.sleep(1);
    });
    await e.run();
  });
  if (sink === 0) throw new Error("no events ran");

  const ratio = eng.opsPerSec / bare.opsPerSec;
  return [
    {
      name: eng.name,
      opsPerSec: eng.opsPerSec,
      unit: "events/s",
      baseline: "bare 4-ary typed-array heap",
      ratio,
      goal: "≥ 0.5",
      pass: ratio >= 0.5,
      extra: { eventsPerRun: N },
    },
    { name: bare.name, opsPerSec: bare.opsPerSec, unit: "events/s", extra: { eventsPerRun: N } },
    {
      name: switches.name,
      opsPerSec: switches.opsPerSec,
      unit: "switches/s",
      extra: { sleepPingPongSwitchesPerSec: sleeps.opsPerSec, watchdogTimersPerRun: 2, oneTaskRunsPerSec: emptyRuns.opsPerSec },
    },
  ];
};
