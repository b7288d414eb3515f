// Scenario tests: the on-demand policy (@hmmsim/policy-on-demand) driving the GPU driver (@hmmsim/driver-gpu):
// what it migrates and which root chunk its LRU evicts. They live here, not in the policy's package, because a
// policy never imports a driver (scripts/check-layers.mjs).
import { describe, expect, it } from "vitest";
import { GpuDriver, GpuDriverPlugin } from "@hmmsim/driver-gpu";
import {
  DuplexLink,
  InterconnectFactory,
  MachineTrace,
  createMachine,
  defaultPlugins,
  type DependencyContainer,
  type MachinePlugin,
} from "@hmmsim/machine";
import { POLICY_STAGE_OVERRIDE, Policy } from "@hmmsim/policy";
import { OnDemandPolicyPlugin } from "@hmmsim/policy-on-demand";

const BLOCK = 2 * 1024 * 1024;
// include/uapi mman values
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

/** Another policy name, served by nobody's taps (so on-demand must stay silent for its devices). */
const other: MachinePlugin = { name: "OtherPolicy", kind: "policy", provides: ["other"], apply() {} };

function machine(policies: string[], policySpec?: object) {
  const m = createMachine({
    spec: {
      cpus: { count: 2 },
      ram: { size: "64MiB" },
      links: [{ name: "l0", kind: "custom", h2dBandwidth: "16GB/s", d2hBandwidth: "16GB/s", alpha: "1us", coherent: false }],
      devices: policies.map((policy, i) => ({ kind: "gpu", name: `gpu${i}`, memory: "4MiB", link: "l0", policy, ...(i === 0 && policySpec ? { policySpec } : {}) })),
    },
    plugins: [...defaultPlugins(), link, new GpuDriverPlugin(), new OnDemandPolicyPlugin(), other],
  });
  return { m, gpu: GpuDriver.of(m, "gpu0") };
}

describe("the on-demand policy on the GPU driver", () => {
  async function lruRun(pages: [number, number][]) {
    const { m, gpu } = machine(["on-demand"]);
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
      kind: "exporter",
      apply: (mm) => void Policy.getHooks(mm).shouldMigrate.tap({ name: "remote", stage: POLICY_STAGE_OVERRIDE }, () => false),
    };
    const m = createMachine({
      spec: {
        cpus: { count: 2 },
        ram: { size: "64MiB" },
        links: [{ name: "l0", kind: "custom", h2dBandwidth: "16GB/s", d2hBandwidth: "16GB/s", alpha: "1us" }],
        devices: [{ kind: "gpu", name: "gpu0", memory: "4MiB", link: "l0" }],
      },
      plugins: [...defaultPlugins(), link, new GpuDriverPlugin(), new OnDemandPolicyPlugin(), remote],
    });
    const gpu = GpuDriver.of(m, "gpu0");
    const mm = m.kernel!.createMm();
    const addr = mm.mmap({ length: 4096, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    m.spawn("app", async () => void (await gpu.runKernel(mm, [{ addr, write: true }], { warps: 1 })));
    await m.run();
    expect(gpu.stats.migratedPages + gpu.stats.populatedPages).toBe(0);
    expect(gpu.entry(mm, addr)!.remote).toBe(true);
  });
});
