import { describe, expect, it } from "vitest";
import { FaultWouldBlockError, InvalidArgumentError, KernelRuleError, SegmentationFault } from "./errors.js";
import { createKernel } from "./kernel.js";
import { handleMmFault } from "./memory.js";
import { MM_ANONPAGES } from "./mm-counters.js";
import { PAGE_SIZE, PG_anon, PG_anon_exclusive, PG_locked } from "./page-flags.js";
import { folioTrylock, folioUnlock } from "./page-ref.js";
import { isDeviceExclusiveEntry, makeMigrationEntry, pfnPte, ptePfn, ptePresent, pteWrite } from "./pgtable.js";
import { FakeDevice, record } from "./testing/test-util.js";
import { FAULT_FLAG_WRITE, VM_FAULT_OOM, VM_FAULT_RETRY, VM_FAULT_SIGBUS, VM_FAULT_SIGSEGV } from "./vm-fault.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "./vma.js";

function setup(opts?: { ramBytes?: number }) {
  const k = createKernel({ ramBytes: opts?.ramBytes ?? 16 << 20 });
  const mm = k.createMm();
  const a = mm.mmap({ length: 16 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  return { k, mm, a };
}

describe("handle_mm_fault: anonymous memory (do_anonymous_page)", () => {
  it("a read maps the shared zero page: no rss, no refcount, no notifier", () => {
    const { k, mm, a } = setup();
    const rec = record(mm);
    expect(mm.readU32(a)).toBe(0);
    const pte = mm.pgtable.pteGet(a);
    expect(ptePfn(pte)).toBe(k.zeroPfn);
    expect(pteWrite(pte)).toBe(false);
    expect(mm.counter(MM_ANONPAGES)).toBe(0);
    expect(rec.log).toEqual([]);
  });
  it("a write maps a new zeroed exclusive anon page: rss, refcount 1, mapcount 1, memcg", () => {
    const { k, mm, a } = setup();
    const rec = record(mm);
    mm.writeU32(a + 8, 0xdeadbeef);
    const pfn = ptePfn(mm.pgtable.pteGet(a));
    expect(k.store.refcount(pfn)).toBe(1);
    expect(k.store.mapcount(pfn)).toBe(1);
    expect(k.store.test(pfn, PG_anon | PG_anon_exclusive)).toBe(true);
    expect(mm.counter(MM_ANONPAGES)).toBe(1);
    expect(k.memcgs.root.usage).toBe(1);
    expect(mm.readU32(a + 8)).toBe(0xdeadbeef);
    expect(mm.readU32(a)).toBe(0);
    expect(rec.log).toEqual([]);
  });
  it("a write after a read COWs the zero page with MMU_NOTIFY_CLEAR", () => {
    const { k, mm, a } = setup();
    mm.read(a, 1);
    const rec = record(mm);
    mm.write(a, new Uint8Array([1]));
    expect(ptePfn(mm.pgtable.pteGet(a))).not.toBe(k.zeroPfn);
    expect(mm.counter(MM_ANONPAGES)).toBe(1);
    expect(rec.starts()).toEqual([{ event: "MMU_NOTIFY_CLEAR", start: a, end: a + PAGE_SIZE, owner: null }]);
  });
  it("memcg limit → VM_FAULT_OOM, and the CPU access raises SegmentationFault; nothing leaks", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const cg = k.createMemcg("small", 2 * PAGE_SIZE);
    const mm = k.createMm({ memcg: cg });
    const a = mm.mmap({ length: 4 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.touch(a, true);
    mm.touch(a + PAGE_SIZE, true);
    const free = k.allocator.nrFree;
    mm.mmapLock.tryDownRead();
    expect(handleMmFault(mm, a + 2 * PAGE_SIZE, FAULT_FLAG_WRITE)).toBe(VM_FAULT_OOM);
    mm.mmapLock.upRead();
    expect(() => mm.touch(a + 2 * PAGE_SIZE, true)).toThrow(SegmentationFault);
    expect(k.allocator.nrFree).toBe(free);
    expect(cg.usage).toBe(2);
    expect(cg.failcnt).toBe(2);
    expect(mm.counter(MM_ANONPAGES)).toBe(2);
  });
  it("RAM exhausted → VM_FAULT_OOM", () => {
    const k = createKernel({ ramBytes: 2 << 20 });
    const mm = k.createMm();
    const a = mm.mmap({ length: 513 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    for (let i = 0; i < 512; i++) mm.touch(a + i * PAGE_SIZE, true);
    const e = (() => {
      try {
        mm.touch(a + 512 * PAGE_SIZE, true);
      } catch (err) {
        return err as SegmentationFault;
      }
      return null;
    })();
    expect(e).toBeInstanceOf(SegmentationFault);
    expect(e!.fault & VM_FAULT_OOM).toBe(VM_FAULT_OOM);
  });
});

describe("handle_mm_fault: errors", () => {
  it("no VMA or no permission → VM_FAULT_SIGSEGV; the CPU gets SegmentationFault naming the address", () => {
    const { mm, a } = setup();
    const ro = mm.mmap({ length: PAGE_SIZE, prot: PROT_READ, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.mmapLock.tryDownRead();
    expect(handleMmFault(mm, 0x1000, 0)).toBe(VM_FAULT_SIGSEGV);
    expect(handleMmFault(mm, ro, FAULT_FLAG_WRITE)).toBe(VM_FAULT_SIGSEGV);
    expect(handleMmFault(mm, a, 0)).toBe(0);
    mm.mmapLock.upRead();
    expect(() => mm.read(0x1000, 4)).toThrow(/0x1000/);
    expect(() => mm.write(ro, new Uint8Array(1))).toThrow(SegmentationFault);
  });
  it("rejects unknown flags and requires the mmap lock", () => {
    const { mm, a } = setup();
    expect(() => handleMmFault(mm, a, 1 << 20)).toThrow(InvalidArgumentError);
    expect(() => handleMmFault(mm, a, 0)).toThrow(KernelRuleError);
  });
  it("a migration entry reports 'would wait' (VM_FAULT_RETRY / FaultWouldBlockError)", () => {
    const { mm, a } = setup();
    mm.touch(a, true);
    const pfn = ptePfn(mm.pgtable.pteGet(a));
    mm.pgtable.pteSet(a, makeMigrationEntry(pfn, "write"));
    mm.mmapLock.tryDownRead();
    expect(handleMmFault(mm, a, 0)).toBe(VM_FAULT_RETRY);
    mm.mmapLock.upRead();
    expect(() => mm.touch(a, false)).toThrow(FaultWouldBlockError);
    mm.pgtable.pteSet(a, pfnPte(pfn, true));
  });
});

describe("do_swap_page on device entries", () => {
  it("device-private: trylock, get, migrate_to_ram(vmf), unlock, put; the access then succeeds", () => {
    const { k, mm, a } = setup();
    const dev = new FakeDevice(k, 8);
    mm.write(a + PAGE_SIZE + 3, new Uint8Array([42]));
    const tag = k.store.tag(ptePfn(mm.pgtable.pteGet(a + PAGE_SIZE)));
    const dpfn = dev.migrateToDevice(mm, a + PAGE_SIZE);
    expect(mm.counter(MM_ANONPAGES)).toBe(1);
    expect(k.memcgs.root.usage).toBe(1);
    let lockedDuringCall = false;
    let refDuringCall = 0;
    const orig = dev.pgmap.ops.migrateToRam!;
    dev.pgmap.ops.migrateToRam = (vmf) => {
      lockedDuringCall = k.store.test(vmf.page, PG_locked);
      refDuringCall = k.store.refcount(vmf.page);
      return orig(vmf);
    };
    expect(mm.read(a + PAGE_SIZE + 3, 1)[0]).toBe(42);
    expect(dev.faults).toHaveLength(1);
    expect(dev.faults[0]!.page).toBe(dpfn);
    expect(dev.faults[0]!.address).toBe(a + PAGE_SIZE);
    expect(dev.faults[0]!.realAddress).toBe(a + PAGE_SIZE + 3);
    expect(lockedDuringCall).toBe(true);
    expect(refDuringCall).toBe(2);
    expect(dev.freed).toEqual([dpfn]);
    expect(k.store.test(dpfn, PG_locked)).toBe(false);
    const pte = mm.pgtable.pteGet(a + PAGE_SIZE);
    expect(ptePresent(pte)).toBe(true);
    expect(k.store.tag(ptePfn(pte))).toBe(tag);
    expect(mm.counter(MM_ANONPAGES)).toBe(1);
    expect(k.memcgs.root.usage).toBe(1);
  });
  it("device-private page locked → VM_FAULT_RETRY; migrate_to_ram errors come back as SIGBUS", () => {
    const { k, mm, a } = setup();
    const dev = new FakeDevice(k, 8);
    mm.touch(a, true);
    const dpfn = dev.migrateToDevice(mm, a);
    expect(folioTrylock(k, dpfn)).toBe(true);
    mm.mmapLock.tryDownRead();
    expect(handleMmFault(mm, a, 0)).toBe(VM_FAULT_RETRY);
    expect(dev.faults).toHaveLength(0);
    folioUnlock(k, dpfn);
    dev.failWith = VM_FAULT_SIGBUS;
    expect(handleMmFault(mm, a, 0)).toBe(VM_FAULT_SIGBUS);
    mm.mmapLock.upRead();
    expect(k.store.refcount(dpfn)).toBe(1);
    expect(k.store.test(dpfn, PG_locked)).toBe(false);
    expect(() => mm.touch(a, false)).toThrow(SegmentationFault);
  });
  it("device-exclusive: the CPU fault restores the PTE with MMU_NOTIFY_CLEAR (owner NULL)", () => {
    const { k, mm, a } = setup();
    const dev = new FakeDevice(k, 1);
    mm.write(a, new Uint8Array([5]));
    const pfn = dev.makeExclusive(mm, a);
    expect(isDeviceExclusiveEntry(mm.pgtable.pteGet(a))).toBe(true);
    const rec = record(mm);
    mm.write(a, new Uint8Array([6]));
    expect(rec.starts()).toEqual([{ event: "MMU_NOTIFY_CLEAR", start: a, end: a + PAGE_SIZE, owner: null }]);
    const pte = mm.pgtable.pteGet(a);
    expect(ptePfn(pte)).toBe(pfn);
    expect(pteWrite(pte)).toBe(true);
    expect(k.store.refcount(pfn)).toBe(1);
    expect(k.store.mapcount(pfn)).toBe(1);
    expect(mm.read(a, 1)[0]).toBe(6);
  });
});
