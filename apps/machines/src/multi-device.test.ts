// Scenario tests: several devices in one machine (two GPUs; a GPU and an FPGA) over one buffer, with and without a
// peer link. They need two drivers at once, so they live here, not in a driver's package. What they pin down:
//  - with a peer link (one pgmap owner for both GPUs), gpu1's faults on gpu0-resident pages migrate them
//    gpu0 → gpu1 directly over the peer link (migrate_vma_setup with MIGRATE_VMA_SELECT_DEVICE_PRIVATE and the
//    group's owner, a copy over the link, gpu0's page_free), or map them remotely over it (shouldMigrate false);
//  - without one (two owners), the pages go through the host: hmm_range_fault faults them back to RAM through
//    gpu0's migrate_to_ram (d2h on gpu0's host link), then they migrate RAM → gpu1 (h2d on gpu1's host link);
//  - every byte survives gpu0 → gpu1 → CPU, the kernel's invariants hold after each scenario and no device page leaks.
import "reflect-metadata";
import { describe, expect, it } from "vitest";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, type Mm } from "@hmmsim/core";
import { FpgaDriver, FpgaDriverPlugin } from "@hmmsim/driver-fpga";
import { GpuDriver, GpuDriverPlugin } from "@hmmsim/driver-gpu";
import { CoherentPlugin } from "@hmmsim/interconnect-coherent";
import { PciePlugin } from "@hmmsim/interconnect-pcie";
import { MachineTrace, createMachine, defaultPlugins, simulate, type Machine, type MigrateEvent } from "@hmmsim/machine";
import { POLICY_STAGE_OVERRIDE, Policy } from "@hmmsim/policy";
import { OnDemandPolicyPlugin } from "@hmmsim/policy-on-demand";
import { checkInvariants } from "@hmmsim/testing";

const MiB = 1 << 20;
const PAGE = 4096;
const BUF = 8 * MiB;

const plugins = () => [...defaultPlugins(), new PciePlugin(), new CoherentPlugin(), new GpuDriverPlugin(), new FpgaDriverPlugin(), new OnDemandPolicyPlugin()];

/** Two GPUs, each behind its own PCIe 4 host link; `peer`: an NVLink 3 peer link between them. */
function twoGpuSpec(peer: boolean, bytes: boolean, workload?: object, second: "gpu" | "fpga" = "gpu") {
  return {
    name: peer ? "two-gpus-nvlink" : "two-gpus-pcie",
    seed: 1,
    bytes,
    cpus: { count: 4 },
    ram: { size: "256MiB" },
    links: [
      { name: "pcie0", kind: "pcie4x16" },
      { name: "pcie1", kind: "pcie4x16" },
      ...(peer ? [{ name: "nvl0", kind: "nvlink3", peers: ["gpu0", "gpu1"] }] : []),
    ],
    devices: [
      { kind: "gpu", name: "gpu0", memory: "64MiB", link: "pcie0" },
      second === "gpu" ? { kind: "gpu", name: "gpu1", memory: "64MiB", link: "pcie1" } : { kind: "fpga", name: "fpga0", memory: "64MiB", link: "pcie1" },
    ],
    ...(workload ? { workload } : {}),
  };
}

/** The acceptance workload: the CPU writes the buffer, gpu0 then gpu1 read it, the CPU reads it back. */
const fourPhases = {
  kind: "phases",
  params: {
    phases: [
      { on: "cpu", kind: "streaming", params: { bytes: "8MiB", writeFraction: 1 } },
      { on: "gpu0", kind: "streaming", params: { bytes: "8MiB" } },
      { on: "gpu1", kind: "streaming", params: { bytes: "8MiB" } },
      { on: "cpu", kind: "streaming", params: { bytes: "8MiB" } },
    ],
  },
};

function linkBytes(m: Machine) {
  const out: Record<string, { h2d: number; d2h: number }> = {};
  for (const l of m.links.all()) out[l.name] = { h2d: l.bytesMoved("h2d"), d2h: l.bytesMoved("d2h") };
  return out;
}

