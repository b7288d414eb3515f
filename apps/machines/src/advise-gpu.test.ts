// Scenario tests: the advise policy (@hmmsim/policy-advise) and the GPU driver's advise API, driven by a workload's
// `advise` phase (cudaMemAdvise over a range of the buffer). The rules are NVIDIA UVM's residency selection
// (uvm_va_block.c `block_select_processor_residency`, [S6]); read-mostly has the meaning HMM can keep coherent (see
// plugins/policies/advise/README.md): a shared read-only mapping, and a write collapses the page to the writer.
// Every figure is simulated (the run summary and the machine's trace points), never wall-clock.
import { describe, expect, it } from "vitest";
import { MMU_NOTIFY_MIGRATE } from "@hmmsim/core";
import { GpuDriverPlugin } from "@hmmsim/driver-gpu";
import { PciePlugin } from "@hmmsim/interconnect-pcie";
import { MachineTrace, defaultPlugins, simulate, type Machine, type MachinePlugin, type RunSummary } from "@hmmsim/machine";
import { AdvisePolicyPlugin } from "@hmmsim/policy-advise";
import { OnDemandPolicyPlugin } from "@hmmsim/policy-on-demand";

const MiB = 1024 * 1024;
const PAGES = (2 * MiB) / 4096;

/** A tool plugin that records the machine's invalidations (mmu_notifier ranges) with the phase they fell in. */
function invalidationSpy(): MachinePlugin & { events: { event: number; start: number; end: number; timePs: number }[] } {
  const events: { event: number; start: number; end: number; timePs: number }[] = [];
  return {
    name: "InvalidationSpy",
    kind: "tool",
    events,
    apply(m: Machine) {
      MachineTrace.getHooks(m).invalidate.tap("spy", (e) => void events.push({ event: e.event, start: e.start, end: e.end, timePs: e.timePs }));
    },
  };
}

type Phase = Record<string, unknown>;

async function run(phases: Phase[], spy = invalidationSpy()): Promise<{ s: RunSummary; spy: ReturnType<typeof invalidationSpy> }> {
  const s = await simulate({
    spec: {
      name: "advise",
      seed: 1,
      bytes: true, // page contents are copied and checked: nothing is lost through the collapses
      cpus: { count: 2 },
      ram: { size: "256MiB" },
      links: [{ name: "pcie0", kind: "pcie4x16" }],
      devices: [{ kind: "gpu", name: "gpu0", memory: "64MiB", link: "pcie0", policy: ["advise", "on-demand"], driverSpec: { warps: 64 } }],
      workload: { kind: "phases", params: { phases } },
    },
    plugins: [...defaultPlugins(), new PciePlugin(), new GpuDriverPlugin(), new OnDemandPolicyPlugin(), new AdvisePolicyPlugin(), spy],
  });
  return { s, spy };
}

const cpu = (writeFraction = 0): Phase => ({ on: "cpu", kind: "streaming", params: { bytes: "2MiB", writeFraction } });
const gpu = (writeFraction = 0): Phase => ({ on: "gpu0", kind: "streaming", params: { bytes: "2MiB", writeFraction } });
const advise = (params: Record<string, unknown>): Phase => ({ on: "gpu0", kind: "advise", params: { bytes: "2MiB", ...params } });

describe("advise on the GPU driver", () => {
  it("without hints the CPU and the GPU reading the same pages migrate them back and forth (the baseline)", async () => {
    const { s } = await run([cpu(1), gpu(), cpu(), gpu(), cpu()]);
    expect(s.migrated.h2d.pages).toBe(2 * PAGES);
    expect(s.migrated.d2h.pages).toBe(2 * PAGES);
  });

  it("read-mostly: the CPU and the GPU read the same pages with no migration back and forth; the GPU reads over the link", async () => {
    const { s, spy } = await run([cpu(1), advise({ readMostly: true }), gpu(), cpu(), gpu(), cpu()]);
    expect(s.migrated.h2d.pages).toBe(0);
    expect(s.migrated.d2h.pages).toBe(0);
    expect(s.links.pcie0!.h2d.bytes).toBeGreaterThan(0); // the GPU's remote reads cross the link
    for (const i of [2, 4]) expect(s.phases[i]!.gpu!.remoteAccesses).toBe(PAGES); // every access remote, none faulted twice
    expect(s.faults.cpu).toBe(PAGES); // the first write only: the CPU never faults a page back
    expect(spy.events.filter((e) => e.event === MMU_NOTIFY_MIGRATE)).toEqual([]);
  });

  it("read-mostly: a GPU write collapses the pages to the GPU (MMU_NOTIFY_MIGRATE), and the CPU's next read faults them back", async () => {
    const { s, spy } = await run([cpu(1), advise({ readMostly: true }), gpu(), cpu(), gpu(1), cpu()]);
    const write = s.phases[4]!;
    expect(write.gpu!.migratedPages).toBe(PAGES); // the write migrates every page to the writer
    expect(s.migrated.h2d.pages).toBe(PAGES);
    expect(s.migrated.d2h.pages).toBe(PAGES); // the CPU's read brings them back (migrate_to_ram)
    // The collapse is the kernel's migration: the CPU's PTEs are invalidated with MMU_NOTIFY_MIGRATE during the write
    // phase, and nowhere before it.
    const migrate = spy.events.filter((e) => e.event === MMU_NOTIFY_MIGRATE);
    expect(migrate.length).toBeGreaterThan(0);
    for (const e of migrate) expect(e.timePs).toBeGreaterThanOrEqual(write.startPs);
    const before = migrate.filter((e) => e.timePs < write.endPs);
    expect(before.reduce((n, e) => n + (e.end - e.start), 0)).toBeGreaterThanOrEqual(2 * MiB);
  });

  it("preferred location host: the GPU maps the pages remotely and never migrates them", async () => {
    const { s } = await run([cpu(1), advise({ preferredLocation: "host" }), gpu(0.5), cpu()]);
    expect(s.migrated.h2d.pages).toBe(0);
    expect(s.phases[2]!.gpu!.remoteAccesses).toBe(PAGES);
  });

  it("accessed-by: the GPU keeps a remote mapping; unsetting the hint lets the next faults migrate again", async () => {
    const { s } = await run([cpu(1), advise({ accessedBy: true }), gpu(), cpu(1), advise({ accessedBy: false }), { on: "gpu0", kind: "streaming", params: { bytes: "2MiB", base: 0 } }]);
    expect(s.phases[2]!.gpu!.migratedPages).toBe(0);
    expect(s.phases[2]!.gpu!.remoteAccesses).toBe(PAGES);
    // After the unset the GPU's mapping is still there (a remote one, still valid): no fault, no migration. The hint
    // is consulted on a fault, as UVM does.
    expect(s.phases[5]!.gpu!.migratedPages).toBe(0);
  });

  it("preferred location the GPU itself migrates, even with accessed-by set", async () => {
    const { s } = await run([cpu(1), advise({ preferredLocation: "gpu0", accessedBy: true }), gpu()]);
    expect(s.migrated.h2d.pages).toBe(PAGES);
  });

  it("an advise phase naming an unknown device as preferred location is a typed error naming the field", async () => {
    await expect(run([cpu(1), advise({ preferredLocation: "gpu7" })])).rejects.toThrow(/preferredLocation/);
  });
});
