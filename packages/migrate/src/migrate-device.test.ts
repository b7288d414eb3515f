import {
  EINVAL,
  InvalidArgumentError,
  KernelRuleError,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  MEMORY_DEVICE_COHERENT,
  MEMORY_DEVICE_FS_DAX,
  MEMORY_DEVICE_GENERIC,
  MEMORY_DEVICE_PCI_P2PDMA,
  MM_ANONPAGES,
  PAGE_SIZE,
  PMD_SIZE,
  PG_anon_exclusive,
  PG_locked,
  PROT_READ,
  PROT_WRITE,
  allocPages,
  folioTestLocked,
  folioUnlock,
  getPage,
  isDevicePrivateEntry,
  isMigrationEntry,
  isWritableDevicePrivateEntry,
  pgmapRecord,
  pmdTransHuge,
  pteKind,
  ptePfn,
  ptePresent,
  pteWrite,
  putPage,
  registerPgmap,
  zoneDevicePageInit,
  type DevPagemap,
  type Mm,
  PG_lru,
} from "@hmmsim/core";
import { assertInvariants } from "@hmmsim/testing";
import { afterEach, describe, expect, it } from "vitest";
import {
  migrateDeviceFinalize,
  migrateDevicePages,
  migrateDevicePfns,
  migrateDeviceRange,
  migrateVmaFinalize,
  migrateVmaPages,
  migrateVmaSetup,
} from "./migrate-device.js";
import {
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_VALID,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_DEVICE_COHERENT,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM,
  migratePfn,
  migratePfnToPage,
  migrateVmaInit,
  mpfnClear,
  mpfnSet,
  type MigrateVma,
} from "./migrate-pfn.js";
import { GUP_PIN_COUNTING_BIAS } from "./rmap.js";
import { TestDevice } from "./testing/test-driver.js";
import { assertTrackedInvariants, locked, pattern, recordNotifier, setup } from "./testing/test-helpers.js";

// Every test ends with the kernel invariants checked on every kernel it created (setup() tracks them).
afterEach(assertTrackedInvariants);

const P = PAGE_SIZE;

describe("migrate_pfn words (include/linux/migrate.h)", () => {
  it("encodes pfn << 6 | flags exactly, above 2^31 too", () => {
    expect(MIGRATE_PFN_VALID).toBe(1);
    expect(MIGRATE_PFN_MIGRATE).toBe(2);
    expect(MIGRATE_PFN_WRITE).toBe(8);
    const pfn = 2 ** 31 + 5;
    const m = migratePfn(pfn);
    expect(m).toBe(pfn * 64 + 1);
    const w = mpfnSet(mpfnSet(m, MIGRATE_PFN_MIGRATE), MIGRATE_PFN_WRITE);
    expect(migratePfnToPage(w)).toBe(pfn);
    expect(w & 63).toBe(1 | 2 | 8);
    expect(mpfnClear(w, MIGRATE_PFN_MIGRATE) & 63).toBe(1 | 8);
    expect(migratePfnToPage(mpfnClear(w, MIGRATE_PFN_VALID))).toBe(-1);
    expect(migratePfnToPage(MIGRATE_PFN_MIGRATE)).toBe(-1);
  });
});

describe("migrate_vma_setup validation (mm/migrate_device.c)", () => {
  it("returns -EINVAL for each rule, leaving src untouched", () => {
    const { k, mm, a, n } = setup();
    const dev = new TestDevice(k, 8);
    const src = new Float64Array(n).fill(7);
    const dst = new Float64Array(n);
    const vma = mm.vmaLookup(a)!;
    const base = { vma, start: a, end: a + 4 * P, src, dst, pgmapOwner: dev.owner, flags: MIGRATE_VMA_SELECT_SYSTEM } as const;
    const run = (over: Partial<Parameters<typeof migrateVmaInit>[0]>) => locked(mm, () => migrateVmaSetup(migrateVmaInit({ ...base, ...over })));
    expect(run({ vma: null })).toBe(-EINVAL);
    expect(run({ end: a })).toBe(-EINVAL); // nr_pages == 0
    expect(run({ start: a + 2 * P, end: a + P })).toBe(-EINVAL); // nr_pages < 0
    expect(run({ start: a + 100, end: a + P + 50 })).toBe(-EINVAL); // (end - start) >> 12 == 0
    expect(run({ start: a - P, end: a + P })).toBe(-EINVAL); // start before vm_start
    expect(run({ start: a + n * P, end: a + (n + 1) * P })).toBe(-EINVAL); // start >= vm_end
    expect(run({ end: a + (n + 1) * P })).toBe(-EINVAL); // end > vm_end
    expect(run({ src: null })).toBe(-EINVAL);
    expect(run({ dst: null })).toBe(-EINVAL);
    expect(run({ faultPage: 3 })).toBe(-EINVAL); // not device private
    const dp = dev.allocDevicePage();
    k.store.clear(dp, PG_locked);
    expect(run({ faultPage: dp })).toBe(-EINVAL); // not locked
    putPage(k, dp); // the driver frees its page again
    expect(dev.freed).toEqual([dp]);
    expect(Array.from(src)).toEqual(new Array(n).fill(7));
    // VM_SPECIAL and hugetlb VMAs
    const vmSpecial = { ...vma, vmFlags: vma.vmFlags | 0x10000000 };
    expect(run({ vma: vmSpecial })).toBe(-EINVAL);
    const hugetlb = { ...vma, vmFlags: vma.vmFlags | 0x400000 };
    expect(run({ vma: hugetlb })).toBe(-EINVAL);
    // valid: masks start/end to pages, returns 0 with nothing collectable in a read-only-touched range
    const args = migrateVmaInit({ ...base, start: a + 10, end: a + 2 * P + 10 });
    expect(locked(mm, () => migrateVmaSetup(args))).toBe(0);
    expect(args.start).toBe(a);
    expect(args.end).toBe(a + 2 * P);
    expect(args.npages).toBe(2);
  });

  it("bad argument types throw InvalidArgumentError; no mmap lock throws KernelRuleError", () => {
    const { k, mm, a } = setup();
    const dev = new TestDevice(k, 4);
    const vma = mm.vmaLookup(a)!;
    const mk = (src: Float64Array) => migrateVmaInit({ vma, start: a, end: a + 4 * P, src, dst: new Float64Array(4), pgmapOwner: dev.owner, flags: MIGRATE_VMA_SELECT_SYSTEM });
    expect(() => locked(mm, () => migrateVmaSetup(mk(new Float64Array(2))))).toThrow(InvalidArgumentError);
    expect(() => locked(mm, () => migrateVmaSetup({ ...mk(new Float64Array(4)), flags: 1 << 9 }))).toThrow(/flags/);
    expect(() => locked(mm, () => migrateVmaSetup({ ...mk(new Float64Array(4)), start: -1 }))).toThrow(/start/);
    expect(() => migrateVmaSetup(mk(new Float64Array(4)))).toThrow(KernelRuleError);
  });
});

