import { describe, expect, it } from "vitest";
import { EEXIST } from "./errno.js";
import { InvalidArgumentError, MmapLockHeldError } from "./errors.js";
import { createKernel } from "./kernel.js";
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES } from "./mm-counters.js";
import { MMU_NOTIFIER_RANGE_MAX } from "./mmu-notifier-range.js";
import { HPAGE_PMD_NR, PAGE_SIZE, PMD_SIZE } from "./page-flags.js";
import { pmdTransHuge, ptePfn } from "./pgtable.js";
import { FakeDevice, record } from "./testing/test-util.js";
import { vmInsertPage, remapPfnRange } from "./vm-insert.js";
import { allocPages, putPage } from "./page-ref.js";
import {
  MADV_HUGEPAGE,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
  VM_IO,
  VM_MIXEDMAP,
  VM_PFNMAP,
  VM_SHARED,
  vmaIsAnonymous,
} from "./vma.js";

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

describe("mmap", () => {
  it("creates VMAs of each kind", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const a = mm.mmap({ length: 3 * PAGE_SIZE, prot: RW, flags: ANON });
    const s = mm.mmap({ length: PAGE_SIZE, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS });
    const f = k.createFile(8 * PAGE_SIZE);
    const fm = mm.mmap({ length: 2 * PAGE_SIZE, prot: PROT_READ, flags: MAP_PRIVATE, file: f, offset: 2 * PAGE_SIZE });
    expect(mm.vmas.map((v) => [v.vmStart, v.vmEnd])).toEqual([
      [a, a + 3 * PAGE_SIZE],
      [s, s + PAGE_SIZE],
      [fm, fm + 2 * PAGE_SIZE],
    ]);
    expect(vmaIsAnonymous(mm.vmaLookup(a)!)).toBe(true);
    expect(vmaIsAnonymous(mm.vmaLookup(s)!)).toBe(false);
    expect(mm.vmaLookup(s)!.vmFlags & VM_SHARED).toBe(VM_SHARED);
    expect(mm.vmaLookup(fm)!.vmPgoff).toBe(2);
    expect(mm.vmaLookup(a - PAGE_SIZE)).toBeNull();
    expect(mm.vmaLookup(a + 3 * PAGE_SIZE)).toBe(mm.vmaLookup(s));
  });

  it("rejects bad arguments with a typed error naming the field, leaving state unchanged", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const bad: [Parameters<typeof mm.mmap>[0], string][] = [
      [{ length: 0, prot: RW, flags: ANON }, "length"],
      [{ length: PAGE_SIZE, prot: RW, flags: ANON | 0x40000000 }, "flags"],
      [{ length: PAGE_SIZE, prot: 0x80, flags: ANON }, "prot"],
      [{ length: PAGE_SIZE, prot: RW, flags: MAP_ANONYMOUS }, "flags"],
      [{ length: PAGE_SIZE, prot: RW, flags: ANON | MAP_FIXED, addr: 0x1001 }, "addr"],
      [{ length: 2 ** 48, prot: RW, flags: ANON }, "length"],
      [{ length: PAGE_SIZE, prot: RW, flags: MAP_PRIVATE }, "file"],
    ];
    for (const [args, field] of bad) {
      const e = (() => {
        try {
          mm.mmap(args);
        } catch (err) {
          return err;
        }
        return null;
      })();
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect((e as InvalidArgumentError).field).toBe(field);
    }
    expect(mm.vmas).toHaveLength(0);
    expect(mm.mmapLock.isLocked()).toBe(false);
    expect(() => mm.munmap(0x1001, PAGE_SIZE)).toThrow(/addr/);
  });

  it("MAP_FIXED replaces (UNMAP), MAP_FIXED_NOREPLACE returns -EEXIST", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const a = mm.mmap({ length: 4 * PAGE_SIZE, prot: RW, flags: ANON });
    mm.touch(a + PAGE_SIZE, true);
    expect(mm.mmap({ addr: a, length: PAGE_SIZE, prot: RW, flags: ANON | MAP_FIXED_NOREPLACE })).toBe(-EEXIST);
    const rec = record(mm);
    expect(mm.mmap({ addr: a + PAGE_SIZE, length: PAGE_SIZE, prot: PROT_READ, flags: ANON | MAP_FIXED })).toBe(a + PAGE_SIZE);
    expect(rec.starts()).toEqual([{ event: "MMU_NOTIFY_UNMAP", start: a + PAGE_SIZE, end: a + 2 * PAGE_SIZE, owner: null }]);
    expect(mm.vmas).toHaveLength(3);
    expect(mm.counter(MM_ANONPAGES)).toBe(0);
    expect(mm.readU32(a + PAGE_SIZE)).toBe(0);
  });

  it("operations while the mmap lock is held throw MmapLockHeldError", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    mm.mmapLock.tryDownRead();
    expect(() => mm.mmap({ length: PAGE_SIZE, prot: RW, flags: ANON })).toThrow(MmapLockHeldError);
    mm.mmapLock.upRead();
    expect(mm.mmap({ length: PAGE_SIZE, prot: RW, flags: ANON })).toBeGreaterThan(0);
  });

  it("MAP_POPULATE faults everything in", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    mm.mmap({ length: 5 * PAGE_SIZE, prot: RW, flags: ANON | MAP_POPULATE });
    expect(mm.counter(MM_ANONPAGES)).toBe(5);
  });
});

