// Scenario tests: the eviction policies (@hmmsim/policy-eviction) choosing the GPU driver's victim root chunks
// under oversubscription. They live here because a policy never imports a driver (scripts/check-layers.mjs).
// Every figure compared is simulated (migrations, evictions, simulated time), never wall-clock.
import { describe, expect, it } from "vitest";
import { GpuDriver, GpuDriverPlugin } from "@hmmsim/driver-gpu";
import { PciePlugin } from "@hmmsim/interconnect-pcie";
import { MachineTrace, createMachine, defaultPlugins, simulate } from "@hmmsim/machine";
import { POLICY_STAGE_OVERRIDE, Policy } from "@hmmsim/policy";
import { EVICTION_POLICIES, EvictionPolicyPlugin } from "@hmmsim/policy-eviction";
import { OnDemandPolicyPlugin } from "@hmmsim/policy-on-demand";

const BLOCK = 2 * 1024 * 1024;
// include/uapi mman values
const PROT_READ = 0x1;
const PROT_WRITE = 0x2;
const MAP_PRIVATE = 0x02;
const MAP_ANONYMOUS = 0x20;

const plugins = () => [...defaultPlugins(), new PciePlugin(), new GpuDriverPlugin(), new OnDemandPolicyPlugin(), new EvictionPolicyPlugin()];

/**
 * Device memory of 2 root chunks; the accesses [block, page] run in order on one warp. Returns the evicted blocks,
 * the pages migrated, and whether the driver tracks device accesses per chunk (VictimQuery.chunkAccesses /
 * chunkLastAccessPs move on a hit), seen by a tap that answers nothing.
 */
async function reuseRun(policy: string, accesses: [number, number][]) {
  const m = createMachine({
    spec: {
      seed: 1,
      cpus: { count: 2 },
      ram: { size: "64MiB" },
      links: [{ name: "pcie0", kind: "pcie4x16" }],
      devices: [{ kind: "gpu", name: "gpu0", memory: "4MiB", link: "pcie0", policy }],
    },
    plugins: plugins(),
  });
  const gpu = GpuDriver.of(m, "gpu0");
  const mm = m.kernel!.createMm();
  const raw = mm.mmap({ length: 8 * BLOCK, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  const base = Math.ceil(raw / BLOCK) * BLOCK;
  const evicted: number[] = [];
  let tracked = false;
  Policy.getHooks(m).selectVictim.tap({ name: "probe", stage: POLICY_STAGE_OVERRIDE }, (q) => {
    for (let c = q.first(); c !== -1; c = q.next(c)) if (q.chunkAccesses(c) > 0 || q.chunkLastAccessPs(c) > q.chunkAllocPs(c)) tracked = true;
    return undefined;
  });
  MachineTrace.getHooks(m).eviction.tap("t", (e) => void evicted.push((e.start - base) / BLOCK));
  const acc = accesses.map(([b, p]) => ({ addr: base + b * BLOCK + p * 4096, write: false }));
  m.spawn("app", async () => void (await gpu.runKernel(mm, acc, { warps: 1 })));
  await m.run();
  return { evicted, migrated: gpu.stats.migratedPages + gpu.stats.populatedPages, tracked };
}

// Blocks 0 and 1 fill the device; the device reads block 0 again (a hit: no migration); block 2 needs a chunk;
// then block 0 is read again.
const REUSE: [number, number][] = [[0, 0], [1, 1], [0, 0], [2, 3], [0, 0]];

describe("eviction policies on the GPU driver: which chunk goes", () => {
  it("evict-lru (UVM) evicts block 0, the least recently migrated into, so the reuse of block 0 migrates again", async () => {
    const r = await reuseRun("evict-lru", REUSE);
    expect(r.evicted.slice(0, 1)).toEqual([0]);
    expect(r.migrated).toBe(4);
  });

  // These read VictimQuery.chunkLastAccessPs / chunkAccesses: the GPU driver tracks device accesses per root chunk.
  for (const policy of ["evict-lru-access", "evict-tree", "evict-lfu"]) {
    it(`${policy} keeps the block the device just read (block 0) and evicts block 1: one migration fewer`, async () => {
      const r = await reuseRun(policy, REUSE);
      expect(r.tracked).toBe(true);
      expect(r.evicted).toEqual([1]);
      expect(r.migrated).toBe(3);
    });
  }
});

/** A GPU with 8 MiB (4 root chunks) streaming `passes` times over 10 MiB (5 blocks, 125 %) under `policy`. */
async function cyclic(policy: string, seed = 1) {
  const s = await simulate({
    spec: {
      name: `cyclic-${policy}`,
      seed,
      bytes: false,
      cpus: { count: 2 },
      ram: { size: "64MiB" },
      links: [{ name: "pcie0", kind: "pcie4x16" }],
      devices: [{ kind: "gpu", name: "gpu0", memory: "8MiB", link: "pcie0", policy, driverSpec: { warps: 64 } }],
      workload: {
        kind: "phases",
        params: {
          phases: [
            { on: "cpu", kind: "streaming", params: { bytes: "10MiB", writeFraction: 1 } },
            { on: "gpu0", kind: "streaming", params: { bytes: "10MiB", granularity: 4096, passes: 3 } },
          ],
        },
      },
    },
    plugins: plugins(),
  });
  const gpu = s.phases[1]!;
  return { gpuPs: gpu.endPs - gpu.startPs, migratedPages: s.migrated.h2d.pages, evictedPages: s.evictions.pages };
}

describe("eviction policies under oversubscription (10 MiB streamed 3 times through 8 MiB)", () => {
  it("every policy runs to the end, evicting, and moves at most what LRU moves", async () => {
    const lru = await cyclic("evict-lru");
    console.log(`evict-lru: ${JSON.stringify(lru)}`);
    // LRU's pathology on a cyclic sweep one chunk larger than memory: each block is evicted just before its reuse
    expect(lru.migratedPages).toBe(3 * 2560);
    for (const policy of EVICTION_POLICIES.filter((p) => p !== "evict-lru")) {
      const r = await cyclic(policy);
      console.log(`${policy}: ${JSON.stringify(r)}`);
      expect(r.evictedPages).toBeGreaterThan(0);
      expect(r.migratedPages).toBeLessThanOrEqual(lru.migratedPages);
    }
  });

  it("evict-random breaks the cyclic pathology: fewer migrations and less simulated time than LRU, the same at the same seed", async () => {
    const lru = await cyclic("evict-lru");
    const random = await cyclic("evict-random");
    expect(random.migratedPages).toBeLessThan(lru.migratedPages);
    expect(random.gpuPs).toBeLessThan(lru.gpuPs);
    expect(await cyclic("evict-random")).toEqual(random);
  });
});