describe("migration to device-private memory and back", () => {
  it("RAM → device: device-private entries, old pages freed, rss/memcg unchanged, MIGRATE notifier with owner", () => {
    const { k, mm, a, n } = setup();
    const dev = new TestDevice(k, 32);
    for (let i = 0; i < n; i++) mm.write(a + i * P, pattern(i));
    const freeBefore = k.allocator.nrFree;
    const rss = mm.counter(MM_ANONPAGES);
    const usage = mm.memcg.usage;
    const log = recordNotifier(mm);
    const { ret, args } = dev.migrateToDevice(mm, a, a + n * P);
    expect(ret).toBe(0);
    expect(args.cpages).toBe(n);
    expect(args.npages).toBe(n);
    expect(log).toEqual([{ event: "MMU_NOTIFY_MIGRATE", start: a, end: a + n * P, owner: dev.owner, mm: mm.id }]);
    for (let i = 0; i < n; i++) {
      expect(args.src![i]! & (MIGRATE_PFN_MIGRATE | MIGRATE_PFN_WRITE)).toBe(MIGRATE_PFN_MIGRATE | MIGRATE_PFN_WRITE);
      const pte = mm.pgtable.pteGet(a + i * P);
      expect(isWritableDevicePrivateEntry(pte)).toBe(true);
      const dp = ptePfn(pte);
      expect(dp - dev.startPfn).toBeGreaterThanOrEqual(0);
      expect(k.store.refcount(dp)).toBe(1);
      expect(k.store.mapcount(dp)).toBe(1);
      expect(folioTestLocked(k, dp)).toBe(false);
      expect(k.pageBytes.snapshot(dp)).toEqual(pattern(i));
    }
    expect(k.allocator.nrFree).toBe(freeBefore + n);
    expect(mm.counter(MM_ANONPAGES)).toBe(rss);
    expect(mm.memcg.usage).toBe(usage);
  });

  it("a CPU read faults the page back through migrate_to_ram; bytes, rss, memcg and refcounts intact", () => {
    const { k, mm, a, n } = setup();
    const dev = new TestDevice(k, 32);
    for (let i = 0; i < n; i++) mm.write(a + i * P, pattern(100 + i));
    const freeBefore = k.allocator.nrFree;
    dev.migrateToDevice(mm, a, a + n * P);
    const log = recordNotifier(mm);
    const dp = ptePfn(mm.pgtable.pteGet(a + 3 * P));
    expect(mm.read(a + 3 * P, P)).toEqual(pattern(103));
    expect(dev.faults).toBe(1);
    // dmirror_devmem_fault: setup over the faulting page only, MIGRATE with its own owner
    expect(log).toEqual([{ event: "MMU_NOTIFY_MIGRATE", start: a + 3 * P, end: a + 4 * P, owner: dev.owner, mm: mm.id }]);
    const pte = mm.pgtable.pteGet(a + 3 * P);
    expect(ptePresent(pte) && pteWrite(pte)).toBe(true);
    const sp = ptePfn(pte);
    expect(k.store.refcount(sp)).toBe(1);
    expect(k.store.mapcount(sp)).toBe(1);
    expect(dev.freed).toEqual([dp]);
    expect(k.store.refcount(dp)).toBe(0);
    expect(mm.counter(MM_ANONPAGES)).toBe(n);
    expect(mm.memcg.usage).toBe(n);
    // a write to another device page faults it back too, and the write lands
    mm.write(a + 5 * P + 7, new Uint8Array([1, 2, 3]));
    expect(dev.faults).toBe(2);
    const want = pattern(105);
    want.set([1, 2, 3], 7);
    expect(mm.read(a + 5 * P, P)).toEqual(want);
    // everything back: explicit migration to system with SELECT_DEVICE_PRIVATE
    const { args } = dev.migrateToSystem(mm, a, a + n * P);
    expect(args.cpages).toBe(n - 2);
    for (let i = 0; i < n; i++) if (i !== 5) expect(mm.read(a + i * P, P)).toEqual(pattern(100 + i));
    expect(dev.free.length).toBe(32);
    expect(k.allocator.nrFree).toBe(freeBefore);
    expect(mm.counter(MM_ANONPAGES)).toBe(n);
    expect(mm.memcg.usage).toBe(n);
    expect(dev.faults).toBe(2);
  });

  it("bytes-off mode carries the content tags through RAM → device → RAM", () => {
    const { k, mm, a, n } = setup({ bytes: false });
    const dev = new TestDevice(k, 32);
    const tags: number[] = [];
    for (let i = 0; i < n; i++) {
      mm.touch(a + i * P, true, 1000 + i);
      tags.push(1000 + i);
    }
    dev.migrateToDevice(mm, a, a + n * P);
    for (let i = 0; i < n; i++) expect(k.store.tag(ptePfn(mm.pgtable.pteGet(a + i * P)))).toBe(tags[i]);
    for (let i = 0; i < n; i++) expect(mm.readTag(a + i * P)).toBe(tags[i]);
    expect(dev.faults).toBe(n);
  });
});

