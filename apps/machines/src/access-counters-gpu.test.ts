// Scenario tests: the access-counters policy (@hmmsim/policy-access-counters) driving the GPU driver's access
// counters (@hmmsim/driver-gpu): a page the policy maps remotely on its fault is counted, and its region migrates
// after N device accesses, not before. They live here because a policy never imports a driver.
import { describe, expect, it } from "vitest";
import { GpuDriver, GpuDriverPlugin } from "@hmmsim/driver-gpu";
import { DuplexLink, InterconnectFactory, MachineTrace, createMachine, defaultPlugins, type DependencyContainer, type MachinePlugin } from "@hmmsim/machine";
import { AccessCountersPolicyPlugin } from "@hmmsim/policy-access-counters";

const BLOCK = 2 * 1024 * 1024;
const KiB = 1024;
const PROT_READ = 0x1;
const PROT_WRITE = 0x2;
const MAP_PRIVATE = 0x02;
const MAP_ANONYMOUS = 0x20;

const link: MachinePlugin = {
  name: "TestLink",
  kind: "interconnect",
  provides: ["custom"],
  register(c: DependencyContainer) {
    c.register(InterconnectFactory, {
      useValue: {
        name: "TestLink",
        create: (l, ctx) => new DuplexLink(l.name, l.kind, { h2dBandwidth: l.h2dBandwidth!, d2hBandwidth: l.d2hBandwidth!, alpha: l.alpha!, sharing: "fifo" }, false, ctx),
      },
    });
  },
  apply() {},
};

/** `accesses` device reads of one page (a region of 64 KiB counts them), with threshold N; what migrated, and why. */
async function run(threshold: number, accesses: number) {
  const m = createMachine({
    spec: {
      cpus: { count: 2 },
      ram: { size: "64MiB" },
      links: [{ name: "l0", kind: "custom", h2dBandwidth: "16GB/s", d2hBandwidth: "16GB/s", alpha: "1us", coherent: false }],
      devices: [{ kind: "gpu", name: "gpu0", memory: "4MiB", link: "l0", policy: "access-counters", policySpec: { granularity: "64KiB", threshold } }],
    },
    plugins: [...defaultPlugins(), link, new GpuDriverPlugin(), new AccessCountersPolicyPlugin()],
  });
  const gpu = GpuDriver.of(m, "gpu0");
  const mm = m.kernel!.createMm();
  const raw = mm.mmap({ length: 2 * BLOCK, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  const base = Math.ceil(raw / BLOCK) * BLOCK;
  const moved: { reason: string; start: number; end: number; npages: number }[] = [];
  MachineTrace.getHooks(m).migrateEnd.tap("t", (e) => void (e.npages > 0 && moved.push({ reason: e.reason, start: e.start - base, end: e.end - base, npages: e.npages })));
  const acc = Array.from({ length: accesses }, () => ({ addr: base + 4096, write: false }));
  m.spawn("app", async () => void (await gpu.runKernel(mm, acc, { warps: 1 })));
  await m.run();
  const s = { ...gpu.stats };
  await m.dispose();
  return { moved, stats: s };
}

describe("the access-counters policy on the GPU driver", () => {
  it("the fault maps the page remotely; fewer than N accesses migrate nothing", async () => {
    const { moved, stats } = await run(8, 7);
    expect(moved).toEqual([]);
    expect(stats.accessCounterNotifications).toBe(0);
  });

  it("the N-th access raises a notification and the policy migrates the region's remotely mapped page", async () => {
    const { moved, stats } = await run(8, 8);
    expect(stats.accessCounterNotifications).toBe(1);
    expect(moved).toEqual([{ reason: "access-counter", start: 4096, end: 8192, npages: 1 }]);
    expect(moved.every((e) => e.end <= 64 * KiB)).toBe(true);
  });
});
