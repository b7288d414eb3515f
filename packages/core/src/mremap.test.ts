import { describe, expect, it } from "vitest";
import { EFAULT, EINVAL, ENOMEM } from "./errno.js";
import { InvalidArgumentError } from "./errors.js";
import { createKernel } from "./kernel.js";
import { zoneDeviceFolioInitK } from "./memremap.js";
import { MM_ANONPAGES } from "./mm-counters.js";
import type { Mm } from "./mm.js";
import { MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE } from "./mremap.js";
import { HPAGE_PMD_NR, PAGE_SIZE, PG_anon, PG_anon_exclusive, PMD_SIZE, alignUp } from "./page-flags.js";
import { folioUnlock } from "./page-ref.js";
import {
  isDevicePrivateEntry,
  makeDevicePrivateEntry,
  pmdMkhuge,
  pmdTransHuge,
  ptePfn,
  ptePresent,
  pteSoftDirty,
} from "./pgtable.js";
import { rmapWalk } from "./rmap.js";
import { FakeDevice, record } from "./testing/test-util.js";
import { MADV_HUGEPAGE, MADV_NOHUGEPAGE, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "./vma.js";

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

/** ptr[i] = i for the ints at word 0 and word 2 of every page (enough to tell every page apart, and cheap). */
function fill(mm: Mm, addr: number, n: number): void {
  for (let i = 0; i < n; i += 1024) {
    mm.writeU32(addr + i * 4, i);
    mm.writeU32(addr + i * 4 + 8, i + 2);
  }
}
function check(mm: Mm, addr: number, n: number): void {
  for (let i = 0; i < n; i += 1024) {
    if (mm.readU32(addr + i * 4) !== i) expect(mm.readU32(addr + i * 4)).toBe(i);
    if (mm.readU32(addr + i * 4 + 8) !== i + 2) expect(mm.readU32(addr + i * 4 + 8)).toBe(i + 2);
  }
}
function rmapPlaces(mm: Mm, pfn: number): number[] {
  const out: number[] = [];
  rmapWalk(mm.kernel, pfn, (_m, _v, a) => {
    out.push(a);
    return true;
  });
  return out;
}

describe("mremap: moving (MREMAP_MAYMOVE|MREMAP_FIXED)", () => {
  it("moves PTEs: data, mapcount, rss unchanged; page->index kept and rmap finds the new address; UNMAP on the old range", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const a = mm.mmap({ length: 8 * PAGE_SIZE, prot: RW, flags: ANON });
    fill(mm, a, 4 * 1024);
    const pfn = ptePfn(mm.pgtable.pteGet(a + PAGE_SIZE));
    const index = k.store.index(pfn);
    const dst = a + 64 * PAGE_SIZE;
    const rec = record(mm);
    expect(mm.mremap(a, 4 * PAGE_SIZE, 4 * PAGE_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, dst)).toBe(dst);
    // move_page_tables' UNMAP, then the source munmap's UNMAP (the FIXED munmap of an empty target sends none).
    expect(rec.starts()).toEqual([
      { event: "MMU_NOTIFY_UNMAP", start: a, end: a + 4 * PAGE_SIZE, owner: null },
      { event: "MMU_NOTIFY_UNMAP", start: a, end: a + 4 * PAGE_SIZE, owner: null },
    ]);
    expect(mm.vmaLookup(a)).toBeNull();
    expect(mm.vmaLookup(a + 4 * PAGE_SIZE)).not.toBeNull(); // the unmoved tail stays
    const pte = mm.pgtable.pteGet(dst + PAGE_SIZE);
    expect(ptePfn(pte)).toBe(pfn);
    expect(pteSoftDirty(pte)).toBe(true);
    expect(k.store.mapcount(pfn)).toBe(1);
    expect(k.store.refcount(pfn)).toBe(1);
    expect(k.store.index(pfn)).toBe(index);
    expect(mm.vmaLookup(dst)!.vmPgoff).toBe(a / PAGE_SIZE);
    expect(rmapPlaces(mm, pfn)).toEqual([dst + PAGE_SIZE]);
    expect(mm.counter(MM_ANONPAGES)).toBe(4);
    check(mm, dst, 4 * 1024);
    // a new fault in the moved VMA gets index = linear_page_index: rmap finds it too
    mm.touch(dst, true);
    expect(rmapPlaces(mm, ptePfn(mm.pgtable.pteGet(dst)))).toEqual([dst]);
    mm.exit();
    expect(k.allocator.nrFree).toBe(k.nrRamPages);
  });

  it("after fork each mm's rmap place is found: the child moved, the parent did not", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const p = k.createMm();
    const a = p.mmap({ length: 2 * PAGE_SIZE, prot: RW, flags: ANON });
    p.writeU32(a, 7);
    const pfn = ptePfn(p.pgtable.pteGet(a));
    const c = p.fork();
    const dst = a + 128 * PAGE_SIZE;
    expect(c.mremap(a, 2 * PAGE_SIZE, 2 * PAGE_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, dst)).toBe(dst);
    const seen: [number, number][] = [];
    rmapWalk(k, pfn, (m, _v, addr) => {
      seen.push([m.id, addr]);
      return true;
    });
    expect(seen.sort()).toEqual([
      [p.id, a],
      [c.id, dst],
    ].sort());
    expect(c.readU32(dst)).toBe(7);
    c.writeU32(dst, 8); // COW in the child at the new address
    expect(p.readU32(a)).toBe(7);
    c.exit();
    p.exit();
    expect(k.allocator.nrFree).toBe(k.nrRamPages);
  });

  it("MREMAP_DONTUNMAP leaves the old VMA in place, empty (it refaults zero-filled), without its anon_vma", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const a = mm.mmap({ length: 4 * PAGE_SIZE, prot: RW, flags: ANON });
    fill(mm, a, 4 * 1024);
    const oldVma = mm.vmaLookup(a)!;
    const dst = a + 512 * PAGE_SIZE;
    expect(mm.mremap(a, 4 * PAGE_SIZE, 4 * PAGE_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, dst)).toBe(dst);
    expect(mm.vmaLookup(a)).toBe(oldVma);
    expect(oldVma.anonVma).toBeNull();
    expect(mm.pgtable.pteGet(a)).toBe(0);
    check(mm, dst, 4 * 1024);
    expect(mm.readU32(a + 8)).toBe(0);
    mm.exit();
    expect(k.allocator.nrFree).toBe(k.nrRamPages);
  });

  it("moves several VMAs keeping the gaps (remap_move); a gap at the start is -EFAULT", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const a = mm.mmap({ length: 8 * PAGE_SIZE, prot: RW, flags: ANON });
    fill(mm, a, 8 * 1024);
    mm.munmap(a + 2 * PAGE_SIZE, PAGE_SIZE);
    const dst = a + 1024 * PAGE_SIZE;
    expect(mm.mremap(a + 2 * PAGE_SIZE, 2 * PAGE_SIZE, 2 * PAGE_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, dst)).toBe(-EFAULT);
    expect(mm.mremap(a, 6 * PAGE_SIZE, 6 * PAGE_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, dst)).toBe(dst);
    expect(mm.vmaLookup(dst + 2 * PAGE_SIZE)).toBeNull();
    expect(mm.readU32(dst + 8)).toBe(2);
    expect(mm.readU32(dst + 3 * PAGE_SIZE)).toBe(3 * 1024);
    expect(mm.vmasIn(a, a + 6 * PAGE_SIZE)).toEqual([]);
  });
});

