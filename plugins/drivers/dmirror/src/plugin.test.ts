// The dmirror driver as a machine plugin: a spec's `kind: dmirror` device composed with createMachine (PCIe or
// coherent link, a test policy plugin for "on-demand"), device kernels run through the DeviceDriver surface, the
// kernel's invariants checked after each run.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MEMORY_DEVICE_COHERENT,
  MEMORY_DEVICE_PRIVATE,
  type Mm,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from "@hmmsim/core";
import { CoherentPlugin } from "@hmmsim/interconnect-coherent";
import { PciePlugin } from "@hmmsim/interconnect-pcie";
import {
  type AccessBuffer,
  type AccessSource,
  type DeviceKernelResult,
  type Machine,
  MachineCompositionError,
  type MachinePlugin,
  SpecError,
  createMachine,
  defaultPlugins,
  getMachineStats,
  spawnWorkload,
} from "@hmmsim/machine";
import { checkInvariants } from "@hmmsim/testing";
import { DmirrorDeviceError, DmirrorDriver } from "./dmirror-driver.js";
import { DmirrorDevices, DmirrorDriverPlugin, PLUGIN_NAME } from "./plugin.js";
import { HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_READ } from "./test-hmm-uapi.js";

/** Provides policy "on-demand" (the machine's default) and taps nothing: a dmirror device has no policy hooks. */
class TestOnDemandPolicy implements MachinePlugin {
  readonly name = "TestOnDemandPolicy";
  readonly kind = "policy";
  readonly provides = ["on-demand"];
  apply(_m: Machine): void {}
}

const plugins = (): MachinePlugin[] => [...defaultPlugins(), new PciePlugin(), new CoherentPlugin(), new DmirrorDriverPlugin(), new TestOnDemandPolicy()];

const SPEC = `
cpus: { count: 2 }
ram: { size: 64MiB }
links:
  - { name: l0, kind: pcie4x16 }
devices:
  - { kind: dmirror, name: d0, memory: 256MiB, link: l0 }
`;

/** A fixed list of accesses: [address, write]. */
function accesses(list: readonly (readonly [number, boolean])[], computePs = 0): AccessSource {
  let i = 0;
  return {
    fill(b: AccessBuffer): number {
      let n = 0;
      for (; n < b.capacity && i < list.length; n++, i++) {
        b.addr[n] = list[i]![0];
        b.write[n] = list[i]![1] ? 1 : 0;
        b.computePs[n] = computePs;
      }
      return n;
    },
  };
}

