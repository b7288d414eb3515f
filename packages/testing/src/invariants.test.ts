import {
  MM_ANONPAGES,
  PAGE_SIZE,
  PG_anon_exclusive,
  PG_locked,
  PMD_SIZE,
  allocPages,
  isDeviceExclusiveEntry,
  isDevicePrivateEntry,
  makeMigrationEntry,
  pfnPte,
  ptePfn,
  pteWrite,
  pteMkwrite,
} from "@hmmsim/core";
import { MEMORY_DEVICE_COHERENT } from "@hmmsim/memremap";
import { describe, expect, it } from "vitest";
import {
  InvariantViolationError,
  assertInvariants,
  checkInvariants,
  compareContents,
  createTestMachine,
  snapshotContents,
  type TestMachine,
} from "./index.js";

const rules = (m: TestMachine, o?: Parameters<TestMachine["check"]>[0]) => [...new Set(m.check(o).map((v) => v.rule))].sort();

/**
 * A machine exercising every kind of mapping: private anon pages (written, zero page), a THP, shmem, a file
 * mapping, a forked child sharing COW pages, a device-private page and a device-exclusive entry.
 */
function busyMachine() {
  const m = createTestMachine({ ramBytes: 16 * 1024 * 1024 });
  const { mm } = m;
  const anon = m.mmapAnon(16 * PAGE_SIZE);
  for (let i = 0; i < 8; i++) mm.writeU32(anon + i * PAGE_SIZE, 0x1000 + i);
  mm.readU32(anon + 10 * PAGE_SIZE); // zero page
  const thp = m.mmapAnon(PMD_SIZE, { hugepage: true });
  mm.writeU32(thp + 5 * PAGE_SIZE, 77);
  const shm = m.mmapAnon(4 * PAGE_SIZE, { shared: true });
  mm.writeU32(shm, 5);
  const file = m.createFile(8 * PAGE_SIZE);
  const fmap = m.mmapFile(file, 8 * PAGE_SIZE, { shared: true });
  mm.writeU32(fmap + PAGE_SIZE, 9);
  const fpriv = m.mmapFile(file, 8 * PAGE_SIZE);
  mm.readU32(fpriv + PAGE_SIZE);
  mm.writeU32(fpriv + 2 * PAGE_SIZE, 11);
  const child = mm.fork();
  child.writeU32(anon, 0xc0ffee); // COW in the child
  const dev = m.addDevice({ nrPages: 64 });
  const dpfn = dev.migrateToDevice(mm, anon + 3 * PAGE_SIZE); // shared with the child after fork
  const xpfn = dev.makeExclusive(mm, anon + 0);
  return { m, mm, child, anon, thp, shm, file, fmap, fpriv, dev, dpfn, xpfn };
}

describe("checkInvariants on a consistent machine", () => {
  it("finds nothing, counting device-private and device-exclusive entries as mappings", () => {
    const b = busyMachine();
    expect(b.dpfn).toBeGreaterThan(b.m.kernel.zeroPfn);
    expect(isDevicePrivateEntry(b.mm.pgtable.pteGet(b.anon + 3 * PAGE_SIZE))).toBe(true);
    expect(isDevicePrivateEntry(b.child.pgtable.pteGet(b.anon + 3 * PAGE_SIZE))).toBe(true);
    expect(isDeviceExclusiveEntry(b.mm.pgtable.pteGet(b.anon))).toBe(true);
    expect(b.m.kernel.store.mapcount(b.dpfn)).toBe(2);
    expect(b.m.check()).toEqual([]);
    // A CPU access faults the device page back; still consistent, and the device page is free again.
    expect(b.child.readU32(b.anon + 3 * PAGE_SIZE)).toBe(0x1003);
    expect(b.dev.faults).toHaveLength(1);
    expect(b.dev.freed).toEqual([b.dpfn]);
    expect(b.m.kernel.store.refcount(b.dpfn)).toBe(0);
    expect(b.m.check()).toEqual([]);
  });

  it("after every mm exits, only page-cache pages remain and nothing leaks", () => {
    const b = busyMachine();
    b.m.exitAll();
    expect(b.m.check()).toEqual([]);
    expect(b.m.kernel.allocator.nrFree).toBe(b.m.kernel.nrRamPages - b.file.nrpages);
    expect(b.m.kernel.memcgs.root.usage).toBe(b.file.nrpages);
  });

  it("coherent device pages are mapped by present PTEs and are consistent too", () => {
    const m = createTestMachine({ ramBytes: 8 * 1024 * 1024 });
    const a = m.mmapAnon(4 * PAGE_SIZE);
    m.mm.writeU32(a, 42);
    const dev = m.addDevice({ type: MEMORY_DEVICE_COHERENT, nrPages: 8 });
    const dpfn = dev.migrateToDevice(m.mm, a);
    expect(ptePfn(m.mm.pgtable.pteGet(a))).toBe(dpfn);
    expect(m.check()).toEqual([]);
    expect(m.mm.readU32(a)).toBe(42);
    m.mm.writeU32(a, 43); // coherent: no fault to RAM
    expect(ptePfn(m.mm.pgtable.pteGet(a))).toBe(dpfn);
    expect(m.check()).toEqual([]);
  });
});

