// Three mm/migrate_device.c paths as the current kernel has them (issue #15, "kernel paths still approximated"):
//  (a) the huge zero folio: a read fault in a THP VMA maps the huge zero PMD (mm/huge_memory.c
//      do_huge_pmd_anonymous_page with use_zero_page); migrate_vma_collect_huge_pmd collects it as a hole
//      (is_huge_zero_folio → migrate_vma_collect_hole), and migrate_vma_insert_page / _insert_huge_pmd_page replace
//      it (split_huge_pmd first for a small page; `flush = true` for a PMD);
//  (b) compound holes: walk_page_range hands migrate_vma_collect_hole a whole missing PUD / PGD extent, which with
//      MIGRATE_VMA_SELECT_COMPOUND and PMD-aligned ends is ONE MIGRATE|COMPOUND entry, zero entries after it;
//  (c) the fallback of migrate_vma_collect_huge_pmd: split_folio() on whatever folio it holds, the fault folio
//      included (an older kernel WARNed "we don't expect THP for fault_folio" and skipped the chunk).
// Every test ends with @hmmsim/testing's invariant checker on every kernel it made (rss and memcg agree with the
// page tables: a huge zero PMD holds neither).
import {
  FAULT_FLAG_WRITE,
  HPAGE_PMD_NR,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MM_ANONPAGES,
  PAGE_SIZE,
  PMD_SIZE,
  PROT_READ,
  PROT_WRITE,
  VM_FAULT_SIGBUS,
  createKernel,
  handleMmFault,
  isDevicePrivateEntry,
  isHugeZeroPmd,
  pfnPte,
  pmdTransHuge,
  pteMkwrite,
  ptePfn,
  type Kernel,
  type Mm,
  type VmFault,
} from "@hmmsim/core";
import { checkInvariants } from "@hmmsim/testing";
import { afterEach, describe, expect, it } from "vitest";
import { migrateVmaFinalize, migrateVmaPages, migrateVmaSetup } from "./migrate-device.js";
import {
  MIGRATE_PFN_COMPOUND,
  MIGRATE_PFN_MIGRATE,
  MIGRATE_VMA_SELECT_COMPOUND,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM,
  migrateVmaInit,
} from "./migrate-pfn.js";
import { TestDevice } from "./testing/test-driver.js";
import { assertTrackedInvariants, locked, pattern, recordNotifier, trackKernel } from "./testing/test-helpers.js";

afterEach(assertTrackedInvariants);

const P = PAGE_SIZE;
const N = HPAGE_PMD_NR;