describe("collection rules", () => {
  it("holes, zero pages and COW-shared pages: holes get new device pages, shared pages move in both mms", () => {
    const { k, mm, a } = setup({ pages: 8 });
    const dev = new TestDevice(k, 32);
    mm.write(a, pattern(1)); // 0: exclusive anon page
    mm.read(a + P, 1); // 1: zero page
    // 2: hole (never touched)
    mm.write(a + 3 * P, pattern(3)); // 3: will be shared after fork
    const shared = ptePfn(mm.pgtable.pteGet(a + 3 * P));
    const child = mm.fork();
    expect(k.store.mapcount(shared)).toBe(2);
    mm.write(a, pattern(11)); // page 0: the parent COWs it back to an exclusive page
    const parentLog = recordNotifier(mm);
    const childLog = recordNotifier(child);
    const rssP = mm.counter(MM_ANONPAGES);
    const rssC = child.counter(MM_ANONPAGES);
    const usage = mm.memcg.usage;
    const { args } = dev.migrateToDevice(mm, a, a + 4 * P);
    expect(args.cpages).toBe(4);
    expect(args.src![1]).toBe(MIGRATE_PFN_MIGRATE); // zero page: no pfn
    expect(args.src![2]).toBe(MIGRATE_PFN_MIGRATE); // hole: no pfn, inserted
    expect(args.src![3]! & MIGRATE_PFN_WRITE).toBe(0); // the shared PTE was read-only
    // the parent: MIGRATE over the range (collect), CLEAR for the shared page while try_to_migrate walks the
    // anon_vma (the parent's VMA is visited first), then MIGRATE from the first hole to the end (pages)
    expect(parentLog).toEqual([
      { event: "MMU_NOTIFY_MIGRATE", start: a, end: a + 4 * P, owner: dev.owner, mm: mm.id },
      { event: "MMU_NOTIFY_CLEAR", start: a + 3 * P, end: a + 4 * P, owner: null, mm: mm.id },
      { event: "MMU_NOTIFY_MIGRATE", start: a + P, end: a + 4 * P, owner: dev.owner, mm: mm.id },
    ]);
    // the child: try_to_migrate replaced its mapping of the shared page with a migration entry
    expect(childLog).toEqual([{ event: "MMU_NOTIFY_CLEAR", start: a + 3 * P, end: a + 4 * P, owner: null, mm: child.id }]);
    // holes and zero page: writable device-private entries, anon rss and memcg charged
    for (const i of [1, 2]) {
      const e = mm.pgtable.pteGet(a + i * P);
      expect(isWritableDevicePrivateEntry(e)).toBe(true);
      expect(k.store.mapcount(ptePfn(e))).toBe(1);
    }
    expect(mm.counter(MM_ANONPAGES)).toBe(rssP + 2);
    expect(mm.memcg.usage).toBe(usage + 2);
    // the shared page: read-only device-private entries in both mms, one device page mapped twice
    const pe = mm.pgtable.pteGet(a + 3 * P);
    const ce = child.pgtable.pteGet(a + 3 * P);
    expect(pteKind(pe)).toBe("device-private-read");
    expect(ce).toBe(pe);
    const dp = ptePfn(pe);
    expect(k.store.mapcount(dp)).toBe(2);
    expect(k.store.refcount(dp)).toBe(2);
    expect(k.store.refcount(shared)).toBe(0); // the system page was freed
    expect(child.counter(MM_ANONPAGES)).toBe(rssC);
    // reading in the child faults it back to RAM for both mms (try_to_migrate on the parent's entry)
    expect(child.read(a + 3 * P, P)).toEqual(pattern(3));
    const np = ptePfn(child.pgtable.pteGet(a + 3 * P));
    expect(ptePfn(mm.pgtable.pteGet(a + 3 * P))).toBe(np);
    expect(pteWrite(mm.pgtable.pteGet(a + 3 * P))).toBe(false);
    expect(k.store.mapcount(np)).toBe(2);
    expect(dev.freed).toContain(dp);
    // then a write in the parent COWs; the child keeps the old bytes
    mm.write(a + 3 * P, pattern(33));
    expect(child.read(a + 3 * P, P)).toEqual(pattern(3));
    expect(mm.read(a + 3 * P, P)).toEqual(pattern(33));
    expect(mm.read(a + P, P)).toEqual(new Uint8Array(P));
    expect(mm.read(a, P)).toEqual(pattern(11));
  });

  it("a non-anonymous VMA: holes are skipped, page-cache pages collected but refused by migrate_vma_pages", () => {
    const { k, mm } = setup();
    const dev = new TestDevice(k, 8);
    const s = mm.mmap({ length: 4 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_SHARED | MAP_ANONYMOUS });
    mm.write(s, pattern(5));
    const pfn = ptePfn(mm.pgtable.pteGet(s));
    const ref = k.store.refcount(pfn);
    const { args } = dev.migrateToDevice(mm, s, s + 4 * P);
    expect(args.src![1]).toBe(0); // hole in shmem: skipped
    expect(args.src![0]! & MIGRATE_PFN_MIGRATE).toBe(0); // refused at migrate_vma_pages (has a mapping)
    expect(ptePfn(mm.pgtable.pteGet(s))).toBe(pfn);
    expect(k.store.refcount(pfn)).toBe(ref);
    expect(folioTestLocked(k, pfn)).toBe(false);
    expect(dev.free.length).toBe(8);
    expect(mm.read(s, P)).toEqual(pattern(5));
  });

  it("a pinned page does not migrate: extra ref (FOLL_GET) fails the ref check; FOLL_PIN fails the anon share", () => {
    const { k, mm, a } = setup();
    const dev = new TestDevice(k, 8);
    mm.write(a, pattern(1));
    mm.write(a + P, pattern(2));
    mm.write(a + 2 * P, pattern(3));
    const p0 = ptePfn(mm.pgtable.pteGet(a));
    const p1 = ptePfn(mm.pgtable.pteGet(a + P));
    const pte0 = mm.pgtable.pteGet(a);
    const pte1 = mm.pgtable.pteGet(a + P);
    getPage(k, p0); // get_user_pages(FOLL_GET)
    k.store.refAdd(p1, GUP_PIN_COUNTING_BIAS); // pin_user_pages(FOLL_PIN)
    const { args } = dev.migrateToDevice(mm, a, a + 3 * P);
    expect(args.src![0]).toBe(0);
    expect(args.src![1]).toBe(0);
    expect(args.src![2]! & MIGRATE_PFN_MIGRATE).toBe(MIGRATE_PFN_MIGRATE);
    expect(args.cpages).toBe(1);
    expect(mm.pgtable.pteGet(a)).toBe(pte0); // restored exactly (writable, young, dirty)
    expect(mm.pgtable.pteGet(a + P)).toBe(pte1); // never touched
    expect(k.store.refcount(p0)).toBe(2);
    expect(k.store.refcount(p1)).toBe(1 + GUP_PIN_COUNTING_BIAS);
    expect(k.store.mapcount(p0)).toBe(1);
    expect(folioTestLocked(k, p0) || folioTestLocked(k, p1)).toBe(false);
    // p0 was isolated, then refused by migrate_vma_check_page: folio_putback_lru put it back on the LRU
    expect(k.store.test(p0, PG_lru) && k.store.test(p1, PG_lru)).toBe(true);
    expect(isDevicePrivateEntry(mm.pgtable.pteGet(a + 2 * P))).toBe(true);
    putPage(k, p0);
    k.store.refAdd(p1, -GUP_PIN_COUNTING_BIAS);
    // unpinned, they migrate
    expect(dev.migrateToDevice(mm, a, a + 2 * P).args.cpages).toBe(2);
    expect(mm.read(a, P)).toEqual(pattern(1));
  });

  it("device-private pages of another owner, or without SELECT_DEVICE_PRIVATE, are skipped", () => {
    const { k, mm, a } = setup();
    const devA = new TestDevice(k, 8, undefined, "A");
    const devB = new TestDevice(k, 8, undefined, "B");
    mm.write(a, pattern(1));
    devA.migrateToDevice(mm, a, a + P);
    const e = mm.pgtable.pteGet(a);
    // B, explicit back-migration with its own owner: not its page
    expect(devB.migrateToSystem(mm, a, a + P).args.src![0]).toBe(0);
    // B, SELECT_SYSTEM: a device-private entry is not system memory
    expect(devB.migrateToDevice(mm, a, a + P).args.src![0]).toBe(0);
    expect(mm.pgtable.pteGet(a)).toBe(e);
    expect(devB.free.length).toBe(8);
    // A sees it
    expect(devA.migrateToSystem(mm, a, a + P).args.cpages).toBe(1);
    expect(mm.read(a, P)).toEqual(pattern(1));
  });

  it("coherent pages: present PTEs, CPU access in place, explicit SELECT_DEVICE_COHERENT back; other owners skip", () => {
    const { k, mm, a, n } = setup();
    const dev = new TestDevice(k, 32, MEMORY_DEVICE_COHERENT, "coherent");
    const other = new TestDevice(k, 32, MEMORY_DEVICE_COHERENT, "other");
    for (let i = 0; i < n; i++) mm.write(a + i * P, pattern(200 + i));
    const rss = mm.counter(MM_ANONPAGES);
    dev.migrateToDevice(mm, a, a + n * P);
    for (let i = 0; i < n; i++) {
      const e = mm.pgtable.pteGet(a + i * P);
      expect(ptePresent(e) && pteWrite(e)).toBe(true);
      expect(ptePfn(e) - dev.startPfn).toBeGreaterThanOrEqual(0);
    }
    expect(mm.read(a + 2 * P, P)).toEqual(pattern(202)); // no fault: coherent memory is CPU-addressable
    mm.write(a + 4 * P, pattern(999));
    expect(other.migrateToSystem(mm, a, a + n * P).args.cpages).toBe(0);
    // SELECT_SYSTEM does not pick coherent pages of any owner without SELECT_DEVICE_COHERENT + owner
    expect(other.migrateToDevice(mm, a, a + n * P).args.cpages).toBe(0);
    const { args } = dev.migrateToSystem(mm, a, a + n * P);
    expect(args.cpages).toBe(n);
    for (let i = 0; i < n; i++) {
      const e = mm.pgtable.pteGet(a + i * P);
      expect(ptePfn(e)).toBeLessThan(k.nrRamPages);
      expect(mm.read(a + i * P, P)).toEqual(i === 4 ? pattern(999) : pattern(200 + i));
    }
    expect(dev.free.length).toBe(32);
    expect(mm.counter(MM_ANONPAGES)).toBe(rss);
    expect(mm.memcg.usage).toBe(n);
  });
});

