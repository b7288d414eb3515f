import {
  EBUSY,
  FOLL_LONGTERM,
  FOLL_WRITE,
  GUP_PIN_COUNTING_BIAS,
  InvalidArgumentError,
  KernelRuleError,
  MADV_HUGEPAGE,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MEMORY_DEVICE_COHERENT,
  MEMORY_DEVICE_PRIVATE,
  PAGE_SIZE,
  PG_anon_exclusive,
  PMD_SIZE,
  PROT_READ,
  PROT_WRITE,
  allocPages,
  createKernel,
  folioMaybeDmaPinned,
  folioTrylock,
  folioUnlock,
  getPage,
  getUserPages,
  isDeviceCoherentPage,
  isDeviceExclusiveEntry,
  isDevicePrivateEntry,
  pagePgmap,
  pinUserPagesFast,
  pmdTransHuge,
  ptePfn,
  ptePresent,
  pteWrite,
  putPage,
  unpinUserPages,
  type Mm,
} from "@hmmsim/core";
import { checkInvariants } from "@hmmsim/testing";
import { afterEach, describe, expect, it } from "vitest";
import { makeDeviceExclusive } from "./make-device-exclusive.js";
import { installMigrateDeviceCoherentFolio, migrateDeviceCoherentFolio } from "./migrate-device-coherent.js";
import { TestDevice } from "./testing/test-driver.js";
import { assertTrackedInvariants, locked, pattern, recordNotifier, setup, trackKernel } from "./testing/test-helpers.js";

// Every test ends with the kernel invariants checked on every kernel it created (tracked by setup / trackKernel).
afterEach(assertTrackedInvariants);

/** A kernel, an mm with `pages` written pages, all migrated to a coherent device. */
function coherent(pages = 4, ramBytes = 32 << 20) {
  const t = setup({ pages, ramBytes });
  const dev = new TestDevice(t.k, 64, MEMORY_DEVICE_COHERENT, "coherent");
  const data = Array.from({ length: pages }, (_, i) => pattern(i + 1));
  for (let i = 0; i < pages; i++) t.mm.write(t.a + i * PAGE_SIZE, data[i]!);
  expect(dev.migrateToDevice(t.mm, t.a, t.a + pages * PAGE_SIZE).ret).toBe(0);
  const pfnAt = (i: number) => ptePfn(t.mm.pgtable.pteGet(t.a + i * PAGE_SIZE));
  for (let i = 0; i < pages; i++) expect(isDeviceCoherentPage(t.k, pfnAt(i))).toBe(true);
  return { ...t, dev, data, pfnAt };
}