describe("mremap: resizing", () => {
  it("shrinking unmaps the tail (UNMAP, pages freed)", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const a = mm.mmap({ length: 4 * PAGE_SIZE, prot: RW, flags: ANON });
    fill(mm, a, 4 * 1024);
    const rec = record(mm);
    expect(mm.mremap(a, 4 * PAGE_SIZE, 2 * PAGE_SIZE, 0)).toBe(a);
    expect(rec.starts()).toEqual([{ event: "MMU_NOTIFY_UNMAP", start: a + 2 * PAGE_SIZE, end: a + 4 * PAGE_SIZE, owner: null }]);
    expect(mm.vmaLookup(a)!.vmEnd).toBe(a + 2 * PAGE_SIZE);
    expect(mm.counter(MM_ANONPAGES)).toBe(2);
    expect(k.allocator.nrFree).toBe(k.nrRamPages - 2);
  });

  it("grows in place when the next range is free; otherwise moves with MREMAP_MAYMOVE or fails -ENOMEM", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const a = mm.mmap({ length: 2 * PAGE_SIZE, prot: RW, flags: ANON });
    mm.writeU32(a, 1);
    expect(mm.mremap(a, 2 * PAGE_SIZE, 4 * PAGE_SIZE, 0)).toBe(a);
    expect(mm.vmaLookup(a + 3 * PAGE_SIZE)).not.toBeNull();
    mm.writeU32(a + 3 * PAGE_SIZE, 3);
    // block growth
    const blocker = mm.mmap({ addr: a + 4 * PAGE_SIZE, length: PAGE_SIZE, prot: RW, flags: ANON | MAP_FIXED });
    expect(blocker).toBe(a + 4 * PAGE_SIZE);
    expect(mm.mremap(a, 4 * PAGE_SIZE, 8 * PAGE_SIZE, 0)).toBe(-ENOMEM);
    const n = mm.mremap(a, 4 * PAGE_SIZE, 8 * PAGE_SIZE, MREMAP_MAYMOVE);
    expect(n).toBeGreaterThan(0);
    expect(n).not.toBe(a);
    expect(mm.readU32(n)).toBe(1);
    expect(mm.readU32(n + 3 * PAGE_SIZE)).toBe(3);
    expect(mm.vmaLookup(n)!.vmEnd).toBe(n + 8 * PAGE_SIZE);
    expect(mm.vmaLookup(a)).toBeNull();
  });

  it("errors as check_mremap_params / check_prep_vma; nothing changes", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const a = mm.mmap({ length: 4 * PAGE_SIZE, prot: RW, flags: ANON });
    const far = a + 256 * PAGE_SIZE;
    expect(mm.mremap(a + 1, PAGE_SIZE, PAGE_SIZE, 0)).toBe(-EINVAL);
    expect(mm.mremap(a, PAGE_SIZE, PAGE_SIZE, 8)).toBe(-EINVAL);
    expect(mm.mremap(a, PAGE_SIZE, 0, 0)).toBe(-EINVAL);
    expect(mm.mremap(a, PAGE_SIZE, PAGE_SIZE, MREMAP_FIXED, far)).toBe(-EINVAL); // FIXED without MAYMOVE
    expect(mm.mremap(a, PAGE_SIZE, PAGE_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, far + 1)).toBe(-EINVAL);
    expect(mm.mremap(a, 2 * PAGE_SIZE, 2 * PAGE_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, a + PAGE_SIZE)).toBe(-EINVAL); // overlap
    expect(mm.mremap(a, PAGE_SIZE, 2 * PAGE_SIZE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, far)).toBe(-EINVAL);
    expect(mm.mremap(far, PAGE_SIZE, 2 * PAGE_SIZE, MREMAP_MAYMOVE)).toBe(-EFAULT); // no VMA
    expect(mm.mremap(a + 2 * PAGE_SIZE, 4 * PAGE_SIZE, 8 * PAGE_SIZE, MREMAP_MAYMOVE)).toBe(-EFAULT); // crosses vm_end
    expect(() => mm.mremap(-4096, PAGE_SIZE, PAGE_SIZE, 0)).toThrow(InvalidArgumentError);
    expect(mm.vmas).toHaveLength(1);
    expect(mm.vmas[0]!.vmStart).toBe(a);
    expect(mm.vmas[0]!.vmEnd).toBe(a + 4 * PAGE_SIZE);
  });
});

