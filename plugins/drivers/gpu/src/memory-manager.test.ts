// The memory manager's per-chunk access tracking (VictimQuery.chunkLastAccessPs / chunkAccesses): the device's local
// accesses per root chunk since it was allocated to its block, and the time of the last one.
import { describe, expect, it } from "vitest";
import { MachineTrace, type DeviceFaultBatchEvent, type MachinePlugin } from "@hmmsim/machine";
import { Policy } from "@hmmsim/policy";
import { anonMap, testMachine } from "./testing/test-util.js";

const PAGE = 4096;
const BLOCK = 2 * 1024 * 1024;

describe("GpuMemoryManager: device accesses per root chunk", () => {
  it("counts local accesses since allocation, stamps the last one, and starts again when the chunk is reallocated", async () => {
    const batches: DeviceFaultBatchEvent[] = [];
    const asked: { block: number; accesses: number; last: number; alloc: number }[] = [];
    const spy: MachinePlugin = {
      name: "spy",
      kind: "test",
      apply: (m) => {
        MachineTrace.getHooks(m).deviceFaultBatch.tap("spy", (e) => void batches.push({ ...e }));
        Policy.getHooks(m).selectVictim.tap("spy", (q) => {
          for (let c = q.first(); c !== -1; c = q.next(c)) asked.push({ block: q.chunkBlockStart(c), accesses: q.chunkAccesses(c), last: q.chunkLastAccessPs(c), alloc: q.chunkAllocPs(c) });
          return undefined; // LRU
        });
      },
    };
    const { machine, gpu } = testMachine({ deviceMemory: "4MiB", plugins: [spy] });
    const mm = machine.kernel!.createMm();
    const raw = anonMap(mm, 4 * BLOCK);
    const b0 = Math.ceil(raw / BLOCK) * BLOCK;
    // block 0: one fault, then 3 local accesses; block 1: one fault, 1 local access; block 2 evicts block 0's chunk.
    const acc = [b0, b0, b0 + PAGE * 0, b0 + BLOCK, b0 + 2 * BLOCK].map((addr) => ({ addr, write: false }));
    acc.splice(3, 0, { addr: b0 + PAGE, write: false }); // block 0 page 1: another fault, then one local access
    machine.spawn("app", async () => void (await gpu.runKernel(mm, acc, { warps: 1 })));
    await machine.run();
    expect(asked.map((a) => [(a.block - b0) / BLOCK, a.accesses])).toEqual([
      [0, 4],
      [1, 1],
    ]);
    const [c0, c1] = asked;
    expect(c0!.last).toBeGreaterThan(c0!.alloc);
    expect(c0!.last).toBeLessThan(c1!.last);
    // Block 1's only local access is its replayed warp's translation: the batch's end + replayPs.
    const block1Batch = batches[2]!;
    expect(c1!.last).toBe(block1Batch.endPs + gpu.spec.replayPs);
    // Block 2 took block 0's chunk: its count started again (one access).
    const c = gpu.blocks.chunk[gpu.blocks.find(0, b0 + 2 * BLOCK)]!;
    expect(gpu.pmm.accesses[c]).toBe(1);
    expect(gpu.pmm.lastAccessPs[c]).toBe(batches[3]!.endPs + gpu.spec.replayPs);
  });
});
