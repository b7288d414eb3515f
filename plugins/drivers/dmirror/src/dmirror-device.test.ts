// struct dmirror_device: chunk allocation from memremapPages, the free lists, folio_free, RELEASE (remove chunks)
// and the module's device set.
import { describe, expect, it } from "vitest";
import { ENODEV, ENOMEM, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, createKernel, putPage } from "@hmmsim/core";
import { MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_PRIVATE } from "@hmmsim/memremap";
import { DEVMEM_CHUNK_PAGES } from "./dmirror-device.js";
import { HMM_DMIRROR_MEMORY_DEVICE_COHERENT, HMM_DMIRROR_MEMORY_DEVICE_PRIVATE, HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_RELEASE } from "./test-hmm-uapi.js";
import { DmirrorFile, hmmDmirrorInit, hmmDmirrorInitDevices } from "./test-hmm.js";

describe("hmm_dmirror_init", () => {
  it("creates 2 private devices, plus 2 coherent ones only with spm_addr_dev0/1, each with one chunk and distinct owners", () => {
    const k = createKernel({ ramBytes: 32 << 20 });
    const noSpm = hmmDmirrorInit(k);
    expect(noSpm.devices.map((d) => d?.isPrivateZone() ?? null)).toEqual([true, true, null, null]);
    expect(noSpm.open(2, k.createMm())).toBe(-ENODEV);
    const k2 = createKernel({ ramBytes: 32 << 20 });
    const mod = hmmDmirrorInit(k2, { spmAddrDev0: 1, spmAddrDev1: 2 });
    const devs = mod.devices.map((d) => d!);
    expect(devs.map((d) => d.devmemChunks[0]!.pagemap.type)).toEqual([
      MEMORY_DEVICE_PRIVATE,
      MEMORY_DEVICE_PRIVATE,
      MEMORY_DEVICE_COHERENT,
      MEMORY_DEVICE_COHERENT,
    ]);
    expect(new Set(devs.map((d) => d.devmemChunks[0]!.pagemap.owner)).size).toBe(4);
    for (const d of devs) {
      expect(d.devmemCount).toBe(1);
      expect(d.freePages.length).toBe(DEVMEM_CHUNK_PAGES);
      expect(d.freeFolios.length).toBe(0);
    }
  });
});

describe("hmmDmirrorInitDevices (a machine's devices)", () => {
  it("one device per definition, named, with its memory size: private chunks up to it, a coherent SPM range of it", () => {
    const k = createKernel({ ramBytes: 32 << 20 });
    const mod = hmmDmirrorInitDevices(k, [
      { zoneDeviceType: HMM_DMIRROR_MEMORY_DEVICE_PRIVATE, name: "d0", memoryPages: DEVMEM_CHUNK_PAGES + 1024 },
      { zoneDeviceType: HMM_DMIRROR_MEMORY_DEVICE_COHERENT, name: "c0", memoryPages: 2048 },
      { zoneDeviceType: HMM_DMIRROR_MEMORY_DEVICE_PRIVATE },
    ]);
    const [d0, c0, d2] = mod.devices.map((d) => d!);
    expect([d0!.name, c0!.name, d2!.name]).toEqual(["d0", "c0", "hmm_dmirror2"]);
    expect(mod.open(3, k.createMm())).toBe(-ENODEV);
    // d0: a full chunk at load, then one of the remaining 1024 pages, then no more memory.
    expect(d0!.chunkPages).toBe(DEVMEM_CHUNK_PAGES);
    expect(d0!.allocateChunk(false, false)).toBe(-1);
    expect(d0!.devmemChunks.map((c) => c.pfnLast - c.pfnFirst)).toEqual([DEVMEM_CHUNK_PAGES, 1024]);
    expect(d0!.allocateChunk(false, false)).toBe(-ENOMEM);
    expect(c0!.chunkPages).toBe(2048);
    expect(c0!.devmemChunks[0]!.pagemap.type).toBe(MEMORY_DEVICE_COHERENT);
    expect(c0!.allocateChunk(false, false)).toBe(-ENOMEM);
    expect(d2!.chunkPages).toBe(DEVMEM_CHUNK_PAGES);
    mod.exit();
    expect(() => hmmDmirrorInitDevices(k, [{ zoneDeviceType: 7 }])).toThrowError("invalid argument defs[0].zoneDeviceType");
    expect(() => hmmDmirrorInitDevices(k, [{ zoneDeviceType: HMM_DMIRROR_MEMORY_DEVICE_PRIVATE, memoryPages: 0 }])).toThrowError("invalid argument options.memoryPages");
  });
});