describe("mremap: huge PMDs and device entries", () => {
  function thpSetup() {
    const k = createKernel({ ramBytes: 32 << 20 });
    const mm = k.createMm();
    const raw = mm.mmap({ length: 8 * PMD_SIZE, prot: RW, flags: ANON });
    const map = alignUp(raw, PMD_SIZE);
    expect(mm.madvise(map, PMD_SIZE, MADV_HUGEPAGE)).toBe(0);
    mm.munmap(map + PMD_SIZE, 2 * PMD_SIZE);
    fill(mm, map, PMD_SIZE / 4);
    expect(pmdTransHuge(mm.pgtable.pmdGet(map))).toBe(true);
    return { k, mm, map };
  }
  it("a THP PMD moves whole when both ends are PMD aligned, and is split when they are not", () => {
    const { k, mm, map } = thpSetup();
    const head = ptePfn(mm.pgtable.pmdGet(map));
    const dst = map + PMD_SIZE;
    expect(mm.mremap(map, PMD_SIZE, PMD_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, dst)).toBe(dst);
    expect(ptePfn(mm.pgtable.pmdGet(dst))).toBe(head);
    expect(k.store.entireMapcount(head)).toBe(1);
    check(mm, dst, PMD_SIZE / 4);
    const dst2 = dst + PMD_SIZE + PMD_SIZE / 4;
    expect(mm.mremap(dst, PMD_SIZE, PMD_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, dst2)).toBe(dst2);
    expect(mm.pgtable.pmdGet(dst2)).toBe(0);
    expect(ptePfn(mm.pgtable.pteGet(dst2))).toBe(head);
    expect(ptePfn(mm.pgtable.pteGet(dst2 + PMD_SIZE - PAGE_SIZE))).toBe(head + HPAGE_PMD_NR - 1);
    expect(k.store.entireMapcount(head)).toBe(0);
    expect(k.store.mapcount(head + 5)).toBe(1);
    check(mm, dst2, PMD_SIZE / 4);
    mm.exit();
    expect(k.allocator.nrFree).toBe(k.nrRamPages);
  });

  it("a device-private PMD moves whole (aligned) or as 512 device-private PTEs (unaligned); rmap finds them", () => {
    const { k, mm, map } = thpSetup();
    const dev = new FakeDevice(k, 1024);
    // Stand-in for migrate_vma_*: replace the THP by a device-private THP (order 9) with the same data.
    const head = ptePfn(mm.pgtable.pmdGet(map));
    const dhead = dev.startPfn;
    dev.free.length = 0;
    zoneDeviceFolioInitK(k, dhead, 9);
    for (let i = 0; i < HPAGE_PMD_NR; i++) {
      k.pageBytes.copy(dhead + i, head + i);
      k.store.setIndex(dhead + i, k.store.index(head + i));
      k.store.set(dhead + i, PG_anon_exclusive);
    }
    k.store.set(dhead, PG_anon);
    k.store.setMapping(dhead, k.store.mapping(head));
    k.store.entireMapcountAdd(dhead, 1);
    folioUnlock(k, dhead);
    k.store.entireMapcountAdd(head, -1);
    mm.pgtable.pmdSet(map, pmdMkhuge(makeDevicePrivateEntry(dhead, true)));
    k.store.setRefcount(head, 0);
    k.allocator.free(head, 9);
    const dst = map + PMD_SIZE;
    expect(mm.mremap(map, PMD_SIZE, PMD_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, dst)).toBe(dst);
    expect(isDevicePrivateEntry(mm.pgtable.pmdGet(dst))).toBe(true);
    const dst2 = dst + PMD_SIZE + PMD_SIZE / 2;
    expect(mm.mremap(dst, PMD_SIZE, PMD_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, dst2)).toBe(dst2);
    const e = mm.pgtable.pteGet(dst2 + 7 * PAGE_SIZE);
    expect(isDevicePrivateEntry(e)).toBe(true);
    expect(ptePfn(e)).toBe(dhead + 7);
    expect(rmapPlaces(mm, dhead + 7)).toEqual([dst2 + 7 * PAGE_SIZE]);
    // A CPU access faults one page back (migrate_to_ram at PTE level) from the new address.
    expect(mm.readU32(dst2 + 7 * PAGE_SIZE + 8)).toBe(7 * 1024 + 2);
    expect(dev.faults).toHaveLength(1);
    expect(dev.faults[0]!.address).toBe(dst2 + 7 * PAGE_SIZE);
    expect(ptePresent(mm.pgtable.pteGet(dst2 + 7 * PAGE_SIZE))).toBe(true);
  });

  // hmm-tests migrate_remap_fault (PTE-level device pages): before ∈ {0,1} × dontunmap ∈ {0,1} × off.
  for (const before of [true, false])
    for (const dontUnmap of [false, true])
      for (const offDiv of [0, 4, 2])
        it(`migrate_remap_fault: before=${before} dontunmap=${dontUnmap} off=size/${offDiv || "∞"}`, () => {
          const k = createKernel({ ramBytes: 64 << 20 });
          const mm = k.createMm();
          const size = PMD_SIZE;
          const off = offDiv === 0 ? 0 : size / offDiv;
          const dev = new FakeDevice(k, 1024);
          const ptr = mm.mmap({ length: 8 * size, prot: RW, flags: ANON });
          const map = alignUp(ptr, size);
          expect(mm.madvise(map, size, MADV_NOHUGEPAGE)).toBe(0);
          mm.munmap(map + size, 2 * size);
          fill(mm, map, size / 4);
          const flags = MREMAP_MAYMOVE | MREMAP_FIXED | (dontUnmap ? MREMAP_DONTUNMAP : 0);
          let p: number;
          const migrate = (at: number) => {
            for (let a = at; a < at + size; a += PAGE_SIZE) dev.migrateToDevice(mm, a);
          };
          if (before) {
            p = mm.mremap(map, size, size, flags, map + size + off);
            expect(p).toBe(map + size + off);
            migrate(p);
          } else {
            migrate(map);
            p = mm.mremap(map, size, size, flags, map + size + off);
            expect(p).toBe(map + size + off);
          }
          expect(isDevicePrivateEntry(mm.pgtable.pteGet(p + 3 * PAGE_SIZE))).toBe(true);
          check(mm, p, size / 4);
          expect(dev.faults).toHaveLength(size / PAGE_SIZE);
          expect(mm.munmap(p, size)).toBe(0);
          mm.munmap(ptr, 8 * size);
          expect(mm.counter(MM_ANONPAGES)).toBe(0);
          expect(k.allocator.nrFree).toBe(k.nrRamPages);
        });
});