/** A buffer of `len` bytes, 2 MiB aligned, filled by the CPU with a pattern (page i, byte j → (i * 7 + j) & 255). */
function buffer(m: Machine, len: number): { mm: Mm; base: number; pattern: Uint8Array } {
  const mm = m.kernel!.createMm();
  const raw = mm.mmap({ length: len + 2 * MiB, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  const base = Math.ceil(raw / (2 * MiB)) * 2 * MiB;
  const pattern = new Uint8Array(len);
  for (let i = 0; i < len; i++) pattern[i] = (Math.floor(i / PAGE) * 7 + i) & 255;
  return { mm, base, pattern };
}

/** One access per page of [base, base + len) (reads, or writes). */
function perPage(base: number, len: number, write = false) {
  const acc: { addr: number; write: boolean }[] = [];
  for (let a = base; a < base + len; a += PAGE) acc.push({ addr: a, write });
  return acc;
}

/** Every device page of a GPU in use (its root chunks' page counts). */
function usedPages(g: GpuDriver): number {
  let n = 0;
  for (let c = 0; c < g.chunks.count; c++) n += g.chunks.used[c]!;
  return n;
}

function residentPages(g: GpuDriver, mm: Mm, base: number, len: number): number {
  let n = 0;
  for (let a = base; a < base + len; a += PAGE) if (g.isResident(mm, a)) n++;
  return n;
}

/** The machine's invariants, and no device page leaked: every GPU page in use is one the GPU holds for the buffer. */
function checkAfter(m: Machine, mm: Mm, base: number, len: number) {
  expect(checkInvariants(m.kernel!)).toEqual([]);
  for (const d of m.drivers) {
    if (!(d instanceof GpuDriver)) continue;
    expect(usedPages(d), `${d.name}: device pages in use`).toBe(residentPages(d, mm, base, len));
    // A root chunk is allocated exactly when it holds a page (page_free released the emptied ones).
    let allocated = 0;
    for (let c = 0; c < d.chunks.count; c++) if (d.chunks.used[c]! > 0) allocated++;
    expect(d.freePages, `${d.name}: free pages`).toBe(d.nrPages - allocated * 512);
  }
}

function pageBytesEqual(mm: Mm, base: number, pattern: Uint8Array): boolean {
  const got = mm.read(base, pattern.length);
  for (let i = 0; i < pattern.length; i++) if (got[i] !== pattern[i]) return false;
  return true;
}

function tapMigrations(m: Machine) {
  const ends: MigrateEvent[] = [];
  MachineTrace.getHooks(m).migrateEnd.tap("test", (e) => void ends.push({ ...e }));
  const sum = (f: (e: MigrateEvent) => boolean) => ends.filter(f).reduce((s, e) => s + e.bytes, 0);
  return { ends, sum };
}

describe("two GPUs over one buffer: the acceptance scenario (`hmmsim run` of a four-phase spec)", () => {
  it("with a peer link, gpu0's pages move to gpu1 over it: 8 MiB gpu0→gpu1 on nvl0, nothing through the host", async () => {
    const s = await simulate({ spec: twoGpuSpec(true, false, fourPhases), plugins: plugins() });
    expect(s.links.nvl0!.h2d).toMatchObject({ bytes: BUF, from: "gpu0", to: "gpu1" });
    expect(s.links.nvl0!.d2h.bytes).toBe(0);
    // pcie0: the CPU's pages to gpu0; pcie1: gpu1's pages back to the CPU for the last phase. Neither gpu0 → host
    // nor host → gpu1.
    expect(s.links.pcie0).toMatchObject({ h2d: { bytes: BUF }, d2h: { bytes: 0 } });
    expect(s.links.pcie1).toMatchObject({ h2d: { bytes: 0 }, d2h: { bytes: BUF } });
    expect(s.phases.map((p) => (p as { gpu?: { remoteAccesses: number; migratedPages: number } }).gpu ?? null)).toMatchObject([
      null,
      { remoteAccesses: 0, migratedPages: BUF / PAGE },
      { remoteAccesses: 0, migratedPages: BUF / PAGE },
      null,
    ]);
    // Migrations towards a device (h2d) count gpu0's 8 MiB from the host and gpu1's 8 MiB from gpu0.
    expect(s.migrated.h2d).toMatchObject({ pages: (2 * BUF) / PAGE, bytes: 2 * BUF });
    expect(s.migrated.d2h).toMatchObject({ pages: BUF / PAGE, bytes: BUF });
  });

  it("without a peer link, they go through the host: 8 MiB d2h on gpu0's host link, 8 MiB h2d on gpu1's", async () => {
    const s = await simulate({ spec: twoGpuSpec(false, false, fourPhases), plugins: plugins() });
    expect(s.links.nvl0).toBeUndefined();
    expect(s.links.pcie0).toMatchObject({ h2d: { bytes: BUF }, d2h: { bytes: BUF } });
    expect(s.links.pcie1).toMatchObject({ h2d: { bytes: BUF }, d2h: { bytes: BUF } });
    expect(s.phases.map((p) => (p as { gpu?: { remoteAccesses: number; migratedPages: number } }).gpu ?? null)).toMatchObject([
      null,
      { remoteAccesses: 0, migratedPages: BUF / PAGE },
      { remoteAccesses: 0, migratedPages: BUF / PAGE },
      null,
    ]);
  });
});

describe("two GPUs over one buffer, byte for byte", () => {
  for (const peer of [true, false]) {
    it(`${peer ? "peer link" : "no peer link"}: every byte survives CPU → gpu0 → gpu1 → CPU; gpu0 frees its pages; invariants hold`, async () => {
      const m = createMachine({ spec: twoGpuSpec(peer, true), plugins: plugins() });
      const g0 = GpuDriver.of(m, "gpu0");
      const g1 = GpuDriver.of(m, "gpu1");
      expect(m.pgmapOwner("gpu0") === m.pgmapOwner("gpu1")).toBe(peer);
      expect([g0.pgmap.owner, g1.pgmap.owner]).toEqual([m.pgmapOwner("gpu0"), m.pgmapOwner("gpu1")]);
      const { mm, base, pattern } = buffer(m, BUF);
      const { ends, sum } = tapMigrations(m);
      const at: Record<string, unknown> = {};
      m.spawn("app", async () => {
        mm.write(base, pattern);
        await g0.runKernel(mm, perPage(base, BUF, true)); // gpu0 writes: its pages, mapped writable
        at.gpu0 = { g0: residentPages(g0, mm, base, BUF), g1: residentPages(g1, mm, base, BUF), links: linkBytes(m) };
        await g1.runKernel(mm, perPage(base, BUF));
        at.gpu1 = { g0: residentPages(g0, mm, base, BUF), g0Used: usedPages(g0), g1: residentPages(g1, mm, base, BUF), links: linkBytes(m) };
        expect(checkInvariants(m.kernel!)).toEqual([]);
        at.bytes = pageBytesEqual(mm, base, pattern); // the CPU reads it all back (from gpu1)
      });
      await m.run();
      const all = BUF / PAGE;
      expect(at.gpu0).toMatchObject({ g0: all, g1: 0 });
      expect(at.gpu1).toMatchObject({ g0: 0, g0Used: 0, g1: all });
      expect(at.bytes).toBe(true);
      expect(g1.stats.remoteAccesses).toBe(0);
      const l = at.gpu1 as { links: ReturnType<typeof linkBytes> };
      if (peer) {
        expect(l.links).toEqual({ pcie0: { h2d: BUF, d2h: 0 }, pcie1: { h2d: 0, d2h: 0 }, nvl0: { h2d: BUF, d2h: 0 } });
        expect(g1.stats).toMatchObject({ migratedPages: all, peerMigratedPages: all, throughHostPages: 0 });
        // A device → device move: migrateEnd on the destination, dir "h2d", `from` the source device.
        expect(sum((e) => e.device === "gpu1" && e.from === "gpu0" && e.dir === "h2d" && e.reason === "fault")).toBe(BUF);
        expect(sum((e) => e.device === "gpu0" && e.dir === "d2h")).toBe(0); // gpu0 gave nothing back to the host
      } else {
        expect(l.links).toEqual({ pcie0: { h2d: BUF, d2h: BUF }, pcie1: { h2d: BUF, d2h: 0 } });
        expect(g1.stats).toMatchObject({ migratedPages: all, peerMigratedPages: 0, throughHostPages: all });
        // gpu0's migrate_to_ram (through hmm_range_fault's do_swap_page), then RAM → gpu1.
        expect(sum((e) => e.device === "gpu0" && e.dir === "d2h" && e.reason === "cpu-fault")).toBe(BUF);
        expect(sum((e) => e.device === "gpu1" && e.dir === "h2d" && e.from === undefined)).toBe(BUF);
      }
      void ends;
      checkAfter(m, mm, base, BUF);
      await m.dispose();
    });
  }
});

describe("peer access: shouldMigrate false over a peer link", () => {
  it("gpu1 maps gpu0's pages remotely; its accesses cross the peer link, not a host link", async () => {
    const m = createMachine({ spec: twoGpuSpec(true, true), plugins: plugins() });
    Policy.getHooks(m).shouldMigrate.tap({ name: "stay", stage: POLICY_STAGE_OVERRIDE }, (q) => (q.device === "gpu1" ? false : undefined));
    const g0 = GpuDriver.of(m, "gpu0");
    const g1 = GpuDriver.of(m, "gpu1");
    const { mm, base, pattern } = buffer(m, BUF);
    let before: ReturnType<typeof linkBytes> = {};
    let after: ReturnType<typeof linkBytes> = {};
    let entry: ReturnType<GpuDriver["entry"]> = null;
    let bytesOk = false;
    m.spawn("app", async () => {
      mm.write(base, pattern);
      await g0.runKernel(mm, perPage(base, BUF, true));
      before = linkBytes(m);
      await g1.runKernel(mm, [...perPage(base, BUF), ...perPage(base, BUF)]); // two reads of every page
      after = linkBytes(m);
      entry = g1.entry(mm, base);
      expect(residentPages(g0, mm, base, BUF)).toBe(BUF / PAGE); // the pages stayed on gpu0
      bytesOk = pageBytesEqual(mm, base, pattern);
    });
    await m.run();
    const accesses = (2 * BUF) / PAGE;
    expect(g1.stats).toMatchObject({ remoteAccesses: accesses, peerRemoteAccesses: accesses, migratedPages: 0 });
    // Each remote read moves accessBytes (128 B) gpu0 → gpu1 over nvl0; the host links carry nothing for them.
    expect(after.nvl0!.h2d - before.nvl0!.h2d).toBe(accesses * 128);
    expect(after.nvl0!.d2h - before.nvl0!.d2h).toBe(0);
    expect(after.pcie0).toEqual(before.pcie0);
    expect(after.pcie1).toEqual(before.pcie1);
    // gpu1's entry is remote and holds gpu0's device pfn (hmm_range_fault reported gpu0's page: one owner).
    expect(entry).toMatchObject({ valid: true, remote: true });
    expect((entry as { pfn: number } | null)!.pfn - g0.startPfn).toBeGreaterThanOrEqual(0);
    expect((entry as { pfn: number } | null)!.pfn - g0.startPfn).toBeLessThan(g0.nrPages);
    expect(bytesOk).toBe(true);
    // The CPU took the pages back: gpu1's peer mappings went with gpu0's migrate_to_ram invalidations.
    expect(g1.entry(mm, base)).toBeNull();
    checkAfter(m, mm, base, BUF);
    await m.dispose();
  });
});

describe("a GPU and an FPGA over one buffer", () => {
  it("GPU then FPGA then CPU: the FPGA's faults bring gpu0's pages back through the host; every byte survives", async () => {
    const m = createMachine({ spec: twoGpuSpec(false, true, undefined, "fpga"), plugins: plugins() });
    const g0 = GpuDriver.of(m, "gpu0");
    const f0 = FpgaDriver.of(m, "fpga0");
    expect(f0.pgmap.owner).toBe(m.pgmapOwner("fpga0"));
    expect(m.pgmapOwner("fpga0")).not.toBe(m.pgmapOwner("gpu0"));
    const { mm, base, pattern } = buffer(m, BUF);
    let bytesOk = false;
    let mid: ReturnType<typeof linkBytes> = {};
    m.spawn("app", async () => {
      mm.write(base, pattern);
      await g0.runKernel(mm, perPage(base, BUF, true));
      await f0.runJob(mm, perPage(base, BUF));
      mid = linkBytes(m);
      expect(residentPages(g0, mm, base, BUF)).toBe(0);
      bytesOk = pageBytesEqual(mm, base, pattern);
    });
    await m.run();
    expect(bytesOk).toBe(true);
    // gpu0 → host on gpu0's link (its migrate_to_ram, faulted by the FPGA driver's hmm_range_fault).
    expect(mid.pcie0).toEqual({ h2d: BUF, d2h: BUF });
    expect(usedPages(g0)).toBe(0);
    checkAfter(m, mm, base, BUF);
    await m.dispose();
  });
});

describe("a producer/consumer pipeline: gpu0 writes, gpu1 reads, twice", () => {
  for (const peer of [true, false]) {
    it(`${peer ? "over the peer link" : "through the host"}`, async () => {
      const m = createMachine({ spec: twoGpuSpec(peer, true), plugins: plugins() });
      const g0 = GpuDriver.of(m, "gpu0");
      const g1 = GpuDriver.of(m, "gpu1");
      const { mm, base, pattern } = buffer(m, BUF);
      const rounds: ReturnType<typeof linkBytes>[] = [];
      let bytesOk = false;
      m.spawn("app", async () => {
        mm.write(base, pattern);
        for (let r = 0; r < 2; r++) {
          await g0.runKernel(mm, perPage(base, BUF, true)); // produce: the pages come to gpu0 (from the host, then from gpu1)
          await g1.runKernel(mm, perPage(base, BUF)); // consume
          expect(residentPages(g1, mm, base, BUF)).toBe(BUF / PAGE);
          expect(usedPages(g0)).toBe(0);
          rounds.push(linkBytes(m));
        }
        bytesOk = pageBytesEqual(mm, base, pattern);
      });
      await m.run();
      expect(bytesOk).toBe(true);
      if (peer) {
        expect(rounds).toEqual([
          { pcie0: { h2d: BUF, d2h: 0 }, pcie1: { h2d: 0, d2h: 0 }, nvl0: { h2d: BUF, d2h: 0 } },
          // round 2: gpu1 → gpu0 (nvl0 d2h: peers[1] → peers[0]) then gpu0 → gpu1 again
          { pcie0: { h2d: BUF, d2h: 0 }, pcie1: { h2d: 0, d2h: 0 }, nvl0: { h2d: 2 * BUF, d2h: BUF } },
        ]);
        expect(g0.stats.peerMigratedPages).toBe(BUF / PAGE);
      } else {
        expect(rounds).toEqual([
          { pcie0: { h2d: BUF, d2h: BUF }, pcie1: { h2d: BUF, d2h: 0 } },
          { pcie0: { h2d: 2 * BUF, d2h: 2 * BUF }, pcie1: { h2d: 2 * BUF, d2h: BUF } },
        ]);
      }
      checkAfter(m, mm, base, BUF);
      await m.dispose();
    });
  }
});
