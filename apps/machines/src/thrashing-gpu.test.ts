// Scenario test: the thrashing policy (@hmmsim/policy-thrashing) driving the GPU driver (@hmmsim/driver-gpu): a
// CPU↔GPU ping-pong on one shared page is detected from the migrate trace points, the GPU is throttled, and after
// pin_threshold throttles the page is pinned in system memory and mapped remotely (uvm_perf_thrashing.c [S3]).
// It lives here because a policy never imports a driver.
import { describe, expect, it } from "vitest";
import { GpuDriver, GpuDriverPlugin } from "@hmmsim/driver-gpu";
import { DuplexLink, InterconnectFactory, MachineTrace, createMachine, defaultPlugins, type DependencyContainer, type MachinePlugin } from "@hmmsim/machine";
import { ThrashingPolicyPlugin } from "@hmmsim/policy-thrashing";

const BLOCK = 2 * 1024 * 1024;
const PROT_READ = 0x1;
const PROT_WRITE = 0x2;
const MAP_PRIVATE = 0x02;
const MAP_ANONYMOUS = 0x20;

const link: MachinePlugin = {
  name: "TestLink",
  kind: "interconnect",
  provides: ["custom"],
  register(c: DependencyContainer) {
    c.register(InterconnectFactory, {
      useValue: {
        name: "TestLink",
        create: (l, ctx) => new DuplexLink(l.name, l.kind, { h2dBandwidth: l.h2dBandwidth!, d2hBandwidth: l.d2hBandwidth!, alpha: l.alpha!, sharing: "fifo" }, false, ctx),
      },
    });
  },
  apply() {},
};

describe("the thrashing policy on the GPU driver", () => {
  it("a CPU↔GPU ping-pong on a shared page ends with the page pinned: mapped remotely, no more migrations", async () => {
    const plugin = new ThrashingPolicyPlugin();
    const m = createMachine({
      spec: {
        cpus: { count: 2 },
        ram: { size: "64MiB" },
        links: [{ name: "l0", kind: "custom", h2dBandwidth: "16GB/s", d2hBandwidth: "16GB/s", alpha: "1us", coherent: false }],
        devices: [{ kind: "gpu", name: "gpu0", memory: "4MiB", link: "l0", policy: "thrashing" }],
      },
      plugins: [...defaultPlugins(), link, new GpuDriverPlugin(), plugin],
    });
    const gpu = GpuDriver.of(m, "gpu0");
    const mm = m.kernel!.createMm();
    const raw = mm.mmap({ length: 2 * BLOCK, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const addr = Math.ceil(raw / BLOCK) * BLOCK + 4096;
    const h2d: number[] = [];
    MachineTrace.getHooks(m).migrateEnd.tap("t", (e) => void (e.dir === "h2d" && e.npages > 0 && h2d.push(e.timePs)));
    const rounds = 200; // pinned after about 130 rounds (12 ms) with the defaults
    let pinnedAt = -1;
    let pinnedPs = -1;
    m.spawn("ping-pong", async () => {
      for (let r = 0; r < rounds; r++) {
        await gpu.runKernel(mm, [{ addr, write: true }], { warps: 1 });
        // The CPU writes the page: a device-private page migrates back (migrate_to_ram); retried while it would block.
        for (let tries = 0; ; tries++) {
          if (m.ledger.hasPending) await m.settle();
          try {
            mm.touch(addr, true);
            break;
          } catch (e) {
            if ((e as Error).name !== "FaultWouldBlockError" || tries > 1000) throw e;
            await m.engine.sleep(1_000_000);
          }
        }
        if (pinnedAt < 0 && gpu.stats.thrashingPins > 0) {
          pinnedAt = r;
          pinnedPs = m.now;
        }
      }
    });
    await m.run();
    const d = plugin.detector(m, "gpu0")!;
    expect(d.stats.thrashing).toBeGreaterThan(0);
    expect(gpu.stats.throttledPages).toBeGreaterThanOrEqual(10); // pin_threshold throttles first
    expect(pinnedAt).toBeGreaterThan(0);
    expect(d.stats.pin).toBeGreaterThan(0);
    // Once pinned, the GPU maps the page in system memory: the ping-pong stops migrating it (until the pin expires,
    // 150 ms later; the whole run is shorter).
    expect(m.now - pinnedPs).toBeLessThan(150e9);
    expect(h2d.filter((t) => t < pinnedPs).length).toBeGreaterThanOrEqual(5);
    expect(h2d.filter((t) => t > pinnedPs)).toEqual([]);
    expect(gpu.stats.remoteAccesses).toBeGreaterThan(0);
    await m.dispose();
  });
});
