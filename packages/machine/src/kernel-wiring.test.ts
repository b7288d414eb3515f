import { describe, expect, it } from "vitest";
import { Engine } from "@hmmsim/engine";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, createKernel } from "@hmmsim/core";
import { TaskCostLedger } from "./cost-ledger.js";
import type { CostKind, CostModel } from "./cost-model.js";
import { createMachine } from "./create-machine.js";
import { CostModelPlugin } from "./cost-model-plugin.js";
import { wireKernel } from "./kernel-wiring.js";
import { StatsPlugin, getMachineStats } from "./stats-plugin.js";
import { MachineTrace, type PageFaultEvent } from "./trace-points.js";

describe("wireKernel", () => {
  it("maps core cost kinds onto the machine's and charges the ledger", () => {
    const seen: [CostKind, number][] = [];
    const model: CostModel = { cost: (k, n) => (seen.push([k, n]), n * 10) };
    const ledger = new TaskCostLedger(model, new Engine());
    const k = createKernel({ ramBytes: 4 << 20 });
    wireKernel(k, ledger, { now: 0 });
    k.charge!("cpuFault", 1);
    k.charge!("pageZero", 2);
    k.charge!("pageCopy", 3);
    k.charge!("pteUpdate", 4);
    k.charge!("tlbShootdown", 5);
    expect(seen).toEqual([["CPU_FAULT", 1], ["PAGE_ZERO", 2], ["PAGE_COPY", 3], ["PTE_UPDATE", 4], ["TLB_SHOOTDOWN", 5]]);
    expect(ledger.detachedPs).toBe(150);
  });

  it("sets a trace-point slot only once its hook is tapped", () => {
    const owner = { now: 42 };
    const k = createKernel({ ramBytes: 4 << 20 });
    wireKernel(k, new TaskCostLedger({ cost: () => 0 }, new Engine()), owner);
    expect(k.tracepoints.pageFault).toBeNull();
    MachineTrace.getHooks(owner).pageFault.tap("t", () => {});
    expect(k.tracepoints.pageFault).not.toBeNull();
    expect(k.tracepoints.invalidate).toBeNull();
  });

  it("a CPU write fault in a machine's task is traced, counted and charged to that task", async () => {
    const m = createMachine({ spec: { cpus: { count: 2 }, ram: { size: "8MiB" }, bytes: "off" }, plugins: [new CostModelPlugin(), new StatsPlugin()] });
    const faults: PageFaultEvent[] = [];
    MachineTrace.getHooks(m).pageFault.tap("test", (e) => faults.push(e));
    const mm = m.kernel!.createMm();
    const addr = mm.mmap({ length: 4096, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    let pending = 0;
    m.spawn("cpu0", () => {
      mm.touch(addr, true);
      pending = m.ledger.pendingPs;
    });
    const r = await m.run();
    expect(faults).toHaveLength(1);
    expect(faults[0]).toMatchObject({ source: "cpu", address: addr, write: true });
    const s = getMachineStats(m);
    expect(s.cpuFaults).toBe(1);
    expect(s.costCount.CPU_FAULT).toBe(1);
    expect(pending).toBeGreaterThan(0);
    expect(r.simulatedPs).toBe(pending); // spawn() settled exactly what the fault charged
    expect(pending).toBe(Object.values(s.costPs).reduce((a, b) => a + b, 0));
    await m.dispose();
    expect(m.kernel!.charge).toBeNull();
  });
});
