import { describe, expect, it } from "vitest";
import {
  isDeviceExclusiveEntry,
  isDevicePrivateEntry,
  isMigrationEntry,
  isReadableExclusiveMigrationEntry,
  isSwapPte,
  isWritableDevicePrivateEntry,
  isWritableMigrationEntry,
  isMigrationEntryDirty,
  isMigrationEntryYoung,
  makeDeviceExclusiveEntry,
  makeDevicePrivateEntry,
  makeMigrationEntry,
  makeReadableMigrationEntry,
  pteSoftDirty,
  pfnPmd,
  pfnPte,
  pmdTransHuge,
  pteDirty,
  pteKind,
  ptePfn,
  ptePresent,
  pteSpecial,
  pteWrite,
  pteWrprotect,
  pteMkwrite,
  pteYoung,
  pteMkold,
} from "./pgtable.js";

describe("packed PTE encoding", () => {
  const pfns = [0, 1, 4095, 2 ** 20 + 3, 2 ** 32 - 1];
  it("round-trips pfns of present and swap-format entries", () => {
    for (const pfn of pfns) {
      expect(ptePfn(pfnPte(pfn, true, { dirty: true }))).toBe(pfn);
      expect(ptePfn(makeDevicePrivateEntry(pfn, true))).toBe(pfn);
      expect(ptePfn(makeMigrationEntry(pfn, "write"))).toBe(pfn);
      expect(ptePfn(makeDeviceExclusiveEntry(pfn))).toBe(pfn);
      expect(ptePfn(pfnPmd(pfn, false))).toBe(pfn);
      expect(Number.isSafeInteger(pfnPte(pfn, true))).toBe(true);
    }
  });
  it("make_readable_migration_entry keeps the pfn, young, dirty and soft-dirty (fork of a write / read-exclusive entry)", () => {
    const w = makeMigrationEntry(4242, "write", { young: true, dirty: false }) + (1 << 6);
    const r = makeReadableMigrationEntry(w);
    expect(pteKind(r)).toBe("migration-read");
    expect([ptePfn(r), isMigrationEntryYoung(r), isMigrationEntryDirty(r), pteSoftDirty(r)]).toEqual([4242, true, false, true]);
    const re = makeReadableMigrationEntry(makeMigrationEntry(7, "read-exclusive", { dirty: true }));
    expect([pteKind(re), ptePfn(re), isMigrationEntryYoung(re), isMigrationEntryDirty(re), pteSoftDirty(re)]).toEqual(["migration-read", 7, false, true, false]);
  });
  it("present bits", () => {
    const e = pfnPte(77, true, { dirty: true });
    expect(ptePresent(e) && pteWrite(e) && pteDirty(e) && pteYoung(e)).toBe(true);
    expect(pteWrite(pteWrprotect(e))).toBe(false);
    expect(ptePfn(pteWrprotect(e))).toBe(77);
    expect(pteWrite(pteMkwrite(pteWrprotect(e)))).toBe(true);
    expect(pteYoung(pteMkold(e))).toBe(false);
    expect(pteSpecial(pfnPte(5, false, { special: true }))).toBe(true);
    expect(pmdTransHuge(pfnPmd(512, true))).toBe(true);
    expect(pmdTransHuge(e)).toBe(false);
  });
  it("non-present kinds are distinct and never present", () => {
    const dpr = makeDevicePrivateEntry(9, false);
    const dpw = makeDevicePrivateEntry(9, true);
    const ex = makeDeviceExclusiveEntry(9);
    const mr = makeMigrationEntry(9, "read");
    const mre = makeMigrationEntry(9, "read-exclusive", { young: true, dirty: true });
    const mw = makeMigrationEntry(9, "write");
    for (const e of [dpr, dpw, ex, mr, mre, mw]) {
      expect(ptePresent(e)).toBe(false);
      expect(isSwapPte(e)).toBe(true);
      expect(pteWrite(e)).toBe(false);
    }
    expect([isDevicePrivateEntry(dpr), isWritableDevicePrivateEntry(dpr), isWritableDevicePrivateEntry(dpw)]).toEqual([true, false, true]);
    expect([isDeviceExclusiveEntry(ex), isDevicePrivateEntry(ex), isMigrationEntry(ex)]).toEqual([true, false, false]);
    expect([isMigrationEntry(mr), isWritableMigrationEntry(mw), isReadableExclusiveMigrationEntry(mre)]).toEqual([true, true, true]);
    expect([isMigrationEntryYoung(mre), isMigrationEntryDirty(mre), isMigrationEntryYoung(mr)]).toEqual([true, true, false]);
    expect(pteKind(0)).toBe("none");
    expect(pteKind(dpw)).toBe("device-private-write");
  });
});