describe("migrateDeviceCoherentFolio (mm/migrate_device.c migrate_device_coherent_folio)", () => {
  it("moves a mapped coherent page to a new system page: same bytes, same PTE bits, caller's reference consumed", () => {
    const { k, mm, a, dev, data, pfnAt } = coherent();
    const old = pfnAt(1);
    const log = recordNotifier(mm);
    getPage(k, old); // the reference GUP converted its pin into
    expect(k.store.refcount(old)).toBe(2);
    expect(migrateDeviceCoherentFolio(k, old)).toBe(0);
    const now = pfnAt(1);
    expect(isDeviceCoherentPage(k, now)).toBe(false);
    const pte = mm.pgtable.pteGet(a + PAGE_SIZE);
    expect(ptePresent(pte)).toBe(true);
    expect(pteWrite(pte)).toBe(true);
    expect(k.store.refcount(now)).toBe(1); // only the mapping's
    expect(mm.read(a + PAGE_SIZE, PAGE_SIZE)).toEqual(data[1]);
    // the coherent page went back to the device through folio_free
    expect(dev.freed).toEqual([old]);
    expect(k.store.refcount(old)).toBe(0);
    // unmapped from the mm through a notifier (try_to_migrate)
    expect(log.some((e) => e.start <= a + PAGE_SIZE && e.end >= a + 2 * PAGE_SIZE)).toBe(true);
    // the other pages did not move
    for (const i of [0, 2, 3]) expect(isDeviceCoherentPage(k, pfnAt(i))).toBe(true);
    expect(checkInvariants(k)).toEqual([]);
  });

  it("installed in kernel.migrateDeviceCoherentFolio: a FOLL_LONGTERM pin migrates then pins the system page", () => {
    const { k, mm, a, data, pfnAt } = coherent();
    installMigrateDeviceCoherentFolio(k);
    const pages: number[] = [];
    expect(pinUserPagesFast(mm, a + 2 * PAGE_SIZE, 2, FOLL_WRITE | FOLL_LONGTERM, pages)).toBe(2);
    expect(pages).toEqual([pfnAt(2), pfnAt(3)]);
    for (const p of pages) {
      expect(isDeviceCoherentPage(k, p)).toBe(false);
      expect(folioMaybeDmaPinned(k, p)).toBe(true);
    }
    unpinUserPages(k, pages);
    expect(mm.read(a + 2 * PAGE_SIZE, 2 * PAGE_SIZE)).toEqual(new Uint8Array([...data[2]!, ...data[3]!]));
    // without FOLL_LONGTERM nothing moves
    const p0: number[] = [];
    expect(pinUserPagesFast(mm, a, 1, FOLL_WRITE, p0)).toBe(1);
    expect(isDeviceCoherentPage(k, p0[0]!)).toBe(true);
    unpinUserPages(k, p0);
    expect(checkInvariants(k)).toEqual([]);
  });

  it("-EBUSY, page left in place, when it is pinned, locked by someone else, or no system page can be allocated", () => {
    const { k, mm, a, data, pfnAt } = coherent(3, 4 << 20);
    // 1. pinned (a non-longterm pin keeps it on the device): the unmap restores it.
    const pin: number[] = [];
    expect(pinUserPagesFast(mm, a, 1, FOLL_WRITE, pin)).toBe(1);
    const p0 = pin[0]!;
    const refs0 = k.store.refcount(p0);
    getPage(k, p0);
    expect(migrateDeviceCoherentFolio(k, p0)).toBe(-EBUSY);
    expect(pfnAt(0)).toBe(p0);
    expect(k.store.refcount(p0)).toBe(refs0);
    unpinUserPages(k, pin);
    // 2. locked: folio_lock would sleep; the functional plane reports -EBUSY.
    const p1 = pfnAt(1);
    expect(folioTrylock(k, p1)).toBe(true);
    const refs1 = k.store.refcount(p1);
    getPage(k, p1);
    expect(migrateDeviceCoherentFolio(k, p1)).toBe(-EBUSY);
    expect(k.store.refcount(p1)).toBe(refs1);
    folioUnlock(k, p1);
    // 3. out of RAM: migrate_device_pages leaves it, finalize maps the old page back.
    const hog: number[] = [];
    for (let p = allocPages(k, 0); p >= 0; p = allocPages(k, 0)) hog.push(p);
    const p2 = pfnAt(2);
    getPage(k, p2);
    expect(migrateDeviceCoherentFolio(k, p2)).toBe(-EBUSY);
    expect(pfnAt(2)).toBe(p2);
    expect(k.store.refcount(p2)).toBe(1);
    for (const p of hog) putPage(k, p);
    for (let i = 0; i < 3; i++) expect(mm.read(a + i * PAGE_SIZE, PAGE_SIZE)).toEqual(data[i]);
    // and with memory back it works
    getPage(k, p2);
    expect(migrateDeviceCoherentFolio(k, p2)).toBe(0);
    expect(isDeviceCoherentPage(k, pfnAt(2))).toBe(false);
    expect(checkInvariants(k)).toEqual([]);
  });

  it("misuse: no caller reference or a non-coherent page is rejected and changes nothing", () => {
    const { k, mm, a, pfnAt } = coherent(1);
    const p = pfnAt(0);
    // The caller must hold a reference (a free page has none).
    expect(() => migrateDeviceCoherentFolio(k, allocFreePfn(k))).toThrow(KernelRuleError);
    const ram = allocPages(k, 0);
    expect(() => migrateDeviceCoherentFolio(k, ram)).toThrow(InvalidArgumentError);
    putPage(k, ram);
    expect(() => migrateDeviceCoherentFolio(k, 1.5)).toThrow(InvalidArgumentError);
    expect(pfnAt(0)).toBe(p);
    expect(k.store.refcount(p)).toBe(1);
    expect(mm.readU32(a)).toBe(new DataView(pattern(1).buffer).getUint32(0, true));
  });
});

const P = PAGE_SIZE;

/**
 * A 2 MiB anonymous THP (MADV_HUGEPAGE) with pages 0-2 written, pages 0-1 migrated to a `type` device
 * (migrate_vma_collect_pmd splits it: two order-0 device pages).
 */
