// Two GPU drivers in one machine (driver-internal behaviour; the scenarios with link bytes and presets are in
// apps/machines/src/multi-device.test.ts): the pgmap owner comes from the machine's PgmapOwners, only the driver's
// own migrations skip MMU_NOTIFY_MIGRATE, a peer's page is migrated device → device (page_free on the source) or
// mapped over the peer link, and another owner's page is faulted back to RAM before it migrates.
import { describe, expect, it } from "vitest";
import { createMachine, defaultPlugins, type Machine } from "@hmmsim/machine";
import { POLICY_STAGE_OVERRIDE, Policy } from "@hmmsim/policy";
import { GpuDriver } from "./gpu-driver.js";
import { GpuDriverPlugin } from "./plugin.js";
import { anonMap, fillPages, testPlugins } from "./testing/test-util.js";
import { GPU_PTE_PEER, GPU_PTE_REMOTE, VA_BLOCK_SIZE } from "./va-block.js";

const PAGE = 4096;

function twoGpus(peer: boolean): { m: Machine; g0: GpuDriver; g1: GpuDriver } {
  const link = (name: string) => ({ name, kind: "custom", h2dBandwidth: "16GB/s", d2hBandwidth: "16GB/s", alpha: "1us", coherent: false });
  const m = createMachine({
    spec: {
      seed: 1,
      bytes: true,
      cpus: { count: 4 },
      ram: { size: "64MiB" },
      links: [link("l0"), link("l1"), ...(peer ? [{ ...link("p01"), h2dBandwidth: "64GB/s", d2hBandwidth: "64GB/s", peers: ["gpu0", "gpu1"] }] : [])],
      devices: [
        { kind: "gpu", name: "gpu0", memory: "8MiB", link: "l0" },
        { kind: "gpu", name: "gpu1", memory: "8MiB", link: "l1" },
      ],
    },
    plugins: [...defaultPlugins(), ...testPlugins(), new GpuDriverPlugin()],
  });
  return { m, g0: GpuDriver.of(m, "gpu0"), g1: GpuDriver.of(m, "gpu1") };
}

function buf(m: Machine, pages: number) {
  const mm = m.kernel!.createMm();
  const base = Math.ceil(anonMap(mm, pages * PAGE + VA_BLOCK_SIZE) / VA_BLOCK_SIZE) * VA_BLOCK_SIZE;
  return { mm, base };
}

const reads = (base: number, pages: number, write = false) => Array.from({ length: pages }, (_, i) => ({ addr: base + i * PAGE, write }));

