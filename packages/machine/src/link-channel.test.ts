import { describe, expect, it } from "vitest";
import { Engine } from "@hmmsim/engine";
import { LinkChannel } from "./link-channel.js";

// 1 GB/s: 1 byte = 1000 ps, so expected times are easy to read.
const GBs = 1_000_000_000;

async function runTransfers(sharing: "ps" | "fifo", arrivals: [at: number, bytes: number][], alpha = 0) {
  const e = new Engine({ seed: 1 });
  const ch = new LinkChannel(e, "ch", GBs, alpha, sharing);
  const ends: number[] = [];
  arrivals.forEach(([at, bytes], i) =>
    e.spawn(`t${i}`, async () => {
      await e.sleep(at);
      await ch.transfer(bytes);
      ends[i] = e.now;
    }),
  );
  await e.run();
  return { ends, busy: ch.busyTime(), bytes: ch.bytesMoved(), transfers: ch.transfers() };
}

describe("LinkChannel", () => {
  it("service time is ⌈bytes·10^12/β⌉ ps, plus α off the link", () => {
    const e = new Engine();
    const ch = new LinkChannel(e, "ch", 3, 7, "ps");
    expect(ch.serviceTime(1)).toBe(333_333_333_334); // 10^12/3 rounded up
    expect(ch.transferTime(3)).toBe(7 + 1_000_000_000_000);
  });

  it("processor sharing: equal transfers finish together; a late arrival slows the others", async () => {
    expect((await runTransfers("ps", [[0, 1000], [0, 1000]])).ends).toEqual([2_000_000, 2_000_000]);
    // A alone for 500 ns (500 B done), then A and B share: A's last 500 B take 1000 ns → A ends at 1500 ns;
    // B got 500 B by then, its last 500 B alone: ends at 2000 ns.
    const r = await runTransfers("ps", [[0, 1000], [500_000, 1000]]);
    expect(r.ends).toEqual([1_500_000, 2_000_000]);
    expect(r.busy).toBe(2_000_000);
    expect(r.bytes).toBe(2000);
    expect(r.transfers).toBe(2);
  });

  it("processor sharing with three transfers conserves work in whole ps", async () => {
    const r = await runTransfers("ps", [[0, 1], [0, 1], [1, 1]]); // 1000 ps of work each
    // total work 3000 ps, link never idle from 0: the last completion is at exactly 3000 ps
    expect(Math.max(...r.ends)).toBe(3000);
    expect(r.ends.every(Number.isInteger)).toBe(true);
    expect(r.busy).toBe(3000);
  });

  it("fifo: one data phase at a time, α overlaps", async () => {
    const r = await runTransfers("fifo", [[0, 1000], [0, 1000]], 100);
    expect(r.ends).toEqual([100 + 1_000_000, 100 + 2_000_000]);
    expect(r.busy).toBe(2_000_000);
  });

  it("idle gaps are not busy time", async () => {
    const r = await runTransfers("ps", [[0, 1000], [5_000_000, 1000]]);
    expect(r.ends).toEqual([1_000_000, 6_000_000]);
    expect(r.busy).toBe(2_000_000);
  });
});
