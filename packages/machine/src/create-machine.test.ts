import { describe, expect, it } from "vitest";
import { inject, injectable } from "tsyringe";
import { PS_PER_NS, PS_PER_US } from "@hmmsim/engine";
import { CostModelPlugin } from "./cost-model-plugin.js";
import { MachineCompositionError, createMachine, defaultPlugins } from "./create-machine.js";
import { Machine, MachineError } from "./machine.js";
import type { MachineComponent as Component, MachinePlugin } from "./plugin.js";
import { StatsPlugin, getMachineStats } from "./stats-plugin.js";
import { CostLedger, CostModel, Engine, MachineComponent, MachineSpec } from "./tokens.js";
import { MachineTrace } from "./trace-points.js";
import { TestLinkPlugin } from "./test-link.js";

const SPEC = {
  seed: 3,
  cpus: { count: 16, activeCores: 16 },
  ram: { size: "64MiB" },
  links: [{ name: "l0", kind: "custom", h2dBandwidth: "1GB/s", d2hBandwidth: "1GB/s", alpha: "1us", coherent: false }],
  devices: [{ kind: "gpu", name: "gpu0", memory: "16MiB", link: "l0" }],
};


const plugins = () => [...defaultPlugins(), new TestLinkPlugin()];
const noKernel = { createKernel: () => null };

describe("createMachine", () => {
  it("gives each machine its own container: two machines share nothing", async () => {
    const a = createMachine({ spec: SPEC, plugins: plugins(), ...noKernel });
    const b = createMachine({ spec: SPEC, plugins: plugins(), ...noKernel });
    expect(a.engine).not.toBe(b.engine);
    expect(a.ledger).not.toBe(b.ledger);
    expect(a.costs).not.toBe(b.costs);
    expect(a.links.get("l0")).not.toBe(b.links.get("l0"));
    expect(a.hooks).not.toBe(b.hooks);
    expect(MachineTrace.getHooks(a)).not.toBe(MachineTrace.getHooks(b));
    expect(MachineTrace.getHooks(a)).toBe(MachineTrace.getHooks(a));
    // a tap on one machine is invisible to the other
    let seen = 0;
    MachineTrace.getHooks(a).eviction.tap("t", () => seen++);
    MachineTrace.getHooks(b).eviction.call({ device: "gpu0", start: 0, npages: 1, bytes: 4096, timePs: 0 });
    expect(seen).toBe(0);
    // time charged in one machine does not move the other
    a.spawn("t", () => {
      a.ledger.charge("CPU_FAULT", 3);
    });
    await a.run();
    await b.run();
    expect(a.now).toBe(3 * PS_PER_US);
    expect(b.now).toBe(0);
    expect(getMachineStats(a).costCount.CPU_FAULT).toBe(3);
    expect(getMachineStats(b).costCount.CPU_FAULT).toBe(0);
    await a.dispose();
    await b.dispose();
  });

  it("builds services with explicit @inject tokens in the machine's container and attaches components", async () => {
    @injectable()
    class Probe implements Component {
      attached: Machine | null = null;
      constructor(
        @inject(Engine) readonly engine: unknown,
        @inject(MachineSpec) readonly spec: { seed: number },
        @inject(CostModel) readonly costs: unknown,
        @inject(CostLedger) readonly ledger: unknown,
        @inject(Machine) readonly machine: Machine,
      ) {}
      attach(m: Machine) {
        this.attached = m;
      }
    }
    const plugin: MachinePlugin = { name: "ProbePlugin", register: (c) => c.register(MachineComponent, { useClass: Probe }), apply: () => {} };
    const m = createMachine({ spec: SPEC, plugins: [...plugins(), plugin], ...noKernel });
    const p = m.component(Probe)!;
    expect(p.engine).toBe(m.engine);
    expect(p.spec.seed).toBe(3);
    expect(p.costs).toBe(m.costs);
    expect(p.ledger).toBe(m.ledger);
    expect(p.machine).toBe(m);
    expect(p.attached).toBe(m);
    expect(m.engine.seed).toBe(3);
    await m.dispose();
  });

  it("runs the lifecycle in order and freezes the hooks", async () => {
    const log: string[] = [];
    const plugin: MachinePlugin = {
      name: "Order",
      register: () => log.push("register"),
      apply: (m) => {
        log.push("apply");
        m.hooks.init.tap("Order", () => log.push("init"));
        m.hooks.beforeRun.tapPromise("Order", async (mm) => {
          log.push("beforeRun");
          mm.spawn("w", async () => {
            await mm.engine.sleep(5);
          });
        });
        m.hooks.afterRun.tapPromise("Order", async (_mm, r) => {
          log.push(`afterRun ${r.simulatedPs}`);
        });
        m.hooks.dispose.tap("Order", () => log.push("dispose"));
      },
    };
    const m = createMachine({ spec: SPEC, plugins: [...plugins(), plugin], ...noKernel });
    expect(Object.isFrozen(m.hooks)).toBe(true);
    expect(Object.isFrozen(MachineTrace.getHooks(m))).toBe(true);
    expect(() => {
      (m.hooks as { init: unknown }).init = null;
    }).toThrow(TypeError);
    const r = await m.run();
    expect(r.simulatedPs).toBe(5);
    await m.dispose();
    await m.dispose(); // idempotent
    expect(log).toEqual(["register", "apply", "init", "beforeRun", "afterRun 5", "dispose"]);
    await expect(m.run()).rejects.toThrow(MachineError);
  });

  it("names what is missing when it cannot compose the machine", () => {
    expect(() => createMachine({ spec: SPEC, ...noKernel })).toThrowError(MachineCompositionError);
    expect(() => createMachine({ spec: SPEC, ...noKernel })).toThrowError(/links\[0\] \("l0", kind custom\): no interconnect plugin accepts it/);
    expect(() => createMachine({ spec: SPEC, plugins: [new StatsPlugin(), new TestLinkPlugin()], ...noKernel })).toThrowError(/no CostModel registered/);
    expect(() => createMachine({ spec: SPEC, plugins: [...plugins(), new StatsPlugin()], ...noKernel })).toThrowError('plugins[3]: duplicate plugin "StatsPlugin"');
    expect(() => createMachine({ spec: { cpus: { count: 1 } }, ...noKernel })).toThrowError(/ram: required/);
  });

  it("later plugins replace a cost model registered by an earlier one", async () => {
    const m = createMachine({ spec: SPEC, plugins: [...plugins(), new CostModelPluginAlt()], ...noKernel });
    expect(m.costs.cost("CPU_FAULT", 2)).toBe(2 * 7 * PS_PER_NS);
    expect(m.costs.cost("TLB_SHOOTDOWN", 1)).toBe(PS_PER_US + 15 * 1.5 * PS_PER_US);
    await m.dispose();
  });
});

