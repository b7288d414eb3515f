import {
  FOLL_WRITE,
  HPAGE_PMD_NR,
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MM_ANONPAGES,
  PAGE_SIZE,
  PMD_SIZE,
  PROT_READ,
  PROT_WRITE,
  createKernel,
  isDevicePrivateEntry,
  isMigrationEntry,
  isWritableDevicePrivateEntry,
  pinUserPagesFast,
  pmdTransHuge,
  pteIsHuge,
  pteKind,
  ptePfn,
  pteWrite,
  unpinUserPage,
  type Kernel,
  type Mm,
} from "@hmmsim/core";
import { assertInvariants } from "@hmmsim/testing";
import { afterEach, describe, expect, it } from "vitest";
import { migrateVmaFinalize, migrateVmaPages, migrateVmaSetup } from "./migrate-device.js";
import {
  MIGRATE_PFN_COMPOUND,
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_COMPOUND,
  MIGRATE_VMA_SELECT_SYSTEM,
  migratePfn,
  migratePfnToPage,
  migrateVmaInit,
} from "./migrate-pfn.js";
import { TestDevice } from "./testing/test-driver.js";
import { assertTrackedInvariants, locked, pattern, recordNotifier, trackKernel } from "./testing/test-helpers.js";

// Every test ends with the kernel invariants checked on every kernel it created (tracked by setup / trackKernel).
afterEach(assertTrackedInvariants);

const P = PAGE_SIZE;
const N = HPAGE_PMD_NR;

