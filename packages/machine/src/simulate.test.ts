// simulate(): a run ends at its workload's end, at a limit the caller set (a clean stop with a partial summary), or at
// a limit of the machine or the engine (SimulationStoppedError carrying the partial summary); thrash figures and
// warnings in the summary.
import { describe, expect, it } from "vitest";
import { createMachine, defaultPlugins } from "./create-machine.js";
import { SimulationStoppedError } from "./run-stop.js";
import { THRASH_THRESHOLDS, buildSummary, formatSummary } from "./run-summary.js";
import { PROGRESS_EVERY_EVENTS, SimulateOptionError, simulate } from "./simulate.js";
import { getMachineStats } from "./stats-plugin.js";
import { testPlugins } from "./testing/test-link.js";

const plugins = () => [...defaultPlugins(), ...testPlugins()];
const cpuSpec = (params: object, extra: object = {}) => ({
  seed: 1,
  bytes: false,
  cpus: { count: 1 },
  ram: { size: "64MiB" },
  workload: { kind: "streaming", on: "cpu", params },
  ...extra,
});

async function stoppedError(p: Promise<unknown>): Promise<SimulationStoppedError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(SimulationStoppedError);
  return e as SimulationStoppedError;
}

describe("simulate: limits the caller sets", () => {
  it("maxSimulatedPs stops cleanly with a partial summary; the same run is reproducible", async () => {
    const spec = cpuSpec({ bytes: "16MiB", writeFraction: 1 });
    const full = await simulate({ spec, plugins: plugins() });
    expect(full.stopped).toBeNull();
    const limit = Math.floor(full.simulatedPs / 3);
    const a = await simulate({ spec, plugins: plugins(), maxSimulatedPs: limit });
    const b = await simulate({ spec, plugins: plugins(), maxSimulatedPs: limit });
    expect(a).toEqual(b);
    expect(a.stopped).toMatchObject({ reason: "max-simulated-time", accessesTotal: 4096 });
    expect(a.stopped!.atPs).toBeLessThanOrEqual(limit);
    expect(a.simulatedPs).toBe(a.stopped!.atPs);
    expect(a.stopped!.accessesDone).toBeLessThan(4096);
    expect(a.phases).toEqual([expect.objectContaining({ on: "cpu", kind: "streaming", partial: true, endPs: a.stopped!.atPs })]);
    expect(a.phases[0]!.accesses).toBeLessThan(4096);
    expect(formatSummary(a)).toMatch(/stopped +max-simulated-time at .* before its workload ended/);
  });

  it("a limit the run does not reach changes nothing (the spec's maxSimulatedTime or the option)", async () => {
    const spec = cpuSpec({ bytes: "4MiB", writeFraction: 1 });
    const full = await simulate({ spec, plugins: plugins() });
    const limited = await simulate({ spec: { ...spec, maxSimulatedTime: "1s" }, plugins: plugins() });
    expect(limited).toEqual(full);
    expect(await simulate({ spec, plugins: plugins(), maxSimulatedPs: full.simulatedPs })).toEqual(full);
  });

  it("the spec's maxSimulatedTime applies; the option overrides it", async () => {
    const spec = cpuSpec({ bytes: "16MiB", writeFraction: 1 }, { maxSimulatedTime: "100us" });
    const s = await simulate({ spec, plugins: plugins() });
    expect(s.stopped?.reason).toBe("max-simulated-time");
    expect(s.simulatedPs).toBeLessThanOrEqual(100_000_000);
    const longer = await simulate({ spec, plugins: plugins(), maxSimulatedPs: 200_000_000 });
    expect(longer.simulatedPs).toBeGreaterThan(100_000_000);
  });

  it("interrupt stops a run between events (every PROGRESS_EVERY_EVENTS) with its reason: a caller's wall-clock limit", async () => {
    let asked = 0;
    const s = await simulate({ spec: cpuSpec({ bytes: "1GiB", passes: 50 }), plugins: plugins(), interrupt: () => (++asked === 3 ? "enough for a test" : null) });
    expect(s.stopped).toMatchObject({ reason: "interrupted", message: "enough for a test" });
    expect(s.events).toBe(3 * PROGRESS_EVERY_EVENTS - 1); // stopped before the 3 × 4096-th event
    expect(s.stopped!.accessesDone).toBeLessThan(s.stopped!.accessesTotal!);
  });

  it("onProgress is called from the engine between events too, without changing the run", async () => {
    const spec = cpuSpec({ bytes: "64MiB", writeFraction: 1 });
    const plain = await simulate({ spec, plugins: plugins() });
    let calls = 0;
    const watched = await simulate({ spec, plugins: plugins(), onProgress: () => calls++ });
    expect(watched).toEqual(plain);
    expect(calls).toBeGreaterThan(16_384 / 4096); // more than one call per 4,096 accesses handed out
  });

  it("bad options are SimulateOptionErrors naming the option", async () => {
    await expect(simulate({ spec: cpuSpec({ bytes: "4MiB" }), plugins: plugins(), maxSimulatedPs: 0 })).rejects.toThrow(SimulateOptionError);
    await expect(simulate({ spec: cpuSpec({ bytes: "4MiB" }), plugins: plugins(), interrupt: 5 as never })).rejects.toThrow(/opts\.interrupt = 5: must be a function/);
  });
});

