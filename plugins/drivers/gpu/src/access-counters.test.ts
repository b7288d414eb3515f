// Access counters (access-counters.ts; uvm_gpu_access_counters.c): remote accesses counted per (mm, region),
// notifications at the threshold, serviced in batches through accessCounterNotification (default: migrate).
import { describe, expect, it } from "vitest";
import { MachineTrace, type MachinePlugin, type MigrateEvent } from "@hmmsim/machine";
import { POLICY_STAGE_OVERRIDE, Policy, THRASHING_HINT_PIN, type AccessCounterQuery } from "@hmmsim/policy";
import { GpuPolicyError } from "./errors.js";
import { anonMap, fillPages, testMachine } from "./testing/test-util.js";

const PAGE = 4096;
const KIB64 = 64 * 1024;

function tapPlugin(name: string, fn: (m: Parameters<MachinePlugin["apply"]>[0]) => void): MachinePlugin {
  return { name, kind: "test", apply: fn };
}
const pages = (addr: number, n: number, write = false) => Array.from({ length: n }, (_, i) => ({ addr: addr + i * PAGE, write }));

/** 16 pages (one 64 KiB region) mapped remotely by `how`, a threshold of 20: the first kernel counts 16, the second notifies at its 4th access. */
async function scenario(how: "shouldMigrate" | "pin", answer?: boolean) {
  const queries: AccessCounterQuery[] = [];
  const migrations: MigrateEvent[] = [];
  const configured: string[] = [];
  const p = tapPlugin("ac", (m) => {
    const h = Policy.getHooks(m);
    if (how === "pin") h.thrashingHint.tap("pin", () => ({ type: THRASHING_HINT_PIN, untilPs: 0 }));
    // First faults map remotely; after that (the access-counter migration) nothing asks.
    else h.shouldMigrate.tap({ name: "remote", stage: POLICY_STAGE_OVERRIDE }, () => false);
    h.accessCounterConfig.tap("ac", (device) => (configured.push(device), { granularity: KIB64, threshold: 20 }));
    h.accessCounterNotification.tap("ac", (q) => {
      queries.push({ ...q });
      return answer;
    });
    MachineTrace.getHooks(m).migrateEnd.tap("ac", (e) => void migrations.push({ ...e }));
  });
  const { machine, gpu } = testMachine({ plugins: [p] });
  const mm = machine.kernel!.createMm();
  const raw = anonMap(mm, 2 * KIB64);
  const base = Math.ceil(raw / KIB64) * KIB64;
  fillPages(mm, base, 16);
  machine.spawn("app", async () => {
    await gpu.runKernel(mm, pages(base, 16), { warps: 1 });
    await gpu.runKernel(mm, pages(base, 16), { warps: 1 });
  });
  await machine.run();
  return { machine, gpu, mm, base, queries, migrations, configured };
}