function thpOnDevice(type: typeof MEMORY_DEVICE_COHERENT | typeof MEMORY_DEVICE_PRIVATE) {
  const k = trackKernel(createKernel({ ramBytes: 32 << 20, bytes: true, thp: "madvise" }));
  installMigrateDeviceCoherentFolio(k);
  const mm = k.createMm();
  const a = mm.mmap({ length: 2 * PMD_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  const h = Math.ceil(a / PMD_SIZE) * PMD_SIZE;
  expect(mm.madvise(h, PMD_SIZE, MADV_HUGEPAGE)).toBe(0);
  const data = [pattern(11), pattern(12), pattern(13)];
  data.forEach((d, i) => mm.write(h + i * P, d));
  expect(pmdTransHuge(mm.pgtable.pmdGet(h))).toBe(true);
  const dev = new TestDevice(k, 64, type, type === MEMORY_DEVICE_COHERENT ? "coherent" : "private");
  expect(dev.migrateToDevice(mm, h, h + 2 * P).ret).toBe(0);
  expect(pmdTransHuge(mm.pgtable.pmdGet(h))).toBe(false); // split
  const pte = (m: Mm, i = 0) => m.pgtable.pteGet(h + i * P);
  const pfn = (m: Mm, i = 0) => ptePfn(pte(m, i));
  if (type === MEMORY_DEVICE_COHERENT) for (const i of [0, 1]) expect(isDeviceCoherentPage(k, pfn(mm, i))).toBe(true);
  else for (const i of [0, 1]) expect(isDevicePrivateEntry(pte(mm, i))).toBe(true);
  const s = k.store;
  const gup = (m: Mm, flags: number, out: number[]) => locked(m, () => getUserPages(m, h, 1, flags, out));
  return { k, s, mm, h, dev, data, pte, pfn, gup };
}

/**
 * The long soak's counterexample (migrate-property, seed 1394021173) and its siblings: a 2 MiB anonymous THP
 * (MADV_HUGEPAGE) faulted in, pages 0-1 migrated to a device (migrate_vma_collect_pmd splits it: two order-0
 * device pages), a GUP reference or pin held on page 0, maybe fork(), then pin_user_pages_fast(FOLL_LONGTERM) of
 * page 0. mm/gup.c __gup_longterm_locked() pins first (__get_user_pages_locked) and only then checks the pinned
 * folios (check_and_migrate_movable_pages), so FOLL_WRITE on the PTE fork() write-protected faults first:
 * follow_page_pte → can_follow_write_pte fails (no FOLL_FORCE) → faultin_page → do_wp_page. fork() cleared
 * PageAnonExclusive (copy_present_ptes → folio_try_dup_anon_rmap_pte: a FOLL_GET reference is no pin), and the
 * held reference fails wp_can_reuse_anon_folio (refcount > 1), so wp_page_copy maps a new system page, which is
 * long-term pinnable: 1. Only a coherent page still mapped after the fault reaches migrate_longterm_unpinnable_folios,
 * where migrate_device_coherent_folio fails on a held reference: -EBUSY. (gup-fast pins nothing first either way:
 * pte_access_permitted fails on a write-protected PTE, try_grab_folio_fast refuses a FOLL_LONGTERM pin of a
 * device-coherent folio.)
 */
describe("FOLL_LONGTERM pin of a GUP-held page of a split THP, with and without fork (mm/gup.c __gup_longterm_locked)", () => {
  it("the soak's counterexample: FOLL_GET held on a coherent page, fork, FOLL_WRITE|FOLL_LONGTERM pin in the parent → COW to a system page, 1", () => {
    const { k, s, mm, h, data, pte, pfn, gup } = thpOnDevice(MEMORY_DEVICE_COHERENT);
    const c0 = pfn(mm);
    const got: number[] = [];
    expect(gup(mm, FOLL_WRITE, got)).toBe(1);
    expect(got).toEqual([c0]);
    expect(s.refcount(c0)).toBe(2); // the mapping + FOLL_GET
    const child = mm.fork();
    // copy_present_ptes: the FOLL_GET reference is no pin (folio_needs_cow_for_dma false): shared, both read-only.
    for (const m of [mm, child]) {
      expect(pfn(m)).toBe(c0);
      expect(pteWrite(pte(m))).toBe(false);
    }
    expect(s.test(c0, PG_anon_exclusive)).toBe(false);
    expect([s.refcount(c0), s.mapcount(c0)]).toEqual([3, 2]);

    const pinned: number[] = [];
    expect(pinUserPagesFast(mm, h, 1, FOLL_WRITE | FOLL_LONGTERM, pinned)).toBe(1);
    const r = pinned[0]!;
    // The parent now maps a new, exclusive, writable system page, and that is what is pinned.
    expect(r).not.toBe(c0);
    expect(isDeviceCoherentPage(k, r)).toBe(false);
    expect(pfn(mm)).toBe(r);
    expect(pteWrite(pte(mm))).toBe(true);
    expect(s.test(r, PG_anon_exclusive)).toBe(true);
    expect(folioMaybeDmaPinned(k, r)).toBe(true);
    expect(s.refcount(r)).toBe(1 + GUP_PIN_COUNTING_BIAS);
    // The child keeps the coherent page read-only; it holds the child's mapping and the FOLL_GET reference.
    expect(pfn(child)).toBe(c0);
    expect(pteWrite(pte(child))).toBe(false);
    expect([s.refcount(c0), s.mapcount(c0)]).toEqual([2, 1]);
    expect(isDeviceCoherentPage(k, pfn(mm, 1))).toBe(true); // page 1 did not move
    // Same bytes on both sides, and they diverge from here.
    expect(mm.read(h, P)).toEqual(data[0]);
    expect(child.read(h, P)).toEqual(data[0]);
    mm.write(h, pattern(99));
    expect(child.read(h, P)).toEqual(data[0]);
    unpinUserPages(k, pinned);
    putPage(k, c0);
    expect(s.refcount(c0)).toBe(1);
  });

  it("siblings that stay -EBUSY: no fork (FOLL_WRITE or not), or a held FOLL_PIN (fork copies for the child, the parent stays exclusive)", () => {
    for (const flags of [FOLL_WRITE | FOLL_LONGTERM, FOLL_LONGTERM]) {
      // No fork: the PTE is writable and the page exclusive, so no fault: the coherent page is pinned, then
      // migrate_device_coherent_folio fails on the FOLL_GET reference; the call pins nothing.
      const { k, s, mm, h, data, pte, pfn, gup } = thpOnDevice(MEMORY_DEVICE_COHERENT);
      const c0 = pfn(mm);
      expect(gup(mm, FOLL_WRITE, [])).toBe(1);
      const pinned: number[] = [];
      expect(pinUserPagesFast(mm, h, 1, flags, pinned)).toBe(-EBUSY);
      expect(pinned).toEqual([]);
      expect(pfn(mm)).toBe(c0);
      expect(pteWrite(pte(mm))).toBe(true);
      expect(s.refcount(c0)).toBe(2);
      expect(mm.read(h, P)).toEqual(data[0]);
      putPage(k, c0);
      // ... and with the reference gone the same pin moves the page to RAM and pins it.
      expect(pinUserPagesFast(mm, h, 1, flags, pinned)).toBe(1);
      expect(isDeviceCoherentPage(k, pinned[0]!)).toBe(false);
      expect(pfn(mm)).toBe(pinned[0]);
      unpinUserPages(k, pinned);
    }
    // A held FOLL_PIN: fork's folio_try_dup_anon_rmap_pte sees folio_maybe_dma_pinned and the child gets a copy
    // (copy_present_page); the parent's PTE stays writable and exclusive, so the long-term pin reaches
    // migrate_device_coherent_folio, which fails on the pin.
    const { k, s, mm, h, data, pte, pfn } = thpOnDevice(MEMORY_DEVICE_COHERENT);
    const c0 = pfn(mm);
    const pin0: number[] = [];
    expect(pinUserPagesFast(mm, h, 1, FOLL_WRITE, pin0)).toBe(1);
    expect(pin0).toEqual([c0]);
    const child = mm.fork();
    expect(pfn(mm)).toBe(c0);
    expect(pteWrite(pte(mm))).toBe(true);
    expect(s.test(c0, PG_anon_exclusive)).toBe(true);
    expect(isDeviceCoherentPage(k, pfn(child))).toBe(false);
    expect(child.read(h, P)).toEqual(data[0]);
    const pinned: number[] = [];
    expect(pinUserPagesFast(mm, h, 1, FOLL_WRITE | FOLL_LONGTERM, pinned)).toBe(-EBUSY);
    expect(pinned).toEqual([]);
    expect(pfn(mm)).toBe(c0);
    expect(s.refcount(c0)).toBe(1 + GUP_PIN_COUNTING_BIAS);
    // The child's own page is RAM: its long-term pin succeeds in place.
    const cp = pfn(child);
    expect(pinUserPagesFast(child, h, 1, FOLL_WRITE | FOLL_LONGTERM, pinned)).toBe(1);
    expect(pinned).toEqual([cp]);
    unpinUserPages(k, pinned);
    unpinUserPages(k, pin0);
  });

  it("siblings that succeed after fork: a read-only long-term pin (FAULT_FLAG_UNSHARE), the child's pin, no reference held, FOLL_GET without the pin", () => {
    // FOLL_LONGTERM without FOLL_WRITE: gup_must_unshare (a FOLL_PIN of a shared anon page) → FAULT_FLAG_UNSHARE →
    // do_wp_page can't reuse it → wp_page_copy maps an exclusive read-only system page, which is pinned.
    {
      const { k, s, mm, h, data, pte, pfn, gup } = thpOnDevice(MEMORY_DEVICE_COHERENT);
      const c0 = pfn(mm);
      expect(gup(mm, FOLL_WRITE, [])).toBe(1);
      const child = mm.fork();
      const pinned: number[] = [];
      expect(pinUserPagesFast(mm, h, 1, FOLL_LONGTERM, pinned)).toBe(1);
      const r = pinned[0]!;
      expect(r).not.toBe(c0);
      expect(isDeviceCoherentPage(k, r)).toBe(false);
      expect(pfn(mm)).toBe(r);
      expect(pteWrite(pte(mm))).toBe(false);
      expect(s.test(r, PG_anon_exclusive)).toBe(true);
      expect(pfn(child)).toBe(c0);
      expect([s.refcount(c0), s.mapcount(c0)]).toEqual([2, 1]);
      expect(mm.read(h, P)).toEqual(data[0]);
      unpinUserPages(k, pinned);
      putPage(k, c0);
    }
    // The child pins: its PTE is as write-protected and the page as shared: same COW, the parent keeps c0.
    {
      const { k, s, mm, h, data, pfn, gup } = thpOnDevice(MEMORY_DEVICE_COHERENT);
      const c0 = pfn(mm);
      expect(gup(mm, FOLL_WRITE, [])).toBe(1);
      const child = mm.fork();
      const pinned: number[] = [];
      expect(pinUserPagesFast(child, h, 1, FOLL_WRITE | FOLL_LONGTERM, pinned)).toBe(1);
      expect(isDeviceCoherentPage(k, pinned[0]!)).toBe(false);
      expect(pfn(child)).toBe(pinned[0]);
      expect(pfn(mm)).toBe(c0);
      expect([s.refcount(c0), s.mapcount(c0)]).toEqual([2, 1]);
      expect(child.read(h, P)).toEqual(data[0]);
      unpinUserPages(k, pinned);
      putPage(k, c0);
    }
    // No reference held: the two mappings alone fail wp_can_reuse_anon_folio; the copy is pinned.
    {
      const { k, s, mm, h, pfn } = thpOnDevice(MEMORY_DEVICE_COHERENT);
      const c0 = pfn(mm);
      const child = mm.fork();
      const pinned: number[] = [];
      expect(pinUserPagesFast(mm, h, 1, FOLL_WRITE | FOLL_LONGTERM, pinned)).toBe(1);
      expect(isDeviceCoherentPage(k, pinned[0]!)).toBe(false);
      expect(pfn(child)).toBe(c0);
      expect([s.refcount(c0), s.mapcount(c0)]).toEqual([1, 1]);
      unpinUserPages(k, pinned);
    }
    // FOLL_GET|FOLL_WRITE (no pin, no FOLL_LONGTERM) after fork: the same COW; the new reference is on the copy.
    {
      const { k, s, mm, pfn, gup } = thpOnDevice(MEMORY_DEVICE_COHERENT);
      const c0 = pfn(mm);
      expect(gup(mm, FOLL_WRITE, [])).toBe(1);
      const child = mm.fork();
      const got: number[] = [];
      expect(gup(mm, FOLL_WRITE, got)).toBe(1);
      expect(isDeviceCoherentPage(k, got[0]!)).toBe(false);
      expect(pfn(mm)).toBe(got[0]);
      expect(pfn(child)).toBe(c0);
      expect(s.refcount(got[0]!)).toBe(2);
      putPage(k, got[0]!);
      putPage(k, c0);
    }
  });

  it("device-private sibling: GUP faults the page back first (migrate_to_ram), so fork + FOLL_LONGTERM pin is a plain COW, 1", () => {
    const { k, s, mm, h, dev, data, pte, pfn, gup } = thpOnDevice(MEMORY_DEVICE_PRIVATE);
    const got: number[] = [];
    expect(gup(mm, FOLL_WRITE, got)).toBe(1);
    const r0 = got[0]!;
    expect(dev.faults).toBe(1);
    expect(pfn(mm)).toBe(r0); // a system page now, held by FOLL_GET
    expect(isDevicePrivateEntry(pte(mm, 1))).toBe(true); // page 1 stays on the device
    const child = mm.fork();
    const pinned: number[] = [];
    expect(pinUserPagesFast(mm, h, 1, FOLL_WRITE | FOLL_LONGTERM, pinned)).toBe(1);
    expect(pinned[0]).not.toBe(r0);
    expect(pfn(mm)).toBe(pinned[0]);
    expect(pfn(child)).toBe(r0);
    expect([s.refcount(r0), s.mapcount(r0)]).toEqual([2, 1]);
    expect(mm.read(h, P)).toEqual(data[0]);
    expect(child.read(h, P)).toEqual(data[0]);
    unpinUserPages(k, pinned);
    putPage(k, r0);
    // Without fork a held system page is long-term pinnable where it is.
    const t = thpOnDevice(MEMORY_DEVICE_PRIVATE);
    const held: number[] = [];
    expect(t.gup(t.mm, FOLL_WRITE, held)).toBe(1);
    const p2: number[] = [];
    expect(pinUserPagesFast(t.mm, t.h, 1, FOLL_WRITE | FOLL_LONGTERM, p2)).toBe(1);
    expect(p2).toEqual(held);
    unpinUserPages(t.k, p2);
    putPage(t.k, held[0]!);
  });
});

/**
 * The long soak's counterexample (migrate-property, seed 1821576334) and its siblings: page 0 of a split THP is an
 * order-0 device-coherent anon page, pinned (FOLL_PIN|FOLL_WRITE, not long-term), then made device-exclusive for
 * another device, then pinned FOLL_WRITE|FOLL_LONGTERM.
 * - mm/rmap.c make_device_exclusive(): get_user_page_vma_remote(FOLL_GET|FOLL_WRITE|FOLL_SPLIT_PMD) finds the PTE
 *   writable and takes a reference; the only checks are folio_test_anon and !folio_test_hugetlb (neither pins —
 *   "concurrent access through other page references (e.g., earlier GUP invocation) is not handled and not
 *   supported" — nor the pgmap type); the PTE becomes a device-exclusive entry: the pfn is returned.
 * - The long-term pin: gup-fast gives up on the non-present PTE (gup_fast_pte_range: pte_access_permitted), so
 *   __gup_longterm_locked → __get_user_pages: follow_page_pte → no_page (not pte_none) → faultin_page →
 *   handle_mm_fault → do_swap_page → remove_device_exclusive_entry (mm/memory.c: MMU_NOTIFY_CLEAR, owner NULL since
 *   the ≥6.15 rework) → restore_exclusive_pte maps the same page again, writable (VM_WRITE and PageAnonExclusive:
 *   can_change_pte_writable). The retried follow_page_pte pins the coherent page; check_and_migrate_movable_pages →
 *   collect_longterm_unpinnable_folios (not folio_is_longterm_pinnable) → migrate_longterm_unpinnable_folios turns
 *   the new pin into a reference and calls migrate_device_coherent_folio, whose migrate_device_unmap fails
 *   migrate_vma_check_page on the first pin: -EBUSY, nothing pinned, the page stays mapped where it was.
 * Without the earlier pin the migration succeeds, __gup_longterm_locked retries (-EAGAIN) and pins the new RAM
 * page: 1. A device-private page never reaches any of this: GUP faults it back first (migrate_to_ram), so the pin
 * and make_device_exclusive are on a RAM page, which is long-term pinnable where it is.
 */
describe("FOLL_LONGTERM pin of a pinned page made device-exclusive (mm/rmap.c make_device_exclusive, mm/memory.c remove_device_exclusive_entry)", () => {
  const other = { name: "privA" };

  /** dmirror_exclusive(): make_device_exclusive for `other`, then folio_unlock + folio_put. */
  function exclusive(mm: Mm, h: number): number {
    const r = locked(mm, () => makeDeviceExclusive(mm, h, other));
    if (r >= 0) {
      folioUnlock(mm.kernel, r);
      putPage(mm.kernel, r);
    }
    return r;
  }

  it("the soak's counterexample: coherent page pinned, made exclusive (allowed), FOLL_WRITE|FOLL_LONGTERM pin → fault restores the PTE, migration fails on the pin: -EBUSY", () => {
    const { k, s, mm, h, data, pte, pfn } = thpOnDevice(MEMORY_DEVICE_COHERENT);
    const c0 = pfn(mm);
    const pin0: number[] = [];
    expect(pinUserPagesFast(mm, h, 1, FOLL_WRITE, pin0)).toBe(1);
    expect(pin0).toEqual([c0]);
    expect(s.refcount(c0)).toBe(1 + GUP_PIN_COUNTING_BIAS);
    // make_device_exclusive neither refuses a pinned page nor a device-coherent one.
    const log = recordNotifier(mm);
    expect(exclusive(mm, h)).toBe(c0);
    expect(log).toEqual([{ event: "MMU_NOTIFY_EXCLUSIVE", start: h, end: h + P, owner: other, mm: mm.id }]);
    expect(isDeviceExclusiveEntry(pte(mm))).toBe(true);
    expect(pfn(mm)).toBe(c0);
    expect([s.refcount(c0), s.mapcount(c0)]).toEqual([1 + GUP_PIN_COUNTING_BIAS, 1]);

    log.length = 0;
    const pinned: number[] = [];
    expect(pinUserPagesFast(mm, h, 1, FOLL_WRITE | FOLL_LONGTERM, pinned)).toBe(-EBUSY);
    expect(pinned).toEqual([]);
    // GUP's fault took the page back from the device (MMU_NOTIFY_CLEAR, owner NULL); the page stays where it was,
    // mapped writable again, with only the first pin on it.
    expect(log.filter((e) => e.event === "MMU_NOTIFY_CLEAR" && e.start === h && e.owner === null)).not.toHaveLength(0);
    expect(log.filter((e) => e.event === "MMU_NOTIFY_EXCLUSIVE")).toEqual([]);
    expect(ptePresent(pte(mm))).toBe(true);
    expect(pteWrite(pte(mm))).toBe(true);
    expect(pfn(mm)).toBe(c0);
    expect(isDeviceCoherentPage(k, c0)).toBe(true);
    expect(s.test(c0, PG_anon_exclusive)).toBe(true);
    expect([s.refcount(c0), s.mapcount(c0)]).toEqual([1 + GUP_PIN_COUNTING_BIAS, 1]);
    expect(folioMaybeDmaPinned(k, c0)).toBe(true);
    expect(mm.read(h, P)).toEqual(data[0]);
    // With the first pin released the same pin migrates the page to RAM and pins that: 1.
    unpinUserPages(k, pin0);
    expect(pinUserPagesFast(mm, h, 1, FOLL_WRITE | FOLL_LONGTERM, pinned)).toBe(1);
    expect(isDeviceCoherentPage(k, pinned[0]!)).toBe(false);
    expect(pfn(mm)).toBe(pinned[0]);
    expect(s.refcount(pinned[0]!)).toBe(1 + GUP_PIN_COUNTING_BIAS);
    expect(mm.read(h, P)).toEqual(data[0]);
    unpinUserPages(k, pinned);
  });

  it("siblings: without FOLL_WRITE (a read fault restores the entry as well), and a held FOLL_GET instead of the pin: -EBUSY", () => {
    for (const [held, flags] of [
      ["pin", FOLL_LONGTERM],
      ["get", FOLL_WRITE | FOLL_LONGTERM],
      ["get", FOLL_LONGTERM],
    ] as const) {
      const { k, s, mm, h, data, pte, pfn, gup } = thpOnDevice(MEMORY_DEVICE_COHERENT);
      const c0 = pfn(mm);
      const first: number[] = [];
      expect(held === "pin" ? pinUserPagesFast(mm, h, 1, FOLL_WRITE, first) : gup(mm, FOLL_WRITE, first)).toBe(1);
      expect(exclusive(mm, h)).toBe(c0);
      expect(isDeviceExclusiveEntry(pte(mm))).toBe(true);
      const pinned: number[] = [];
      expect(pinUserPagesFast(mm, h, 1, flags, pinned)).toBe(-EBUSY);
      expect(pinned).toEqual([]);
      expect(ptePresent(pte(mm)) && pteWrite(pte(mm))).toBe(true);
      expect(pfn(mm)).toBe(c0);
      expect(s.refcount(c0)).toBe(held === "pin" ? 1 + GUP_PIN_COUNTING_BIAS : 2);
      expect(mm.read(h, P)).toEqual(data[0]);
      if (held === "pin") unpinUserPages(k, first);
      else putPage(k, c0);
    }
  });

  it("siblings without the earlier pin: the exclusive coherent page is restored, migrated to RAM and that is pinned, 1 (FOLL_WRITE or not)", () => {
    for (const flags of [FOLL_WRITE | FOLL_LONGTERM, FOLL_LONGTERM]) {
      const { k, s, mm, h, dev, data, pte, pfn } = thpOnDevice(MEMORY_DEVICE_COHERENT);
      const c0 = pfn(mm);
      expect(exclusive(mm, h)).toBe(c0);
      expect(isDeviceExclusiveEntry(pte(mm))).toBe(true);
      const freed = dev.freed.length;
      const pinned: number[] = [];
      expect(pinUserPagesFast(mm, h, 1, flags, pinned)).toBe(1);
      const r = pinned[0]!;
      expect(isDeviceCoherentPage(k, r)).toBe(false);
      expect(pfn(mm)).toBe(r);
      expect(ptePresent(pte(mm))).toBe(true);
      expect(folioMaybeDmaPinned(k, r)).toBe(true);
      expect(s.refcount(r)).toBe(1 + GUP_PIN_COUNTING_BIAS);
      expect(s.refcount(c0)).toBe(0); // the coherent page went back to its driver
      expect(dev.freed.length).toBe(freed + 1);
      expect(isDeviceCoherentPage(k, pfn(mm, 1))).toBe(true); // page 1 did not move
      expect(mm.read(h, P)).toEqual(data[0]);
      unpinUserPages(k, pinned);
    }
  });

  it("fork after make_device_exclusive of the pinned coherent page: copy_nonpresent_pte restores the entry, the child gets a copy, the parent's long-term pin is still -EBUSY", () => {
    const { k, s, mm, h, data, pte, pfn } = thpOnDevice(MEMORY_DEVICE_COHERENT);
    const c0 = pfn(mm);
    const pin0: number[] = [];
    expect(pinUserPagesFast(mm, h, 1, FOLL_WRITE, pin0)).toBe(1);
    expect(exclusive(mm, h)).toBe(c0);
    const child = mm.fork();
    // try_restore_exclusive_pte, then copy_present_ptes: folio_try_dup_anon_rmap_pte refuses the pinned page, so
    // copy_present_page gives the child its own RAM page; the parent keeps c0 writable and exclusive.
    expect(ptePresent(pte(mm)) && pteWrite(pte(mm))).toBe(true);
    expect(pfn(mm)).toBe(c0);
    expect(s.test(c0, PG_anon_exclusive)).toBe(true);
    expect(isDeviceCoherentPage(k, pfn(child))).toBe(false);
    expect(child.read(h, P)).toEqual(data[0]);
    const pinned: number[] = [];
    expect(pinUserPagesFast(mm, h, 1, FOLL_WRITE | FOLL_LONGTERM, pinned)).toBe(-EBUSY);
    expect(pinned).toEqual([]);
    expect(pfn(mm)).toBe(c0);
    expect(s.refcount(c0)).toBe(1 + GUP_PIN_COUNTING_BIAS);
    unpinUserPages(k, pin0);
  });

  it("device-private sibling: the pin and make_device_exclusive fault the page back to RAM first, and the long-term pin takes that page in place, 1", () => {
    for (const pinFirst of [true, false]) {
      const { k, s, mm, h, dev, data, pte, pfn } = thpOnDevice(MEMORY_DEVICE_PRIVATE);
      const pin0: number[] = [];
      if (pinFirst) expect(pinUserPagesFast(mm, h, 1, FOLL_WRITE, pin0)).toBe(1);
      const r0 = exclusive(mm, h);
      expect(r0).toBeGreaterThanOrEqual(0);
      expect(dev.faults).toBe(1); // migrate_to_ram, once (by the pin, or by make_device_exclusive's GUP)
      if (pinFirst) expect(r0).toBe(pin0[0]);
      expect(pagePgmap(k, r0)).toBeNull();
      expect(isDeviceExclusiveEntry(pte(mm))).toBe(true);
      expect(isDevicePrivateEntry(pte(mm, 1))).toBe(true); // page 1 stays on the device
      const pinned: number[] = [];
      expect(pinUserPagesFast(mm, h, 1, FOLL_WRITE | FOLL_LONGTERM, pinned)).toBe(1);
      expect(pinned).toEqual([r0]);
      expect(ptePresent(pte(mm)) && pteWrite(pte(mm))).toBe(true);
      expect(pfn(mm)).toBe(r0);
      expect(s.refcount(r0)).toBe(1 + (pinFirst ? 2 : 1) * GUP_PIN_COUNTING_BIAS);
      expect(mm.read(h, P)).toEqual(data[0]);
      unpinUserPages(k, pinned);
      unpinUserPages(k, pin0);
    }
  });
});

/** A free RAM pfn (refcount 0). */
function allocFreePfn(k: ReturnType<typeof setup>["k"]): number {
  const p = allocPages(k, 0);
  putPage(k, p);
  return p;
}