/** A kernel (THP "always") and an mm with `pmds` PMD-aligned 2 MiB of anonymous memory at h. */
function thpSetup(pmds = 1, opts: { thp?: "always" | "never" } = {}): { k: Kernel; mm: Mm; h: number } {
  const k = trackKernel(createKernel({ ramBytes: 32 << 20, thp: opts.thp ?? "always" }));
  const mm = k.createMm();
  const a = mm.mmap({ length: (pmds + 1) * PMD_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  return { k, mm, h: Math.ceil(a / PMD_SIZE) * PMD_SIZE };
}

/** migrate_vma_setup over [start, end) with `flags`, collect only (then finalize restores everything). */
function collectOnly(mm: Mm, start: number, end: number, flags: number): { src: Float64Array; cpages: number; npages: number } {
  const n = (end - start) / P;
  const src = new Float64Array(n);
  const dst = new Float64Array(n);
  return locked(mm, () => {
    const args = migrateVmaInit({ vma: mm.vmaLookup(start), start, end, src, dst, pgmapOwner: {}, flags });
    expect(migrateVmaSetup(args)).toBe(0);
    const out = { src: src.slice(), cpages: args.cpages, npages: args.npages };
    migrateVmaFinalize(args);
    return out;
  });
}

describe("(a) the huge zero folio in migration (migrate_vma_collect_huge_pmd: is_huge_zero_folio → a hole)", () => {
  it("SELECT_COMPOUND over the huge zero PMD: one COMPOUND hole; a device THP replaces the PMD (insert_huge_pmd_page)", () => {
    const { k, mm, h } = thpSetup();
    expect(mm.read(h + 5 * P, 4)).toEqual(new Uint8Array(4)); // read fault: the huge zero PMD
    expect(isHugeZeroPmd(k, mm.pgtable.pmdGet(h))).toBe(true);
    expect(mm.counter(MM_ANONPAGES)).toBe(0);
    expect(mm.memcg.usage).toBe(0);
    const c = collectOnly(mm, h, h + PMD_SIZE, MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND);
    expect(c.src[0]).toBe(MIGRATE_PFN_MIGRATE + MIGRATE_PFN_COMPOUND); // no pfn: a hole
    expect(c.src.slice(1).every((x) => x === 0)).toBe(true);
    expect(c.cpages).toBe(1);
    expect(isHugeZeroPmd(k, mm.pgtable.pmdGet(h))).toBe(true); // nothing was unmapped or locked

    const dev = new TestDevice(k, 2 * N, undefined, "dmirror", 1);
    const log = recordNotifier(mm);
    const { args } = dev.migrateToDevice(mm, h, h + PMD_SIZE, { compound: true });
    expect(args.cpages).toBe(1);
    expect(args.src![0]! & MIGRATE_PFN_MIGRATE).not.toBe(0);
    const pmd = mm.pgtable.pmdGet(h);
    expect(isDevicePrivateEntry(pmd)).toBe(true); // a huge device-private entry where the zero PMD was
    expect(ptePfn(pmd)).toBe(dev.startPfn);
    expect(mm.counter(MM_ANONPAGES)).toBe(N);
    expect(mm.memcg.usage).toBe(N);
    // collect (MIGRATE, owner) and migrate_vma_pages' hole range (MIGRATE, owner); no split, no CLEAR
    expect(log.map((e) => e.event)).toEqual(["MMU_NOTIFY_MIGRATE", "MMU_NOTIFY_MIGRATE"]);
    expect(k.store.refcount(k.hugeZeroPfn)).toBe(1);
    // The CPU reads zeroes back (the device THP migrates back whole).
    expect(mm.read(h + 300 * P, P)).toEqual(new Uint8Array(P));
    expect(pmdTransHuge(mm.pgtable.pmdGet(h))).toBe(true);
  });

  it("SELECT_COMPOUND with small dst pages: the first insert splits the zero PMD (CLEAR over 2 MiB), each zero PTE is replaced", () => {
    const { k, mm, h } = thpSetup();
    mm.read(h, 1);
    const dev = new TestDevice(k, N);
    const log = recordNotifier(mm);
    const { args } = dev.migrateToDevice(mm, h, h + PMD_SIZE, { compound: true, smallDst: true });
    expect(args.cpages).toBe(1);
    expect(mm.pgtable.pmdGet(h)).toBe(0);
    const t = mm.pgtable.pteTable(h, false)!;
    for (let i = 0; i < N; i++) expect(isDevicePrivateEntry(t[i]!)).toBe(true);
    expect(mm.counter(MM_ANONPAGES)).toBe(N);
    expect(mm.memcg.usage).toBe(N);
    expect(log.map((e) => `${e.event} ${e.end - e.start}`)).toEqual([
      `MMU_NOTIFY_MIGRATE ${PMD_SIZE}`, // collect
      `MMU_NOTIFY_MIGRATE ${PMD_SIZE}`, // migrate_vma_pages, from the first hole
      `MMU_NOTIFY_CLEAR ${PMD_SIZE}`, // split_huge_pmd in migrate_vma_insert_page
    ]);
  });

  it("SELECT_SYSTEM over part of it (a GPU-style fault migration): per-page holes; the rest stays zero-page PTEs", () => {
    const { k, mm, h } = thpSetup();
    mm.read(h, 1);
    const c = collectOnly(mm, h + 3 * P, h + 11 * P, MIGRATE_VMA_SELECT_SYSTEM);
    expect(Array.from(c.src)).toEqual(new Array(8).fill(MIGRATE_PFN_MIGRATE));
    expect(c.cpages).toBe(8);
    const dev = new TestDevice(k, 16);
    dev.migrateToDevice(mm, h + 3 * P, h + 11 * P);
    const t = mm.pgtable.pteTable(h, false)!;
    for (let i = 0; i < N; i++) {
      if (i >= 3 && i < 11) expect(isDevicePrivateEntry(t[i]!)).toBe(true);
      else expect(ptePfn(t[i]!)).toBe(k.zeroPfn);
    }
    expect(mm.counter(MM_ANONPAGES)).toBe(8);
    mm.write(h + 4 * P, pattern(4)); // migrate_to_ram, then a write to the new system page
    expect(mm.read(h + 4 * P, P)).toEqual(pattern(4));
    expect(mm.read(h + 20 * P, P)).toEqual(new Uint8Array(P));
  });

  it("a THP written after the read replaces the zero PMD; collect then takes the THP, not a hole", () => {
    const { k, mm, h } = thpSetup();
    mm.read(h, 1);
    mm.write(h + 7 * P, pattern(7)); // do_huge_zero_wp_pmd
    const pmd = mm.pgtable.pmdGet(h);
    expect(pmdTransHuge(pmd) && !isHugeZeroPmd(k, pmd)).toBe(true);
    const c = collectOnly(mm, h, h + PMD_SIZE, MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND);
    expect(c.src[0]! & MIGRATE_PFN_COMPOUND).not.toBe(0);
    expect(Math.floor(c.src[0]! / 64)).toBe(ptePfn(pmd)); // migrate_pfn(head)
  });
});

describe("(a) the invariant checker and the huge zero folio", () => {
  it("a huge zero PMD is clean (no rss, memcg, mapcount); a writable one, a PTE mapping one of its pages, or an undeclared reference is flagged", () => {
    const k = createKernel({ ramBytes: 8 << 20, thp: "always" }); // not tracked: the test corrupts it on purpose
    const mm = k.createMm();
    const a = mm.mmap({ length: 2 * PMD_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const h = Math.ceil(a / PMD_SIZE) * PMD_SIZE;
    mm.read(h, 1);
    const pmd = mm.pgtable.pmdGet(h);
    expect(checkInvariants(k)).toEqual([]);
    const rules = (): string[] => checkInvariants(k).map((v) => v.rule);
    mm.pgtable.pmdSet(h, pteMkwrite(pmd));
    expect(rules()).toContain("zero_page_writable");
    mm.pgtable.pmdSet(h, 0);
    mm.pgtable.pteSet(h, pfnPte(k.hugeZeroPfn + 3, false));
    expect(rules()).toContain("huge_zero_page_mapping");
    mm.pgtable.pteSet(h, 0);
    mm.pgtable.freePteTable(h);
    mm.pgtable.pmdSet(h, pmd);
    k.store.refAdd(k.hugeZeroPfn, 1); // a reference nobody declared (a GUP get_page, say)
    expect(rules()).toEqual(["huge_zero_page"]);
    expect(checkInvariants(k, { extraRefs: new Map([[k.hugeZeroPfn, 1]]) })).toEqual([]);
    k.store.refAdd(k.hugeZeroPfn, -1);
    expect(checkInvariants(k)).toEqual([]);
  });
});

describe("(b) compound holes: one COMPOUND entry per missing page-table extent (walk_page_range → migrate_vma_collect_hole)", () => {
  it("a 4 MiB aligned range under no page table at all: one COMPOUND entry, 1023 zero entries, only 2 MiB can be filled", () => {
    const { k, mm, h } = thpSetup(2, { thp: "never" });
    expect(mm.pgtable.dirs.size).toBe(0); // pgd_none: the walker calls pte_hole(h, h + 4 MiB) once
    const c = collectOnly(mm, h, h + 2 * PMD_SIZE, MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND);
    expect(c.npages).toBe(2 * N);
    expect(c.src[0]).toBe(MIGRATE_PFN_MIGRATE + MIGRATE_PFN_COMPOUND);
    expect(c.src.slice(1).every((x) => x === 0)).toBe(true);
    expect(c.cpages).toBe(1);
    // The driver fills the COMPOUND hole with 512 small pages: __migrate_device_pages inserts HPAGE_PMD_NR of them.
    const dev = new TestDevice(k, 2 * N);
    const { args } = dev.migrateToDevice(mm, h, h + 2 * PMD_SIZE, { compound: true, smallDst: true });
    expect(args.cpages).toBe(1);
    for (let i = 0; i < N; i++) expect(isDevicePrivateEntry(mm.pgtable.pteGet(h + i * P))).toBe(true);
    expect(mm.pgtable.pteTable(h + PMD_SIZE, false)).toBeNull(); // the second 2 MiB stayed empty
    expect(mm.counter(MM_ANONPAGES)).toBe(N);
    expect(dev.free.length).toBe(N); // the device kept the pages it was not asked for
  });

  it("with a page table in the same PUD, the holes are per PMD: two COMPOUND entries", () => {
    const { mm, h } = thpSetup(3, { thp: "never" });
    mm.write(h + 2 * PMD_SIZE, pattern(1)); // a PTE table in the third PMD: the PUD now has a PMD table
    const c = collectOnly(mm, h, h + 2 * PMD_SIZE, MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND);
    expect(c.src[0]).toBe(MIGRATE_PFN_MIGRATE + MIGRATE_PFN_COMPOUND);
    expect(c.src[N]).toBe(MIGRATE_PFN_MIGRATE + MIGRATE_PFN_COMPOUND);
    expect(c.cpages).toBe(2);
  });

  it("an unaligned hole, or no SELECT_COMPOUND: one MIGRATE entry per page, however large the missing extent", () => {
    const { mm, h } = thpSetup(2, { thp: "never" });
    const a = collectOnly(mm, h, h + 2 * PMD_SIZE, MIGRATE_VMA_SELECT_SYSTEM);
    expect(a.cpages).toBe(2 * N);
    expect(a.src.every((x) => x === MIGRATE_PFN_MIGRATE)).toBe(true);
    const b = collectOnly(mm, h + P, h + 2 * PMD_SIZE, MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND);
    expect(b.cpages).toBe(2 * N - 1);
    expect(b.src.every((x) => x === MIGRATE_PFN_MIGRATE)).toBe(true);
  });
});

describe("(c) migrate_vma_collect_huge_pmd's fallback splits the folio it holds, the fault folio included", () => {
  /** A device THP at h (2 MiB migrated with SELECT_COMPOUND into a device folio). */
  function deviceThp(driver: (dev: TestDevice, vmf: VmFault) => number = (dev, vmf) => dev.devmemFault(vmf)) {
    const { k, mm, h } = thpSetup();
    mm.write(h, pattern(3));
    const dev = new TestDevice(k, 2 * N, undefined, "dmirror", 2);
    dev.pgmap.ops.migrateToRam = (vmf) => driver(dev, vmf);
    dev.migrateToDevice(mm, h, h + PMD_SIZE, { compound: true });
    expect(isDevicePrivateEntry(mm.pgtable.pmdGet(h))).toBe(true);
    return { k, mm, h, dev };
  }

  it("an unaligned migration back (no fault folio): the device THP is split, 8 pages move, the rest stay device-private PTEs", () => {
    const { k, mm, h, dev } = deviceThp();
    const head = ptePfn(mm.pgtable.pmdGet(h));
    const { args } = dev.migrateToSystem(mm, h, h + 8 * P);
    expect(args.cpages).toBe(8);
    expect(k.store.folioNr(head + 100)).toBe(1); // split_folio made order-0 folios
    expect(mm.pgtable.pmdGet(h)).toBe(0);
    expect(isDevicePrivateEntry(mm.pgtable.pteGet(h + 8 * P))).toBe(true);
    expect(mm.read(h, P)).toEqual(pattern(3));
    expect(mm.counter(MM_ANONPAGES)).toBe(N);
  });

  it("a migrate_to_ram of one page on a huge device-private PMD: split_folio runs on the fault folio and fails on do_huge_pmd_device_private's reference; the chunk is skipped", () => {
    const seen: { cpages: number; refs: number }[] = [];
    const { k, mm, h } = deviceThp((dev, vmf) => {
      // A driver that migrates only the faulting page (no SELECT_COMPOUND): collect meets the huge entry with an
      // unaligned chunk and takes the fallback.
      const src = new Float64Array(1);
      const dst = new Float64Array(1);
      const args = migrateVmaInit({
        vma: vmf.vma,
        start: vmf.address - (vmf.address % P),
        end: vmf.address - (vmf.address % P) + P,
        src,
        dst,
        pgmapOwner: dev.owner,
        flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
        faultPage: vmf.page,
      });
      expect(migrateVmaSetup(args)).toBe(0);
      // can_split_folio: mapcount 1 == refcount 3 (PMD mapping, the fault path's, collect's) - 1 (split_folio's
      // caller pin) is false: -EAGAIN, migrate_vma_collect_skip.
      seen.push({ cpages: args.cpages, refs: k.store.refcount(vmf.page) });
      migrateVmaPages(args);
      migrateVmaFinalize(args);
      return args.cpages === 0 ? VM_FAULT_SIGBUS : 0;
    });
    const head = ptePfn(mm.pgtable.pmdGet(h));
    const ret = locked(mm, () => handleMmFault(mm, h + 5 * P, FAULT_FLAG_WRITE));
    expect(ret).toBe(VM_FAULT_SIGBUS);
    expect(seen).toEqual([{ cpages: 0, refs: 2 }]); // collect's reference was dropped again
    const pmd = mm.pgtable.pmdGet(h);
    expect(isDevicePrivateEntry(pmd) && ptePfn(pmd) === head).toBe(true); // still one huge device-private entry
    expect(k.store.folioNr(head)).toBe(N);
    expect(k.store.refcount(head)).toBe(1);
  });
});