describe("each invariant catches a deliberate corruption", () => {
  it("refcount: an extra reference on a mapped page", () => {
    const b = busyMachine();
    const pfn = ptePfn(b.mm.pgtable.pteGet(b.anon + PAGE_SIZE));
    b.m.kernel.store.refAdd(pfn, 1);
    expect(rules(b.m)).toEqual(["refcount_mismatch"]);
    // ... which the caller may declare as a reference it holds.
    expect(b.m.check({ extraRefs: new Map([[pfn, 1]]) })).toEqual([]);
    expect(b.m.check({ extraRefs: (p) => (p === pfn ? 1 : 0) })).toEqual([]);
  });

  it("mapcount: a page counted mapped once more than the page tables map it", () => {
    const b = busyMachine();
    b.m.kernel.store.mapcountAdd(ptePfn(b.mm.pgtable.pteGet(b.anon + 2 * PAGE_SIZE)), 1);
    expect(rules(b.m)).toEqual(["mapcount_mismatch"]);
  });

  it("entire mapcount of a PMD-mapped THP", () => {
    const b = busyMachine();
    b.m.kernel.store.entireMapcountAdd(ptePfn(b.mm.pgtable.pmdGet(b.thp)), 1);
    expect(rules(b.m)).toEqual(["entire_mapcount_mismatch"]);
  });

  it("rss counters", () => {
    const b = busyMachine();
    b.child.rss[MM_ANONPAGES]!++;
    const v = b.m.check();
    expect(v.map((x) => x.rule)).toEqual(["rss_mismatch"]);
    expect(v[0]!.mmId).toBe(b.child.id);
    expect(v[0]!.message).toMatch(/MM_ANONPAGES/);
  });

  it("memcg usage", () => {
    const b = busyMachine();
    b.m.kernel.memcgs.root.usage -= 1;
    expect(rules(b.m)).toEqual(["memcg_usage_mismatch"]);
  });

  it("a device-private page mapped by a present CPU PTE", () => {
    const b = busyMachine();
    const a = b.anon + 3 * PAGE_SIZE;
    b.mm.pgtable.pteSet(a, pfnPte(b.dpfn, false));
    expect(rules(b.m)).toContain("device_private_cpu_mapped");
  });

  it("a device-private page mapped by a special (pfnmap) PTE", () => {
    const b = busyMachine();
    const a = b.anon + 3 * PAGE_SIZE;
    b.mm.pgtable.pteSet(a, pfnPte(b.dpfn, false, { special: true }));
    expect(rules(b.m)).toContain("device_private_cpu_mapped");
  });

  it("a PageAnonExclusive page mapped by two mms (read-only, so no writable-PTE rule fires)", () => {
    const b = busyMachine();
    const a = b.anon + 5 * PAGE_SIZE; // shared with the child after fork, read-only in both
    const pfn = ptePfn(b.mm.pgtable.pteGet(a));
    expect(ptePfn(b.child.pgtable.pteGet(a))).toBe(pfn);
    expect(rules(b.m)).toEqual([]);
    b.m.kernel.store.set(pfn, PG_anon_exclusive);
    expect(rules(b.m)).toEqual(["anon_exclusive_shared"]);
  });

  it("a device-private entry pointing at a RAM page", () => {
    const b = busyMachine();
    const ram = ptePfn(b.mm.pgtable.pteGet(b.anon + PAGE_SIZE));
    b.mm.pgtable.pteSet(b.anon + PAGE_SIZE, 3 * 256 + ram * 4096); // SWP_DEVICE_WRITE to a RAM pfn
    expect(rules(b.m)).toContain("device_private_entry_not_private");
  });

  it("a leaked page after every mm exited", () => {
    const b = busyMachine();
    b.m.exitAll();
    const pfn = allocPages(b.m.kernel, 0);
    const v = b.m.check();
    expect(v.map((x) => x.rule)).toEqual(["refcount_mismatch", "leaked_page"]);
    expect(v[1]!.pfn).toBe(pfn);
  });

  it("a free device page with a refcount", () => {
    const b = busyMachine();
    const free = b.dev.free[b.dev.free.length - 1]!;
    b.m.kernel.store.setRefcount(free, 1);
    expect(rules(b.m)).toEqual(["pgmap_ref_mismatch", "refcount_mismatch"]);
  });

  it("a free device page that is still mapped-counted", () => {
    const b = busyMachine();
    b.m.kernel.store.setMapcount(b.dev.free[0]!, 1);
    expect(rules(b.m)).toEqual(["device_page_free_state", "mapcount_mismatch"]);
  });

  it("the allocator and the refcounts disagree", () => {
    const b = busyMachine();
    b.m.kernel.allocator.alloc(0); // taken from the allocator without a reference
    expect(rules(b.m)).toEqual(["allocator_mismatch"]);
  });

  it("an entry outside every VMA", () => {
    const b = busyMachine();
    const pfn = ptePfn(b.mm.pgtable.pteGet(b.anon + PAGE_SIZE));
    b.mm.pgtable.pteSet(b.anon - PAGE_SIZE, pfnPte(pfn, false));
    expect(rules(b.m)).toContain("entry_outside_vma");
  });

  it("a shared COW page left writable after fork", () => {
    const b = busyMachine();
    const a = b.anon + 5 * PAGE_SIZE;
    const pte = b.mm.pgtable.pteGet(a);
    expect(pteWrite(pte)).toBe(false);
    b.mm.pgtable.pteSet(a, pteMkwrite(pte));
    expect(rules(b.m)).toEqual(["cow_writable_not_exclusive"]);
  });

  it("a writable PTE in a read-only VMA", () => {
    const m = createTestMachine({ ramBytes: 4 * 1024 * 1024 });
    const a = m.mmapAnon(PAGE_SIZE);
    m.mm.writeU32(a, 1);
    expect(m.mm.mprotect(a, PAGE_SIZE, 1)).toBe(0);
    m.mm.pgtable.pteSet(a, pteMkwrite(m.mm.pgtable.pteGet(a)));
    expect(rules(m)).toEqual(["pte_write_without_vm_write"]);
  });

  it("the reverse map: a page whose index no longer matches its address", () => {
    const b = busyMachine();
    const pfn = ptePfn(b.mm.pgtable.pteGet(b.anon + 6 * PAGE_SIZE));
    b.m.kernel.store.setIndex(pfn, 1);
    expect(rules(b.m)).toEqual(["rmap_mismatch"]);
    const c = busyMachine();
    c.m.kernel.store.clear(ptePfn(c.child.pgtable.pteGet(c.anon)), PG_anon_exclusive); // the child's COW copy, writable
    expect(rules(c.m)).toEqual(["cow_writable_not_exclusive"]);
  });

  it("a migration entry left behind (allowed mid-migration, with refcounts as lower bounds)", () => {
    const b = busyMachine();
    const a = b.anon + PAGE_SIZE;
    const pfn = ptePfn(b.mm.pgtable.pteGet(a));
    // try_to_migrate: the mapping becomes a migration entry, the rmap goes; the collector keeps the reference.
    b.mm.pgtable.pteSet(a, makeMigrationEntry(pfn, "write"));
    b.m.kernel.store.mapcountAdd(pfn, -1);
    expect(rules(b.m)).toEqual(["migration_entry", "refcount_mismatch"]);
    expect(b.m.check({ allowMigrationEntries: true })).toEqual([]);
  });

  it("a locked page", () => {
    const b = busyMachine();
    b.m.kernel.store.set(ptePfn(b.mm.pgtable.pteGet(b.anon + PAGE_SIZE)), PG_locked);
    expect(rules(b.m)).toEqual(["page_locked"]);
    expect(b.m.check({ allowLocked: true })).toEqual([]);
  });

  it("the zero page gaining a reference", () => {
    const b = busyMachine();
    b.m.kernel.store.refAdd(b.m.kernel.zeroPfn, 1);
    expect(rules(b.m)).toEqual(["zero_page"]);
  });

  it("a page-cache page whose index changed", () => {
    const b = busyMachine();
    const pfn = b.file.pages.get(1)!;
    b.m.kernel.store.setIndex(pfn, 5);
    expect(rules(b.m)).toContain("page_cache_mismatch");
  });

  it("assertInvariants throws a typed error listing every violation", () => {
    const b = busyMachine();
    b.mm.rss[MM_ANONPAGES]! += 2;
    b.m.kernel.memcgs.root.usage += 1;
    let err: unknown;
    try {
      assertInvariants(b.m.kernel);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvariantViolationError);
    const ie = err as InvariantViolationError;
    expect(ie.violations.map((v) => v.rule).sort()).toEqual(["memcg_usage_mismatch", "rss_mismatch"]);
    expect(ie.message).toMatch(/2 invariant violation\(s\)[\s\S]*\[rss_mismatch\][\s\S]*\[memcg_usage_mismatch\]/);
    expect(checkInvariants(b.m.kernel, { maxViolations: 1 })).toHaveLength(1);
  });
});

