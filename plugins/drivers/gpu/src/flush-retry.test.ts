// BATCH_FLUSH retries (gpu-kernel.ts retryFlushed): the warps of flushed entries translate again at the replay.
// When none of their pages became valid the retry is done in bulk; the figures must be those of one translation
// per warp. The pinned figures were measured with the per-warp retry only (16b8aaf), on kernels that take both paths:
// a streaming kernel of 1,024 warps over 3,000 pages with 256-entry batches (every retry in bulk), and the same with
// a prefetch span of 16 pages (some retries per warp).
import { describe, expect, it } from "vitest";
import { Policy } from "@hmmsim/policy";
import { anonMap, testMachine } from "./testing/test-util.js";

const PAGE = 4096;

async function streaming(opts: { span?: number; writeEvery?: number }) {
  const { machine, gpu } = testMachine({ gpu: { batchSize: 256 } });
  if (opts.span !== undefined) {
    const span = opts.span * PAGE;
    Policy.getHooks(machine).prefetchRange.tap("span", (r) => ({ start: Math.floor(r.start / span) * span, end: Math.floor(r.start / span) * span + span }));
  }
  const mm = machine.kernel!.createMm();
  const n = 3000;
  const addr = anonMap(mm, n * PAGE);
  const accesses = Array.from({ length: n }, (_, i) => ({
    addr: addr + i * PAGE + (i % 7) * 64,
    write: opts.writeEvery !== undefined && i % opts.writeEvery === 0,
    computePs: (i % 3) * 1000,
  }));
  let res;
  machine.spawn("app", async () => void (res = await gpu.runKernel(mm, accesses, { warps: 1024 })));
  await machine.run();
  const s = gpu.stats;
  const stats = { faults: s.faults, flushedFaults: s.flushedFaults, flushes: s.flushes, batches: s.batches, staleFaults: s.staleFaults, faultedPages: s.faultedPages };
  return { result: res, stats, now: machine.engine.now };
}

describe("BATCH_FLUSH retries: the bulk path gives the per-warp figures", () => {
  it("streaming, no prefetch (every flushed page still invalid: bulk)", async () => {
    // 11 flushes, each retried in bulk
    expect(await streaming({ writeEvery: 5 })).toEqual({result: {accesses: 3000, faults: 10464, remoteAccesses: 0, tlbHits: 1019, tlbMisses: 12445, flushedFaults: 7464, startPs: 0, endPs: 1963646869}, stats: {faults: 10464, flushedFaults: 7464, flushes: 12, batches: 12, staleFaults: 0, faultedPages: 3000}, now: 1963646869});
  });

  it("streaming with a 16-page prefetch span (some flushed pages already valid: per warp)", async () => {
    // 7 flushes: 3 retried per warp (a prefetch made some of their pages valid), 4 in bulk
    expect(await streaming({ span: 16 })).toEqual({result: {accesses: 3000, faults: 6696, remoteAccesses: 0, tlbHits: 2043, tlbMisses: 7653, flushedFaults: 4720, startPs: 0, endPs: 1771376781}, stats: {faults: 6696, flushedFaults: 4720, flushes: 8, batches: 8, staleFaults: 0, faultedPages: 1976}, now: 1771376781});
  });
});