class CostModelPluginAlt extends CostModelPlugin {
  override readonly name = "CostModelPluginAlt";
  constructor() {
    super({ cpuFaultPs: 7 * PS_PER_NS });
  }
}

describe("costs charged to the current task", () => {
  it("accumulate per task and are slept at settle(); spawn() settles at the end", async () => {
    const m = createMachine({ spec: SPEC, plugins: plugins(), ...noKernel });
    const seen: Record<string, number> = {};
    m.spawn("a", async () => {
      m.ledger.charge("PAGE_ZERO", 2); // 2 × 409.6 ns
      expect(m.ledger.pendingPs).toBe(819_200);
      await m.engine.sleep(0); // another task runs here: its charges are its own
      expect(m.ledger.pendingPs).toBe(819_200);
      await m.settle();
      seen.a = m.now;
    });
    m.spawn("b", () => {
      m.ledger.charge("TLB_SHOOTDOWN", 1); // 1 µs + 15 × 1.5 µs
    });
    m.spawn("c", async () => {
      await m.engine.sleep(100);
      seen.c = m.now;
    });
    m.ledger.charge("CPU_FAULT", 1); // outside any task
    const r = await m.run();
    expect(seen).toEqual({ a: 819_200, c: 100 });
    expect(r.simulatedPs).toBe(23.5 * PS_PER_US);
    expect(r.unsettledPs).toBe(0);
    expect(m.ledger.detachedPs).toBe(PS_PER_US);
    expect(getMachineStats(m).costPs).toMatchObject({ PAGE_ZERO: 819_200, TLB_SHOOTDOWN: 23.5 * PS_PER_US, CPU_FAULT: PS_PER_US });
    await m.dispose();
  });

  it("chargeTransfer: synchronous code queues a DMA that the task performs on the link at settle()", async () => {
    const m = createMachine({ spec: SPEC, plugins: plugins(), ...noKernel });
    const link = m.link("l0");
    const seen: Record<string, number> = {};
    m.spawn("faulting cpu", async () => {
      m.ledger.charge("PTE_UPDATE", 1); // 10 ns
      m.ledger.chargeTransfer(link, "d2h", 1000); // α 1 µs + 1000 B at 1 GB/s = 1 µs
      expect(m.ledger.pendingPs).toBe(10 * PS_PER_NS);
      expect(m.ledger.hasPending).toBe(true);
      await m.settle();
      expect(m.ledger.hasPending).toBe(false);
      seen.cpu = m.now;
    });
    m.spawn("other dma", async () => {
      await m.engine.sleep(10 * PS_PER_NS);
      await link.transfer("d2h", 1000); // contends for the same direction: both data phases share it
      seen.other = m.now;
    });
    m.ledger.chargeTransfer(link, "h2d", 1000); // outside any task: its uncontended time is detached
    await m.run();
    // both start their data phase at 10 ns + 1 µs and share 1 GB/s: each finishes at 10 ns + 1 µs + 2 µs
    expect(seen).toEqual({ cpu: 10 * PS_PER_NS + 3 * PS_PER_US, other: 10 * PS_PER_NS + 3 * PS_PER_US });
    expect(link.stats("d2h")).toMatchObject({ bytes: 2000, transfers: 2 });
    expect(m.ledger.detachedPs).toBe(2 * PS_PER_US);
    expect(getMachineStats(m).dma.d2h).toMatchObject({ transfers: 2, bytes: 2000 });
    await m.dispose();
  });

  it("reports time a task charged and never settled", async () => {
    const m = createMachine({ spec: SPEC, plugins: plugins(), ...noKernel });
    m.engine.spawn("forgetful", () => {
      m.ledger.charge("PTE_UPDATE", 5);
    });
    const r = await m.run();
    expect(r.unsettledPs).toBe(50 * PS_PER_NS);
    expect(r.simulatedPs).toBe(0);
    await m.dispose();
  });
});

