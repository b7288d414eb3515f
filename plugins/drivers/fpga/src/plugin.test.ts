import { describe, expect, it } from "vitest";
import { SpecError, createMachine, defaultPlugins } from "@hmmsim/machine";
import { FpgaDriver } from "./fpga-driver.js";
import { FPGA_SPEC_BOUNDS, defaultSpec, fpgaDriverSpecIssues } from "./fpga-spec.js";
import { FpgaDriverPlugin, streamStallRows } from "./plugin.js";
import { anonMap, beats, fillPages, testMachine, testPlugins } from "./testing/test-util.js";

const spec = (driverSpec: unknown, memory = "8MiB") => ({
  cpus: { count: 2 },
  ram: { size: "64MiB" },
  links: [{ name: "l0", kind: "custom", h2dBandwidth: "16GB/s", d2hBandwidth: "16GB/s", alpha: "1us" }],
  devices: [{ kind: "fpga", name: "fpga0", memory, link: "l0", driverSpec }],
});

describe("FpgaDriverPlugin", () => {
  it("builds one FpgaDriver per `kind: fpga` device with its driverSpec laid over the plugin's spec", () => {
    const m = createMachine({ spec: spec({ streams: 8, jobMode: "premigrate" }), plugins: [...defaultPlugins(), ...testPlugins(), new FpgaDriverPlugin({ streams: 16 })] });
    const d = FpgaDriver.of(m, "fpga0");
    expect(d.spec.streams).toBe(8);
    expect(d.spec.jobMode).toBe("premigrate");
    expect(d.driverName).toBe("fpga");
    expect(m.driver("fpga0")).toBe(d);
  });

  it("reports every bad driverSpec field and a memory that is not whole 2 MiB chunks in one SpecError with paths", () => {
    let err: unknown;
    try {
      createMachine({ spec: spec({ streams: 0, tlbSmallWays: 3, bogus: 1, jobMode: "lazy" }, "3MiB"), plugins: [...defaultPlugins(), ...testPlugins(), new FpgaDriverPlugin()] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpecError);
    const paths = (err as SpecError).issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(["devices[0].driverSpec.streams", "devices[0].driverSpec.bogus", "devices[0].driverSpec.jobMode", "devices[0].memory"]));
  });

  it("bounds: every numeric default is inside its documented range", () => {
    for (const [k, b] of Object.entries(FPGA_SPEC_BOUNDS)) {
      const v = defaultSpec[k as keyof typeof FPGA_SPEC_BOUNDS];
      expect(v, k).toBeGreaterThanOrEqual(b.min);
      expect(v, k).toBeLessThanOrEqual(b.max);
    }
    expect(fpgaDriverSpecIssues({ streams: 65 })[0]!.rule).toMatch(/at most 64/);
    expect(fpgaDriverSpecIssues({ pmtuBytes: 64, accessBytes: 128 })[0]!.field).toBe("pmtuBytes");
    expect(fpgaDriverSpecIssues([])).toEqual([{ field: "spec", rule: expect.stringMatching(/must be an object/) }]);
  });

  it("streamStallRows formats a driver's jobs: each stream's stall time, its share and its interrupts", async () => {
    const { machine, fpga } = testMachine({ plugins: [] });
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 8 * 4096);
    fillPages(mm, addr, 8);
    machine.spawn("app", async () => void (await fpga.runJob(mm, beats(addr, 8, 1))));
    await machine.run();
    const rows = streamStallRows([fpga]);
    expect(rows).toHaveLength(1);
    expect(rows[0]![0]).toBe("fpga0 job 1");
    expect(rows[0]![1]).toMatch(/^fault, 1 stream over .*: stream 0 stalled .* \(\d+\.\d %\) in 8 interrupts$/);
  });
});