describe("GPU drivers sharing a machine", () => {
  it("take their pgmap owner from the machine: one for a peer-link group, one each otherwise", () => {
    for (const peer of [true, false]) {
      const { m, g0, g1 } = twoGpus(peer);
      expect(g0.owner).toBe(m.pgmapOwner("gpu0"));
      expect(g1.pgmap.owner).toBe(m.pgmapOwner("gpu1"));
      expect(g0.owner === g1.owner).toBe(peer);
      expect(g0.peers.map((p) => [p.device, p.link.name, p.fromPeer, p.toPeer])).toEqual(peer ? [["gpu1", "p01", "d2h", "h2d"]] : []);
      expect(g0.foreignOwners).toBe(!peer);
    }
  });

  it("a peer's migration of system pages (same owner) invalidates our remote mappings of them: no owner-only skip", async () => {
    const { m, g0, g1 } = twoGpus(true);
    // gpu0 maps the pages remotely (no migration); then gpu1 migrates them to itself.
    Policy.getHooks(m).shouldMigrate.tap({ name: "t", stage: POLICY_STAGE_OVERRIDE }, (q) => (q.device === "gpu0" ? false : undefined));
    const { mm, base } = buf(m, 4);
    let mapped0 = false;
    m.spawn("app", async () => {
      fillPages(mm, base, 4);
      await g0.runKernel(mm, reads(base, 4), { warps: 1 });
      mapped0 = g0.entry(mm, base)?.remote === true;
      await g1.runKernel(mm, reads(base, 4), { warps: 1 });
    });
    await m.run();
    expect(mapped0).toBe(true);
    expect(g1.isResident(mm, base)).toBe(true);
    // gpu1's migrate_vma_setup raised MMU_NOTIFY_MIGRATE with the group's owner; gpu0 did not start it, so it unmapped.
    for (let i = 0; i < 4; i++) expect(g0.entry(mm, base + i * PAGE)).toBeNull();
    expect(g0.stats.invalidatedPtes).toBeGreaterThanOrEqual(4);
  });

  it("migrates a peer's page device → device: the peer's page_free keeps its chunk accounting, bytes follow", async () => {
    const { m, g0, g1 } = twoGpus(true);
    const { mm, base } = buf(m, 8);
    const seen: number[] = [];
    m.spawn("app", async () => {
      fillPages(mm, base, 8, 3);
      await g0.runKernel(mm, reads(base, 8, true), { warps: 1 });
      seen.push(g0.chunks.freeChunks);
      await g1.runKernel(mm, reads(base, 8), { warps: 1 });
      seen.push(g0.chunks.freeChunks);
    });
    await m.run();
    expect(seen).toEqual([g0.chunks.count - 1, g0.chunks.count]); // gpu0's chunk was released by its page_free
    expect(g1.stats).toMatchObject({ peerMigratedPages: 8, migratedPages: 8, throughHostPages: 0 });
    expect(m.links.get("p01").bytesMoved("h2d")).toBe(8 * PAGE);
    expect(m.links.get("l1").bytesMoved("h2d")).toBe(0);
    for (let i = 0; i < 8; i++) {
      expect(g0.entry(mm, base + i * PAGE)).toBeNull();
      expect(g1.entry(mm, base + i * PAGE)).toMatchObject({ valid: true, remote: false });
      expect(mm.read(base + i * PAGE, 1)[0]).toBe((3 + i) & 0xff);
    }
  });

  it("maps a peer's page over the peer link when shouldMigrate answers false (GPU_PTE_REMOTE | GPU_PTE_PEER)", async () => {
    const { m, g0, g1 } = twoGpus(true);
    Policy.getHooks(m).shouldMigrate.tap({ name: "t", stage: POLICY_STAGE_OVERRIDE }, (q) => (q.device === "gpu1" ? false : undefined));
    const { mm, base } = buf(m, 2);
    let pte = 0;
    m.spawn("app", async () => {
      fillPages(mm, base, 2);
      await g0.runKernel(mm, reads(base, 2, true), { warps: 1 });
      await g1.runKernel(mm, [...reads(base, 2), ...reads(base, 2, true)], { warps: 1 });
      const slot = g1.blocks.find(0, base);
      pte = g1.blocks.pte[slot * 512]!;
    });
    await m.run();
    expect(pte & (GPU_PTE_REMOTE | GPU_PTE_PEER)).toBe(GPU_PTE_REMOTE | GPU_PTE_PEER);
    expect(g1.stats).toMatchObject({ remoteAccesses: 4, peerRemoteAccesses: 4, migratedPages: 0 });
    const p01 = m.links.get("p01");
    // reads: gpu0 → gpu1 (h2d, peers[0] → peers[1]); writes: gpu1 → gpu0 (d2h)
    expect([p01.bytesMoved("h2d"), p01.bytesMoved("d2h")]).toEqual([2 * 128, 2 * 128]);
    expect(m.links.get("l1").bytesMoved("h2d") + m.links.get("l1").bytesMoved("d2h")).toBe(0);
  });

  it("without a peer link, another owner's page is faulted back to RAM (its migrate_to_ram) and migrated here", async () => {
    const { m, g0, g1 } = twoGpus(false);
    const { mm, base } = buf(m, 8);
    m.spawn("app", async () => {
      fillPages(mm, base, 8, 5);
      await g0.runKernel(mm, reads(base, 8, true), { warps: 1 });
      await g1.runKernel(mm, reads(base, 8), { warps: 1 });
    });
    await m.run();
    expect(g1.stats).toMatchObject({ throughHostPages: 8, migratedPages: 8, peerMigratedPages: 0, remoteAccesses: 0 });
    expect(g0.stats.cpuFaultPages).toBe(8);
    expect(m.links.get("l0").bytesMoved("d2h")).toBe(8 * PAGE);
    expect(m.links.get("l1").bytesMoved("h2d")).toBe(8 * PAGE);
    expect(g0.chunks.freeChunks).toBe(g0.chunks.count);
    for (let i = 0; i < 8; i++) {
      expect(g1.isResident(mm, base + i * PAGE)).toBe(true);
      expect(mm.read(base + i * PAGE, 1)[0]).toBe((5 + i) & 0xff);
    }
  });
});
