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
import { SpecError } from "./machine-spec.js";
import { testPlugins } from "./testing/test-link.js";

const SPEC = {
  seed: 3,
  cpus: { count: 16, activeCores: 16 },
  ram: { size: "64MiB" },
  links: [{ name: "l0", kind: "custom", h2dBandwidth: "1GB/s", d2hBandwidth: "1GB/s", alpha: "1us", coherent: false }],
  devices: [{ kind: "gpu", name: "gpu0", memory: "16MiB", link: "l0" }],
};


const plugins = () => [...defaultPlugins(), ...testPlugins()];
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
    MachineTrace.getHooks(b).eviction.call({ device: "gpu0", mm: null, start: 0, npages: 1, bytes: 4096, timePs: 0 });
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

  it("builds services with explicit @inject tokens in the machine's container; apply finds them", async () => {
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
    }
    const plugin: MachinePlugin = {
      name: "ProbePlugin",
      kind: "exporter",
      register: (c) => c.register(MachineComponent, { useClass: Probe }),
      apply: (m) => void (m.component(Probe)!.attached = m),
    };
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
      kind: "exporter",
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
    expect(() => createMachine({ spec: SPEC, ...noKernel })).toThrowError(SpecError);
    expect(() => createMachine({ spec: SPEC, ...noKernel })).toThrowError(/links\[0\]\.kind: no plugin provides link kind "custom" \(available: none/);
    expect(() => createMachine({ spec: SPEC, plugins: [new StatsPlugin(), ...testPlugins()], ...noKernel })).toThrowError(/no CostModel registered/);
    expect(() => createMachine({ spec: SPEC, plugins: [...plugins(), new StatsPlugin()], ...noKernel })).toThrowError(MachineCompositionError);
    expect(() => createMachine({ spec: SPEC, plugins: [...plugins(), new StatsPlugin()], ...noKernel })).toThrowError('plugins[5] ("StatsPlugin"): duplicate plugin name');
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
    t.migrateEnd.call({ device: "gpu0", mm: null, dir: "h2d", start: 0, end: 8192, npages: 2, bytes: 8192, reason: "fault", timePs: 0 });
    t.migrateEnd.call({ device: "gpu0", mm: null, dir: "d2h", start: 0, end: 4096, npages: 1, bytes: 4096, reason: "cpu-fault", timePs: 0 });
    t.eviction.call({ device: "gpu0", mm: null, start: 0, npages: 512, bytes: 2 << 20, timePs: 0 });
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
    const m = createMachine({ spec: SPEC, plugins: [new CostModelPlugin(), ...testPlugins()], ...noKernel });
    expect(() => getMachineStats(m)).toThrowError(/add new StatsPlugin\(\)/);
    await m.dispose();
  });
});

