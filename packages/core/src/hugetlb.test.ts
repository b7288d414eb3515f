import { describe, expect, it } from "vitest";
import { EINVAL, ENOMEM } from "./errno.js";
import { SegmentationFault } from "./errors.js";
import { FOLL_WRITE, folioMaybeDmaPinned, pinUserPages, unpinUserPages } from "./gup.js";
import { hugePageOrder, hstateVma } from "./hugetlb.js";
import { createKernel } from "./kernel.js";
import { MM_ANONPAGES } from "./mm-counters.js";
import { MREMAP_FIXED, MREMAP_MAYMOVE } from "./mremap.js";
import { HPAGE_PMD_NR, PAGE_SIZE, PG_anon, PMD_SIZE } from "./page-flags.js";
import { pagemapRead } from "./pagemap.js";
import { walkPageRange } from "./page-table.js";
import { pmdTransHuge, ptePfn, pteWrite } from "./pgtable.js";
import { record } from "./testing/test-util.js";
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_HUGETLB,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
  VM_HUGETLB,
  isVmHugetlbPage,
} from "./vma.js";

const RW = PROT_READ | PROT_WRITE;
const HUGE = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB;

describe("hugetlb pool (vm.nr_hugepages)", () => {
  it("is empty by default; setHugetlbPages takes free 2 MiB blocks from RAM and gives unused ones back", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    expect(k.hugetlbPool.nrHugePages).toBe(0);
    expect(k.setHugetlbPages(3)).toBe(3);
    expect(k.hugetlbPool.freeHugePages).toBe(3);
    expect(k.allocator.nrFree).toBe(k.nrRamPages - 3 * HPAGE_PMD_NR);
    expect(k.setHugetlbPages(100)).toBe(8); // only 8 blocks of RAM
    expect(k.allocator.nrFree).toBe(0);
    expect(k.setHugetlbPages(1)).toBe(1);
    expect(k.allocator.nrFree).toBe(k.nrRamPages - HPAGE_PMD_NR);
    expect(createKernel({ ramBytes: 16 << 20, hugetlbPages: 2 }).hugetlbPool.freeHugePages).toBe(2);
  });

  it("with no huge pages, mmap(MAP_HUGETLB) fails -ENOMEM (hmm-tests SKIP); MAP_NORESERVE maps but the fault SIGBUSes", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    expect(mm.mmap({ length: PMD_SIZE, prot: RW, flags: HUGE })).toBe(-ENOMEM);
    expect(mm.vmas).toHaveLength(0);
    const a = mm.mmap({ length: PMD_SIZE, prot: RW, flags: HUGE | MAP_NORESERVE });
    expect(a).toBeGreaterThan(0);
    expect(() => mm.touch(a, true)).toThrow(SegmentationFault);
  });
});

