import { describe, expect, it } from "vitest";
import { GPU_POLICY_STAGE_OVERRIDE, GpuDriver, GpuDriverPlugin } from "@hmmsim/driver-gpu";
import {
  DuplexLink,
  InterconnectFactory,
  MachineTrace,
  createMachine,
  defaultPlugins,
  type DependencyContainer,
  type MachinePlugin,
} from "@hmmsim/machine";
import { OnDemandPolicyPlugin, PLUGIN_NAME } from "./on-demand.js";

const BLOCK = 2 * 1024 * 1024;
// include/uapi mman values (@hmmsim/core is not a dependency of this package)
const PROT_READ = 0x1;
const PROT_WRITE = 0x2;
const MAP_PRIVATE = 0x02;
const MAP_ANONYMOUS = 0x20;

const link: MachinePlugin = {
  name: "TestLink",
  register(c: DependencyContainer) {
    c.register(InterconnectFactory, {
      useValue: {
        name: "TestLink",
        accepts: () => true,
        create: (l, ctx) => new DuplexLink(l.name, l.kind, { h2dBandwidth: l.h2dBandwidth!, d2hBandwidth: l.d2hBandwidth!, alpha: l.alpha!, sharing: "fifo" }, false, ctx),
      },
    });
  },
  apply() {},
};

function machine(policy: string, extra: MachinePlugin[] = [], spec: object = {}) {
  const m = createMachine({
    spec: {
      cpus: { count: 2 },
      ram: { size: "64MiB" },
      links: [{ name: "l0", kind: "custom", h2dBandwidth: "16GB/s", d2hBandwidth: "16GB/s", alpha: "1us", coherent: false }],
      devices: [{ kind: "gpu", name: "gpu0", memory: "4MiB", link: "l0", policy }],
    },
    plugins: [...defaultPlugins(), link, new GpuDriverPlugin(), new OnDemandPolicyPlugin(spec), ...extra],
  });
  return { m, gpu: GpuDriver.of(m, "gpu0") };
}

describe("OnDemandPolicyPlugin", () => {
  it("answers shouldMigrate = true and selectVictim = LRU for on-demand devices", () => {
    const { m } = machine("on-demand");
    const h = GpuDriver.getHooks(m);
    expect(h.shouldMigrate.taps.map((t) => t.name)).toEqual([PLUGIN_NAME]);
    expect(h.shouldMigrate.call({ device: "gpu0" } as never)).toBe(true);
    expect(h.shouldMigrate.call({ device: "other" } as never)).toBeUndefined();
    expect(h.prefetchRange.taps).toHaveLength(0); // on demand: the range stays the faulted page
  });

  it("does not answer for a device with another policy unless named in its spec", () => {
    expect(GpuDriver.getHooks(machine("tree").m).shouldMigrate.call({ device: "gpu0" } as never)).toBeUndefined();
    expect(GpuDriver.getHooks(machine("tree", [], { devices: ["gpu0"] }).m).shouldMigrate.call({ device: "gpu0" } as never)).toBe(true);
    expect(() => new OnDemandPolicyPlugin({ bogus: 1 } as never)).toThrow(/bogus/);
  });

  async function lruRun(pages: [number, number][]) {
    const { m, gpu } = machine("on-demand");
    const mm = m.kernel!.createMm();
    const raw = mm.mmap({ length: 4 * BLOCK, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const base = Math.ceil(raw / BLOCK) * BLOCK;
    const ev: number[] = [];
    MachineTrace.getHooks(m).eviction.tap("t", (e) => void ev.push((e.start - base) / BLOCK));
    const acc = pages.map(([b, p]) => ({ addr: base + b * BLOCK + p * 4096, write: false }));
    m.spawn("app", async () => void (await gpu.runKernel(mm, acc, { warps: 1 })));
    await m.run();
    return { ev, migrated: gpu.stats.migratedPages + gpu.stats.populatedPages };
  }

  it("migrates only the faulted page; a device hit does not refresh recency, so the LRU victim is block 0", async () => {
    // device memory = 2 root chunks: blocks 0, 1 fill it; block 0 page 0 again is a hit; block 2 evicts
    expect(await lruRun([[0, 0], [1, 1], [0, 0], [2, 3]])).toEqual({ ev: [0], migrated: 3 });
  });

  it("a migration into a chunk refreshes its recency (UVM: recency by allocation / migration-in), so block 1 goes", async () => {
    expect(await lruRun([[0, 0], [1, 1], [0, 2], [2, 3]])).toEqual({ ev: [1], migrated: 4 });
  });

  it("a policy tapped at the override stage answers before on-demand", async () => {
    const remote: MachinePlugin = {
      name: "remote",
      apply: (mm) => void GpuDriver.getHooks(mm).shouldMigrate.tap({ name: "remote", stage: GPU_POLICY_STAGE_OVERRIDE }, () => false),
    };
    const { m, gpu } = machine("on-demand", [remote]);
    const mm = m.kernel!.createMm();
    const addr = mm.mmap({ length: 4096, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    m.spawn("app", async () => void (await gpu.runKernel(mm, [{ addr, write: true }], { warps: 1 })));
    await m.run();
    expect(gpu.stats.migratedPages + gpu.stats.populatedPages).toBe(0);
    expect(gpu.entry(mm, addr)!.remote).toBe(true);
  });
});
