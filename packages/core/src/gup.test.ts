import { describe, expect, it } from "vitest";
import { isDeviceCoherentPage } from "./memremap.js";
import { EBUSY, EFAULT } from "./errno.js";
import { InvalidArgumentError, KernelRuleError } from "./errors.js";
import {
  FOLL_LONGTERM,
  FOLL_WRITE,
  GUP_PIN_COUNTING_BIAS,
  folioIsLongtermPinnable,
  folioMaybeDmaPinned,
  getUserPages,
  getUserPagesFast,
  pinUserPages,
  pinUserPagesFast,
  unpinUserPages,
} from "./gup.js";
import { createKernel } from "./kernel.js";
import { MM_ANONPAGES } from "./mm-counters.js";
import type { Mm } from "./mm.js";
import { PAGE_SIZE, PG_anon_exclusive, PMD_SIZE, alignUp } from "./page-flags.js";
import { putPage } from "./page-ref.js";
import { isDevicePrivateEntry, pmdTransHuge, ptePfn, ptePresent, pteWrite } from "./pgtable.js";
import { folioTryShareAnonRmap } from "./rmap.js";
import { FakeCoherentDevice, FakeDevice } from "./testing/test-util.js";
import { MADV_HUGEPAGE, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "./vma.js";

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

function locked<T>(mm: Mm, fn: () => T): T {
  expect(mm.mmapLock.tryDownRead()).toBe(true);
  try {
    return fn();
  } finally {
    mm.mmapLock.upRead();
  }
}

describe("get_user_pages / pin_user_pages", () => {
  it("FOLL_GET faults pages in (write faults allocate) and takes one reference each; putPage releases", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const a = mm.mmap({ length: 4 * PAGE_SIZE, prot: RW, flags: ANON });
    const pages: number[] = [];
    expect(locked(mm, () => getUserPages(mm, a, 4, FOLL_WRITE, pages))).toBe(4);
    expect(pages).toHaveLength(4);
    for (let i = 0; i < 4; i++) {
      expect(ptePfn(mm.pgtable.pteGet(a + i * PAGE_SIZE))).toBe(pages[i]);
      expect(k.store.refcount(pages[i]!)).toBe(2);
      expect(folioMaybeDmaPinned(k, pages[i]!)).toBe(false);
    }
    expect(mm.counter(MM_ANONPAGES)).toBe(4);
    for (const p of pages) putPage(k, p);
    expect(k.store.refcount(pages[0]!)).toBe(1);
    // a read GUP of an untouched page maps (and returns) the shared zero page
    const b = mm.mmap({ length: PAGE_SIZE, prot: RW, flags: ANON });
    const z: number[] = [];
    expect(locked(mm, () => getUserPages(mm, b, 1, 0, z))).toBe(1);
    expect(z).toEqual([k.zeroPfn]);
    putPage(k, z[0]!);
  });

  it("FOLL_PIN adds GUP_PIN_COUNTING_BIAS to a small folio and _pincount to a THP; unpin undoes it; the zero page is not pinned", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const raw = mm.mmap({ length: 2 * PMD_SIZE, prot: RW, flags: ANON });
    const map = alignUp(raw, PMD_SIZE);
    expect(mm.madvise(map, PMD_SIZE, MADV_HUGEPAGE)).toBe(0);
    mm.touch(map, true);
    expect(pmdTransHuge(mm.pgtable.pmdGet(map))).toBe(true);
    const small = map + PMD_SIZE;
    mm.touch(small, true);
    const pages: number[] = [];
    expect(locked(mm, () => pinUserPages(mm, map + 3 * PAGE_SIZE, 1, FOLL_WRITE, pages))).toBe(1);
    expect(locked(mm, () => pinUserPages(mm, small, 1, FOLL_WRITE, pages))).toBe(1);
    const [thpPage, smallPage] = pages as [number, number];
    expect(thpPage).toBe(ptePfn(mm.pgtable.pmdGet(map)) + 3);
    expect(k.store.refcount(thpPage)).toBe(2);
    expect(k.store.pincount(thpPage)).toBe(1);
    expect(k.store.refcount(smallPage)).toBe(1 + GUP_PIN_COUNTING_BIAS);
    expect(folioMaybeDmaPinned(k, thpPage)).toBe(true);
    expect(folioMaybeDmaPinned(k, smallPage)).toBe(true);
    // a pinned anon page cannot be unmapped for migration
    expect(folioTryShareAnonRmap(k, smallPage)).toBe(-EBUSY);
    expect(k.store.test(smallPage, PG_anon_exclusive)).toBe(true);
    unpinUserPages(k, pages);
    expect(k.store.refcount(smallPage)).toBe(1);
    expect(k.store.pincount(thpPage)).toBe(0);
    expect(folioMaybeDmaPinned(k, smallPage)).toBe(false);
    expect(folioTryShareAnonRmap(k, smallPage)).toBe(0);
    const zeroAt = mm.mmap({ length: PAGE_SIZE, prot: PROT_READ, flags: ANON });
    const z: number[] = [];
    expect(locked(mm, () => pinUserPages(mm, zeroAt, 1, 0, z))).toBe(1);
    expect(z).toEqual([k.zeroPfn]);
    expect(k.store.refcount(k.zeroPfn)).toBe(1);
    unpinUserPages(k, z);
    expect(k.store.refcount(k.zeroPfn)).toBe(1);
  });

  it("a write GUP breaks COW after fork; a read-only pin of a shared anon page unshares it (read-only private copy)", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const p = k.createMm();
    const a = p.mmap({ length: 2 * PAGE_SIZE, prot: RW, flags: ANON });
    p.writeU32(a, 11);
    p.writeU32(a + PAGE_SIZE, 22);
    const shared0 = ptePfn(p.pgtable.pteGet(a));
    const shared1 = ptePfn(p.pgtable.pteGet(a + PAGE_SIZE));
    const c = p.fork();
    const w: number[] = [];
    expect(locked(p, () => getUserPages(p, a, 1, FOLL_WRITE, w))).toBe(1);
    expect(w[0]).not.toBe(shared0);
    expect(ptePfn(c.pgtable.pteGet(a))).toBe(shared0);
    const r: number[] = [];
    expect(locked(p, () => pinUserPages(p, a + PAGE_SIZE, 1, 0, r))).toBe(1);
    expect(r[0]).not.toBe(shared1);
    const pte = p.pgtable.pteGet(a + PAGE_SIZE);
    expect(ptePfn(pte)).toBe(r[0]);
    expect(pteWrite(pte)).toBe(false);
    expect(k.store.test(r[0]!, PG_anon_exclusive)).toBe(true);
    expect(p.readU32(a + PAGE_SIZE)).toBe(22);
    expect(c.readU32(a + PAGE_SIZE)).toBe(22);
    putPage(k, w[0]!);
    unpinUserPages(k, r);
    c.exit();
    p.exit();
    expect(k.allocator.nrFree).toBe(k.nrRamPages);
  });

  it("fork gives the child its own copy of a pinned exclusive page (copy_present_page)", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const p = k.createMm();
    const a = p.mmap({ length: PAGE_SIZE, prot: RW, flags: ANON });
    p.writeU32(a, 5);
    const pins: number[] = [];
    expect(locked(p, () => pinUserPages(p, a, 1, FOLL_WRITE | FOLL_LONGTERM, pins))).toBe(1);
    const c = p.fork();
    const cp = c.pgtable.pteGet(a);
    expect(ptePfn(cp)).not.toBe(pins[0]);
    expect(pteWrite(cp)).toBe(true);
    expect(pteWrite(p.pgtable.pteGet(a))).toBe(true);
    expect(k.store.test(pins[0]!, PG_anon_exclusive)).toBe(true);
    expect(c.readU32(a)).toBe(5);
    p.writeU32(a, 6); // no COW: the pinned page stays the parent's
    expect(ptePfn(p.pgtable.pteGet(a))).toBe(pins[0]);
    expect(c.readU32(a)).toBe(5);
    unpinUserPages(k, pins);
  });

  it("errors: no VMA / write to a read-only VMA / VM_PFNMAP → -EFAULT, partial counts; misuse throws", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const a = mm.mmap({ length: 2 * PAGE_SIZE, prot: RW, flags: ANON });
    const ro = mm.mmap({ length: PAGE_SIZE, prot: PROT_READ, flags: ANON });
    const pages: number[] = [];
    expect(locked(mm, () => getUserPages(mm, a + 64 * PAGE_SIZE, 1, 0, pages))).toBe(-EFAULT);
    expect(locked(mm, () => getUserPages(mm, ro, 1, FOLL_WRITE, pages))).toBe(-EFAULT);
    expect(locked(mm, () => getUserPages(mm, a, 3, FOLL_WRITE, pages))).toBe(2); // stops at the hole
    for (const p of pages) putPage(k, p);
    expect(() => getUserPages(mm, a, 1, 0, [])).toThrow(KernelRuleError); // mmap lock not held
    expect(() => locked(mm, () => getUserPages(mm, a, 1, FOLL_LONGTERM, []))).toThrow(KernelRuleError);
    expect(() => locked(mm, () => getUserPages(mm, a + 1, 1, 0, []))).toThrow(InvalidArgumentError);
    expect(k.store.refcount(ptePfn(mm.pgtable.pteGet(a)))).toBe(1);
  });
});

