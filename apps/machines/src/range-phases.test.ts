// Scenario tests of a workload's `prefetch` and `advise` phases on the FPGA driver: a prefetch phase is the shell's
// user-managed migration to the card (TaPaSCo / Coyote, `migrateToCard`), so the job that follows takes no page fault;
// an advise phase on a driver without an advise API is refused before the workload starts, naming the phase.
import { describe, expect, it } from "vitest";
import { FpgaDriverPlugin } from "@hmmsim/driver-fpga";
import { PciePlugin } from "@hmmsim/interconnect-pcie";
import { MachineError, defaultPlugins, simulate } from "@hmmsim/machine";
import { OnDemandPolicyPlugin } from "@hmmsim/policy-on-demand";

const spec = (second: Record<string, unknown>) => ({
  name: "fpga-phases",
  seed: 1,
  bytes: true,
  cpus: { count: 2 },
  ram: { size: "256MiB" },
  links: [{ name: "pcie0", kind: "pcie4x16" }],
  devices: [{ kind: "fpga", name: "fpga0", memory: "64MiB", link: "pcie0" }],
  workload: {
    kind: "phases",
    params: {
      phases: [
        { on: "cpu", kind: "streaming", params: { bytes: "4MiB", writeFraction: 1 } },
        second,
        { on: "fpga0", kind: "streaming", params: { bytes: "4MiB" } },
      ],
    },
  },
});
const plugins = () => [...defaultPlugins(), new PciePlugin(), new FpgaDriverPlugin(), new OnDemandPolicyPlugin()];

describe("prefetch and advise phases on the FPGA driver", () => {
  it("a prefetch phase migrates the range to the card before the job: the job then takes no page fault", async () => {
    const s = await simulate({ spec: spec({ on: "fpga0", kind: "prefetch", params: { bytes: "4MiB" } }), plugins: plugins() });
    expect(s.phases[1]).toMatchObject({ on: "fpga0", kind: "prefetch", accesses: 0 });
    expect(s.phases[1]!.gpu!.migratedPages).toBe(1024);
    expect(s.phases[2]!.gpu!.faults).toBe(0);
    expect(s.phases[2]!.gpu!.streams!.every((x) => x.stallPs === 0)).toBe(true);
    expect(s.migrated.h2d.pages).toBe(1024);
  });

  it("an advise phase on a driver without an advise API is refused before the workload starts, naming the phase", async () => {
    const run = simulate({ spec: spec({ on: "fpga0", kind: "advise", params: { bytes: "4MiB", readMostly: true } }), plugins: plugins() });
    await expect(run).rejects.toBeInstanceOf(MachineError);
    await expect(run).rejects.toThrow("workload phase 2 (advise on fpga0): the fpga driver has no advise API, so it cannot take memory-advise hints");
  });
});