describe("access counters", () => {
  for (const how of ["shouldMigrate", "pin"] as const) {
    it(`count the device's accesses to pages mapped remotely (${how === "pin" ? "a thrashing PIN" : "shouldMigrate false"}); at the threshold the default migrates the region's remote pages`, async () => {
      const { gpu, mm, base, queries, migrations, configured } = await scenario(how);
      expect(configured).toEqual(["gpu0"]); // asked once
      expect(queries.length).toBe(1);
      expect(queries[0]).toMatchObject({ device: "gpu0", mm, start: base, end: base + KIB64, count: 20, batch: 0, batchNotifications: 1, residentPages: 0, devicePages: 4 * 512 });
      expect(gpu.stats).toMatchObject({ accessCounterNotifications: 1, accessCounterBatches: 1, accessCounterMigrations: 1, accessCounterPages: 16, migratedPages: 16, remoteMapped: 16 });
      const ac = migrations.filter((e) => e.reason === "access-counter");
      expect(ac.map((e) => [e.start - base, e.end - base, e.npages, e.bytes])).toEqual([[0, KIB64, 16, KIB64]]);
      for (let i = 0; i < 16; i++) expect(gpu.entry(mm, base + i * PAGE)).toMatchObject({ remote: false });
      // The second kernel's first 4 accesses were remote (16 + 4 = 20, the notification); the migration unmapped the
      // remote entries first, so the 5th access faulted once (17 faults in all) and every later access was local.
      expect([gpu.stats.remoteAccesses, gpu.stats.faults]).toEqual([20, 17]);
    });
  }

  it("a policy answering false leaves the pages remote (the counter was cleared)", async () => {
    const { gpu, mm, base, queries } = await scenario("shouldMigrate", false);
    expect(queries.length).toBe(1);
    expect(gpu.stats).toMatchObject({ accessCounterNotifications: 1, accessCounterMigrations: 0, accessCounterPages: 0, migratedPages: 0, remoteAccesses: 32 });
    for (let i = 0; i < 16; i++) expect(gpu.entry(mm, base + i * PAGE)).toMatchObject({ remote: true });
    expect(gpu.accessCounters.countOf(0, base)).toBe(12); // 32 accesses: 20 notified, 12 since
  });

  it("with no config the device counts nothing", async () => {
    const remote = tapPlugin("remote", (m) => void Policy.getHooks(m).shouldMigrate.tap("remote", () => false));
    const { machine, gpu } = testMachine({ plugins: [remote] });
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 4 * PAGE);
    machine.spawn("app", async () => void (await gpu.runKernel(mm, [...pages(addr, 4), ...pages(addr, 4)], { warps: 1 })));
    await machine.run();
    expect(gpu.stats.remoteAccesses).toBe(8);
    expect(gpu.accessCounters.state).toBe(0);
    expect(gpu.accessCounters.countOf(0, addr)).toBe(0);
    expect(gpu.stats.accessCounterNotifications).toBe(0);
  });

  it("notifications are serviced in batches of at most 256 (uvm_perf_access_counter_batch_count)", async () => {
    const batches: number[] = [];
    const p = tapPlugin("ac", (m) => {
      const h = Policy.getHooks(m);
      h.shouldMigrate.tap("remote", () => false);
      h.accessCounterConfig.tap("ac", () => ({ granularity: KIB64, threshold: 1 }));
      h.accessCounterNotification.tap("ac", (q) => (batches.push(q.batchNotifications), false));
    });
    const { machine, gpu } = testMachine({ plugins: [p], ram: "128MiB", deviceMemory: "2MiB" });
    const mm = machine.kernel!.createMm();
    const n = 300;
    const raw = anonMap(mm, (n + 1) * KIB64);
    const base = Math.ceil(raw / KIB64) * KIB64;
    const acc = Array.from({ length: n }, (_, i) => ({ addr: base + i * KIB64, write: false }));
    machine.spawn("app", async () => {
      await gpu.runKernel(mm, acc, { warps: 300 }); // maps the 300 pages remotely (each replay is a remote access: 300 notifications)
    });
    await machine.run();
    expect(gpu.stats.accessCounterNotifications).toBe(300);
    expect(batches.length).toBe(300);
    expect(Math.max(...batches)).toBeLessThanOrEqual(256);
    expect(gpu.stats.accessCounterBatches).toBe(2);
    expect([batches.filter((x) => x === 256).length, batches.filter((x) => x === 44).length]).toEqual([256, 44]);
  });

  it("a bad config is a GpuPolicyError naming the hook and the field", async () => {
    const p = tapPlugin("bad", (m) => {
      const h = Policy.getHooks(m);
      h.shouldMigrate.tap("remote", () => false);
      h.accessCounterConfig.tap("bad", () => ({ granularity: 12345, threshold: 1 }));
    });
    const { machine, gpu } = testMachine({ plugins: [p] });
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, PAGE);
    machine.spawn("app", async () => void (await gpu.runKernel(mm, pages(addr, 1), { warps: 1 })));
    const err = (await machine.run().catch((e: unknown) => e)) as GpuPolicyError;
    expect(err).toBeInstanceOf(GpuPolicyError);
    expect(err.message).toBe("accessCounterConfig: granularity must be a power of two from 64 KiB to 16 MiB, got 12345");
  });
});
