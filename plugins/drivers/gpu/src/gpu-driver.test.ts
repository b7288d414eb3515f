import { describe, expect, it } from "vitest";
import { getMachineStats } from "@hmmsim/machine";
import { anonMap, fillPages, testMachine } from "./test-util.js";

describe("GpuDriver: on-demand migration", () => {
  it("a device read of CPU-written pages migrates them, and the CPU reads them back intact", async () => {
    const { machine, gpu } = testMachine();
    const mm = machine.kernel!.createMm();
    const addr = anonMap(mm, 16 * 4096);
    fillPages(mm, addr, 16);
    const acc = Array.from({ length: 16 }, (_, i) => ({ addr: addr + i * 4096, write: false }));
    let res;
    machine.spawn("app", async () => {
      res = await gpu.runKernel(mm, acc, { warps: 16 });
    });
    await machine.run();
    expect(res!.accesses).toBe(16);
    expect(gpu.stats.migratedPages).toBe(16);
    for (let i = 0; i < 16; i++) expect(gpu.isResident(mm, addr + i * 4096)).toBe(true);
    const st = getMachineStats(machine);
    expect(st.deviceFaults).toBe(16);
    expect(st.migrated.h2d.pages).toBe(16);
    // CPU reads fault the pages back (migrate_to_ram)
    let back: Uint8Array[] = [];
    machine.spawn("cpu", () => {
      back = Array.from({ length: 16 }, (_, i) => mm.read(addr + i * 4096, 4096));
    });
    await machine.run();
    for (let i = 0; i < 16; i++) expect(back[i]!.every((b) => b === ((1 + i) & 0xff))).toBe(true);
    expect(gpu.stats.cpuFaultPages).toBe(16);
  });
});
