import { describe, expect, it } from "vitest";
import { ENOMEM } from "./errno.js";
import { InvalidArgumentError, SegmentationFault } from "./errors.js";
import { createKernel } from "./kernel.js";
import { HPAGE_PMD_NR, PAGE_SIZE, PMD_SIZE } from "./page-flags.js";
import { isWritableDevicePrivateEntry, isDevicePrivateEntry, ptePfn, pteWrite } from "./pgtable.js";
import { FakeDevice, record } from "./test-util.js";
import { MADV_HUGEPAGE, MAP_ANONYMOUS, MAP_PRIVATE, PROT_NONE, PROT_READ, PROT_WRITE, VM_READ, VM_WRITE } from "./vma.js";

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

describe("mprotect", () => {
  it("splits VMAs, write-protects PTEs, sends PROTECTION_VMA only where page tables exist", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const a = mm.mmap({ length: 8 * PAGE_SIZE, prot: RW, flags: ANON });
    mm.touch(a + 2 * PAGE_SIZE, true);
    const rec = record(mm);
    expect(mm.mprotect(a + 2 * PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ)).toBe(0);
    expect(rec.starts()).toEqual([{ event: "MMU_NOTIFY_PROTECTION_VMA", start: a + 2 * PAGE_SIZE, end: a + 4 * PAGE_SIZE, owner: null }]);
    expect(mm.vmas.map((v) => [v.vmStart - a, v.vmEnd - a, v.vmFlags & (VM_READ | VM_WRITE)])).toEqual([
      [0, 2 * PAGE_SIZE, VM_READ | VM_WRITE],
      [2 * PAGE_SIZE, 4 * PAGE_SIZE, VM_READ],
      [4 * PAGE_SIZE, 8 * PAGE_SIZE, VM_READ | VM_WRITE],
    ]);
    expect(pteWrite(mm.pgtable.pteGet(a + 2 * PAGE_SIZE))).toBe(false);
    expect(() => mm.touch(a + 2 * PAGE_SIZE, true)).toThrow(SegmentationFault);
    // Back to RW: the exclusive anon page becomes writable again, same page.
    const pfn = ptePfn(mm.pgtable.pteGet(a + 2 * PAGE_SIZE));
    expect(mm.mprotect(a, 8 * PAGE_SIZE, RW)).toBe(0);
    expect(pteWrite(mm.pgtable.pteGet(a + 2 * PAGE_SIZE))).toBe(true);
    expect(mm.touch(a + 2 * PAGE_SIZE, true)).toBe(pfn);
    // No page tables at all under another mapping (its own PMD): no event.
    const b = mm.mmap({ length: PMD_SIZE, prot: RW, flags: ANON });
    rec.clear();
    mm.mprotect(b, PMD_SIZE, PROT_READ);
    expect(rec.log).toEqual([]);
  });

  it("PROT_NONE makes every access SIGSEGV; data survives", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const a = mm.mmap({ length: PAGE_SIZE, prot: RW, flags: ANON });
    mm.writeU32(a, 11);
    mm.mprotect(a, PAGE_SIZE, PROT_NONE);
    expect(() => mm.readU32(a)).toThrow(SegmentationFault);
    mm.mprotect(a, PAGE_SIZE, PROT_READ);
    expect(mm.readU32(a)).toBe(11);
  });

  it("holes give -ENOMEM with nothing changed; bad input throws naming the field", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const a = mm.mmap({ length: 2 * PAGE_SIZE, prot: RW, flags: ANON });
    expect(mm.mprotect(a, 3 * PAGE_SIZE, PROT_READ)).toBe(-ENOMEM);
    expect(mm.vmas).toHaveLength(1);
    expect(mm.vmas[0]!.vmFlags & VM_WRITE).toBe(VM_WRITE);
    expect(() => mm.mprotect(a + 1, PAGE_SIZE, PROT_READ)).toThrow(InvalidArgumentError);
    expect(() => mm.mprotect(a, PAGE_SIZE, 0x100)).toThrow(/prot/);
    expect(mm.mprotect(a, 0, PROT_READ)).toBe(0);
  });

  it("a writable device-private entry becomes readable", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const dev = new FakeDevice(k, 1);
    const mm = k.createMm();
    const a = mm.mmap({ length: PAGE_SIZE, prot: RW, flags: ANON });
    mm.touch(a, true);
    dev.migrateToDevice(mm, a);
    mm.mprotect(a, PAGE_SIZE, PROT_READ);
    const e = mm.pgtable.pteGet(a);
    expect(isDevicePrivateEntry(e) && !isWritableDevicePrivateEntry(e)).toBe(true);
  });

  it("a partial mprotect of a THP splits the PMD (CLEAR) and keeps the folio", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const a = mm.mmap({ length: PMD_SIZE, prot: RW, flags: ANON });
    mm.madvise(a, PMD_SIZE, MADV_HUGEPAGE);
    mm.touch(a, true);
    const head = ptePfn(mm.pgtable.pmdGet(a));
    const rec = record(mm);
    mm.mprotect(a, PAGE_SIZE, PROT_READ);
    expect(rec.starts().map((e) => e.event)).toEqual(["MMU_NOTIFY_PROTECTION_VMA", "MMU_NOTIFY_CLEAR"]);
    expect(mm.pgtable.pmdGet(a)).toBe(0);
    expect(pteWrite(mm.pgtable.pteGet(a))).toBe(false);
    expect(pteWrite(mm.pgtable.pteGet(a + PAGE_SIZE))).toBe(true);
    expect(k.store.order(head)).toBe(9);
    expect(k.store.refcount(head)).toBe(HPAGE_PMD_NR);
    expect(k.store.mapcount(head + 3)).toBe(1);
    expect(k.store.entireMapcount(head)).toBe(0);
  });
});
