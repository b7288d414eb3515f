import { describe, expect, it } from "vitest";
import { EBUSY } from "./errno.js";
import { SyscallError } from "./errors.js";
import { FOLL_WRITE, pinUserPages, unpinUserPages } from "./gup.js";
import { createKernel } from "./kernel.js";
import { folioTrylock, folioUnlock } from "./page-ref.js";
import { MM_ANONPAGES } from "./mm-counters.js";
import { HPAGE_PMD_NR, PAGE_SIZE, PG_anon_exclusive, PMD_SIZE } from "./page-flags.js";
import {
  isDevicePrivateEntry,
  isWritableDevicePrivateEntry,
  makeDevicePrivateEntry,
  pmdTransHuge,
  ptePfn,
  ptePresent,
  pteWrite,
} from "./pgtable.js";
import { isDeviceCoherentPage } from "./memremap.js";
import { FakeCoherentDevice, FakeDevice, record } from "./testing/test-util.js";
import { MADV_HUGEPAGE, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from "./vma.js";

const RW = PROT_READ | PROT_WRITE;

describe("fork (dup_mm, copy_page_range)", () => {
  it("private anon: pages shared write-protected, PROTECTION_PAGE on the parent, COW on first write", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const p = k.createMm();
    const a = p.mmap({ length: 4 * PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    p.write(a, new Uint8Array([1, 2]));
    const pfn = ptePfn(p.pgtable.pteGet(a));
    const rec = record(p);
    const c = p.fork();
    expect(rec.starts()).toEqual([{ event: "MMU_NOTIFY_PROTECTION_PAGE", start: a, end: a + 4 * PAGE_SIZE, owner: null }]);
    expect(k.store.mapcount(pfn)).toBe(2);
    expect(k.store.refcount(pfn)).toBe(2);
    expect(k.store.test(pfn, PG_anon_exclusive)).toBe(false);
    expect(pteWrite(p.pgtable.pteGet(a))).toBe(false);
    expect(pteWrite(c.pgtable.pteGet(a))).toBe(false);
    expect(c.counter(MM_ANONPAGES)).toBe(1);
    const crec = record(c);
    rec.clear();
    c.write(a, new Uint8Array([9]));
    expect(crec.starts()).toEqual([{ event: "MMU_NOTIFY_CLEAR", start: a, end: a + PAGE_SIZE, owner: null }]);
    expect(rec.log).toEqual([]);
    expect([...p.read(a, 2)]).toEqual([1, 2]);
    expect([...c.read(a, 2)]).toEqual([9, 2]);
    expect(k.store.mapcount(pfn)).toBe(1);
    expect(k.store.refcount(pfn)).toBe(1);
    // the parent's page is now its alone: reused in place on write, no copy
    p.write(a, new Uint8Array([3]));
    expect(ptePfn(p.pgtable.pteGet(a))).toBe(pfn);
    expect(k.memcgs.root.usage).toBe(2);
    c.exit();
    p.exit();
    expect(k.allocator.nrFree).toBe(k.nrRamPages);
    expect(k.memcgs.root.usage).toBe(0);
  });

  it("shared anon (shmem): no COW, writes are visible across fork", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const p = k.createMm();
    const a = p.mmap({ length: PAGE_SIZE, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS });
    p.writeU32(a, 1);
    const rec = record(p);
    const c = p.fork();
    expect(rec.log).toEqual([]); // no anon_vma: page tables not copied, no notifier
    c.writeU32(a, 77);
    expect(p.readU32(a)).toBe(77);
  });

  it("device-private entries: ref + mapcount + rss in the child; writable entries become read-only in BOTH", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const dev = new FakeDevice(k, 4);
    const p = k.createMm();
    const a = p.mmap({ length: 2 * PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    p.write(a, new Uint8Array([4]));
    const dpfn = dev.migrateToDevice(p, a);
    expect(isWritableDevicePrivateEntry(p.pgtable.pteGet(a))).toBe(true);
    const c = p.fork();
    for (const mm of [p, c]) {
      const e = mm.pgtable.pteGet(a);
      expect(isDevicePrivateEntry(e)).toBe(true);
      expect(isWritableDevicePrivateEntry(e)).toBe(false);
      expect(ptePfn(e)).toBe(dpfn);
    }
    expect(k.store.refcount(dpfn)).toBe(2);
    expect(k.store.mapcount(dpfn)).toBe(2);
    expect(c.counter(MM_ANONPAGES)).toBe(1);
    // A CPU read in the child migrates the shared page back for both; the child's write then COWs.
    expect(c.read(a, 1)[0]).toBe(4);
    expect(dev.freed).toEqual([dpfn]);
    const back = ptePfn(p.pgtable.pteGet(a));
    expect(ptePresent(p.pgtable.pteGet(a))).toBe(true);
    expect(ptePfn(c.pgtable.pteGet(a))).toBe(back);
    expect(pteWrite(c.pgtable.pteGet(a))).toBe(false);
    c.write(a, new Uint8Array([8]));
    expect(p.read(a, 1)[0]).toBe(4);
    expect(c.read(a, 1)[0]).toBe(8);
  });

  it("device-exclusive entries: the parent's PTE is restored first, then copied as present", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const dev = new FakeDevice(k, 1);
    const p = k.createMm();
    const a = p.mmap({ length: PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    p.write(a, new Uint8Array([6]));
    const pfn = dev.makeExclusive(p, a);
    const c = p.fork();
    expect(ptePresent(p.pgtable.pteGet(a))).toBe(true);
    expect(ptePfn(p.pgtable.pteGet(a))).toBe(pfn);
    expect(ptePfn(c.pgtable.pteGet(a))).toBe(pfn);
    expect(pteWrite(p.pgtable.pteGet(a))).toBe(false);
    expect(k.store.mapcount(pfn)).toBe(2);
    c.write(a, new Uint8Array([1]));
    expect(p.read(a, 1)[0]).toBe(6);
  });

  it("a fork that cannot copy fails as the kernel's does: SyscallError(-EBUSY / -ENOMEM), the child torn down", () => {
    const k = createKernel({ ramBytes: 4 << 20 });
    const dev = new FakeDevice(k, 1);
    const p = k.createMm();
    const a = p.mmap({ length: 2 * PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    p.write(a, new Uint8Array([6]));
    p.write(a + PAGE_SIZE, new Uint8Array([7]));
    // A device-exclusive entry whose folio someone holds locked: try_restore_exclusive_pte fails → -EBUSY.
    const pfn = dev.makeExclusive(p, a + PAGE_SIZE);
    expect(folioTrylock(k, pfn)).toBe(true);
    const mms = k.mms.size;
    const free = k.allocator.nrFree;
    let err: unknown;
    try {
      p.fork();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SyscallError);
    expect(err).toMatchObject({ syscall: "fork", errno: -EBUSY });
    expect(k.mms.size).toBe(mms);
    expect(k.allocator.nrFree).toBe(free);
    expect(k.store.mapcount(ptePfn(p.pgtable.pteGet(a)))).toBe(1); // the child's mapping of page 0 is gone again
    folioUnlock(k, pfn);
    // A maybe-pinned exclusive page must be copied for the child; with no RAM left → -ENOMEM.
    const c0 = p.fork(); // now fine (restores the exclusive entry)
    c0.exit();
    p.mmapLock.tryDownRead();
    const pins: number[] = [];
    expect(pinUserPages(p, a, 1, FOLL_WRITE, pins)).toBe(1);
    p.mmapLock.upRead();
    const hog = k.createMm();
    const h = hog.mmap({ length: 8 << 20, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    for (let i = 0; k.allocator.nrFree > 0; i++) hog.touch(h + i * PAGE_SIZE, true);
    expect(() => p.fork()).toThrowError(/fork: no memory to copy the maybe-pinned page/);
    expect(k.mms.size).toBe(mms + 1); // p and hog; no child
    hog.exit();
    unpinUserPages(k, pins);
    expect(k.store.refcount(pins[0]!)).toBe(1); // its one mapping: the failed child took nothing
    p.exit();
    expect(k.allocator.nrFree).toBe(k.nrRamPages);
  });

  it("a PMD-mapped THP is shared by fork and split on the first COW write", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const p = k.createMm();
    const a = p.mmap({ length: PMD_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    p.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    p.write(a + PAGE_SIZE, new Uint8Array([3]));
    const head = ptePfn(p.pgtable.pmdGet(a));
    const c = p.fork();
    expect(pmdTransHuge(c.pgtable.pmdGet(a))).toBe(true);
    expect(k.store.entireMapcount(head)).toBe(2);
    expect(c.counter(MM_ANONPAGES)).toBe(HPAGE_PMD_NR);
    c.write(a + PAGE_SIZE, new Uint8Array([4]));
    expect(c.pgtable.pmdGet(a)).toBe(0);
    expect(ptePfn(c.pgtable.pteGet(a + PAGE_SIZE))).not.toBe(head + 1);
    expect(ptePfn(c.pgtable.pteGet(a + 2 * PAGE_SIZE))).toBe(head + 2);
    expect(p.read(a + PAGE_SIZE, 1)[0]).toBe(3);
    expect(c.read(a + PAGE_SIZE, 1)[0]).toBe(4);
    expect(c.counter(MM_ANONPAGES)).toBe(HPAGE_PMD_NR);
    c.exit();
    p.exit();
    expect(k.allocator.nrFree).toBe(k.nrRamPages);
  });

  it("a read-only device-private entry stays read-only and shared", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const dev = new FakeDevice(k, 1);
    const p = k.createMm();
    const a = p.mmap({ length: PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    p.touch(a, true);
    const d = dev.migrateToDevice(p, a);
    p.pgtable.pteSet(a, makeDevicePrivateEntry(d, false));
    const c = p.fork();
    expect(c.pgtable.pteGet(a)).toBe(makeDevicePrivateEntry(d, false));
    c.exit();
    expect(k.store.refcount(d)).toBe(1);
    expect(p.counter(MM_ANONPAGES)).toBe(1);
  });

  // hmm-tests hmm_cow_in_device: migrate 4 pages to the device, fork, the parent writes every page, the child is
  // killed (exit), and every page of the parent ends up writable in system memory with the data written.
  it("hmm_cow_in_device (private): the parent's write migrates the shared device page to RAM, then COWs it", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const dev = new FakeDevice(k, 8);
    const p = k.createMm();
    const a = p.mmap({ length: 4 * PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    for (let i = 0; i < 4; i++) p.writeU32(a + i * PAGE_SIZE, i);
    for (let i = 0; i < 4; i++) dev.migrateToDevice(p, a + i * PAGE_SIZE);
    const c = p.fork();
    for (let i = 0; i < 4; i++) p.writeU32(a + i * PAGE_SIZE, i + 100);
    expect(dev.faults).toHaveLength(4);
    for (let i = 0; i < 4; i++) {
      // the child still maps the migrated-back page, read-only; the parent has its own copy
      const ce = c.pgtable.pteGet(a + i * PAGE_SIZE);
      const pe = p.pgtable.pteGet(a + i * PAGE_SIZE);
      expect(ptePresent(ce) && !pteWrite(ce)).toBe(true);
      expect(ptePresent(pe) && pteWrite(pe)).toBe(true);
      expect(ptePfn(pe)).not.toBe(ptePfn(ce));
      expect(c.readU32(a + i * PAGE_SIZE)).toBe(i);
    }
    c.exit(); // SIGKILL
    for (let i = 0; i < 4; i++) {
      const pe = p.pgtable.pteGet(a + i * PAGE_SIZE);
      expect(pteWrite(pe)).toBe(true);
      expect(k.store.refcount(ptePfn(pe))).toBe(1);
      expect(p.readU32(a + i * PAGE_SIZE)).toBe(i + 100);
    }
    expect(dev.free).toHaveLength(8);
    p.exit();
    expect(k.allocator.nrFree).toBe(k.nrRamPages);
  });

  it("hmm_cow_in_device (coherent): a write to the shared coherent page copies it into a system page", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const dev = new FakeCoherentDevice(k, 8);
    const p = k.createMm();
    const a = p.mmap({ length: 4 * PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    for (let i = 0; i < 4; i++) p.writeU32(a + i * PAGE_SIZE, i);
    const dpfns = [0, 1, 2, 3].map((i) => dev.place(p, a + i * PAGE_SIZE));
    const c = p.fork();
    for (let i = 0; i < 4; i++) p.writeU32(a + i * PAGE_SIZE, i + 100);
    c.exit();
    for (let i = 0; i < 4; i++) {
      const pe = p.pgtable.pteGet(a + i * PAGE_SIZE);
      expect(isDeviceCoherentPage(k, ptePfn(pe))).toBe(false);
      expect(pteWrite(pe)).toBe(true);
      expect(p.readU32(a + i * PAGE_SIZE)).toBe(i + 100);
    }
    expect(dev.free.slice(-4).sort()).toEqual([...dpfns].sort());
  });
});