describe("munmap and exit", () => {
  it("munmap sends UNMAP, zaps pages (rss, refs, memcg) and splits VMAs", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const a = mm.mmap({ length: 4 * PAGE_SIZE, prot: RW, flags: ANON });
    for (let i = 0; i < 4; i++) mm.touch(a + i * PAGE_SIZE, true);
    const free = k.allocator.nrFree;
    const rec = record(mm);
    expect(mm.munmap(a + PAGE_SIZE, 2 * PAGE_SIZE)).toBe(0);
    expect(rec.starts()).toEqual([{ event: "MMU_NOTIFY_UNMAP", start: a + PAGE_SIZE, end: a + 3 * PAGE_SIZE, owner: null }]);
    expect(rec.log.map((e) => e.kind)).toEqual(["start", "end"]);
    expect(mm.counter(MM_ANONPAGES)).toBe(2);
    expect(k.allocator.nrFree).toBe(free + 2);
    expect(k.memcgs.root.usage).toBe(2);
    expect(mm.vmas.map((v) => [v.vmStart - a, v.vmEnd - a])).toEqual([
      [0, PAGE_SIZE],
      [3 * PAGE_SIZE, 4 * PAGE_SIZE],
    ]);
    rec.clear();
    expect(mm.munmap(a + PAGE_SIZE, PAGE_SIZE)).toBe(0); // nothing mapped: no event
    expect(rec.log).toEqual([]);
  });

  it("munmap zaps device-private entries: rss--, ref put, folio_free called", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const dev = new FakeDevice(k, 4);
    const a = mm.mmap({ length: 2 * PAGE_SIZE, prot: RW, flags: ANON });
    mm.touch(a, true);
    const dpfn = dev.migrateToDevice(mm, a);
    expect(mm.counter(MM_ANONPAGES)).toBe(1);
    mm.munmap(a, 2 * PAGE_SIZE);
    expect(mm.counter(MM_ANONPAGES)).toBe(0);
    expect(dev.freed).toEqual([dpfn]);
    expect(k.store.refcount(dpfn)).toBe(0);
    expect(k.memcgs.root.usage).toBe(0);
  });

  it("exit sends release, then UNMAP over [0, ULONG_MAX); frees everything; use after exit throws", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const dev = new FakeDevice(k, 4);
    const a = mm.mmap({ length: 8 * PAGE_SIZE, prot: RW, flags: ANON });
    for (let i = 0; i < 8; i++) mm.touch(a + i * PAGE_SIZE, true);
    dev.migrateToDevice(mm, a);
    const rec = record(mm);
    mm.exit();
    expect(rec.starts()).toEqual([
      { event: "MMU_NOTIFY_RELEASE", start: 0, end: Number.MAX_SAFE_INTEGER, owner: null },
      { event: "MMU_NOTIFY_UNMAP", start: 0, end: MMU_NOTIFIER_RANGE_MAX, owner: null },
    ]);
    expect(k.allocator.nrFree).toBe(k.nrRamPages);
    expect(k.memcgs.root.usage).toBe(0);
    expect(dev.freed).toHaveLength(1);
    expect(mm.pgtable.nrPteTables).toBe(0);
    expect(k.mms.has(mm.id)).toBe(false);
    expect(() => mm.mmap({ length: PAGE_SIZE, prot: RW, flags: ANON })).toThrow(InvalidArgumentError);
    expect(() => mm.read(a, 1)).toThrow(/after exit/);
  });
});

describe("THP (PMD-mapped anonymous memory)", () => {
  it("first touch of an aligned 2 MiB extent in a MADV_HUGEPAGE VMA maps a THP; partial munmap splits it", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const a = mm.mmap({ length: 2 * PMD_SIZE, prot: RW, flags: ANON });
    expect(a % PMD_SIZE).toBe(0);
    expect(mm.madvise(a, 2 * PMD_SIZE, MADV_HUGEPAGE)).toBe(0);
    mm.write(a + 5 * PAGE_SIZE, new Uint8Array([7]));
    const pmd = mm.pgtable.pmdGet(a);
    expect(pmdTransHuge(pmd)).toBe(true);
    const head = ptePfn(pmd);
    expect(k.store.order(head)).toBe(9);
    expect(k.store.entireMapcount(head)).toBe(1);
    expect(mm.counter(MM_ANONPAGES)).toBe(HPAGE_PMD_NR);
    expect(k.memcgs.root.usage).toBe(HPAGE_PMD_NR);
    expect(mm.read(a + 5 * PAGE_SIZE, 1)[0]).toBe(7);
    const free = k.allocator.nrFree;
    const rec = record(mm);
    mm.munmap(a + 256 * PAGE_SIZE, 256 * PAGE_SIZE);
    expect(rec.starts().map((e) => e.event)).toEqual(["MMU_NOTIFY_UNMAP", "MMU_NOTIFY_CLEAR"]);
    expect(mm.pgtable.pmdGet(a)).toBe(0);
    expect(mm.counter(MM_ANONPAGES)).toBe(256);
    expect(k.allocator.nrFree).toBe(free + 256);
    expect(k.memcgs.root.usage).toBe(256);
    expect(k.store.order(head)).toBe(0);
    expect(k.store.refcount(head + 5)).toBe(1);
    expect(k.store.mapcount(head + 5)).toBe(1);
    expect(mm.read(a + 5 * PAGE_SIZE, 1)[0]).toBe(7);
    mm.exit();
    expect(k.allocator.nrFree).toBe(k.nrRamPages);
  });

  it("no THP when the VMA is not eligible (thp=madvise without the hint)", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const a = mm.mmap({ length: PMD_SIZE, prot: RW, flags: ANON });
    mm.touch(a, true);
    expect(mm.pgtable.pmdGet(a)).toBe(0);
    expect(mm.counter(MM_ANONPAGES)).toBe(1);
  });
});