describe("MAP_HUGETLB mappings", () => {
  it("hmm-tests anon_write_hugetlbfs: one huge PMD per 2 MiB, reservation consumed, not in rss, back to the pool on munmap", () => {
    const k = createKernel({ ramBytes: 16 << 20, hugetlbPages: 1 });
    const h = k.hugetlbPool;
    const mm = k.createMm();
    const a = mm.mmap({ length: PAGE_SIZE, prot: RW, flags: HUGE }); // rounded up to 2 MiB
    expect(a % PMD_SIZE).toBe(0);
    const vma = mm.vmaLookup(a)!;
    expect(vma.vmEnd - vma.vmStart).toBe(PMD_SIZE);
    expect(isVmHugetlbPage(vma)).toBe(true);
    expect(vma.vmFlags & VM_HUGETLB).toBe(VM_HUGETLB);
    expect(hugePageOrder(hstateVma(vma))).toBe(9);
    expect(h.resvHugePages).toBe(1);
    for (let i = 0; i < HPAGE_PMD_NR; i += 17) mm.writeU32(a + i * PAGE_SIZE + 4, i);
    const pmd = mm.pgtable.pmdGet(a);
    expect(pmdTransHuge(pmd)).toBe(true);
    expect(pteWrite(pmd)).toBe(true);
    const head = ptePfn(pmd);
    expect(k.store.test(head, PG_anon)).toBe(true);
    expect(k.store.entireMapcount(head)).toBe(1);
    expect(h.resvHugePages).toBe(0);
    expect(h.freeHugePages).toBe(0);
    expect(mm.hugetlbUsage).toBe(HPAGE_PMD_NR);
    expect(mm.counter(MM_ANONPAGES)).toBe(0);
    expect(mm.pgtable.nrPteTables).toBe(0);
    for (let i = 0; i < HPAGE_PMD_NR; i += 17) expect(mm.readU32(a + i * PAGE_SIZE + 4)).toBe(i);
    expect(pagemapRead(mm, a + 5 * PAGE_SIZE)).toMatchObject({ present: true, frame: head + 5, exclusive: true });
    // munmap inside a huge page is -EINVAL
    expect(mm.munmap(a + PAGE_SIZE, PAGE_SIZE)).toBe(-EINVAL);
    expect(mm.munmap(a, PMD_SIZE)).toBe(0);
    expect(h.freeHugePages).toBe(1);
    expect(mm.hugetlbUsage).toBe(0);
    expect(k.store.refcount(head)).toBe(0);
    // the freed page is zeroed when handed out again
    const b = mm.mmap({ length: PMD_SIZE, prot: RW, flags: HUGE });
    expect(mm.readU32(b + 17 * PAGE_SIZE + 4)).toBe(0);
    mm.exit();
    expect(h.freeHugePages).toBe(1);
    expect(h.resvHugePages).toBe(0);
  });

  it("reservations: a second mapping beyond the pool is -ENOMEM; unconsumed reservations return on munmap", () => {
    const k = createKernel({ ramBytes: 16 << 20, hugetlbPages: 2 });
    const h = k.hugetlbPool;
    const mm = k.createMm();
    const a = mm.mmap({ length: 2 * PMD_SIZE, prot: RW, flags: HUGE });
    expect(h.resvHugePages).toBe(2);
    expect(mm.mmap({ length: PMD_SIZE, prot: RW, flags: HUGE })).toBe(-ENOMEM);
    mm.touch(a, true);
    expect(h.resvHugePages).toBe(1);
    expect(mm.mmap({ addr: a + PAGE_SIZE, length: PMD_SIZE, prot: RW, flags: HUGE | MAP_FIXED })).toBe(-EINVAL);
    expect(mm.munmap(a + PMD_SIZE, PMD_SIZE)).toBe(0); // the untouched half: its reservation comes back
    expect(h.resvHugePages).toBe(0);
    expect(h.freeHugePages).toBe(1);
    expect(mm.readU32(a)).toBe(0);
  });

  it("hmm-tests compound: mprotect(PROT_READ) write-protects the huge entry; walkers get hugetlbEntry with the order", () => {
    const k = createKernel({ ramBytes: 16 << 20, hugetlbPages: 2 });
    const mm = k.createMm();
    const a = mm.mmap({ length: 2 * PMD_SIZE, prot: RW, flags: HUGE });
    for (let i = 0; i < 2 * HPAGE_PMD_NR; i += 64) mm.writeU32(a + i * PAGE_SIZE, i);
    const rec = record(mm);
    expect(mm.mprotect(a + PAGE_SIZE, PMD_SIZE, PROT_READ)).toBe(-EINVAL);
    expect(rec.log).toEqual([]);
    expect(mm.mprotect(a, 2 * PMD_SIZE, PROT_READ)).toBe(0);
    expect(rec.starts()[0]).toMatchObject({ event: "MMU_NOTIFY_PROTECTION_VMA" });
    expect(pteWrite(mm.pgtable.pmdGet(a))).toBe(false);
    expect(() => mm.touch(a, true)).toThrow(SegmentationFault);
    const calls: [number, number, number, number][] = [];
    const r = walkPageRange(mm, a + PAGE_SIZE, a + 2 * PMD_SIZE, {
      hugetlbEntry: (pte, hmask, addr, next) => {
        calls.push([ptePfn(pte), hmask, addr, next]);
        return 0;
      },
      pteEntry: () => {
        throw new Error("hugetlb VMAs are not walked at PTE level");
      },
    });
    expect(r).toBe(0);
    expect(calls).toEqual([
      [ptePfn(mm.pgtable.pmdGet(a)), -PMD_SIZE, a + PAGE_SIZE, a + PMD_SIZE],
      [ptePfn(mm.pgtable.pmdGet(a + PMD_SIZE)), -PMD_SIZE, a + PMD_SIZE, a + 2 * PMD_SIZE],
    ]);
    let seen = 0;
    expect(walkPageRange(mm, a, a + PMD_SIZE, { pteEntry: () => ++seen, pmdEntry: () => ++seen, pteHole: () => ++seen })).toBe(0);
    expect(seen).toBe(0);
    expect(mm.mprotect(a, 2 * PMD_SIZE, RW)).toBe(0);
    mm.writeU32(a, 7); // exclusive: made writable again in place
    expect(mm.readU32(a + 64 * PAGE_SIZE)).toBe(64);
  });

  it("fork: private pages shared write-protected; a write COWs the whole huge page (CLEAR); no free page → SIGBUS", () => {
    const k = createKernel({ ramBytes: 16 << 20, hugetlbPages: 2 });
    const h = k.hugetlbPool;
    const p = k.createMm();
    const a = p.mmap({ length: PMD_SIZE, prot: RW, flags: HUGE });
    p.writeU32(a + 8, 1);
    const head = ptePfn(p.pgtable.pmdGet(a));
    const c = p.fork();
    expect(c.vmaLookup(a)!.hugetlbResv).toBeNull();
    expect(k.store.entireMapcount(head)).toBe(2);
    expect(pteWrite(p.pgtable.pmdGet(a))).toBe(false);
    expect(c.hugetlbUsage).toBe(HPAGE_PMD_NR);
    const crec = record(c);
    c.writeU32(a + 8, 2);
    expect(crec.starts()).toEqual([{ event: "MMU_NOTIFY_CLEAR", start: a, end: a + PMD_SIZE, owner: null }]);
    expect(ptePfn(c.pgtable.pmdGet(a))).not.toBe(head);
    expect(p.readU32(a + 8)).toBe(1);
    expect(c.readU32(a + 8)).toBe(2);
    expect(h.freeHugePages).toBe(0);
    p.writeU32(a + 8, 3); // the parent is alone again: reuse in place
    expect(ptePfn(p.pgtable.pmdGet(a))).toBe(head);
    c.exit();
    const c2 = p.fork();
    const b = p.mmap({ length: PMD_SIZE, prot: RW, flags: HUGE });
    expect(b).toBeGreaterThan(0); // takes the last free page's reservation
    expect(() => c2.writeU32(a + 8, 4)).toThrow(SegmentationFault); // COW needs a free page
    c2.exit();
    p.exit();
    expect(h.freeHugePages).toBe(2);
    expect(h.resvHugePages).toBe(0);
  });

  it("MAP_SHARED|MAP_HUGETLB: the page cache is shared across fork; freed with the last mapping", () => {
    const k = createKernel({ ramBytes: 16 << 20, hugetlbPages: 1 });
    const h = k.hugetlbPool;
    const p = k.createMm();
    const a = p.mmap({ length: PMD_SIZE, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB });
    p.writeU32(a, 5);
    const c = p.fork();
    c.writeU32(a + 4, 6);
    expect(p.readU32(a + 4)).toBe(6);
    expect(ptePfn(c.pgtable.pmdGet(a))).toBe(ptePfn(p.pgtable.pmdGet(a)));
    expect(pagemapRead(p, a).file).toBe(true);
    p.exit();
    expect(h.freeHugePages).toBe(0);
    c.exit();
    expect(h.freeHugePages).toBe(1);
    expect(h.resvHugePages).toBe(0);
  });

  it("GUP pins a hugetlb page through its _pincount; mremap moves it only when aligned and never grows it", () => {
    const k = createKernel({ ramBytes: 16 << 20, hugetlbPages: 1 });
    const mm = k.createMm();
    const a = mm.mmap({ length: PMD_SIZE, prot: RW, flags: HUGE });
    mm.writeU32(a + 3 * PAGE_SIZE, 9);
    const pins: number[] = [];
    mm.mmapLock.tryDownRead();
    expect(pinUserPages(mm, a + 3 * PAGE_SIZE, 1, FOLL_WRITE, pins)).toBe(1);
    mm.mmapLock.upRead();
    expect(pins[0]).toBe(ptePfn(mm.pgtable.pmdGet(a)) + 3);
    expect(folioMaybeDmaPinned(k, pins[0]!)).toBe(true);
    unpinUserPages(k, pins);
    expect(folioMaybeDmaPinned(k, pins[0]!)).toBe(false);
    const dst = a + 4 * PMD_SIZE;
    expect(mm.mremap(a, PMD_SIZE, PMD_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, dst + PAGE_SIZE)).toBe(-EINVAL);
    expect(mm.mremap(a, PMD_SIZE, 2 * PMD_SIZE, MREMAP_MAYMOVE)).toBe(-EINVAL);
    expect(mm.mremap(a, PMD_SIZE, PMD_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, dst)).toBe(dst);
    expect(mm.readU32(dst + 3 * PAGE_SIZE)).toBe(9);
    // moving a small mapping over part of a huge page: the target munmap fails -EINVAL, nothing moves
    const small = mm.mmap({ length: PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    expect(mm.mremap(small, PAGE_SIZE, PAGE_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, dst + PAGE_SIZE)).toBe(-EINVAL);
    expect(mm.vmaLookup(small)).not.toBeNull();
    expect(mm.vmaLookup(dst)!.vmEnd).toBe(dst + PMD_SIZE);
    expect(k.hugetlbPool.resvHugePages).toBe(0);
    mm.exit();
    expect(k.hugetlbPool.freeHugePages).toBe(1);
  });
});