describe("stats plugin", () => {
  it("counts trace-point events and reads link busy time per direction", async () => {
    const m = createMachine({ spec: SPEC, plugins: plugins(), ...noKernel });
    const t = MachineTrace.getHooks(m);
    t.pageFault.call({ source: "cpu", device: null, mm: null, address: 0, write: true, flags: 1, ret: 0, timePs: 0 });
    t.pageFault.call({ source: "device", device: "gpu0", mm: null, address: 0, write: false, flags: 0, ret: 0, timePs: 0 });
    t.deviceFaultBatch.call({ device: "gpu0", faults: 40, pages: 12, startPs: 0, endPs: 1 });
    t.invalidate.call({ mm: null, start: 0, end: 4096, event: 6, owner: null, timePs: 0 });
    t.migrateEnd.call({ device: "gpu0", dir: "h2d", start: 0, end: 8192, npages: 2, bytes: 8192, reason: "fault", timePs: 0 });
    t.migrateEnd.call({ device: "gpu0", dir: "d2h", start: 0, end: 4096, npages: 1, bytes: 4096, reason: "cpu-fault", timePs: 0 });
    t.eviction.call({ device: "gpu0", start: 0, npages: 512, bytes: 2 << 20, timePs: 0 });
    m.spawn("dma", async () => {
      await m.dma.dma("gpu0", "h2d", 1000); // 1 µs α + 1000 B at 1 GB/s = 1 µs
    });
    await m.run();
    const s = getMachineStats(m);
    expect(s).toMatchObject({
      cpuFaults: 1,
      deviceFaults: 1,
      deviceFaultBatches: 1,
      batchedFaults: 40,
      invalidations: 1,
      migrated: { h2d: { count: 1, pages: 2, bytes: 8192 }, d2h: { count: 1, pages: 1, bytes: 4096 } },
      evictions: { count: 1, pages: 512, bytes: 2 << 20 },
      dma: { h2d: { transfers: 1, bytes: 1000 }, d2h: { transfers: 0, bytes: 0 } },
      links: { l0: { h2d: { busyPs: PS_PER_US, bytes: 1000, transfers: 1 }, d2h: { busyPs: 0, bytes: 0, transfers: 0 } } },
      simulatedPs: 2 * PS_PER_US,
    });
    expect(m.dma.dmaTime("gpu0", "d2h", 1000)).toBe(2 * PS_PER_US);
    await m.dispose();
  });

  it("without the stats plugin getMachineStats says what to add", async () => {
    const m = createMachine({ spec: SPEC, plugins: [new CostModelPlugin(), new TestLinkPlugin()], ...noKernel });
    expect(() => getMachineStats(m)).toThrowError(/add new StatsPlugin\(\)/);
    await m.dispose();
  });
});