describe("failures inside the migration restore every page", () => {
  it("the driver declines some dst: those keep their exact PTE, bytes and refcount", () => {
    const { k, mm, a, n } = setup();
    const dev = new TestDevice(k, 32);
    for (let i = 0; i < n; i++) mm.write(a + i * P, pattern(i));
    const before = Array.from({ length: n }, (_, i) => mm.pgtable.pteGet(a + i * P));
    const { args } = dev.migrateToDevice(mm, a, a + n * P, { decline: (i) => i % 3 === 0 });
    for (let i = 0; i < n; i++) {
      const e = mm.pgtable.pteGet(a + i * P);
      if (i % 3 === 0) {
        expect(args.src![i]! & MIGRATE_PFN_MIGRATE).toBe(0);
        expect(e).toBe(before[i]);
        expect(k.store.refcount(ptePfn(e))).toBe(1);
        expect(folioTestLocked(k, ptePfn(e))).toBe(false);
      } else {
        expect(isDevicePrivateEntry(e)).toBe(true);
      }
      expect(mm.read(a + i * P, P)).toEqual(pattern(i));
    }
  });

  it("declining everything leaves the address space exactly as it was", () => {
    const { k, mm, a, n } = setup();
    const dev = new TestDevice(k, 32);
    for (let i = 0; i < n; i += 2) mm.write(a + i * P, pattern(i));
    mm.read(a + P, 1);
    const before = Array.from({ length: n }, (_, i) => mm.pgtable.pteGet(a + i * P));
    const refs = before.map((e) => (ptePresent(e) ? k.store.refcount(ptePfn(e)) : -1));
    const free = k.allocator.nrFree;
    const { args } = dev.migrateToDevice(mm, a, a + n * P, { decline: () => true });
    expect(Array.from((args.src as Float64Array).subarray(0, n)).every((m) => (m & MIGRATE_PFN_MIGRATE) === 0)).toBe(true);
    expect(Array.from({ length: n }, (_, i) => mm.pgtable.pteGet(a + i * P))).toEqual(before);
    expect(before.map((e) => (ptePresent(e) ? k.store.refcount(ptePfn(e)) : -1))).toEqual(refs);
    expect(k.allocator.nrFree).toBe(free);
    expect(mm.counter(MM_ANONPAGES)).toBe(n / 2);
  });

  it("a page pinned between setup and pages fails folio_migrate_mapping; its dst is freed back to the driver", () => {
    const { k, mm, a } = setup();
    const dev = new TestDevice(k, 8);
    for (let i = 0; i < 4; i++) mm.write(a + i * P, pattern(i));
    const p2 = ptePfn(mm.pgtable.pteGet(a + 2 * P));
    let dst2 = -1;
    const { args } = dev.migrateToDevice(mm, a, a + 4 * P, {
      beforePages: (m) => {
        expect(isMigrationEntry(mm.pgtable.pteGet(a + 2 * P))).toBe(true);
        dst2 = migratePfnToPage(m.dst![2]!);
        getPage(k, p2); // a GUP reference appears while the page is unmapped
      },
    });
    expect(args.src![2]! & MIGRATE_PFN_MIGRATE).toBe(0);
    expect(args.src![1]! & MIGRATE_PFN_MIGRATE).toBe(MIGRATE_PFN_MIGRATE);
    expect(ptePfn(mm.pgtable.pteGet(a + 2 * P))).toBe(p2);
    expect(pteWrite(mm.pgtable.pteGet(a + 2 * P))).toBe(true);
    expect(k.store.refcount(p2)).toBe(2);
    expect(dev.freed).toEqual([dst2]);
    expect(k.store.refcount(dst2)).toBe(0);
    putPage(k, p2);
    expect(mm.read(a + 2 * P, P)).toEqual(pattern(2));
    expect(mm.read(a + 1 * P, P)).toEqual(pattern(1));
  });
});