/** An anonymous private mapping of `pages` pages in a fresh mm of the machine's kernel. */
function process(m: Machine, pages: number): { mm: Mm; base: number } {
  const mm = m.kernel!.createMm();
  const base = mm.mmap({ length: pages * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  expect(base).toBeGreaterThan(0);
  return { mm, base };
}

/** Runs one device kernel in an engine task to the end of the machine's run. */
async function runKernel(m: Machine, device: string, mm: Mm, src: AccessSource): Promise<DeviceKernelResult> {
  let out: DeviceKernelResult | undefined;
  m.spawn("kernel", async () => {
    out = await m.driver(device).runKernel(mm, src);
  });
  await m.run();
  return out!;
}

function invariants(m: Machine) {
  return checkInvariants(m.kernel!, { extraRefs: m.component(DmirrorDevices)!.driverRefs() });
}

describe("DmirrorDriverPlugin: the plugin contract", () => {
  it("is a driver plugin providing dmirror, at its package's version", () => {
    const p = new DmirrorDriverPlugin();
    expect(p.name).toBe(PLUGIN_NAME);
    expect(p.kind).toBe("driver");
    expect(p.provides).toEqual(["dmirror"]);
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    expect(p.version).toBe(pkg.version);
    expect(() => new DmirrorDriverPlugin({ chunkSize: 1 } as object)).toThrowError("DmirrorDriverPlugin spec.chunkSize: unknown field (the dmirror driver has no tunables)");
  });

  it("builds one dmirror device per spec device with driver dmirror, through the machine's container", async () => {
    const m = createMachine({
      spec: `${SPEC}  - { kind: dmirror, name: d1, memory: 8MiB, link: l0 }\n`,
      plugins: plugins(),
    });
    const devices = m.component(DmirrorDevices)!;
    expect(devices.module.devices.map((d) => [d!.id, d!.name, d!.isPrivateZone()])).toEqual([
      [0, "d0", true],
      [1, "d1", true],
    ]);
    const d0 = DmirrorDriver.of(m, "d0");
    expect(m.driver("d0")).toBe(d0);
    expect(m.drivers).toEqual(devices.drivers);
    expect(d0.driverName).toBe("dmirror");
    expect(d0.pgmap!.type).toBe(MEMORY_DEVICE_PRIVATE);
    // 256 MiB = one DEVMEM_CHUNK_SIZE chunk; 8 MiB: a chunk of the device's memory size.
    expect(d0.mdevice.chunkPages).toBe((256 << 20) / PAGE_SIZE);
    expect(DmirrorDriver.of(m, "d1").mdevice.chunkPages).toBe((8 << 20) / PAGE_SIZE);
    expect(d0.counters()).toEqual({ batches: 0, faultedPages: 0, migratedPages: 0, populatedPages: 0 });
    await m.dispose();
    // hmm_dmirror_exit unmapped every chunk.
    expect(devices.module.devices.every((d) => d!.devmemChunks.length === 0)).toBe(true);
    expect(DmirrorDriver.of(m, "d0").pgmap).toBeNull();
  });

  it("validates the devices' driverSpec: the dmirror driver takes no fields", () => {
    const spec = `${SPEC.replace("link: l0 }", "link: l0, driverSpec: { batchSize: 4 } }")}`;
    expect(() => createMachine({ spec, plugins: plugins() })).toThrowError(SpecError);
    expect(() => createMachine({ spec, plugins: plugins() })).toThrowError("devices[0].driverSpec.batchSize: unknown key");
    expect(new DmirrorDriverPlugin().componentSpecIssues({ kind: "driver", name: "dmirror", spec: undefined, device: {} as never })).toEqual([]);
  });

  it("needs the machine's kernel", () => {
    expect(() => createMachine({ spec: SPEC, plugins: plugins(), createKernel: () => null })).toThrowError(
      new MachineCompositionError('devices[0] ("d0"): the dmirror driver runs on the machine\'s kernel, and this machine has none (createKernel returned null)'),
    );
    // Without a dmirror device the plugin is harmless on a kernel-less machine.
    const m = createMachine({ spec: { cpus: { count: 1 }, ram: { size: "2MiB" } }, plugins: plugins(), createKernel: () => null });
    expect(m.drivers).toEqual([]);
  });
});

describe("a dmirror device on a machine", () => {
  it("runs accesses through the mirror: faults on a miss, hits after, reads and writes over the link; invariants hold", async () => {
    const m = createMachine({ spec: SPEC, plugins: plugins() });
    const { mm, base } = process(m, 16);
    const p = (i: number) => base + i * PAGE_SIZE;
    const r = await runKernel(
      m,
      "d0",
      mm,
      accesses([
        [p(0), false], // fault (read: the zero page, mirrored read-only)
        [p(0) + 100, false], // hit
        [p(1), true], // fault (write)
        [p(1), true], // hit
        [p(1), false], // hit (a WRITE entry serves a read)
        [p(2), false], // fault (read)
        [p(2), true], // fault again: a read-only entry does not serve a write (dmirror_do_write: -ENOENT)
      ]),
    );
    expect(r).toEqual({ accesses: 7, faults: 4, remoteAccesses: 7, tlbHits: 3, tlbMisses: 4 });
    const d0 = m.driver("d0");
    expect(d0.counters()).toEqual({ batches: 4, faultedPages: 4, migratedPages: 0, populatedPages: 0 });
    // 4 reads host → device, 3 writes device → host, one page each
    const link = m.link("l0");
    expect(link.stats("h2d")).toMatchObject({ bytes: 4 * PAGE_SIZE, transfers: 4 });
    expect(link.stats("d2h")).toMatchObject({ bytes: 3 * PAGE_SIZE, transfers: 3 });
    const stats = getMachineStats(m);
    expect(stats.deviceFaults).toBe(4);
    expect(stats.deviceFaultBatches).toBe(4);
    expect(stats.costCount.DEVICE_FAULT).toBe(4);
    // Simulated time: 4 fault service rounds (45 µs each), the kernel's own fault costs, 7 DMAs of one page.
    expect(stats.simulatedPs).toBeGreaterThan(4 * 45_000_000 + 7 * link.transferTime("h2d", PAGE_SIZE));
    expect(invariants(m)).toEqual([]);
    await m.dispose();
  });

  it("a device write lands in the process's memory; a CPU write is what the device reads next", async () => {
    const m = createMachine({ spec: SPEC, plugins: plugins() });
    const { mm, base } = process(m, 4);
    const d0 = DmirrorDriver.of(m, "d0");
    d0.writeData.fill(0xab);
    await runKernel(m, "d0", mm, accesses([[base, true]]));
    expect([...mm.read(base, 8)]).toEqual(new Array(8).fill(0xab));
    // A CPU write is what the device reads: a device kernel access, then the READ ioctl into a user buffer.
    mm.write(base + PAGE_SIZE, new Uint8Array([1, 2, 3]));
    const r = await runKernel(m, "d0", mm, accesses([[base + PAGE_SIZE, false]]));
    expect(r.faults).toBe(1);
    const cmd = { addr: base + PAGE_SIZE, ptr: new Uint8Array(PAGE_SIZE), npages: 1, cpages: 0, faults: 0 };
    expect(d0.file(mm).ioctl(HMM_DMIRROR_READ, cmd)).toBe(0);
    expect(cmd.faults).toBe(0); // mirrored by the kernel run
    expect([...cmd.ptr.subarray(0, 4)]).toEqual([1, 2, 3, 0]);
    expect(invariants(m)).toEqual([]);
    await m.dispose();
  });

  it("an invalidation (MADV_DONTNEED) clears the mirror: the next access faults again", async () => {
    const m = createMachine({ spec: SPEC, plugins: plugins() });
    const { mm, base } = process(m, 4);
    expect((await runKernel(m, "d0", mm, accesses([[base, true]]))).faults).toBe(1);
    expect(mm.madvise(base, PAGE_SIZE, MADV_DONTNEED)).toBe(0);
    expect(DmirrorDriver.of(m, "d0").file(mm).dmirror.pt.has(base / PAGE_SIZE)).toBe(false);
    expect((await runKernel(m, "d0", mm, accesses([[base, false], [base, false]]))).faults).toBe(1);
    expect(getMachineStats(m).invalidations).toBeGreaterThan(0);
    expect(invariants(m)).toEqual([]);
    await m.dispose();
  });

  it("pages migrated to the device (MIGRATE_TO_DEV) are local: no fault, nothing over the link", async () => {
    const m = createMachine({ spec: SPEC, plugins: plugins() });
    const { mm, base } = process(m, 8);
    mm.write(base, new Uint8Array(8 * PAGE_SIZE).fill(7));
    const d0 = DmirrorDriver.of(m, "d0");
    const cmd = { addr: base, ptr: new Uint8Array(8 * PAGE_SIZE), npages: 8, cpages: 0, faults: 0 };
    expect(d0.file(mm).ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, cmd)).toBe(0);
    expect(cmd.cpages).toBe(8);
    expect(d0.mdevice.pagesInUse()).toBe(8);
    const before = m.link("l0").stats("h2d").transfers;
    const r = await runKernel(m, "d0", mm, accesses([0, 1, 2, 3, 4, 5, 6, 7].map((i) => [base + i * PAGE_SIZE, i % 2 === 1] as const)));
    expect(r).toEqual({ accesses: 8, faults: 0, remoteAccesses: 0, tlbHits: 8, tlbMisses: 0 });
    expect(m.link("l0").stats("h2d").transfers).toBe(before);
    expect(invariants(m)).toEqual([]);
    // A CPU access faults the page back to system memory (migrate_to_ram); the mirror then faults it again.
    expect(mm.read(base + PAGE_SIZE, 1)[0]).toBe(0); // the device wrote writeData (zeros) to the odd pages
    expect(mm.read(base, 1)[0]).toBe(7);
    expect((await runKernel(m, "d0", mm, accesses([[base, false]]))).faults).toBe(1);
    expect(invariants(m)).toEqual([]);
    await m.dispose();
    expect(d0.mdevice.pagesInUse()).toBe(0);
  });

  it("a coherent dmirror device behind a coherent link: MEMORY_DEVICE_COHERENT memory", async () => {
    const m = createMachine({
      spec: {
        cpus: { count: 1 },
        ram: { size: "64MiB" },
        links: [{ name: "c2c", kind: "nvlink-c2c" }],
        devices: [{ kind: "dmirror", name: "d0", memory: "16MiB", link: "c2c", memoryType: "coherent" }],
      },
      plugins: plugins(),
    });
    const d0 = DmirrorDriver.of(m, "d0");
    expect(d0.pgmap!.type).toBe(MEMORY_DEVICE_COHERENT);
    expect(d0.mdevice.chunkPages).toBe((16 << 20) / PAGE_SIZE);
    const { mm, base } = process(m, 2);
    expect(await runKernel(m, "d0", mm, accesses([[base, true], [base + PAGE_SIZE, false]]))).toMatchObject({ accesses: 2, faults: 2, remoteAccesses: 2 });
    expect(invariants(m)).toEqual([]);
    await m.dispose();
  });

  it("runs a spec's workload phases on the device (the machine's workload runner)", async () => {
    const m = createMachine({
      spec: `${SPEC}workload:
  kind: phases
  params:
    phases:
      - { on: cpu, kind: streaming, params: { bytes: 256KiB, writeFraction: 1 } }
      - { on: d0, kind: streaming, params: { bytes: 256KiB, writeFraction: 0.5, passes: 2 } }
`,
      plugins: plugins(),
    });
    const phases = spawnWorkload(m, m.createWorkload()!);
    await m.run();
    expect(phases.map((p) => p.on)).toEqual(["cpu", "d0"]);
    // 64 pages, two passes, every other access a write: pass 1 faults each page (read, then write after a read
    // fault), pass 2 hits.
    expect(phases[1]).toMatchObject({ accesses: 128, gpu: { faults: 64, remoteAccesses: 128, tlbHits: 64, tlbMisses: 64, batches: 64, faultedPages: 64, migratedPages: 0 } });
    expect(invariants(m)).toEqual([]);
    await m.dispose();
  });
});

describe("a dmirror device's errors", () => {
  it("an access the kernel refuses rejects with DmirrorDeviceError naming the access and the errno", async () => {
    const m = createMachine({ spec: SPEC, plugins: plugins() });
    const { mm, base } = process(m, 1);
    let err: unknown;
    m.spawn("kernel", async () => {
      try {
        await m.driver("d0").runKernel(mm, accesses([[base, false], [base + 64 * PAGE_SIZE, false]]));
      } catch (e) {
        err = e;
      }
    });
    await m.run();
    expect(err).toBeInstanceOf(DmirrorDeviceError);
    expect((err as DmirrorDeviceError).field).toBe("accesses[1]");
    expect((err as Error).message).toBe(`d0: accesses[1]: device read at 0x${(base + 64 * PAGE_SIZE).toString(16)}: HMM_DMIRROR_READ failed with -EFAULT`);
    expect(invariants(m)).toEqual([]);
    await m.dispose();
  });

  it("bad input to runKernel names the field", async () => {
    const m = createMachine({ spec: SPEC, plugins: plugins() });
    const d0 = m.driver("d0");
    await expect(d0.runKernel({}, accesses([]))).rejects.toThrowError("d0: mm: must be an Mm of the machine's kernel");
    const { mm } = process(m, 1);
    await expect(d0.runKernel(mm, null as unknown as AccessSource)).rejects.toThrowError("d0: accesses: must be an AccessSource (an object with fill(batch))");
    mm.exit();
    await expect(d0.runKernel(mm, accesses([]))).rejects.toThrowError("d0: mm: has exited (no process to mirror)");
    expect(() => DmirrorDriver.of(m, "nope")).toThrowError(/no device named "nope"/);
    await m.dispose();
  });
});
