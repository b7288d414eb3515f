import { describe, expect, it } from "vitest";
import { ENOMEM } from "./errno.js";
import { InvalidArgumentError, SegmentationFault } from "./errors.js";
import { createKernel } from "./kernel.js";
import { HPAGE_PMD_NR, PAGE_SIZE, PG_anon_exclusive, PMD_SIZE, PUD_SIZE } from "./page-flags.js";
import {
  _PAGE_SOFT_DIRTY,
  isDevicePrivateEntry,
  isMigrationEntryDirty,
  isMigrationEntryYoung,
  isWritableDevicePrivateEntry,
  makeMigrationEntry,
  pfnPte,
  pteKind,
  ptePfn,
  pteSoftDirty,
  pteWrite,
} from "./pgtable.js";
import { FakeDevice, record } from "./testing/test-util.js";
import { MADV_HUGEPAGE, MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, MAP_PRIVATE, PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE, VM_READ, VM_WRITE } from "./vma.js";

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
    // change_pud_range(): a mapping with no PTE of its own in a PUD that has a PMD table still gets the event, from
    // its start; one in a PUD with no page tables at all gets none.
    const b = mm.mmap({ length: PMD_SIZE, prot: RW, flags: ANON });
    expect(Math.floor(b / PUD_SIZE)).toBe(Math.floor(a / PUD_SIZE));
    rec.clear();
    mm.mprotect(b, PMD_SIZE, PROT_READ);
    expect(rec.starts()).toEqual([{ event: "MMU_NOTIFY_PROTECTION_VMA", start: b, end: b + PMD_SIZE, owner: null }]);
    const far = (Math.floor(a / PUD_SIZE) + 8) * PUD_SIZE;
    expect(mm.mmap({ addr: far, length: PMD_SIZE, prot: RW, flags: ANON | MAP_FIXED_NOREPLACE })).toBe(far);
    rec.clear();
    mm.mprotect(far, PMD_SIZE, PROT_READ);
    expect(rec.log).toEqual([]);
    // One range for a change spanning PUDs: from the first non-none PUD to the end.
    const c = (Math.floor(a / PUD_SIZE) + 16) * PUD_SIZE - PMD_SIZE;
    expect(mm.mmap({ addr: c, length: 2 * PMD_SIZE, prot: RW, flags: ANON | MAP_FIXED_NOREPLACE })).toBe(c);
    mm.touch(c + PMD_SIZE, true); // only the second PUD has tables
    rec.clear();
    mm.mprotect(c, 2 * PMD_SIZE, PROT_READ);
    expect(rec.starts()).toEqual([{ event: "MMU_NOTIFY_PROTECTION_VMA", start: c + PMD_SIZE, end: c + 2 * PMD_SIZE, owner: null }]);
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

  it("writable swap entries lose write whatever the new protection (change_softleaf_pte): RW → RWX too", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const dev = new FakeDevice(k, 2);
    const mm = k.createMm();
    const a = mm.mmap({ length: 2 * PAGE_SIZE, prot: RW, flags: ANON });
    mm.write(a, new Uint8Array([5]));
    mm.touch(a + PAGE_SIZE, true);
    dev.migrateToDevice(mm, a);
    expect(isWritableDevicePrivateEntry(mm.pgtable.pteGet(a))).toBe(true);
    // A writable migration entry (a migration in flight) of an anon page that is not AnonExclusive.
    const pfn = ptePfn(mm.pgtable.pteGet(a + PAGE_SIZE));
    const mig = makeMigrationEntry(pfn, "write", { young: true, dirty: true }) + _PAGE_SOFT_DIRTY;
    mm.pgtable.pteSet(a + PAGE_SIZE, mig);
    k.store.clear(pfn, PG_anon_exclusive);
    expect(mm.mprotect(a, 2 * PAGE_SIZE, RW | PROT_EXEC)).toBe(0);
    const d = mm.pgtable.pteGet(a);
    expect(isDevicePrivateEntry(d) && !isWritableDevicePrivateEntry(d)).toBe(true);
    const m = mm.pgtable.pteGet(a + PAGE_SIZE);
    expect(pteKind(m)).toBe("migration-read-exclusive"); // folio_test_anon, not PageAnonExclusive, decides
    expect([ptePfn(m), isMigrationEntryYoung(m), isMigrationEntryDirty(m), pteSoftDirty(m)]).toEqual([pfn, true, true, true]);
    // Undo the test's hand-made migration entry (no migration holds the page): the mapping it replaced.
    mm.pgtable.pteSet(a + PAGE_SIZE, pfnPte(pfn, true, { dirty: true }));
    k.store.set(pfn, PG_anon_exclusive);
    expect(mm.read(a, 1)[0]).toBe(5); // the read-only device-private entry still faults back
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
