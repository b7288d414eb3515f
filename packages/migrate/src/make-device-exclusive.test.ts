import {
  EFAULT,
  EOPNOTSUPP,
  KernelRuleError,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  MM_ANONPAGES,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  folioTestLocked,
  folioUnlock,
  isDeviceExclusiveEntry,
  ptePfn,
  ptePresent,
  pteWrite,
  putPage,
} from "@hmmsim/core";
import { afterEach, describe, expect, it } from "vitest";
import { makeDeviceExclusive } from "./make-device-exclusive.js";
import { TestDevice } from "./testing/test-driver.js";
import { assertTrackedInvariants, locked, pattern, recordNotifier, setup } from "./testing/test-helpers.js";

// Every test ends with the kernel invariants checked on every kernel it created (setup() tracks them).
afterEach(assertTrackedInvariants);

const P = PAGE_SIZE;
const owner = { name: "atomics" };

describe("make_device_exclusive (mm/rmap.c, ≥6.15)", () => {
  it("returns the page locked and referenced; the entry keeps mapcount and the mapping's ref; EXCLUSIVE with owner", () => {
    const { k, mm, a } = setup();
    mm.write(a, pattern(1));
    const pfn = ptePfn(mm.pgtable.pteGet(a));
    const log = recordNotifier(mm);
    const r = locked(mm, () => makeDeviceExclusive(mm, a + 123, owner));
    expect(r).toBe(pfn);
    expect(log).toEqual([{ event: "MMU_NOTIFY_EXCLUSIVE", start: a, end: a + P, owner, mm: mm.id }]);
    expect(isDeviceExclusiveEntry(mm.pgtable.pteGet(a))).toBe(true);
    expect(folioTestLocked(k, pfn)).toBe(true);
    expect(k.store.refcount(pfn)).toBe(2);
    expect(k.store.mapcount(pfn)).toBe(1);
    expect(mm.counter(MM_ANONPAGES)).toBe(1);
    folioUnlock(k, pfn);
    putPage(k, pfn);
    expect(k.store.refcount(pfn)).toBe(1);
    // the next CPU access restores the PTE: MMU_NOTIFY_CLEAR with owner null (core's remove_device_exclusive_entry)
    log.length = 0;
    expect(mm.read(a, P)).toEqual(pattern(1));
    expect(log).toEqual([{ event: "MMU_NOTIFY_CLEAR", start: a, end: a + P, owner: null, mm: mm.id }]);
    const e = mm.pgtable.pteGet(a);
    expect(ptePresent(e) && pteWrite(e) && ptePfn(e) === pfn).toBe(true);
    expect(k.store.refcount(pfn)).toBe(1);
  });

  it("faults a hole / zero page in writable first, and breaks COW after fork (the child keeps its page)", () => {
    const { k, mm, a } = setup();
    mm.read(a + P, 1); // zero page
    mm.write(a + 2 * P, pattern(2));
    const child = mm.fork();
    const shared = ptePfn(mm.pgtable.pteGet(a + 2 * P));
    locked(mm, () => {
      for (const addr of [a, a + P, a + 2 * P]) {
        const p = makeDeviceExclusive(mm, addr, owner);
        expect(p).toBeGreaterThanOrEqual(0);
        expect(p).not.toBe(k.zeroPfn);
        expect(isDeviceExclusiveEntry(mm.pgtable.pteGet(addr))).toBe(true);
        folioUnlock(k, p);
        putPage(k, p);
      }
    });
    expect(ptePfn(mm.pgtable.pteGet(a + 2 * P))).not.toBe(shared);
    expect(ptePfn(child.pgtable.pteGet(a + 2 * P))).toBe(shared);
    expect(k.store.mapcount(shared)).toBe(1);
    expect(child.read(a + 2 * P, P)).toEqual(pattern(2));
    expect(mm.read(a + 2 * P, P)).toEqual(pattern(2));
    expect(mm.counter(MM_ANONPAGES)).toBe(3);
  });

  it("migrates a device-private page back first (GUP faults it), then makes it exclusive", () => {
    const { k, mm, a } = setup();
    const dev = new TestDevice(k, 4);
    mm.write(a, pattern(3));
    dev.migrateToDevice(mm, a, a + P);
    const p = locked(mm, () => makeDeviceExclusive(mm, a, owner));
    expect(dev.faults).toBe(1);
    expect(p).toBeLessThan(k.nrRamPages);
    folioUnlock(k, p);
    putPage(k, p);
    expect(mm.read(a, P)).toEqual(pattern(3));
  });

  it("errors: -EFAULT without a VMA or VM_WRITE, -EOPNOTSUPP for non-anonymous memory, rule without mmap lock", () => {
    const { k, mm, a } = setup();
    const ro = mm.mmap({ length: P, prot: PROT_READ, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const sh = mm.mmap({ length: P, prot: PROT_READ | PROT_WRITE, flags: MAP_SHARED | MAP_ANONYMOUS });
    locked(mm, () => {
      expect(makeDeviceExclusive(mm, 0x1000, owner)).toBe(-EFAULT);
      expect(makeDeviceExclusive(mm, ro, owner)).toBe(-EFAULT);
      expect(makeDeviceExclusive(mm, sh, owner)).toBe(-EOPNOTSUPP);
    });
    const pfn = ptePfn(mm.pgtable.pteGet(sh));
    expect(k.store.refcount(pfn)).toBe(2); // page cache + mapping: the GUP reference was put
    expect(folioTestLocked(k, pfn)).toBe(false);
    expect(() => makeDeviceExclusive(mm, a, owner)).toThrow(KernelRuleError);
  });

  it("splits a PMD-mapped THP (FOLL_SPLIT_PMD) and converts one PTE", () => {
    const { k, mm } = setup({ thp: "always", pages: 1 });
    const h = mm.mmap({ length: 2 << 20, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.write(h + 3 * P, pattern(7));
    expect(mm.pgtable.pmdGet(h)).not.toBe(0);
    const p = locked(mm, () => makeDeviceExclusive(mm, h + 3 * P, owner));
    expect(mm.pgtable.pmdGet(h)).toBe(0);
    expect(isDeviceExclusiveEntry(mm.pgtable.pteGet(h + 3 * P))).toBe(true);
    expect(ptePresent(mm.pgtable.pteGet(h + 4 * P))).toBe(true);
    folioUnlock(k, p);
    putPage(k, p);
    expect(mm.read(h + 3 * P, P)).toEqual(pattern(7));
  });
});