describe("dmirror_devmem_alloc_page / dmirror_devmem_free", () => {
  it("private: takes the free-list head, gives it a backing RAM page; pageFree returns both", () => {
    const k = createKernel({ ramBytes: 32 << 20 });
    const mod = hmmDmirrorInit(k);
    const dev = mod.devices[0]!;
    const ramFree = k.allocator.nrFree;
    const top = dev.freePages.at(-1)!;
    const p = dev.devmemAllocPage(false);
    expect(p).toBe(top);
    expect(k.store.refcount(p)).toBe(1);
    const rpage = mod.zdd.backing(p);
    expect(rpage).toBeGreaterThanOrEqual(0);
    expect(k.allocator.nrFree).toBe(ramFree - 1);
    expect([dev.calloc, dev.cfree]).toEqual([1, 0]);
    k.store.clear(p, 1); // folio_unlock (PG_locked) as the migration core would
    putPage(k, p);
    expect(k.allocator.nrFree).toBe(ramFree);
    expect([dev.calloc, dev.cfree]).toEqual([1, 1]);
    expect(dev.freePages.at(-1)).toBe(p);
  });

  it("a large allocation adds a chunk with PMD blocks on free_folios (private); a coherent device cannot add a chunk", () => {
    const k = createKernel({ ramBytes: 32 << 20 });
    const mod = hmmDmirrorInit(k, { spmAddrDev0: 1, spmAddrDev1: 1 });
    const priv = mod.devices[0]!;
    const big = priv.devmemAllocPage(true);
    expect(big).toBeGreaterThanOrEqual(0);
    expect(priv.devmemCount).toBe(2);
    expect(k.store.folioNr(big)).toBe(512);
    expect(priv.freeFolios.length).toBe(DEVMEM_CHUNK_PAGES / 512 - 1);
    const coh = mod.devices[2]!;
    expect(coh.devmemAllocPage(true)).toBe(-1);
    expect(coh.devmemCount).toBe(1);
  });
});

describe("HMM_DMIRROR_RELEASE (dmirror_device_remove_chunks)", () => {
  it("evicts every page to RAM, unmaps every chunk; the next allocation creates a new chunk", () => {
    const k = createKernel({ ramBytes: 32 << 20 });
    const mod = hmmDmirrorInit(k);
    const mm = k.createMm();
    const f = mod.open(0, mm) as DmirrorFile;
    const addr = mm.mmap({ length: 4 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    for (let i = 0; i < 4; i++) mm.writeU32(addr + i * PAGE_SIZE, 7 * i);
    const cmd = { addr, ptr: new Uint8Array(4 * PAGE_SIZE), npages: 4, cpages: 0, faults: 0 };
    expect(f.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, cmd)).toBe(0);
    const oldChunk = f.device.devmemChunks[0]!;
    expect(f.ioctl(HMM_DMIRROR_RELEASE, { ...cmd })).toBe(0);
    expect(f.device.devmemCount).toBe(0);
    expect(k.pgmaps.record(oldChunk.pagemap)).toBeUndefined();
    for (let i = 0; i < 4; i++) expect(mm.readU32(addr + i * PAGE_SIZE)).toBe(7 * i);
    expect(f.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, cmd)).toBe(0);
    expect(f.device.devmemCount).toBe(1);
    mod.close(f);
    mm.exit();
    expect(mod.devicePagesInUse()).toBe(0);
    expect(k.allocator.nrFree).toBe(k.nrRamPages);
  });
});