/**
 * A one-entry-per-page migration of [a, a + n pages) to `dev` driven step by step: setup, then `between` (a racing
 * CPU access, ...), then a locked device page per MIGRATE entry (`dstFor` may supply another page), pages, finalize.
 * Returns the MigrateVma after migrate_vma_pages (src flags as the driver sees them) and the dst pages given.
 */
function migrateSteps(
  mm: Mm,
  dev: TestDevice,
  a: number,
  n: number,
  hooks: { between?: () => void; dstFor?: (i: number) => number } = {},
): { args: MigrateVma; afterPages: number[]; dsts: number[] } {
  const k = dev.k;
  const src = new Float64Array(n);
  const dst = new Float64Array(n);
  const args = migrateVmaInit({ vma: mm.vmaLookup(a), start: a, end: a + n * P, src, dst, pgmapOwner: dev.owner, flags: MIGRATE_VMA_SELECT_SYSTEM });
  const dsts: number[] = [];
  let afterPages: number[] = [];
  locked(mm, () => expect(migrateVmaSetup(args)).toBe(0));
  hooks.between?.();
  locked(mm, () => {
    for (let i = 0; i < n; i++) {
      if ((src[i]! & MIGRATE_PFN_MIGRATE) === 0) continue;
      const d = hooks.dstFor?.(i) ?? dev.allocDevicePage();
      const sp = migratePfnToPage(src[i]!);
      if (sp >= 0) k.pageBytes.copy(d, sp);
      else k.pageBytes.clear(d);
      dst[i] = migratePfn(d) + (src[i]! & MIGRATE_PFN_WRITE);
      dsts.push(d);
    }
    migrateVmaPages(args);
    afterPages = Array.from(src);
    migrateVmaFinalize(args);
  });
  return { args, afterPages, dsts };
}