describe("plugin registry: names in the spec resolve to plugins", () => {
  const policy = (name: string, provides: string[], issues?: MachinePlugin["componentSpecIssues"]): MachinePlugin => ({ name, kind: "policy", provides, componentSpecIssues: issues, apply: () => {} });
  const spec = (device: object) => ({ ...SPEC, devices: [{ ...SPEC.devices[0], ...device }] });

  function specError(f: () => unknown): SpecError {
    try {
      f();
    } catch (e) {
      if (e instanceof SpecError) return e;
      throw e;
    }
    throw new Error("expected a SpecError");
  }

  it("an unknown policy, driver or link kind is one SpecError naming the device and what is available", () => {
    const e = specError(() =>
      createMachine({
        spec: { ...SPEC, links: [{ ...SPEC.links[0], kind: "warp-drive" }], devices: [{ ...SPEC.devices[0], policy: "typo", kind: "tpu" }] },
        plugins: plugins(),
        ...noKernel,
      }),
    );
    expect(e.issues).toEqual([
      { path: "links[0].kind", message: expect.stringMatching(/^no plugin provides link kind "warp-drive" \(available: custom;/) },
      { path: "devices[0].driver", message: expect.stringMatching(/^no plugin provides driver "tpu" \(the default driver of kind "tpu"; available: gpu;/) },
      { path: "devices[0].policy", message: expect.stringMatching(/^no plugin provides policy "typo" \(available: on-demand;/) },
    ]);
  });

  it("two plugins claiming one name of a kind is a composition error naming both", () => {
    expect(() => createMachine({ spec: SPEC, plugins: [...plugins(), policy("Other", ["on-demand"])], ...noKernel })).toThrowError(
      /policy "on-demand" is provided by two plugins, "TestPolicyPlugin" and "Other"/,
    );
    expect(() => createMachine({ spec: SPEC, plugins: [...plugins(), { name: "X", kind: "exporter", provides: ["a"], apply() {} }], ...noKernel })).toThrowError(
      /only driver, policy and interconnect plugins provide names/,
    );
    expect(() => createMachine({ spec: SPEC, plugins: [...plugins(), { name: "Y", apply() {} } as unknown as MachinePlugin], ...noKernel })).toThrowError(/a plugin needs a kind/);
  });

  it("a policySpec is validated by its policy plugin, reported with its path together with the schema's errors", () => {
    const threshold = policy("Thresh", ["thresh"], (ref) => {
      const s = (ref.spec ?? {}) as Record<string, unknown>;
      const out = Object.keys(s).filter((k) => k !== "threshold").map((k) => ({ path: k, message: "unknown field" }));
      if (s.threshold !== undefined && !(typeof s.threshold === "number" && s.threshold > 0 && s.threshold <= 1)) out.push({ path: "threshold", message: "must be in (0, 1]" });
      return out;
    });
    const e = specError(() =>
      createMachine({ spec: { ...spec({ policy: "thresh", policySpec: { threshold: 2, bogus: 1 } }), ram: { size: "1 gig" } }, plugins: [...plugins(), threshold], ...noKernel }),
    );
    expect(e.issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
      'ram.size: expected a size like "16GiB", got "1 gig"',
      "devices[0].policySpec.bogus: unknown field",
      "devices[0].policySpec.threshold: must be in (0, 1]",
    ]);
    const m = createMachine({ spec: spec({ policy: "thresh", policySpec: { threshold: 0.5 } }), plugins: [...plugins(), threshold], ...noKernel });
    expect(m.device("gpu0").policySpec).toEqual({ threshold: 0.5 });
    expect(m.plugin("Thresh")).toBe(threshold);
    void m.dispose();
  });

  it("a plugin without componentSpecIssues takes no policySpec; a link plugin sees its own fields", () => {
    expect(specError(() => createMachine({ spec: spec({ policySpec: { a: 1 } }), plugins: plugins(), ...noKernel })).issues).toEqual([
      { path: "devices[0].policySpec", message: "plugin TestPolicyPlugin takes no policySpec" },
    ]);
    const seen: unknown[] = [];
    const link: MachinePlugin = {
      name: "Warp",
      kind: "interconnect",
      provides: ["warp"],
      componentSpecIssues: (ref) => {
        seen.push(ref.spec);
        return typeof (ref.spec as { warpFactor?: unknown }).warpFactor === "number" ? [] : [{ path: "warpFactor", message: "required: a number" }];
      },
      apply() {},
    };
    const bad = { ...SPEC, links: [{ name: "l0", kind: "warp", alpha: "1us" }] };
    expect(specError(() => createMachine({ spec: bad, plugins: [...plugins(), link], ...noKernel })).issues).toEqual([{ path: "links[0].warpFactor", message: "required: a number" }]);
    expect(seen[0]).toEqual({ name: "l0", kind: "warp", alpha: 1_000_000 });
  });

  it("a device whose driver plugin built no driver is a composition error; machine.driver finds the built one", async () => {
    const lazy: MachinePlugin = { name: "Lazy", kind: "driver", provides: ["lazy"], apply() {} };
    expect(() => createMachine({ spec: spec({ kind: "lazy" }), plugins: [...plugins(), lazy], ...noKernel })).toThrowError(/driver plugin Lazy provides driver "lazy" but built no driver/);
    const m = createMachine({ spec: SPEC, plugins: plugins(), ...noKernel });
    expect(m.driver("gpu0").driverName).toBe("gpu");
    expect(() => m.driver("nope")).toThrowError(MachineError);
    expect(m.plugins.available("driver")).toEqual(["gpu"]);
    await m.dispose();
  });

  it("createMachine(undefined) and a missing spec are typed errors, not TypeErrors", () => {
    expect(() => createMachine(undefined as never)).toThrowError(MachineCompositionError);
    expect(() => createMachine({} as never)).toThrowError(SpecError);
  });
});
