import { describe, expect, it } from "vitest";
import { EAGAIN, EBUSY, EINVAL, ENOMEM } from "./errno.js";
import { FOLL_WRITE, pinUserPages, unpinUserPages } from "./gup.js";
import { createKernel } from "./kernel.js";
import { MM_ANONPAGES } from "./mm-counters.js";
import type { Mm } from "./mm.js";
import { HPAGE_PMD_NR, PAGE_SIZE, PG_anon_exclusive, PMD_SIZE, alignUp } from "./page-flags.js";
import { folioTrylock, folioUnlock } from "./page-ref.js";
import { pagemapRead } from "./pagemap.js";
import { pmdTransHuge, ptePfn, pteWrite } from "./pgtable.js";
import { FakeDevice, record } from "./testing/test-util.js";
import { MADV_COLLAPSE, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "./vma.js";

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

function setup(ramMiB = 32) {
  const k = createKernel({ ramBytes: ramMiB << 20 });
  const mm = k.createMm();
  const raw = mm.mmap({ length: 2 * PMD_SIZE, prot: RW, flags: ANON });
  const map = alignUp(raw, PMD_SIZE);
  return { k, mm, raw, map };
}
function fill(mm: Mm, map: number, pages = HPAGE_PMD_NR): void {
  for (let i = 0; i < pages; i++) mm.writeU32(map + i * PAGE_SIZE, i * 1024);
}

describe("madvise(MADV_COLLAPSE)", () => {
  it("collapses 512 PTE-mapped pages into a THP (no MADV_HUGEPAGE needed): CLEAR, data kept, old pages freed", () => {
    const { k, mm, map } = setup();
    fill(mm, map, 300); // 212 untouched PTEs become zeroed subpages
    mm.touch(map + 400 * PAGE_SIZE, false); // a zero-page PTE
    expect(mm.pgtable.pmdGet(map)).toBe(0);
    const old = ptePfn(mm.pgtable.pteGet(map + 5 * PAGE_SIZE));
    const tables = mm.pgtable.nrPteTables;
    const rec = record(mm);
    expect(mm.madvise(map, PMD_SIZE, MADV_COLLAPSE)).toBe(0);
    expect(rec.starts()).toEqual([{ event: "MMU_NOTIFY_CLEAR", start: map, end: map + PMD_SIZE, owner: null }]);
    const pmd = mm.pgtable.pmdGet(map);
    expect(pmdTransHuge(pmd)).toBe(true);
    expect(pteWrite(pmd)).toBe(true);
    const head = ptePfn(pmd);
    expect(k.store.entireMapcount(head)).toBe(1);
    expect(k.store.refcount(head)).toBe(1);
    expect(k.store.test(head + 7, PG_anon_exclusive)).toBe(true);
    expect(mm.pgtable.nrPteTables).toBe(tables - 1);
    expect(k.store.refcount(old)).toBe(0);
    expect(mm.counter(MM_ANONPAGES)).toBe(HPAGE_PMD_NR);
    for (let i = 0; i < 300; i += 37) expect(mm.readU32(map + i * PAGE_SIZE)).toBe(i * 1024);
    expect(mm.readU32(map + 400 * PAGE_SIZE)).toBe(0);
    expect(k.allocator.nrFree).toBe(k.nrRamPages - HPAGE_PMD_NR);
    // already a THP: success, nothing sent
    rec.clear();
    expect(mm.madvise(map, PMD_SIZE, MADV_COLLAPSE)).toBe(0);
    expect(rec.log).toEqual([]);
  });

  it("hmm-tests migrate_anon_huge_fault: collapse, move to a device-private PMD, pagemap says swapped not present, fault back", () => {
    const { k, mm, map } = setup();
    const dev = new FakeDevice(k, 1024);
    fill(mm, map);
    expect(mm.madvise(map, PMD_SIZE, MADV_COLLAPSE)).toBe(0);
    const present = pagemapRead(mm, map + 3 * PAGE_SIZE);
    expect(present.present).toBe(true);
    expect(present.frame).toBe(ptePfn(mm.pgtable.pmdGet(map)) + 3);
    dev.migrateThpToDevice(mm, map);
    for (let i = 0; i < HPAGE_PMD_NR; i += 51) {
      const e = pagemapRead(mm, map + i * PAGE_SIZE);
      expect((e.pm & (1n << 62n)) !== 0n).toBe(true);
      expect((e.pm & (1n << 63n)) !== 0n).toBe(false);
    }
    const dhead = ptePfn(mm.pgtable.pmdGet(map));
    expect(mm.readU32(map + 9 * PAGE_SIZE)).toBe(9 * 1024);
    expect(dev.faults).toHaveLength(1);
    // do_huge_pmd_device_private: the whole folio goes to migrate_to_ram (vmf->pte == NULL, vmf->page = head).
    expect(dev.faults[0]).toMatchObject({ atPmd: true, page: dhead, address: map + 9 * PAGE_SIZE });
  });

  it("a device-private entry in the extent → -EINVAL, nothing changed", () => {
    const { k, mm, map } = setup();
    const dev = new FakeDevice(k, 8);
    fill(mm, map);
    dev.migrateToDevice(mm, map + 10 * PAGE_SIZE);
    const rec = record(mm);
    const before = mm.pgtable.pteGet(map);
    expect(mm.madvise(map, PMD_SIZE, MADV_COLLAPSE)).toBe(-EINVAL);
    expect(rec.log).toEqual([]);
    expect(mm.pgtable.pteGet(map)).toBe(before);
    expect(mm.pgtable.pmdGet(map)).toBe(0);
  });

  it("transient failures are -EAGAIN (locked page, pinned page); alloc failure -ENOMEM; memcg -EBUSY", () => {
    const { k, mm, map } = setup();
    fill(mm, map);
    const p = ptePfn(mm.pgtable.pteGet(map + 3 * PAGE_SIZE));
    expect(folioTrylock(k, p)).toBe(true);
    expect(mm.madvise(map, PMD_SIZE, MADV_COLLAPSE)).toBe(-EAGAIN);
    folioUnlock(k, p);
    const pins: number[] = [];
    mm.mmapLock.tryDownRead();
    expect(pinUserPages(mm, map, 1, FOLL_WRITE, pins)).toBe(1);
    mm.mmapLock.upRead();
    expect(mm.madvise(map, PMD_SIZE, MADV_COLLAPSE)).toBe(-EAGAIN);
    unpinUserPages(k, pins);
    // exhaust 2 MiB blocks
    const hog = k.createMm();
    const h = hog.mmap({ length: 64 << 20, prot: RW, flags: ANON });
    while (k.allocator.freeHugeBlocks > 0) hog.touch(h + (k.nrRamPages - k.allocator.nrFree) * PAGE_SIZE, true);
    expect(mm.madvise(map, PMD_SIZE, MADV_COLLAPSE)).toBe(-ENOMEM);
    hog.exit();
    const cg = k.createMemcg("small", 500 * PAGE_SIZE);
    mm.memcg = cg;
    expect(mm.madvise(map, PMD_SIZE, MADV_COLLAPSE)).toBe(-EBUSY);
    expect(cg.failcnt).toBe(1);
    expect(mm.pgtable.pmdGet(map)).toBe(0);
    mm.memcg = k.memcgs.root;
    expect(mm.madvise(map, PMD_SIZE, MADV_COLLAPSE)).toBe(0);
  });

  it("-EINVAL: no page table, only read-only pages, VM_NOHUGEPAGE; -ENOMEM for a hole in the range", () => {
    const { mm, map, raw } = setup();
    expect(mm.madvise(map, PMD_SIZE, MADV_COLLAPSE)).toBe(-EINVAL); // SCAN_PMD_NONE
    mm.touch(map, false);
    expect(mm.madvise(map, PMD_SIZE, MADV_COLLAPSE)).toBe(-EINVAL); // SCAN_PAGE_RO (only the zero page)
    fill(mm, map, 4);
    expect(mm.madvise(map, PAGE_SIZE, MADV_COLLAPSE)).toBe(0); // no whole PMD extent in range
    expect(mm.madvise(map, PMD_SIZE, MADV_NOHUGEPAGE)).toBe(0);
    expect(mm.madvise(map, PMD_SIZE, MADV_COLLAPSE)).toBe(-EINVAL);
    expect(mm.madvise(map, PMD_SIZE, MADV_HUGEPAGE)).toBe(0);
    fill(mm, map);
    expect(mm.vmaLookup(map - PAGE_SIZE)).toBeNull();
    expect(raw).toBe(map);
    expect(mm.madvise(map - PAGE_SIZE, PMD_SIZE + PAGE_SIZE, MADV_COLLAPSE)).toBe(-ENOMEM); // applied, then the hole
    expect(pmdTransHuge(mm.pgtable.pmdGet(map))).toBe(true);
  });
});
