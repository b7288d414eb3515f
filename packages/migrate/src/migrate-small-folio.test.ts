// The order-0 paths of migrate-device.ts (unmapSmallFolio, migrateSmallFolio, finalizeSmallFolio) must give
// exactly the state the general per-folio code gives. Each random sequence of the migrate property model
// (migrate to three devices, fault-back, migrate back, exclusive, evict, fork, COW, munmap, THP + SELECT_COMPOUND)
// runs twice, the order-0 paths on and off, and after every step the two kernels must be equal: every struct page
// of RAM and of each device (flags, refcount, mapcount, entire mapcount, mapping, index, order, memcg, content tag,
// whether it holds bytes), every page-table entry of every process, rss counters, memcg usage, free RAM.
import {
  GUP_PIN_COUNTING_BIAS,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  createKernel,
  folioUnlock,
  makeDevicePrivateEntry,
  ptePfn,
  putPage,
  type Kernel,
} from "@hmmsim/core";
import fc from "fast-check";
import { propertyConfig, propertyParameters, withPropertyReport } from "@hmmsim/testing";
import { afterEach, describe, expect, it } from "vitest";
import { migrateVmaFinalize, migrateVmaPages, migrateVmaSetup, setSmallFolioPaths } from "./migrate-device.js";
import { MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, migratePfn, migratePfnToPage, migrateVmaInit } from "./migrate-pfn.js";
import { TestDevice } from "./testing/test-driver.js";
import { World, opString, sequenceArb, type Op } from "./testing/property-model.js";

// fast-check: HMMSIM_PROPERTY_RUNS overrides the 150 runs (each compares two whole kernels after every step); the
// seed derives from the git commit (HMMSIM_PROPERTY_SEED replays one).
const PROPERTY = propertyConfig(process.env, { defaultRuns: 150 });
const RUNS = PROPERTY.numRuns;

/**
 * Every observable field of the kernel's state, as one array of numbers (see the file comment), written into `out`
 * (reused between steps: a snapshot is tens of thousands of words, taken twice per step).
 */
function snapshot(w: World, out: number[] = []): number[] {
  const k: Kernel = w.k;
  const s = k.store;
  let n = 0;
  out[n++] = k.allocator.nrFree;
  out[n++] = k.pageBytes.inUse;
  out[n++] = k.pageBytes.buffersInUse;
  out[n++] = k.memcgs.root.usage;
  const page = (pfn: number): void => {
    out[n++] = pfn;
    out[n++] = s.flags(pfn);
    out[n++] = s.refcount(pfn);
    out[n++] = s.mapcount(pfn);
    out[n++] = s.entireMapcount(pfn);
    out[n++] = s.mapping(pfn);
    out[n++] = s.index(pfn);
    out[n++] = s.order(pfn);
    out[n++] = s.memcgId(pfn);
    out[n++] = s.tag(pfn);
    out[n++] = s.bufSlot(pfn) !== 0 ? 1 : 0;
  };
  for (let pfn = 0; pfn < k.nrRamPages; pfn++) page(pfn);
  for (const d of w.devs) for (let pfn = d.startPfn; pfn < d.startPfn + d.nrPages; pfn++) page(pfn);
  for (const p of w.procs) {
    out[n++] = -1;
    for (const r of p.mm.rss) out[n++] = r;
    const dirs = [...p.mm.pgtable.dirs.entries()].sort((a, b) => a[0] - b[0]);
    for (const [key, d] of dirs) {
      out[n++] = -2;
      out[n++] = key;
      for (const e of d.pmd) out[n++] = e;
      d.pte.forEach((t, i) => {
        if (t === null) return;
        out[n++] = -3;
        out[n++] = i;
        for (const e of t) out[n++] = e;
      });
    }
  }
  out.length = n;
  return out;
}

function firstDifference(a: number[], b: number[]): string {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return `at word ${i}: ${a[i]} (order-0 paths) vs ${b[i]} (general)`;
  return "none";
}

