import { describe, expect, it } from "vitest";
import { EINVAL, ENOMEM } from "./errno.js";
import { InvalidArgumentError } from "./errors.js";
import { createKernel } from "./kernel.js";
import { MM_ANONPAGES } from "./mm-counters.js";
import { PAGE_SIZE, PG_dirty } from "./page-flags.js";
import { isDevicePrivateEntry, pteDirty, ptePfn } from "./pgtable.js";
import { remapPfnRange } from "./vm-insert.js";
import { FakeDevice, record } from "./testing/test-util.js";
import {
  MADV_DONTNEED,
  MADV_FREE,
  MADV_HUGEPAGE,
  MADV_NOHUGEPAGE,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
  VM_HUGEPAGE,
  VM_NOHUGEPAGE,
} from "./vma.js";

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

describe("madvise", () => {
  it("MADV_DONTNEED: CLEAR per VMA, pages zapped, refault reads zeroes, tables kept", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const dev = new FakeDevice(k, 1);
    const a = mm.mmap({ length: 4 * PAGE_SIZE, prot: RW, flags: ANON });
    for (let i = 0; i < 4; i++) mm.writeU32(a + i * PAGE_SIZE, i + 1);
    const dpfn = dev.migrateToDevice(mm, a + 3 * PAGE_SIZE);
    const rec = record(mm);
    expect(mm.madvise(a + PAGE_SIZE, 3 * PAGE_SIZE, MADV_DONTNEED)).toBe(0);
    expect(rec.starts()).toEqual([{ event: "MMU_NOTIFY_CLEAR", start: a + PAGE_SIZE, end: a + 4 * PAGE_SIZE, owner: null }]);
    expect(mm.counter(MM_ANONPAGES)).toBe(1);
    expect(dev.freed).toEqual([dpfn]);
    expect(mm.pgtable.nrPteTables).toBe(1);
    expect(mm.readU32(a + PAGE_SIZE)).toBe(0);
    expect(mm.readU32(a)).toBe(1);
    expect(mm.vmas).toHaveLength(1);
  });

  it("MADV_FREE: CLEAR, exclusive anon pages clean; device-private entries untouched; non-anon VMA -EINVAL", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const dev = new FakeDevice(k, 1);
    const a = mm.mmap({ length: 2 * PAGE_SIZE, prot: RW, flags: ANON });
    mm.writeU32(a, 1);
    mm.writeU32(a + PAGE_SIZE, 2);
    dev.migrateToDevice(mm, a + PAGE_SIZE);
    const pfn = ptePfn(mm.pgtable.pteGet(a));
    k.store.set(pfn, PG_dirty);
    const rec = record(mm);
    expect(mm.madvise(a, 2 * PAGE_SIZE, MADV_FREE)).toBe(0);
    expect(rec.starts()[0]!.event).toBe("MMU_NOTIFY_CLEAR");
    expect(pteDirty(mm.pgtable.pteGet(a))).toBe(false);
    expect(k.store.test(pfn, PG_dirty)).toBe(false);
    expect(isDevicePrivateEntry(mm.pgtable.pteGet(a + PAGE_SIZE))).toBe(true);
    expect(mm.readU32(a)).toBe(1);
    const s = mm.mmap({ length: PAGE_SIZE, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS });
    expect(mm.madvise(s, PAGE_SIZE, MADV_FREE)).toBe(-EINVAL);
  });

  it("MADV_HUGEPAGE / MADV_NOHUGEPAGE set the hints and split the VMA", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const a = mm.mmap({ length: 4 * PAGE_SIZE, prot: RW, flags: ANON });
    expect(mm.madvise(a + PAGE_SIZE, PAGE_SIZE, MADV_HUGEPAGE)).toBe(0);
    expect(mm.vmas).toHaveLength(3);
    expect(mm.vmaLookup(a + PAGE_SIZE)!.vmFlags & VM_HUGEPAGE).toBe(VM_HUGEPAGE);
    expect(mm.vmaLookup(a)!.vmFlags & VM_HUGEPAGE).toBe(0);
    mm.madvise(a + PAGE_SIZE, PAGE_SIZE, MADV_NOHUGEPAGE);
    expect(mm.vmaLookup(a + PAGE_SIZE)!.vmFlags & (VM_HUGEPAGE | VM_NOHUGEPAGE)).toBe(VM_NOHUGEPAGE);
  });

  it("holes → -ENOMEM (rest applied); VM_PFNMAP → -EINVAL; bad input throws", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const a = mm.mmap({ length: PAGE_SIZE, prot: RW, flags: ANON });
    mm.writeU32(a, 3);
    expect(mm.madvise(a, 2 * PAGE_SIZE, MADV_DONTNEED)).toBe(-ENOMEM);
    expect(mm.counter(MM_ANONPAGES)).toBe(0);
    const p = mm.mmap({ length: PAGE_SIZE, prot: RW, flags: MAP_SHARED, deviceMmap: (vma) => remapPfnRange(vma, vma.vmStart, 1, PAGE_SIZE) });
    expect(mm.madvise(p, PAGE_SIZE, MADV_DONTNEED)).toBe(-EINVAL);
    expect(() => mm.madvise(a, PAGE_SIZE, 99)).toThrow(InvalidArgumentError);
    expect(() => mm.madvise(a + 7, PAGE_SIZE, MADV_DONTNEED)).toThrow(/addr/);
  });
});
