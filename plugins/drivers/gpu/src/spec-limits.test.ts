// The GPU driver's spec bounds (GPU_SPEC_BOUNDS, each with its reason), its device-memory rule (whole 2 MiB root
// chunks, reported at the device's memory) and its forward-progress bound (maxFaultsPerAccess).
import { describe, expect, it } from "vitest";
import { SpecError, createMachine, defaultPlugins, isRunLimitFailure } from "@hmmsim/machine";
import { GpuFaultError, GpuForwardProgressError } from "./errors.js";
import { GPU_SPEC_BOUNDS, defaultSpec, gpuDriverSpecIssues } from "./gpu-spec.js";
import { GpuDriverPlugin } from "./plugin.js";
import { anonMap, testMachine, testPlugins } from "./testing/test-util.js";

const rule = (overrides: object) => gpuDriverSpecIssues(overrides).map((i) => `${i.field}: ${i.rule}`);

describe("GPU driver spec bounds", () => {
  it("every field has a range, and the defaults lie in it", () => {
    for (const [k, v] of Object.entries(defaultSpec)) {
      const b = GPU_SPEC_BOUNDS[k as keyof typeof GPU_SPEC_BOUNDS];
      expect(b, k).toBeDefined();
      expect(v).toBeGreaterThanOrEqual(b.min);
      expect(v).toBeLessThanOrEqual(b.max);
      expect(b.why.length).toBeGreaterThan(10);
    }
    expect(gpuDriverSpecIssues({})).toEqual([]);
  });

  it("warps: at most 65,536, citing real GPUs' resident warps (10^7 gave a false LivelockError, 10^9 ran out of memory)", () => {
    expect(rule({ warps: 1e7 })).toEqual([
      "warps: must be at most 65536 (warps resident at once on a real GPU: A100 108 SMs × 64 = 6,912, H100 132 × 64 = 8,448; 65,536 is 8 times that (each warp's first step is an engine event at one instant)), got 10000000",
    ]);
    expect(rule({ warps: 1e9 })).toHaveLength(1);
    expect(rule({ warps: 65536 })).toEqual([]);
  });

  it("other fields: clock, TLB, delays, access size, bandwidth, the forward-progress bound", () => {
    expect(rule({ gpuClockHz: 1 })).toEqual([expect.stringMatching(/^gpuClockHz: must be at least 1000000 \(Hz, 1 MHz to 100 GHz/)]);
    expect(rule({ tlbEntries: 2 ** 21 })).toEqual([expect.stringMatching(/^tlbEntries: must be at most 1048576/)]);
    expect(rule({ tlbEntries: 8, tlbWays: 16 })).toEqual(["tlbWays: must be at most tlbEntries (8), got 16"]);
    expect(rule({ replayPs: 2e12 })).toEqual([expect.stringMatching(/^replayPs: must be at most 1000000000000 \(ps \(at most 1 s\)/)]);
    expect(rule({ accessBytes: 8192 })).toEqual([expect.stringMatching(/^accessBytes: must be at most 4096 \(bytes: one access lies within one 4 KiB page/)]);
    expect(rule({ deviceMemoryBandwidth: 1 })).toEqual([expect.stringMatching(/^deviceMemoryBandwidth: must be at least 1000000/)]);
    expect(rule({ pageWalk4kCycles: 1e7 })).toHaveLength(1);
    expect(rule({ maxFaultsPerAccess: 0 })).toEqual(["maxFaultsPerAccess: must be a positive integer, got 0"]);
    for (const bad of [NaN, Infinity, -1, 1.5, "8"]) expect(rule({ warps: bad })).toEqual([expect.stringMatching(/^warps: must be a positive integer/)]);
  });
});

describe("device memory of a GPU device", () => {
  const spec = (memory: string) => ({
    cpus: { count: 1 },
    ram: { size: "64MiB" },
    links: [{ name: "l0", kind: "custom", h2dBandwidth: "16GB/s", d2hBandwidth: "16GB/s", alpha: "1us" }],
    devices: [{ kind: "gpu", name: "g", memory, link: "l0" }],
  });
  const issues = (memory: string) => {
    try {
      createMachine({ spec: spec(memory), plugins: [...defaultPlugins(), ...testPlugins(), new GpuDriverPlugin()] });
    } catch (e) {
      return (e as SpecError).issues;
    }
    return [];
  };

  it("is a whole number of 2 MiB root chunks, reported at devices[i].memory (3 MiB was shown as 3 and run as 2)", () => {
    expect(issues("3MiB")).toEqual([{ path: "devices[0].memory", message: expect.stringMatching(/2 MiB root chunks: .*got 3145728 B \(2 MiB or 4 MiB would do\)$/) }]);
    expect(issues("1MiB")).toEqual([{ path: "devices[0].memory", message: expect.stringMatching(/at least one\), got 1048576 B$/) }]);
    expect(issues("6MiB")).toEqual([]);
  });
});

describe("forward progress", () => {
  it("a warp whose access keeps faulting stops the kernel with GpuForwardProgressError naming the device and why", async () => {
    // One root chunk; 64 warps reading 64 different 2 MiB blocks: every block serviced evicts the one before it, so
    // no warp's page is there at its replay.
    const { machine, gpu } = testMachine({ deviceMemory: "2MiB", bytes: false, gpu: { warps: 64, maxFaultsPerAccess: 8 } });
    const mm = machine.kernel!.createMm();
    const base = anonMap(mm, 128 * 2 ** 20);
    const accesses = Array.from({ length: 64 }, (_, i) => ({ addr: base + i * 2 ** 21, write: false }));
    let err: unknown;
    machine.spawn("k", async () => {
      try {
        await gpu.runKernel(mm, accesses);
      } catch (e) {
        err = e;
      }
    });
    await machine.run();
    expect(err).toBeInstanceOf(GpuForwardProgressError);
    const e = err as GpuForwardProgressError;
    expect([e.device, e.faults, e.bound, e.runLimit]).toEqual(["gpu0", 9, 8, "forward-progress"]);
    expect(e.message).toMatch(/^gpu0: warp \d+'s access at 0x[0-9a-f]+ faulted 9 times without completing \(the bound is driverSpec\.maxFaultsPerAccess = 8\): its page was taken away before each replay/);
    expect(e.message).toMatch(/the device's 1 root chunk of 2 MiB \(2 MiB\) cannot hold what 64 warps touch at once/);
    expect(isRunLimitFailure(e)).toBe(true);
    expect(gpu.kernelProgress()).toMatchObject({ accesses: 64 });
    await machine.dispose();
  });

  it("the same accesses with enough device memory: one fault each, no error", async () => {
    const { machine, gpu } = testMachine({ deviceMemory: "128MiB", bytes: false, gpu: { warps: 64, maxFaultsPerAccess: 1 } });
    const mm = machine.kernel!.createMm();
    const base = anonMap(mm, 128 * 2 ** 20);
    let faults = -1;
    machine.spawn("k", async () => {
      faults = (await gpu.runKernel(mm, Array.from({ length: 64 }, (_, i) => ({ addr: base + i * 2 ** 21, write: false })))).faults;
    });
    await machine.run();
    expect(faults).toBe(64);
    expect(gpu.kernelProgress()).toBeNull();
    await machine.dispose();
  });

  it("-ENOMEM device faults are run limits (memory); others are not", () => {
    expect(new GpuFaultError("g", 0, -12, "x").runLimit).toBe("memory");
    expect(isRunLimitFailure(new GpuFaultError("g", 0, -12, "x"))).toBe(true);
    expect(isRunLimitFailure(new GpuFaultError("g", 0, -14, "x"))).toBe(false);
  });
});