describe("order-0 migration paths = the general per-folio steps", () => {
  afterEach(() => setSmallFolioPaths(true));

  it(`${RUNS} random sequences give the same kernel state after every step`, () => {
    let compared = 0;
    let moved = 0;
    withPropertyReport(PROPERTY, { file: import.meta.url, test: "random sequences give the same kernel state" }, () =>
      fc.assert(
        fc.property(sequenceArb(24), (ops: Op[]) => {
          const snapA: number[] = [];
          const snapB: number[] = [];
          const fast = new World();
          const general = new World();
          ops.forEach((o, i) => {
            setSmallFolioPaths(true);
            fast.step(i, o);
            setSmallFolioPaths(false);
            general.step(i, o);
            const a = snapshot(fast, snapA);
            const b = snapshot(general, snapB);
            if (a.length !== b.length || firstDifference(a, b) !== "none")
              throw new Error(`step ${i} (${opString(o)}): state differs ${firstDifference(a, b)}`);
            compared++;
          });
          moved += fast.stats.toDevice + fast.stats.toSystem + fast.stats.faultBack + fast.stats.evicted;
          fast.check(ops.length, "end");
        }),
        propertyParameters(PROPERTY),
      ),
    );
    if (PROPERTY.path !== undefined) return; // a replay of one counterexample (HMMSIM_PROPERTY_PATH) that passed
    expect(compared).toBeGreaterThan(RUNS * 5);
    // the sequences did migrate pages (else the comparison proves nothing)
    expect(moved).toBeGreaterThan(RUNS);
  }, Math.max(120_000, PROPERTY.timeoutMs * 4));

  it("the comparison sees a difference when one field differs", () => {
    const a = new World();
    const b = new World();
    for (const w of [a, b]) w.step(0, { op: "mmap", p: 0, kind: "anon-private", pages: 2, thp: false, file: 0, off: 0 });
    a.step(1, { op: "write", p: 0, m: 0, page: 0, off: 0, len: 1, val: 7 });
    b.step(1, { op: "write", p: 0, m: 0, page: 0, off: 0, len: 1, val: 7 });
    expect(firstDifference(snapshot(a), snapshot(b))).toBe("none");
    const pfn = ptePfn(a.procs[0]!.mm.pgtable.pteGet(a.procs[0]!.maps[0]!.start));
    a.k.store.refAdd(pfn, 1);
    expect(firstDifference(snapshot(a), snapshot(b))).toMatch(/^at word \d+: 2 \(order-0 paths\) vs 1 \(general\)$/);
    a.k.store.refAdd(pfn, -1);
    expect(firstDifference(snapshot(a), snapshot(b))).toBe("none");
  });

  /**
   * A driver that rewrites dst after migrate_vma_pages (kernel-legal input, no check rejects it): finalize must do
   * the same with and without the order-0 paths. Returns what the caller observes: the error rule or "ok", and the
   * page then mapped at the address.
   */
  function finalizeAfterRewrite(small: boolean, rewrite: (src: Float64Array, dst: Float64Array, k: Kernel) => number): string {
    setSmallFolioPaths(small);
    const k = createKernel({ ramBytes: 16 << 20, bytes: true, thp: "never" });
    const mm = k.createMm();
    const a = mm.mmap({ length: PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.write(a, new Uint8Array([1, 2, 3]));
    const dev = new TestDevice(k, 4);
    return mm.withReadLock("test", () => {
      const src = new Float64Array(1);
      const dst = new Float64Array(1);
      const args = migrateVmaInit({ vma: mm.vmaLookup(a), start: a, end: a + PAGE_SIZE, src, dst, pgmapOwner: dev.owner, flags: MIGRATE_VMA_SELECT_SYSTEM });
      expect(migrateVmaSetup(args)).toBe(0);
      const dpage = dev.allocDevicePage();
      k.pageBytes.copy(dpage, migratePfnToPage(src[0]!));
      dst[0] = migratePfn(dpage);
      migrateVmaPages(args);
      const orphan = rewrite(src, dst, k);
      let outcome = "ok";
      try {
        migrateVmaFinalize(args);
      } catch (e) {
        outcome = (e as { rule?: string }).rule ?? String(e);
      }
      if (orphan >= 0) {
        folioUnlock(k, orphan);
        putPage(k, orphan);
      }
      return `${outcome}; maps pfn ${ptePfn(mm.pgtable.pteGet(a))} (src ${migratePfnToPage(src[0]!)})`;
    });
  }

  it("finalize with dst rewritten to src after migrate_vma_pages: the same outcome on both paths", () => {
    const rewrite = (src: Float64Array, dst: Float64Array): number => {
      const orphan = migratePfnToPage(dst[0]!);
      dst[0] = src[0]!;
      return orphan;
    };
    const fast = finalizeAfterRewrite(true, rewrite);
    expect(fast).toMatch(/^ok; /);
    expect(finalizeAfterRewrite(false, rewrite)).toBe(fast);
  });

  it("finalize with dst rewritten to a pfn without a struct page: get_page_invalid_pfn on both paths", () => {
    const rewrite = (_src: Float64Array, dst: Float64Array, k: Kernel): number => {
      const orphan = migratePfnToPage(dst[0]!);
      dst[0] = migratePfn(k.store.maxPfn + 4096);
      return orphan;
    };
    const fast = finalizeAfterRewrite(true, rewrite);
    expect(fast).toMatch(/^get_page_invalid_pfn; /);
    expect(finalizeAfterRewrite(false, rewrite)).toBe(fast);
  });

  it("collect's pin check goes by the page's type (folio_try_share_anon_rmap_pte), not by the entry's kind", () => {
    // A hand-built device-private entry over a pinned, anon-exclusive RAM page (it has no pgmap, so its owner,
    // undefined, matches an undefined pgmapOwner): the page may be DMA-pinned, so collect must leave it.
    const k = createKernel({ ramBytes: 16 << 20, bytes: false, thp: "never" });
    const mm = k.createMm();
    const a = mm.mmap({ length: PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.touch(a, true);
    const pfn = ptePfn(mm.pgtable.pteGet(a));
    k.store.refAdd(pfn, GUP_PIN_COUNTING_BIAS); // pin_user_pages
    const entry = makeDevicePrivateEntry(pfn, true);
    mm.pgtable.pteSet(a, entry);
    mm.withReadLock("test", () => {
      const src = new Float64Array(1);
      const dst = new Float64Array(1);
      const args = migrateVmaInit({ vma: mm.vmaLookup(a), start: a, end: a + PAGE_SIZE, src, dst, pgmapOwner: undefined, flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE });
      expect(migrateVmaSetup(args)).toBe(0);
      expect(src[0]).toBe(0);
      migrateVmaPages(args);
      migrateVmaFinalize(args);
    });
    expect(mm.pgtable.pteGet(a)).toBe(entry);
    expect(k.store.refcount(pfn)).toBe(1 + GUP_PIN_COUNTING_BIAS);
  });
});