/** A kernel with THP "always", an mm, and a PMD-aligned 2 MiB (× `pmds`) anonymous mapping. */
function thpSetup(opts?: { thp?: "always" | "never"; pmds?: number; bytes?: boolean }): { k: Kernel; mm: Mm; h: number } {
  const k = trackKernel(createKernel({ ramBytes: 32 << 20, bytes: opts?.bytes ?? true, thp: opts?.thp ?? "always" }));
  const mm = k.createMm();
  const pmds = opts?.pmds ?? 1;
  // over-map by 2 MiB, then use the aligned part
  const a = mm.mmap({ length: (pmds + 1) * PMD_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  const h = Math.ceil(a / PMD_SIZE) * PMD_SIZE;
  return { k, mm, h };
}
/** Write a distinct pattern to a few pages of each 2 MiB (faulting a THP in with thp "always"). */
const SAMPLE = [0, 1, 7, 255, 256, 511];
function fill(mm: Mm, h: number, seed: number): void {
  for (const i of SAMPLE) mm.write(h + i * P, pattern(seed + i));
}
function expectBytes(mm: Mm, h: number, seed: number): void {
  for (const i of SAMPLE) expect(mm.read(h + i * P, P)).toEqual(pattern(seed + i));
  expect(mm.read(h + 100 * P, P)).toEqual(new Uint8Array(P));
}

describe("THP migration with MIGRATE_VMA_SELECT_COMPOUND (mm-unstable / 7.x)", () => {
  it("RAM THP → device THP → RAM THP: one COMPOUND entry, PMD migration entry, PMD device-private entry, bytes intact", () => {
    const { k, mm, h } = thpSetup();
    fill(mm, h, 1);
    const pmd0 = mm.pgtable.pmdGet(h);
    expect(pmdTransHuge(pmd0)).toBe(true);
    const head = ptePfn(pmd0);
    const dev = new TestDevice(k, 2 * N, undefined, "dmirror", 2);
    const freeBefore = k.allocator.nrFree;
    const rss = mm.counter(MM_ANONPAGES);
    const usage = mm.memcg.usage;
    assertInvariants(k);
    const log = recordNotifier(mm);
    let midCheck = false;
    const { args } = dev.migrateToDevice(mm, h, h + PMD_SIZE, {
      compound: true,
      beforePages: (a) => {
        // after setup: one entry, a PMD migration entry, the THP locked and unmapped
        expect(a.npages).toBe(N);
        expect(a.cpages).toBe(1);
        expect(a.src![0]).toBe(migratePfn(head) + MIGRATE_PFN_MIGRATE + MIGRATE_PFN_COMPOUND + MIGRATE_PFN_WRITE);
        for (let i = 1; i < N; i++) expect(a.src![i]).toBe(0);
        const e = mm.pgtable.pmdGet(h);
        expect(isMigrationEntry(e) && pteIsHuge(e) && ptePfn(e) === head).toBe(true);
        expect(pteKind(e)).toBe("migration-write");
        expect(mm.pgtable.pteTable(h, false)).toBe(null);
        expect(k.store.entireMapcount(head)).toBe(0);
        // the migration's reference on the source, the driver's on the locked device THP
        const dfolio = migratePfnToPage(a.dst![0]!);
        assertInvariants(k, { allowMigrationEntries: true, allowLocked: true, extraRefs: (p) => (p === head || p === dfolio ? 1 : 0) });
        midCheck = true;
      },
    });
    expect(midCheck).toBe(true);
    expect(log).toEqual([{ event: "MMU_NOTIFY_MIGRATE", start: h, end: h + PMD_SIZE, owner: dev.owner, mm: mm.id }]);
    expect(args.src![0]! & MIGRATE_PFN_MIGRATE).toBe(MIGRATE_PFN_MIGRATE);
    const e = mm.pgtable.pmdGet(h);
    expect(isWritableDevicePrivateEntry(e) && pteIsHuge(e)).toBe(true);
    const dhead = ptePfn(e);
    expect(dhead).toBe(dev.startPfn);
    expect(k.store.folioNr(dhead)).toBe(N);
    expect(k.store.refcount(dhead)).toBe(1);
    expect(k.store.entireMapcount(dhead)).toBe(1);
    expect(k.store.refcount(head)).toBe(0); // the RAM THP went back to the allocator
    expect(k.allocator.nrFree).toBe(freeBefore + N);
    expect(mm.counter(MM_ANONPAGES)).toBe(rss);
    expect(mm.memcg.usage).toBe(usage);
    expect(k.pageBytes.snapshot(dhead + 7)).toEqual(pattern(8));
    assertInvariants(k);

    const back = dev.migrateToSystem(mm, h, h + PMD_SIZE, { compound: true });
    expect(back.args.cpages).toBe(1);
    expect(back.args.src![0]).toBe(migratePfn(dhead) + MIGRATE_PFN_MIGRATE + MIGRATE_PFN_COMPOUND + MIGRATE_PFN_WRITE);
    const p = mm.pgtable.pmdGet(h);
    expect(pmdTransHuge(p) && pteWrite(p)).toBe(true);
    expect(k.store.folioNr(ptePfn(p))).toBe(N);
    expect(dev.freed).toEqual([dhead]);
    expect(dev.freeHuge.length).toBe(2);
    expect(k.allocator.nrFree).toBe(freeBefore);
    expect(mm.counter(MM_ANONPAGES)).toBe(rss);
    expect(mm.memcg.usage).toBe(usage);
    assertInvariants(k);
    expectBytes(mm, h, 1);
    expect(dev.faults).toBe(0);
    assertInvariants(k);
  });

  it("a 2 MiB anonymous hole becomes a device THP mapped by one PMD (MM_ANONPAGES += 512); a CPU fault brings the THP back", () => {
    const { k, mm, h } = thpSetup({ thp: "never" });
    const dev = new TestDevice(k, N, undefined, "dmirror", 1);
    const usage = mm.memcg.usage;
    const log = recordNotifier(mm);
    const { args } = dev.migrateToDevice(mm, h, h + PMD_SIZE, { compound: true });
    expect(args.cpages).toBe(1);
    expect(args.src![0]! & (MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND)).toBe(MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND);
    expect(migratePfnToPage(args.src![0]!)).toBe(-1);
    // collect's MIGRATE, then migrate_vma_pages' MIGRATE from the hole to end
    expect(log.map((e) => [e.event, e.start, e.end])).toEqual([
      ["MMU_NOTIFY_MIGRATE", h, h + PMD_SIZE],
      ["MMU_NOTIFY_MIGRATE", h, h + PMD_SIZE],
    ]);
    const e = mm.pgtable.pmdGet(h);
    expect(isWritableDevicePrivateEntry(e) && pteIsHuge(e)).toBe(true);
    const dhead = ptePfn(e);
    expect(mm.counter(MM_ANONPAGES)).toBe(N);
    expect(mm.memcg.usage).toBe(usage + N);
    expect(k.store.entireMapcount(dhead)).toBe(1);
    assertInvariants(k);
    // a CPU read of page 9: do_huge_pmd_device_private hands the folio to migrate_to_ram (vmf->pte == NULL), which
    // migrates the whole 2 MiB with SELECT_COMPOUND into a RAM THP under one PMD.
    expect(mm.read(h + 9 * P, P)).toEqual(new Uint8Array(P));
    expect(dev.faults).toBe(1);
    const back = mm.pgtable.pmdGet(h);
    expect(pmdTransHuge(back)).toBe(true);
    expect(ptePfn(back)).toBeLessThan(k.nrRamPages);
    expect(k.store.folioNr(ptePfn(back))).toBe(N);
    expect(dev.freeHuge).toEqual([dhead]); // the device THP went back through folio_free whole
    expect(mm.counter(MM_ANONPAGES)).toBe(N);
    expect(mm.memcg.usage).toBe(usage + N);
    assertInvariants(k);
    // nothing left on the device
    expect(dev.migrateToSystem(mm, h, h + PMD_SIZE, { compound: true }).args.cpages).toBe(0);
    assertInvariants(k);
  });

  it("a compound hole that a CPU fault populated before migrate_vma_pages: all 512 entries lose MIGRATE, the THP is freed", () => {
    const { k, mm, h } = thpSetup({ thp: "never" });
    const dev = new TestDevice(k, N, undefined, "dmirror", 1);
    const vma = mm.vmaLookup(h)!;
    const src = new Float64Array(N);
    const dst = new Float64Array(N);
    const args = migrateVmaInit({ vma, start: h, end: h + PMD_SIZE, src, dst, pgmapOwner: dev.owner, flags: MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND });
    locked(mm, () => expect(migrateVmaSetup(args)).toBe(0));
    expect(src[0]).toBe(MIGRATE_PFN_MIGRATE + MIGRATE_PFN_COMPOUND);
    const d = dev.allocDeviceFolio();
    dst[0] = migratePfn(d) + MIGRATE_PFN_COMPOUND;
    mm.touch(h + 3 * P, false); // a racing read fault maps the zero page: a PTE table now hangs under the PMD
    locked(mm, () => {
      migrateVmaPages(args);
      for (let i = 0; i < N; i++) expect(src[i]! & MIGRATE_PFN_MIGRATE).toBe(0);
      migrateVmaFinalize(args);
    });
    expect(mm.pgtable.pmdGet(h)).toBe(0);
    expect(pteKind(mm.pgtable.pteGet(h + 3 * P))).toBe("special");
    expect(dev.freed).toEqual([d]);
    expect(dev.freeHuge.length).toBe(1);
    expect(mm.counter(MM_ANONPAGES)).toBe(0);
    assertInvariants(k);
  });

  it("COMPOUND src with small dst pages splits the source folio (migrate_vma_split_unmapped_folio)", () => {
    const { k, mm, h } = thpSetup();
    fill(mm, h, 20);
    const head = ptePfn(mm.pgtable.pmdGet(h));
    const dev = new TestDevice(k, N);
    const freeBefore = k.allocator.nrFree;
    const log = recordNotifier(mm);
    const { args } = dev.migrateToDevice(mm, h, h + PMD_SIZE, { compound: true, smallDst: true });
    // the split gave every page its own entry, MIGRATE and WRITE kept, COMPOUND gone
    for (let i = 0; i < N; i++) expect(args.src![i]).toBe(migratePfn(head + i) + MIGRATE_PFN_MIGRATE + MIGRATE_PFN_WRITE);
    expect(log.map((e) => [e.event, e.start, e.end])).toEqual([
      ["MMU_NOTIFY_MIGRATE", h, h + PMD_SIZE],
      ["MMU_NOTIFY_CLEAR", h, h + PMD_SIZE], // split_huge_pmd_address(freeze)
    ]);
    expect(mm.pgtable.pmdGet(h)).toBe(0);
    for (let i = 0; i < N; i++) {
      const e = mm.pgtable.pteGet(h + i * P);
      expect(isWritableDevicePrivateEntry(e)).toBe(true);
      expect(k.store.folioNr(ptePfn(e))).toBe(1);
    }
    for (let i = 0; i < N; i++) expect(k.store.refcount(head + i)).toBe(0);
    expect(k.allocator.nrFree).toBe(freeBefore + N);
    assertInvariants(k);
    const back = dev.migrateToSystem(mm, h, h + PMD_SIZE, { compound: true });
    expect(back.args.cpages).toBe(N);
    expectBytes(mm, h, 20);
    assertInvariants(k);
  });

  it("device THP → small RAM pages splits the device folio (folio_split_unmapped, pgmap folio_split op)", () => {
    const { k, mm, h } = thpSetup();
    fill(mm, h, 40);
    const dev = new TestDevice(k, N, undefined, "dmirror", 1);
    const splits: [number, number][] = [];
    dev.pgmap.ops.folioSplit = (hd, t) => void splits.push([hd, t]);
    dev.migrateToDevice(mm, h, h + PMD_SIZE, { compound: true });
    const dhead = ptePfn(mm.pgtable.pmdGet(h));
    const back = dev.migrateToSystem(mm, h, h + PMD_SIZE, { compound: true, smallDst: true });
    expect(back.args.cpages).toBe(1);
    for (let i = 0; i < N; i++) expect(back.args.src![i]! & MIGRATE_PFN_MIGRATE).toBe(MIGRATE_PFN_MIGRATE);
    expect(splits.length).toBe(N);
    expect(splits[0]).toEqual([dhead, dhead + 1]);
    expect(splits[N - 1]).toEqual([dhead, -1]);
    for (let i = 0; i < N; i++) expect(pteKind(mm.pgtable.pteGet(h + i * P))).toBe("present");
    expect(dev.freed.length).toBe(N); // 512 order-0 device folios now
    expectBytes(mm, h, 40);
    assertInvariants(k);
  });

  it("a small src with a COMPOUND dst is refused; a declined COMPOUND src gets its PMD back", () => {
    const { k, mm, h } = thpSetup({ thp: "never" });
    for (let i = 0; i < 4; i++) mm.write(h + i * P, pattern(60 + i));
    const dev = new TestDevice(k, N, undefined, "dmirror", 1);
    const vma = mm.vmaLookup(h)!;
    const src = new Float64Array(4);
    const dst = new Float64Array(4);
    const args = migrateVmaInit({ vma, start: h, end: h + 4 * P, src, dst, pgmapOwner: dev.owner, flags: MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND });
    const before = [0, 1, 2, 3].map((i) => mm.pgtable.pteGet(h + i * P));
    locked(mm, () => {
      expect(migrateVmaSetup(args)).toBe(0);
      expect(args.cpages).toBe(4); // not PMD-sized: page by page
      const d = dev.allocDeviceFolio();
      dst[0] = migratePfn(d) + MIGRATE_PFN_COMPOUND;
      migrateVmaPages(args);
      expect(src[0]! & MIGRATE_PFN_MIGRATE).toBe(0);
      migrateVmaFinalize(args);
    });
    expect([0, 1, 2, 3].map((i) => mm.pgtable.pteGet(h + i * P))).toEqual(before);
    expect(dev.freeHuge.length).toBe(1);
    assertInvariants(k);

    const t = thpSetup();
    fill(t.mm, t.h, 70);
    const pmd = t.mm.pgtable.pmdGet(t.h);
    const dev2 = new TestDevice(t.k, N, undefined, "dmirror", 1);
    const r = dev2.migrateToDevice(t.mm, t.h, t.h + PMD_SIZE, { compound: true, decline: () => true });
    expect(r.args.cpages).toBe(1);
    expect(r.args.src![0]! & MIGRATE_PFN_MIGRATE).toBe(0);
    expect(t.mm.pgtable.pmdGet(t.h)).toBe(pmd); // young and dirty kept
    expectBytes(t.mm, t.h, 70);
    assertInvariants(t.k);
  });

  it("a THP shared after fork moves in both mms (try_to_migrate sets the child's PMD migration entry)", () => {
    const { k, mm, h } = thpSetup();
    fill(mm, h, 80);
    const child = mm.fork();
    const dev = new TestDevice(k, N, undefined, "dmirror", 1);
    const log = recordNotifier(child);
    const { args } = dev.migrateToDevice(mm, h, h + PMD_SIZE, { compound: true });
    expect(args.cpages).toBe(1);
    // read-only after fork: the entries are readable device-private PMDs in both
    for (const m of [mm, child]) {
      const e = m.pgtable.pmdGet(h);
      expect(isDevicePrivateEntry(e) && pteIsHuge(e) && !isWritableDevicePrivateEntry(e)).toBe(true);
    }
    expect(log.map((e) => [e.event, e.start, e.end])).toEqual([["MMU_NOTIFY_CLEAR", h, h + PMD_SIZE]]);
    const dhead = ptePfn(mm.pgtable.pmdGet(h));
    expect(k.store.entireMapcount(dhead)).toBe(2);
    expect(k.store.refcount(dhead)).toBe(2);
    assertInvariants(k);
    dev.migrateToSystem(mm, h, h + PMD_SIZE, { compound: true });
    for (const m of [mm, child]) expect(pmdTransHuge(m.pgtable.pmdGet(h))).toBe(true);
    expectBytes(child, h, 80);
    expectBytes(mm, h, 80);
    assertInvariants(k);
  });

  it("a THP shared after fork, COMPOUND src with small dst pages: split, and every page moves in both mms", () => {
    const { k, mm, h } = thpSetup();
    fill(mm, h, 70);
    const child = mm.fork();
    const dev = new TestDevice(k, N, undefined, "dmirror", 0); // no device THP free: 512 small pages
    const { args } = dev.migrateToDevice(mm, h, h + PMD_SIZE, { compound: true, smallDst: true });
    expect(args.cpages).toBe(1);
    for (const m of [mm, child]) {
      for (const i of [0, 1, 255, 511]) expect(isDevicePrivateEntry(m.pgtable.pteGet(h + i * P))).toBe(true);
    }
    assertInvariants(k);
    expectBytes(child, h, 70);
    expectBytes(mm, h, 70);
    assertInvariants(k);
  });

  it("without SELECT_COMPOUND, 4 KiB of a THP shared after fork: split in both mms, that page moves in both", () => {
    // The fast-check counterexample that found split_folio leaving the child's PMD in place (-EBUSY, nothing moved).
    const { k, mm, h } = thpSetup();
    fill(mm, h, 90);
    const child = mm.fork();
    const dev = new TestDevice(k, N);
    const { args } = dev.migrateToDevice(mm, h, h + P);
    expect(args.cpages).toBe(1);
    for (const m of [mm, child]) {
      expect(m.pgtable.pmdGet(h)).toBe(0); // split_folio → unmap_folio split the PMD in every mm
      const e = m.pgtable.pteGet(h);
      expect(isDevicePrivateEntry(e) && !isWritableDevicePrivateEntry(e)).toBe(true);
      expect(pteKind(m.pgtable.pteGet(h + P))).toBe("present");
    }
    assertInvariants(k);
    expectBytes(child, h, 90); // page 0 faults back through migrate_to_ram
    expectBytes(mm, h, 90);
    assertInvariants(k);
  });

  it("a PTE-mapped large folio whose split fails (pinned): collect skips the rest of that PMD's chunk, holes included", () => {
    // Issue #15 D1 (the property test's shrunk counterexample): THP; pin page 0; MADV_DONTNEED page 1; migrate
    // pages 0-2. mm/migrate_device.c migrate_vma_collect_pmd(): a PTE-mapped large folio goes to
    // migrate_vma_split_folio(); when split_folio() fails (the pin: extra references) it does `return
    // migrate_vma_collect_skip(addr, end, walk)`, so the hole at page 1 is skipped too (the early "goto next" of
    // the THP-migration series was replaced by this before merge). The next PMD's chunk is collected as usual.
    const { k, mm, h } = thpSetup({ pmds: 2 });
    fill(mm, h, 30);
    const pinned: number[] = [];
    expect(pinUserPagesFast(mm, h, 1, FOLL_WRITE, pinned)).toBe(1);
    expect(mm.madvise(h + P, P, MADV_DONTNEED)).toBe(0); // split_huge_pmd; the folio stays large (deferred split)
    expect(pmdTransHuge(mm.pgtable.pmdGet(h))).toBe(false);
    expect(mm.pgtable.pteGet(h + P)).toBe(0);
    const head = ptePfn(mm.pgtable.pteGet(h));
    expect(k.store.isLarge(head)).toBe(true);
    const dev = new TestDevice(k, 64);
    const pte0 = mm.pgtable.pteGet(h);
    const pte2 = mm.pgtable.pteGet(h + 2 * P);

    // Pages 0-2: page 0's split fails first, pages 0-2 are skipped: nothing collected, nothing changed.
    let r = dev.migrateToDevice(mm, h, h + 3 * P);
    expect(r.ret).toBe(0);
    expect(r.args.cpages).toBe(0);
    expect(Array.from(r.args.src!).slice(0, 3)).toEqual([0, 0, 0]);
    expect([mm.pgtable.pteGet(h), mm.pgtable.pteGet(h + P), mm.pgtable.pteGet(h + 2 * P)]).toEqual([pte0, 0, pte2]);
    expect(k.store.isLarge(head)).toBe(true);

    // Pages 1-2: the hole before the folio's PTE is collected and moves; page 2's split fails, it stays.
    r = dev.migrateToDevice(mm, h + P, h + 3 * P);
    expect(r.args.src![0]).toBe(MIGRATE_PFN_MIGRATE);
    expect(r.args.src![1]).toBe(0);
    expect(isDevicePrivateEntry(mm.pgtable.pteGet(h + P))).toBe(true);
    expect(mm.pgtable.pteGet(h + 2 * P)).toBe(pte2);

    // Pages 510 .. PMD 1 + 1: chunk 0's part is skipped, chunk 1 (a 2 MiB hole) is collected page by page.
    r = dev.migrateToDevice(mm, h + (N - 2) * P, h + PMD_SIZE + 2 * P);
    expect(Array.from(r.args.src!).slice(0, 4)).toEqual([0, 0, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_MIGRATE]);
    expect(isDevicePrivateEntry(mm.pgtable.pteGet(h + PMD_SIZE))).toBe(true);
    assertInvariants(k, { extraRefs: new Map([[head, 1]]) }); // FOLL_PIN on a large folio: one ref (+ _pincount)

    // Unpinned, the split succeeds and page 0 moves.
    unpinUserPage(k, pinned[0]!);
    r = dev.migrateToDevice(mm, h, h + P);
    expect(r.args.cpages).toBe(1);
    expect(isDevicePrivateEntry(mm.pgtable.pteGet(h))).toBe(true);
    for (const i of SAMPLE) expect(mm.read(h + i * P, P)).toEqual(i === 1 ? new Uint8Array(P) : pattern(30 + i)); // page 1: DONTNEED
  });

  it("migrate_device_range evicts a device THP: COMPOUND src, a RAM THP back under the PMD, invariant-clean", () => {
    const { k, mm, h } = thpSetup({ pmds: 2 });
    fill(mm, h, 90);
    fill(mm, h + PMD_SIZE, 95);
    const dev = new TestDevice(k, 3 * N, undefined, "dmirror", 2);
    dev.migrateToDevice(mm, h, h + 2 * PMD_SIZE, { compound: true });
    mm.write(h + 3 * P, pattern(99)); // faults the first device THP back whole (a RAM THP again)
    const usage = mm.memcg.usage;
    const rss = mm.counter(MM_ANONPAGES);
    const log = recordNotifier(mm);
    const { src } = dev.evict();
    const second = dev.startPfn + N;
    expect(src[N]).toBe(migratePfn(second) + MIGRATE_PFN_MIGRATE + MIGRATE_PFN_COMPOUND); // migrate_device_pfn_lock: no WRITE
    for (let i = N + 1; i < 2 * N; i++) expect(src[i]).toBe(0);
    expect(log.some((e) => e.event === "MMU_NOTIFY_CLEAR" && e.start === h + PMD_SIZE && e.end === h + 2 * PMD_SIZE)).toBe(true);
    expect(pmdTransHuge(mm.pgtable.pmdGet(h + PMD_SIZE))).toBe(true);
    expect(pmdTransHuge(mm.pgtable.pmdGet(h))).toBe(true);
    expect(mm.counter(MM_ANONPAGES)).toBe(rss);
    expect(mm.memcg.usage).toBe(usage);
    expect(dev.free.length + dev.freeHuge.length * N).toBe(3 * N);
    const want = pattern(99);
    expect(mm.read(h + 3 * P, P)).toEqual(want);
    expectBytes(mm, h + PMD_SIZE, 95);
    assertInvariants(k);
  });
});