describe("simulate: limits of the machine and the engine", () => {
  it("virtual time past 2^53 ps: SimulationStoppedError saying so and how much was simulated, with the partial summary", async () => {
    const e = await stoppedError(simulate({ spec: cpuSpec({ bytes: "64KiB", computeNs: 1e12 }), plugins: plugins() }));
    expect(e.reason).toBe("virtual-time-limit");
    expect(e.message).toMatch(/^the run's virtual time would pass 2\^53 - 1 ps \(≈ 9007 s of simulated time\)/);
    expect(e.message).toMatch(/\(stopped at 9000 s of simulated time, after 9 of 16 accesses\)$/);
    expect(e.summary.stopped).toMatchObject({ reason: "virtual-time-limit", accessesDone: 9 });
    expect(e.summary.simulatedPs).toBeGreaterThan(9e15);
  });

  it("RAM exhausted by CPU writes (not known up front): an out-of-memory stop naming RAM and the working set", async () => {
    const e = await stoppedError(simulate({ spec: cpuSpec({ bytes: "8MiB", writeFraction: 0.5 }, { ram: { size: "2MiB" } }), plugins: plugins() }));
    expect(e.reason).toBe("out-of-memory");
    expect(e.message).toMatch(/^the run ran out of memory: .*RAM \(2 MiB\) and device memory \(0 B\) hold 2 MiB; the workload's working set is 8 MiB \(stopped at/);
    expect(e.summary.phases[0]).toMatchObject({ partial: true });
  });
});

describe("thrash in the summary", () => {
  it("reports evictions per device fault and pages moved per working-set page, warning past THRASH_THRESHOLDS", async () => {
    const m = createMachine({ spec: { cpus: { count: 1 }, ram: { size: "64MiB" } }, plugins: plugins() });
    const stats = getMachineStats(m);
    const result = { startPs: 0, endPs: 1, simulatedPs: 1, events: 0, unsettledPs: 0, stoppedAtLimit: false };
    const calm = buildSummary(m, { ...stats, deviceFaults: 10_000, evictions: { count: 20, pages: 10_240, bytes: 0 }, migrated: { h2d: { count: 1, pages: 16_384, bytes: 0 }, d2h: { count: 1, pages: 10_240, bytes: 0 } } }, result, { preset: null, file: "x" }, [], {
      workingSetBytes: 64 * 2 ** 20,
    });
    expect(calm.thrash).toEqual({ evictionsPerDeviceFault: 0.002, pagesMovedPerWorkingSetPage: (16_384 + 10_240) / 16_384 });
    expect(calm.warnings).toEqual([]);
    const thrash = buildSummary(m, { ...stats, deviceFaults: 1000, evictions: { count: 120, pages: 61_440, bytes: 0 }, migrated: { h2d: { count: 1, pages: 70_000, bytes: 0 }, d2h: { count: 1, pages: 61_440, bytes: 0 } } }, result, { preset: null, file: "x" }, [], {
      workingSetBytes: 64 * 2 ** 20,
    });
    expect(thrash.thrash.evictionsPerDeviceFault).toBeGreaterThan(THRASH_THRESHOLDS.evictionsPerDeviceFault);
    expect(thrash.warnings).toEqual([
      expect.stringMatching(/^device memory thrashes: 0\.12 evictions per device fault \(120 evictions for 1,000 fault entries; warned above 0\.05\)/),
      expect.stringMatching(/^pages move back and forth: 8\.02 pages migrated per working-set page \(131,440 pages for 16,384; warned above 4, 4 per phase\)$/),
    ]);
    expect(formatSummary(thrash)).toMatch(/\n {2}warning +device memory thrashes: .*\n {2}warning +pages move back and forth/);
    await m.dispose();
  });
});
