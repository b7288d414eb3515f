import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  MM_ANONPAGES,
  PAGE_SIZE,
  PG_anon,
  PROT_READ,
  PROT_WRITE,
  createKernel,
  isDevicePrivateEntry,
  isWritableDevicePrivateEntry,
  pteKind,
  ptePfn,
  ptePresent,
  pteWrite,
  type Kernel,
  type Mm,
} from "@hmmsim/core";
import { assertInvariants } from "@hmmsim/testing";
import { afterEach, describe, expect, it } from "vitest";
import { migrateVmaFinalize, migrateVmaPages, migrateVmaSetup } from "./migrate-device.js";
import { MIGRATE_PFN_MIGRATE, MIGRATE_VMA_SELECT_SYSTEM, migratePfnToPage, migrateVmaInit } from "./migrate-pfn.js";
import { rmapWalk } from "./rmap.js";
import { TestDevice } from "./testing/test-driver.js";
import { assertTrackedInvariants, locked, pattern, trackKernel } from "./testing/test-helpers.js";

// Every test ends with the kernel invariants checked on every kernel it created (tracked by setup / trackKernel).
afterEach(assertTrackedInvariants);

const P = PAGE_SIZE;

/** A 2-page tmpfile mapped MAP_PRIVATE at a file offset, both pages written (COW'd into anon pages). */
function privateFileMapping(bytes = true): { k: Kernel; mm: Mm; a: number } {
  const k = trackKernel(createKernel({ ramBytes: 32 << 20, bytes, thp: "never" }));
  const mm = k.createMm();
  const f = k.createFile(8 * P, { name: "tmpfile" });
  const a = mm.mmap({ length: 2 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE, file: f, offset: 3 * P });
  mm.write(a, pattern(1));
  mm.write(a + P, pattern(2));
  return { k, mm, a };
}

describe("rmap_walk uses vma_address (vm_pgoff), not index << PAGE_SHIFT", () => {
  it("finds a COW'd anon page of a MAP_PRIVATE file mapping at its address (index = file offset)", () => {
    const { k, mm, a } = privateFileMapping();
    const pfn = ptePfn(mm.pgtable.pteGet(a + P));
    expect(k.store.test(pfn, PG_anon)).toBe(true);
    expect(k.store.index(pfn)).toBe(4); // linear_page_index: file page 3 + 1
    const seen: number[] = [];
    rmapWalk(k, pfn, (_mm, _vma, address, out: number[]) => out.push(address) > 0, seen);
    expect(seen).toEqual([a + P]);
  });

  it("every dst 0: migrate_vma_finalize restores both PTEs (no migration entry left behind)", () => {
    const { k, mm, a } = privateFileMapping();
    const before = [mm.pgtable.pteGet(a), mm.pgtable.pteGet(a + P)];
    const pfns = before.map(ptePfn);
    const vma = mm.vmaLookup(a)!;
    const args = migrateVmaInit({ vma, start: a, end: a + 2 * P, src: new Float64Array(2), dst: new Float64Array(2), pgmapOwner: null, flags: MIGRATE_VMA_SELECT_SYSTEM });
    locked(mm, () => {
      expect(migrateVmaSetup(args)).toBe(0);
      expect(args.cpages).toBe(2);
      expect([0, 1].map((i) => migratePfnToPage(args.src![i]!))).toEqual(pfns);
      expect(pteKind(mm.pgtable.pteGet(a + P))).toBe("migration-write");
      migrateVmaPages(args);
      migrateVmaFinalize(args);
    });
    for (let i = 0; i < 2; i++) {
      const pte = mm.pgtable.pteGet(a + i * P);
      expect(ptePresent(pte) && pteWrite(pte)).toBe(true);
      expect(ptePfn(pte)).toBe(pfns[i]);
      expect(k.store.refcount(pfns[i]!)).toBe(1);
      expect(k.store.mapcount(pfns[i]!)).toBe(1);
      expect(args.src![i]! & MIGRATE_PFN_MIGRATE).toBe(0);
    }
    expect(mm.read(a + P, P)).toEqual(pattern(2));
    assertInvariants(k);
  });

  it("the COW'd pages migrate to device-private memory and back with their bytes", () => {
    const { k, mm, a } = privateFileMapping();
    const dev = new TestDevice(k, 8);
    const rss = mm.counter(MM_ANONPAGES);
    const to = dev.migrateToDevice(mm, a, a + 2 * P);
    expect(to.args.cpages).toBe(2);
    for (let i = 0; i < 2; i++) {
      const e = mm.pgtable.pteGet(a + i * P);
      expect(isWritableDevicePrivateEntry(e)).toBe(true);
      expect(k.store.index(ptePfn(e))).toBe(3 + i);
    }
    assertInvariants(k);
    const back = dev.migrateToSystem(mm, a, a + 2 * P);
    expect(back.args.cpages).toBe(2);
    expect(mm.read(a, P)).toEqual(pattern(1));
    expect(mm.read(a + P, P)).toEqual(pattern(2));
    expect(mm.counter(MM_ANONPAGES)).toBe(rss);
    expect(dev.free.length).toBe(8);
    assertInvariants(k);
    // and through the fault path (migrate_to_ram) too
    dev.migrateToDevice(mm, a, a + 2 * P);
    expect(mm.read(a + P, P)).toEqual(pattern(2));
    expect(dev.faults).toBe(1);
    assertInvariants(k);
  });

  it("after mremap (and fork) an anon page is found in both mms at its new address", () => {
    const k = trackKernel(createKernel({ ramBytes: 32 << 20, bytes: true, thp: "never" }));
    const mm = k.createMm();
    const a = mm.mmap({ length: 4 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    for (let i = 0; i < 4; i++) mm.write(a + i * P, pattern(10 + i));
    const b = mm.mremap(a, 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_FIXED, a + (64 << 20));
    expect(b).toBe(a + (64 << 20));
    const child = mm.fork();
    const pfn = ptePfn(mm.pgtable.pteGet(b + 2 * P));
    const seen: [number, number][] = [];
    rmapWalk(k, pfn, (m, _vma, address, out: [number, number][]) => out.push([m.id, address]) > 0, seen);
    expect(seen.sort()).toEqual([[mm.id, b + 2 * P], [child.id, b + 2 * P]].sort());
    // shared after fork: migration converts both mms (try_to_migrate) and finalize restores both
    const dev = new TestDevice(k, 8);
    const { args } = dev.migrateToDevice(mm, b, b + 4 * P);
    expect(args.cpages).toBe(4);
    for (const m of [mm, child]) expect(isDevicePrivateEntry(m.pgtable.pteGet(b + 2 * P))).toBe(true);
    assertInvariants(k);
    expect(child.read(b + 2 * P, P)).toEqual(pattern(12));
    expect(mm.read(b + 3 * P, P)).toEqual(pattern(13));
    assertInvariants(k);
  });
});