describe("content snapshots", () => {
  it("survive fork, COW in the other process, device migration and the fault back", () => {
    for (const bytes of [true, false]) {
      const m = createTestMachine({ ramBytes: 8 * 1024 * 1024, bytes });
      const a = m.mmapAnon(8 * PAGE_SIZE);
      for (let i = 0; i < 6; i++) m.mm.write(a + i * PAGE_SIZE + 100, new Uint8Array([i + 1, 2, 3]));
      const snap = snapshotContents(m.mm, a, a + 8 * PAGE_SIZE);
      expect(snap.tags.slice(6)).toEqual([0, 0]);
      expect(snap.tags.slice(0, 6).every((t) => t > 0)).toBe(true);
      const child = m.mm.fork();
      child.write(a + 100, new Uint8Array([9]));
      const dev = m.addDevice({ nrPages: 8 });
      expect(dev.migrateToDevice(m.mm, a + 2 * PAGE_SIZE)).toBeGreaterThan(0);
      expect(compareContents(m.mm, snap)).toEqual([]);
      m.mm.read(a + 2 * PAGE_SIZE, 4); // migrate_to_ram
      expect(compareContents(m.mm, snap)).toEqual([]);
      expect(m.check()).toEqual([]);
      // ... and catch a change.
      m.mm.write(a + 4 * PAGE_SIZE, new Uint8Array([1]));
      const diff = compareContents(m.mm, snap);
      expect(diff.map((d) => [d.rule, d.addr])).toEqual([["content_changed", a + 4 * PAGE_SIZE]]);
      // The child's view differs from the parent's snapshot only where it wrote.
      expect(compareContents(child, snap).map((d) => d.addr)).toEqual([a]);
    }
  });

  it("catch a byte change that kept the tag (bytes mode)", () => {
    const m = createTestMachine({ ramBytes: 4 * 1024 * 1024 });
    const a = m.mmapAnon(PAGE_SIZE);
    m.mm.write(a, new Uint8Array([1, 2, 3]));
    const snap = snapshotContents(m.mm, a, a + PAGE_SIZE);
    const pfn = ptePfn(m.mm.pgtable.pteGet(a));
    m.kernel.pageBytes.write(pfn, 1, new Uint8Array([7]), m.kernel.store.tag(pfn));
    expect(compareContents(m.mm, snap)[0]!.message).toMatch(/byte 1 was 2, now 7/);
  });
});