describe("GUP on device memory (hmm-tests hmm_gup_test)", () => {
  const P = PAGE_SIZE;
  it("device-private: every GUP and pin faults the page back to system memory through migrate_to_ram", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const dev = new FakeDevice(k, 16);
    const a = mm.mmap({ length: 4 * P, prot: RW, flags: ANON });
    for (let i = 0; i < 4; i++) mm.writeU32(a + i * P, i);
    for (let i = 0; i < 4; i++) dev.migrateToDevice(mm, a + i * P);
    // GUP_BASIC_TEST (get_user_pages), GUP_FAST_BENCHMARK (get_user_pages_fast),
    // PIN_FAST_BENCHMARK (pin_user_pages_fast | FOLL_LONGTERM), PIN_LONGTERM_BENCHMARK (pin_user_pages | FOLL_LONGTERM)
    const p0: number[] = [];
    expect(locked(mm, () => getUserPages(mm, a, 1, FOLL_WRITE, p0))).toBe(1);
    p0.forEach((p) => putPage(k, p));
    const p1: number[] = [];
    expect(getUserPagesFast(mm, a + P, 1, FOLL_WRITE, p1)).toBe(1);
    p1.forEach((p) => putPage(k, p));
    const p2: number[] = [];
    expect(pinUserPagesFast(mm, a + 2 * P, 1, FOLL_WRITE | FOLL_LONGTERM, p2)).toBe(1);
    expect(folioMaybeDmaPinned(k, p2[0]!)).toBe(true);
    unpinUserPages(k, p2);
    const p3: number[] = [];
    expect(locked(mm, () => pinUserPages(mm, a + 3 * P, 1, FOLL_WRITE | FOLL_LONGTERM, p3))).toBe(1);
    unpinUserPages(k, p3);
    expect(dev.faults.map((f) => f.address)).toEqual([a, a + P, a + 2 * P, a + 3 * P]);
    for (let i = 0; i < 4; i++) {
      const e = mm.pgtable.pteGet(a + i * P);
      expect(ptePresent(e) && pteWrite(e)).toBe(true);
      expect(k.store.refcount(ptePfn(e))).toBe(1);
      expect(mm.readU32(a + i * P)).toBe(i);
    }
    expect(dev.free).toHaveLength(16);
  });

  function coherentSetup(withMigrate: boolean) {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const dev = new FakeCoherentDevice(k, 16);
    if (withMigrate) k.migrateDeviceCoherentFolio = dev.migrateDeviceCoherentFolio;
    const a = mm.mmap({ length: 4 * P, prot: RW, flags: ANON });
    for (let i = 0; i < 4; i++) mm.writeU32(a + i * P, i);
    for (let i = 0; i < 4; i++) dev.place(mm, a + i * P);
    return { k, mm, dev, a };
  }

  it("device-coherent: plain GUP leaves pages in place; FOLL_LONGTERM pins migrate them to system RAM first", () => {
    const { k, mm, dev, a } = coherentSetup(true);
    const p0: number[] = [];
    expect(locked(mm, () => getUserPages(mm, a, 1, FOLL_WRITE, p0))).toBe(1);
    expect(isDeviceCoherentPage(k, p0[0]!)).toBe(true);
    p0.forEach((p) => putPage(k, p));
    const p1: number[] = [];
    expect(getUserPagesFast(mm, a + P, 1, FOLL_WRITE, p1)).toBe(1);
    expect(isDeviceCoherentPage(k, p1[0]!)).toBe(true);
    p1.forEach((p) => putPage(k, p));
    const p2: number[] = [];
    expect(pinUserPagesFast(mm, a + 2 * P, 1, FOLL_WRITE | FOLL_LONGTERM, p2)).toBe(1);
    expect(isDeviceCoherentPage(k, p2[0]!)).toBe(false);
    expect(folioIsLongtermPinnable(k, p2[0]!)).toBe(true);
    expect(folioMaybeDmaPinned(k, p2[0]!)).toBe(true);
    unpinUserPages(k, p2);
    const p3: number[] = [];
    expect(locked(mm, () => pinUserPages(mm, a + 3 * P, 1, FOLL_WRITE | FOLL_LONGTERM, p3))).toBe(1);
    expect(isDeviceCoherentPage(k, p3[0]!)).toBe(false);
    unpinUserPages(k, p3);
    // where the pages ended: 0 and 1 on the device, 2 and 3 in system RAM
    const where = [0, 1, 2, 3].map((i) => isDeviceCoherentPage(k, ptePfn(mm.pgtable.pteGet(a + i * P))));
    expect(where).toEqual([true, true, false, false]);
    expect(dev.migrated).toHaveLength(2);
    for (let i = 0; i < 4; i++) expect(mm.readU32(a + i * P)).toBe(i);
    for (let i = 0; i < 4; i++) expect(k.store.refcount(ptePfn(mm.pgtable.pteGet(a + i * P)))).toBe(1);
  });

  it("device-coherent with no migrateDeviceCoherentFolio: a FOLL_LONGTERM pin fails -EBUSY and holds nothing", () => {
    const { k, mm, a } = coherentSetup(false);
    const pfn = ptePfn(mm.pgtable.pteGet(a));
    const pages: number[] = [];
    expect(locked(mm, () => pinUserPages(mm, a, 2, FOLL_WRITE | FOLL_LONGTERM, pages))).toBe(-EBUSY);
    expect(pinUserPagesFast(mm, a, 1, FOLL_WRITE | FOLL_LONGTERM, pages)).toBe(-EBUSY);
    expect(pages).toEqual([]);
    expect(k.store.refcount(pfn)).toBe(1);
    expect(isDeviceCoherentPage(k, ptePfn(mm.pgtable.pteGet(a)))).toBe(true);
    // a non-longterm pin is fine
    expect(pinUserPagesFast(mm, a, 1, FOLL_WRITE, pages)).toBe(1);
    expect(k.store.refcount(pfn)).toBe(1 + GUP_PIN_COUNTING_BIAS);
    unpinUserPages(k, pages);
    expect(isDevicePrivateEntry(mm.pgtable.pteGet(a))).toBe(false);
  });
});