describe("migrate_vma_pages refusals (mm/migrate_device.c __migrate_device_pages, migrate_vma_insert_page)", () => {
  it("a hole a CPU write fault populated after setup: the insert aborts (PTE no longer none), MIGRATE cleared, the CPU's page kept", () => {
    const { k, mm, a } = setup();
    const dev = new TestDevice(k, 8);
    mm.write(a, pattern(1));
    const usage = mm.memcg.usage;
    const log = recordNotifier(mm);
    let raced = -1;
    const { afterPages, dsts } = migrateSteps(mm, dev, a, 3, {
      between: () => {
        // pages 1 and 2 were holes at setup (src = MIGRATE, no pfn); a CPU write fault fills page 1 now
        expect(mm.pgtable.pteGet(a + P)).toBe(0);
        mm.write(a + P, pattern(2));
        raced = ptePfn(mm.pgtable.pteGet(a + P));
      },
    });
    // migrate_vma_insert_page: orig_pte is present and not the zero pfn → unlock_abort → *src &= ~MIGRATE
    expect(afterPages[1]).toBe(0);
    expect(afterPages[2]).toBe(MIGRATE_PFN_MIGRATE); // the other hole was filled with a device page
    expect(afterPages[0]! & MIGRATE_PFN_MIGRATE).toBe(MIGRATE_PFN_MIGRATE);
    const e1 = mm.pgtable.pteGet(a + P);
    expect(ptePresent(e1) && pteWrite(e1) && ptePfn(e1) === raced).toBe(true);
    expect(k.store.refcount(raced)).toBe(1);
    expect(k.store.mapcount(raced)).toBe(1);
    expect(mm.read(a + P, P)).toEqual(pattern(2));
    // finalize put the refused dst (a hole entry: unlock + put), back to the driver through folio_free
    expect(dev.freed).toEqual([dsts[1]]);
    expect(isWritableDevicePrivateEntry(mm.pgtable.pteGet(a + 2 * P))).toBe(true);
    expect(mm.counter(MM_ANONPAGES)).toBe(3);
    expect(mm.memcg.usage).toBe(usage + 2); // the racing fault's page and the inserted device page
    // MIGRATE from the first hole to the end, sent once, before the first insert
    expect(log.filter((x) => x.event === "MMU_NOTIFY_MIGRATE").map((x) => [x.start, x.end])).toEqual([
      [a, a + 3 * P],
      [a + P, a + 3 * P],
    ]);
  });

  it("a hole a CPU read fault filled with the zero page after setup is still inserted (is_zero_pfn: the zero page is replaced)", () => {
    const { k, mm, a } = setup();
    const dev = new TestDevice(k, 8);
    const { afterPages } = migrateSteps(mm, dev, a, 1, { between: () => void mm.read(a, 1) });
    expect(afterPages[0]).toBe(MIGRATE_PFN_MIGRATE);
    expect(isWritableDevicePrivateEntry(mm.pgtable.pteGet(a))).toBe(true);
    expect(mm.counter(MM_ANONPAGES)).toBe(1);
  });

  it("a hole under which a THP fault mapped a huge PMD after setup: the insert aborts (pmd_trans_huge, not the huge zero page)", () => {
    const { k, mm } = setup({ thp: "always", pages: 1 });
    const dev = new TestDevice(k, 8);
    const m = mm.mmap({ length: 2 * PMD_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const h = Math.ceil(m / PMD_SIZE) * PMD_SIZE;
    let thp = -1;
    const { afterPages, dsts } = migrateSteps(mm, dev, h, 2, {
      between: () => {
        mm.write(h + 300 * P, pattern(3)); // fills the whole 2 MiB with one THP
        thp = ptePfn(mm.pgtable.pmdGet(h));
      },
    });
    expect(afterPages).toEqual([0, 0]);
    expect(pmdTransHuge(mm.pgtable.pmdGet(h)) && ptePfn(mm.pgtable.pmdGet(h)) === thp).toBe(true);
    expect(dev.freed.sort()).toEqual([...dsts].sort());
    expect(mm.read(h + 300 * P, P)).toEqual(pattern(3));
  });

  it("memcg charge failure for a hole's new page: MIGRATE cleared, the hole stays empty, usage and rss unchanged; page moves still succeed", () => {
    const { k } = setup();
    const dev = new TestDevice(k, 8);
    // An mm whose memcg is full: 2 pages written, limit 2.
    const memcg = k.memcgs.create("full", 2);
    const mm = k.createMm({ memcg });
    const a = mm.mmap({ length: 4 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.write(a, pattern(1));
    mm.write(a + 2 * P, pattern(3));
    expect(memcg.usage).toBe(2);
    const failcnt = memcg.failcnt;
    const { afterPages, dsts } = migrateSteps(mm, dev, a, 4);
    // Page moves transfer the charge (folio_migrate_flags → mem_cgroup_migrate): they need no room.
    expect(afterPages[0]! & MIGRATE_PFN_MIGRATE).toBe(MIGRATE_PFN_MIGRATE);
    expect(afterPages[2]! & MIGRATE_PFN_MIGRATE).toBe(MIGRATE_PFN_MIGRATE);
    // Holes: migrate_vma_insert_page's mem_cgroup_charge fails → goto abort.
    expect(afterPages[1]).toBe(0);
    expect(afterPages[3]).toBe(0);
    expect(memcg.failcnt).toBe(failcnt + 2);
    expect(mm.pgtable.pteGet(a + P)).toBe(0);
    expect(mm.pgtable.pteGet(a + 3 * P)).toBe(0);
    expect(memcg.usage).toBe(2);
    expect(mm.counter(MM_ANONPAGES)).toBe(2);
    expect(dev.freed.sort()).toEqual([dsts[1], dsts[3]].sort());
    expect(isWritableDevicePrivateEntry(mm.pgtable.pteGet(a))).toBe(true);
    expect(mm.read(a + 2 * P, P)).toEqual(pattern(3)); // faults it back: the charge moves back too
    expect(memcg.usage).toBe(2);
  });

  for (const [name, type] of [
    ["MEMORY_DEVICE_FS_DAX", MEMORY_DEVICE_FS_DAX],
    ["MEMORY_DEVICE_GENERIC", MEMORY_DEVICE_GENERIC],
    ["MEMORY_DEVICE_PCI_P2PDMA", MEMORY_DEVICE_PCI_P2PDMA],
  ] as const) {
    it(`a ${name} dst page is refused for a page and for a hole: MIGRATE cleared, the source intact, the dst unlocked and put`, () => {
      const { k, mm, a } = setup();
      const dev = new TestDevice(k, 8);
      // ZONE_DEVICE memory that is neither device-private nor device-coherent.
      const pgmap: DevPagemap = { type, range: { start: 0, end: -1 }, owner: { name }, ops: { pageFree: () => undefined } };
      const other = registerPgmap(k, pgmap, 4).startPfn;
      mm.write(a, pattern(1));
      const before = mm.pgtable.pteGet(a);
      const usage = mm.memcg.usage;
      const { afterPages } = migrateSteps(mm, dev, a, 2, {
        dstFor: (i) => {
          zoneDevicePageInit(k, other + i); // refcount 1, locked
          return other + i;
        },
      });
      // page: __migrate_device_pages "Other types of ZONE_DEVICE page are not supported"; hole:
      // migrate_vma_insert_page "Unsupported ZONE_DEVICE page type" → abort
      expect(afterPages[0]! & MIGRATE_PFN_MIGRATE).toBe(0);
      expect(migratePfnToPage(afterPages[0]!)).toBe(ptePfn(before));
      expect(afterPages[1]).toBe(0);
      expect(mm.pgtable.pteGet(a)).toBe(before); // restored exactly (finalize: remove_migration_ptes(src, src))
      expect(mm.pgtable.pteGet(a + P)).toBe(0);
      expect(k.store.refcount(ptePfn(before))).toBe(1);
      expect(folioTestLocked(k, ptePfn(before))).toBe(false);
      // finalize unlocked and put both dst pages; core's free_zone_device_folio leaves these types at refcount 0
      // with their owner (the kernel's resets a GENERIC folio to refcount 1 and calls P2PDMA's page_free).
      for (const d of [other, other + 1]) {
        expect(k.store.refcount(d)).toBe(0);
        expect(k.store.mapcount(d)).toBe(0);
        expect(folioTestLocked(k, d)).toBe(false);
      }
      expect(pgmapRecord(k, pgmap)!.refs).toBe(0);
      expect(mm.memcg.usage).toBe(usage);
      expect(mm.counter(MM_ANONPAGES)).toBe(1);
      expect(mm.read(a, P)).toEqual(pattern(1));
      expect(dev.free.length).toBe(8);
    });
  }
});

describe("kernel rules (typed KernelRuleError, state unchanged)", () => {
  it("migrate_vma_pages without setup, finalize without setup, pages twice, setup before finalize", () => {
    const { k, mm, a } = setup();
    const dev = new TestDevice(k, 8);
    mm.write(a, pattern(1));
    const vma = mm.vmaLookup(a)!;
    const args = migrateVmaInit({ vma, start: a, end: a + P, src: [0], dst: [0], pgmapOwner: dev.owner, flags: MIGRATE_VMA_SELECT_SYSTEM });
    expect(() => locked(mm, () => migrateVmaPages(args))).toThrow(/migrate_vma_pages_without_setup/);
    expect(() => migrateVmaFinalize(args)).toThrow(/migrate_vma_finalize_without_setup/);
    locked(mm, () => {
      expect(migrateVmaSetup(args)).toBe(0);
      expect(() => migrateVmaSetup(args)).toThrow(/migrate_vma_setup_before_finalize/);
      migrateVmaPages(args);
      expect(() => migrateVmaPages(args)).toThrow(/migrate_vma_pages_called_twice/);
      migrateVmaFinalize(args);
    });
    expect(ptePfn(mm.pgtable.pteGet(a))).toBeLessThan(k.nrRamPages); // no dst: restored
    expect(mm.read(a, P)).toEqual(pattern(1));
  });

  it("finalize straight after setup restores every page (the driver's allocation-error path); a dst page left there throws first", () => {
    const { k, mm, a } = setup();
    const dev = new TestDevice(k, 8);
    mm.write(a, pattern(1));
    mm.write(a + P, pattern(2));
    const vma = mm.vmaLookup(a)!;
    const pfn0 = ptePfn(mm.pgtable.pteGet(a));
    const args = migrateVmaInit({ vma, start: a, end: a + 2 * P, src: [0, 0], dst: [0, 0], pgmapOwner: dev.owner, flags: MIGRATE_VMA_SELECT_SYSTEM });
    locked(mm, () => {
      expect(migrateVmaSetup(args)).toBe(0);
      expect(args.cpages).toBe(2);
      const d = dev.allocDevicePage();
      args.dst![1] = migratePfn(d);
      const before = [mm.pgtable.pteGet(a), mm.pgtable.pteGet(a + P)];
      expect(() => migrateVmaFinalize(args)).toThrow(/migrate_vma_finalize_dst_without_pages.*dst\[1\]/);
      expect([mm.pgtable.pteGet(a), mm.pgtable.pteGet(a + P)]).toEqual(before); // still migration entries
      expect(isMigrationEntry(before[0]!)).toBe(true);
      // The driver frees its page (dmirror: unlock_page + __free_page) and clears the entry, then finalizes.
      args.dst![1] = 0;
      folioUnlock(k, d);
      putPage(k, d);
      migrateVmaFinalize(args);
    });
    expect(ptePfn(mm.pgtable.pteGet(a))).toBe(pfn0);
    expect(mm.read(a, P)).toEqual(pattern(1));
    expect(mm.read(a + P, P)).toEqual(pattern(2));
    expect(dev.freed).toHaveLength(1);
    assertInvariants(k);
  });

  it("a dst page that is not locked → migrate_pages_dst_not_locked, nothing changed; then the driver fixes it", () => {
    const { k, mm, a } = setup();
    const dev = new TestDevice(k, 8);
    mm.write(a, pattern(1));
    const vma = mm.vmaLookup(a)!;
    const args = migrateVmaInit({ vma, start: a, end: a + P, src: [0], dst: [0], pgmapOwner: dev.owner, flags: MIGRATE_VMA_SELECT_SYSTEM });
    locked(mm, () => {
      migrateVmaSetup(args);
      const dp = dev.allocDevicePage();
      k.pageBytes.copy(dp, migratePfnToPage(args.src![0]!));
      k.store.clear(dp, PG_locked);
      args.dst![0] = migratePfn(dp);
      const src0 = args.src![0];
      expect(() => migrateVmaPages(args)).toThrow(/migrate_pages_dst_not_locked/);
      expect(args.src![0]).toBe(src0);
      expect(isMigrationEntry(mm.pgtable.pteGet(a))).toBe(true);
      k.store.set(dp, PG_locked);
      migrateVmaPages(args);
      migrateVmaFinalize(args);
    });
    expect(isDevicePrivateEntry(mm.pgtable.pteGet(a))).toBe(true);
    expect(mm.read(a, P)).toEqual(pattern(1));
  });

  it("a dst that is a free page or a mapped page is refused", () => {
    const { k, mm, a } = setup();
    const dev = new TestDevice(k, 8);
    mm.write(a, pattern(1));
    mm.write(a + P, pattern(2));
    const vma = mm.vmaLookup(a)!;
    const args = migrateVmaInit({ vma, start: a, end: a + P, src: [0], dst: [0], pgmapOwner: dev.owner, flags: MIGRATE_VMA_SELECT_SYSTEM });
    locked(mm, () => {
      migrateVmaSetup(args);
      args.dst![0] = migratePfn(dev.startPfn + 7); // never allocated: refcount 0
      expect(() => migrateVmaPages(args)).toThrow(/migrate_pages_dst_not_allocated/);
      const mapped = ptePfn(mm.pgtable.pteGet(a + P));
      k.store.set(mapped, PG_locked);
      args.dst![0] = migratePfn(mapped);
      expect(() => migrateVmaPages(args)).toThrow(/migrate_pages_dst_in_use/);
      k.store.clear(mapped, PG_locked);
      args.dst![0] = 0;
      migrateVmaPages(args);
      migrateVmaFinalize(args);
    });
    expect(mm.read(a, P)).toEqual(pattern(1));
  });
});

describe("device-side eviction (migrate_device_range)", () => {
  it("evicts every in-use page from every mm that maps it; free pages are skipped", () => {
    const { k, mm, a, n } = setup();
    const dev = new TestDevice(k, 32);
    for (let i = 0; i < n; i++) mm.write(a + i * P, pattern(300 + i));
    dev.migrateToDevice(mm, a, a + n * P);
    const child = mm.fork();
    const logP = recordNotifier(mm);
    const logC = recordNotifier(child);
    const used = Array.from({ length: n }, (_, i) => ptePfn(mm.pgtable.pteGet(a + i * P)));
    const { src } = dev.evict();
    for (let i = 0; i < dev.nrPages; i++) {
      const pfn = dev.startPfn + i;
      expect((src[i]! & MIGRATE_PFN_MIGRATE) !== 0).toBe(used.includes(pfn));
    }
    expect(dev.free.length).toBe(32);
    expect(logP.every((e) => e.event === "MMU_NOTIFY_CLEAR" && e.owner === null)).toBe(true);
    expect(logP.length).toBe(n);
    expect(logC.length).toBe(n);
    for (let i = 0; i < n; i++) {
      const pe = mm.pgtable.pteGet(a + i * P);
      expect(ptePresent(pe) && !pteWrite(pe)).toBe(true); // fork made both read-only
      expect(child.pgtable.pteGet(a + i * P)).toBe(pe);
      expect(k.store.mapcount(ptePfn(pe))).toBe(2);
      expect(mm.read(a + i * P, P)).toEqual(pattern(300 + i));
      expect(child.read(a + i * P, P)).toEqual(pattern(300 + i));
    }
    expect(dev.faults).toBe(0);
    expect(mm.counter(MM_ANONPAGES)).toBe(n);
    expect(child.counter(MM_ANONPAGES)).toBe(n);
  });
});

describe("device-side eviction (migrate_device_pfns)", () => {
  it("takes a pre-populated pfn list; free and locked pages give 0; the rest move back to RAM", () => {
    const { k, mm, a } = setup();
    const dev = new TestDevice(k, 8);
    for (let i = 0; i < 3; i++) mm.write(a + i * P, pattern(40 + i));
    dev.migrateToDevice(mm, a, a + 3 * P);
    const d0 = ptePfn(mm.pgtable.pteGet(a));
    const d1 = ptePfn(mm.pgtable.pteGet(a + P));
    const d2 = ptePfn(mm.pgtable.pteGet(a + 2 * P));
    const freePfn = dev.free[dev.free.length - 1]!;
    k.store.set(d1, PG_locked); // someone else holds d1 locked: trylock fails
    const src = [d2, freePfn, d1, d0];
    const dst = [0, 0, 0, 0];
    expect(migrateDevicePfns(k, src, 4)).toBe(0);
    expect(src[1]).toBe(0);
    expect(src[2]).toBe(0);
    expect(src[0]).toBe(migratePfn(d2) + MIGRATE_PFN_MIGRATE);
    expect(isMigrationEntry(mm.pgtable.pteGet(a + 2 * P))).toBe(true);
    expect(isDevicePrivateEntry(mm.pgtable.pteGet(a + P))).toBe(true);
    for (const i of [0, 3]) {
      const np = allocPages(k, 0);
      k.store.set(np, PG_locked);
      k.pageBytes.copy(np, migratePfnToPage(src[i]!));
      dst[i] = migratePfn(np);
    }
    migrateDevicePages(k, src, dst, 4);
    migrateDeviceFinalize(k, src, dst, 4);
    expect(ptePfn(mm.pgtable.pteGet(a + 2 * P))).toBe(migratePfnToPage(dst[0]!));
    expect(pteWrite(mm.pgtable.pteGet(a + 2 * P))).toBe(true);
    expect(mm.read(a + 2 * P, P)).toEqual(pattern(42));
    expect(mm.read(a, P)).toEqual(pattern(40));
    expect(dev.freed.sort()).toEqual([d0, d2].sort());
    k.store.clear(d1, PG_locked);
    expect(mm.read(a + P, P)).toEqual(pattern(41));
    expect(mm.memcg.usage).toBe(3);
  });
});

describe("fork while pages are under migration (copy_nonpresent_pte)", () => {
  it("a readable-exclusive migration entry becomes readable in both mms: after finalize the write COWs, the child keeps its bytes", () => {
    const { k, mm, a } = setup();
    const dev = new TestDevice(k, 4);
    mm.write(a, pattern(1));
    dev.migrateToDevice(mm, a, a + P);
    const d = ptePfn(mm.pgtable.pteGet(a));
    expect(mm.mprotect(a, P, PROT_READ)).toBe(0); // a read-only device-private entry of an anon-exclusive page
    const src = [0];
    const dst = [0];
    expect(migrateDeviceRange(k, src, d, 1)).toBe(0);
    expect(pteKind(mm.pgtable.pteGet(a))).toBe("migration-read-exclusive");
    const child = mm.fork();
    expect(pteKind(mm.pgtable.pteGet(a))).toBe("migration-read");
    expect(pteKind(child.pgtable.pteGet(a))).toBe("migration-read");
    const np = allocPages(k, 0);
    k.store.set(np, PG_locked);
    k.pageBytes.copy(np, d);
    dst[0] = migratePfn(np);
    migrateDevicePages(k, src, dst, 1);
    migrateDeviceFinalize(k, src, dst, 1);
    expect(ptePfn(mm.pgtable.pteGet(a))).toBe(np);
    expect(ptePfn(child.pgtable.pteGet(a))).toBe(np);
    expect(k.store.test(np, PG_anon_exclusive)).toBe(false); // shared now
    assertInvariants(k);
    expect(mm.mprotect(a, P, PROT_READ | PROT_WRITE)).toBe(0);
    mm.write(a, new Uint8Array([99]));
    expect(child.read(a, P)).toEqual(pattern(1));
    expect(mm.read(a, 1)[0]).toBe(99);
    assertInvariants(k);
  });
});

describe("THP without MIGRATE_VMA_SELECT_COMPOUND: a PMD-mapped THP is split on collect", () => {
  it("migrates part of a THP: the PMD and folio are split, the rest stays mapped", () => {
    const { k, mm } = setup({ thp: "always", ramBytes: 16 << 20, pages: 1 });
    const dev = new TestDevice(k, 32);
    const h = mm.mmap({ length: 2 << 20, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.write(h, pattern(1));
    mm.write(h + 5 * P, pattern(5));
    const pmd = mm.pgtable.pmdGet(h);
    expect(pmd).not.toBe(0);
    const head = ptePfn(pmd);
    const usage = mm.memcg.usage;
    const rss = mm.counter(MM_ANONPAGES);
    const log = recordNotifier(mm);
    const { args } = dev.migrateToDevice(mm, h + 4 * P, h + 8 * P);
    expect(args.cpages).toBe(4);
    expect(mm.pgtable.pmdGet(h)).toBe(0);
    expect(log[0]).toEqual({ event: "MMU_NOTIFY_MIGRATE", start: h + 4 * P, end: h + 8 * P, owner: dev.owner, mm: mm.id });
    expect(log[1]).toEqual({ event: "MMU_NOTIFY_CLEAR", start: h, end: h + (2 << 20), owner: null, mm: mm.id });
    for (let i = 0; i < 512; i++) {
      const e = mm.pgtable.pteGet(h + i * P);
      if (i >= 4 && i < 8) expect(isDevicePrivateEntry(e)).toBe(true);
      else {
        expect(ptePfn(e)).toBe(head + i);
        expect(k.store.order(head + i)).toBe(0);
        expect(k.store.refcount(head + i)).toBe(1);
        expect(folioTestLocked(k, head + i)).toBe(false);
      }
    }
    expect(mm.counter(MM_ANONPAGES)).toBe(rss);
    expect(mm.memcg.usage).toBe(usage);
    expect(mm.read(h, P)).toEqual(pattern(1));
    expect(mm.read(h + 5 * P, P)).toEqual(pattern(5));
    expect(mm.read(h + 6 * P, P)).toEqual(new Uint8Array(P));
  });
});

describe("fault page rules", () => {
  it("the fault page is not trylocked, keeps its lock through finalize, and gets +1 in the ref checks", () => {
    const { k, mm, a } = setup();
    const dev = new TestDevice(k, 8);
    mm.write(a, pattern(9));
    dev.migrateToDevice(mm, a, a + P);
    const dp = ptePfn(mm.pgtable.pteGet(a));
    // what do_swap_page does before calling migrate_to_ram: lock + get
    k.store.set(dp, PG_locked);
    getPage(k, dp);
    const vma = mm.vmaLookup(a)!;
    const args = migrateVmaInit({
      vma,
      start: a,
      end: a + P,
      src: [0],
      dst: [0],
      pgmapOwner: dev.owner,
      flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE | MIGRATE_VMA_SELECT_DEVICE_COHERENT,
      faultPage: dp,
    });
    locked(mm, () => {
      expect(migrateVmaSetup(args)).toBe(0);
      expect(args.cpages).toBe(1);
      expect(isMigrationEntry(mm.pgtable.pteGet(a))).toBe(true);
      expect(k.store.refcount(dp)).toBe(2); // do_swap_page's + the collector's; the mapping's was put
    });
    locked(mm, () => {
      migrateVmaPages(args); // no dst: declined
      migrateVmaFinalize(args);
    });
    expect(folioTestLocked(k, dp)).toBe(true);
    expect(k.store.refcount(dp)).toBe(2);
    expect(isDevicePrivateEntry(mm.pgtable.pteGet(a))).toBe(true);
    k.store.clear(dp, PG_locked);
    putPage(k, dp);
    expect(mm.read(a, P)).toEqual(pattern(9));
  });
});