describe("file, shmem and special mappings", () => {
  it("shared file mappings share the page cache across mms (MM_FILEPAGES)", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const f = k.createFile(4 * PAGE_SIZE);
    const m1 = k.createMm();
    const m2 = k.createMm();
    const a1 = m1.mmap({ length: 4 * PAGE_SIZE, prot: RW, flags: MAP_SHARED, file: f });
    const a2 = m2.mmap({ length: 4 * PAGE_SIZE, prot: PROT_READ, flags: MAP_SHARED, file: f });
    m1.writeU32(a1 + PAGE_SIZE, 1234);
    expect(m2.readU32(a2 + PAGE_SIZE)).toBe(1234);
    expect(m1.counter(MM_FILEPAGES)).toBe(1);
    expect(m2.counter(MM_FILEPAGES)).toBe(1);
    const pfn = f.pages.get(1)!;
    expect(k.store.mapcount(pfn)).toBe(2);
    expect(k.store.refcount(pfn)).toBe(3); // cache + 2 mappings
    m1.exit();
    m2.exit();
    expect(k.store.refcount(pfn)).toBe(1);
    expect(() => m1.readU32(a1)).toThrow();
  });

  it("private file mappings COW on write into anon pages; reads past EOF SIGBUS", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const f = k.createFile(PAGE_SIZE + 10);
    const mm = k.createMm();
    const a = mm.mmap({ length: 4 * PAGE_SIZE, prot: RW, flags: MAP_PRIVATE, file: f });
    expect(mm.readU32(a)).toBe(0);
    expect(mm.counter(MM_FILEPAGES)).toBe(1);
    mm.writeU32(a, 9);
    expect(mm.counter(MM_FILEPAGES)).toBe(0);
    expect(mm.counter(MM_ANONPAGES)).toBe(1);
    expect(k.pageBytes.snapshot(f.pages.get(0)!)[0]).toBe(0);
    mm.writeU32(a + PAGE_SIZE, 1); // do_cow_fault
    expect(mm.counter(MM_ANONPAGES)).toBe(2);
    expect(() => mm.readU32(a + 2 * PAGE_SIZE)).toThrow(/SIGBUS/);
  });

  it("MAP_SHARED|MAP_ANONYMOUS is shmem: MM_SHMEMPAGES, freed with the last mapping", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const a = mm.mmap({ length: 2 * PAGE_SIZE, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS });
    mm.writeU32(a, 5);
    expect(mm.counter(MM_SHMEMPAGES)).toBe(1);
    mm.munmap(a, 2 * PAGE_SIZE);
    expect(k.allocator.nrFree).toBe(k.nrRamPages);
  });

  it("device mmap: vm_insert_page (VM_MIXEDMAP) and remap_pfn_range (VM_IO|VM_PFNMAP)", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const page = allocPages(k, 0, true);
    const a = mm.mmap({ length: PAGE_SIZE, prot: RW, flags: MAP_PRIVATE, deviceMmap: (vma) => vmInsertPage(vma, vma.vmStart, page) });
    expect(mm.vmaLookup(a)!.vmFlags & VM_MIXEDMAP).toBe(VM_MIXEDMAP);
    expect(mm.counter(MM_FILEPAGES)).toBe(1);
    expect(k.store.refcount(page)).toBe(2);
    const b = mm.mmap({ length: 2 * PAGE_SIZE, prot: RW, flags: MAP_SHARED, deviceMmap: (vma) => remapPfnRange(vma, vma.vmStart, 3, 2 * PAGE_SIZE) });
    expect(mm.vmaLookup(b)!.vmFlags & (VM_IO | VM_PFNMAP)).toBe(VM_IO | VM_PFNMAP);
    expect(mm.counter(MM_FILEPAGES)).toBe(1);
    mm.munmap(a, PAGE_SIZE);
    mm.munmap(b, 2 * PAGE_SIZE);
    expect(k.store.refcount(page)).toBe(1);
    putPage(k, page);
    expect(k.allocator.nrFree).toBe(k.nrRamPages);
  });
});
