import { describe, expect, it } from "vitest";
import { Engine } from "@hmmsim/engine";
import { TaskCostLedger } from "./cost-ledger.js";
import type { CostKind, CostModel } from "./cost-model.js";
import { type MachineKernel, wireKernel } from "./kernel-wiring.js";
import { MachineTrace } from "./trace-points.js";

function fakeKernel(): MachineKernel {
  return { charge: null, tracepoints: { pageFault: null, invalidate: null } };
}

describe("wireKernel", () => {
  it("maps core cost kinds onto the machine's and charges the ledger", () => {
    const seen: [CostKind, number][] = [];
    const model: CostModel = { cost: (k, n) => (seen.push([k, n]), n * 10) };
    const ledger = new TaskCostLedger(model, new Engine());
    const k = fakeKernel();
    wireKernel(k, ledger, { now: 0 });
    k.charge!("cpuFault", 1);
    k.charge!("pageZero", 2);
    k.charge!("pageCopy", 3);
    k.charge!("pteUpdate", 4);
    k.charge!("tlbShootdown", 5);
    expect(seen).toEqual([["CPU_FAULT", 1], ["PAGE_ZERO", 2], ["PAGE_COPY", 3], ["PTE_UPDATE", 4], ["TLB_SHOOTDOWN", 5]]);
    expect(ledger.detachedPs).toBe(150);
  });

  it("sets a trace-point slot only once its hook is tapped, and routes it", () => {
    const owner = { now: 42 };
    const k = fakeKernel();
    wireKernel(k, new TaskCostLedger({ cost: () => 0 }, new Engine()), owner);
    expect(k.tracepoints.pageFault).toBeNull();
    expect(k.tracepoints.invalidate).toBeNull();
    const faults: unknown[] = [];
    MachineTrace.getHooks(owner).pageFault.tap("t", (e) => faults.push(e));
    expect(k.tracepoints.pageFault).not.toBeNull();
    expect(k.tracepoints.invalidate).toBeNull();
    const pf = k.tracepoints.pageFault as unknown as (mm: unknown, a: number, f: number, r: number) => void;
    pf("mm", 0x1000, 1, 0);
    expect(faults).toEqual([{ source: "cpu", device: null, mm: "mm", address: 0x1000, write: true, flags: 1, ret: 0, timePs: 42 }]);
  });
});
