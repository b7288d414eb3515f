// Acceptance (issue 4): the core property test (random mmap/write/read/mprotect/madvise/munmap/fork/exit sequences
// against a byte model) extended with device memory — migrate_vma_* to two device-private devices with different
// owners and a device-coherent one (SELECT_SYSTEM), CPU fault-back (migrate_to_ram on a read/write of a device-
// private page, and GUP's), explicit migration back (SELECT_DEVICE_PRIVATE / SELECT_DEVICE_COHERENT with the
// owner), make_device_exclusive (+ unlock/put as a driver does) and eviction (migrate_device_range over the
// device's pfns), and GUP references held across other ops (get_user_pages FOLL_GET, pin_user_pages_fast
// FOLL_PIN [| FOLL_LONGTERM, which first moves a device-coherent page to RAM], released oldest first): a held
// folio must not migrate. After every step: 0 invariant violations (the drivers' backing pages and the GUP
// references declared as extraRefs) and every byte equals the last byte written there (0 if never), wherever the
// page lives; at the end the GUP references are released, every device is evicted, every process exits and nothing
// leaks (RAM, device pages, backing pages).
//
// Runs: HMMSIM_PROPERTY_RUNS (default 2000); HMMSIM_PROPERTY_SEED (default derived from the git commit; `random` draws
// one); a failure prints its seed, counterexample path and the command that replays it. The model and the driver are
// in property-model.ts.
import { PAGE_SIZE, ptePfn } from "@hmmsim/core";
import { propertyConfig, propertyParameters, withPropertyReport } from "@hmmsim/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { World, newStats, opString, runSequence, sequenceArb, type DeviceStats, type Op } from "./testing/property-model.js";

const PROPERTY = propertyConfig();
const { numRuns: NUM_RUNS, timeoutMs: TIMEOUT } = PROPERTY;

describe("migrate + functional plane vs. a byte model (fast-check)", () => {
  it(`random sequences with migrate-to-device, fault-back, migrate-back, exclusive and evict (${NUM_RUNS} runs)`, () => {
    const total: DeviceStats = newStats();
    let runs = 0;
    withPropertyReport(PROPERTY, { file: import.meta.url, test: "random sequences with migrate-to-device" }, () =>
      fc.assert(
        fc.property(sequenceArb(24), (ops) => {
          const w = runSequence(ops);
          runs++;
          for (const key of Object.keys(total) as (keyof DeviceStats)[]) total[key] += w.stats[key];
        }),
        propertyParameters(PROPERTY),
      ),
    );
    if (PROPERTY.path !== undefined) return; // a replay of one counterexample (HMMSIM_PROPERTY_PATH) that passed
    expect(runs).toBeGreaterThanOrEqual(NUM_RUNS);
    // The device paths were really taken (per 2000 runs these are in the thousands).
    const min = Math.max(1, Math.floor(NUM_RUNS / 50));
    expect(total.toDevice).toBeGreaterThan(min);
    expect(total.faultBack).toBeGreaterThan(min);
    expect(total.toSystem).toBeGreaterThan(min);
    expect(total.evicted).toBeGreaterThan(min);
    expect(total.exclusive).toBeGreaterThan(min);
    // SELECT_COMPOUND: THPs and 2 MiB holes collected as one COMPOUND entry, and some of them moved whole.
    expect(total.compoundCollected).toBeGreaterThan(Math.floor(min / 4));
    expect(total.compoundMoved).toBeGreaterThan(Math.floor(min / 8));
    // GUP references and pins were held, and migrations skipped the folios they held.
    expect(total.gupHeld).toBeGreaterThan(min);
    expect(total.gupSkipped).toBeGreaterThan(Math.floor(min / 4));
    console.log(`device-op totals (seed ${PROPERTY.seed}, ${PROPERTY.seedSource})`, JSON.stringify(total));
  }, TIMEOUT);

  it("every device op really moves pages where it must, and bytes survive each move (a fixed sequence)", () => {
    const A = "private:privA";
    const B = "private:privB";
    const C = "coherent:coherentC";
    // [op, where p0's pages 0..3 are after it, where p1's are (once forked)]
    const steps: [Op, string[], string[]?][] = [
      [{ op: "mmap", p: 0, kind: "anon-private", pages: 4, thp: false, file: 0, off: 0 }, ["none", "none", "none", "none"]],
      [{ op: "write", p: 0, m: 0, page: 0, off: 5, len: 3, val: 10 }, ["RAM", "none", "none", "none"]],
      [{ op: "write", p: 0, m: 0, page: 2, off: 4000, len: 8, val: 20 }, ["RAM", "none", "RAM", "none"]],
      // RAM pages and holes → privA
      [{ op: "migrate", p: 0, dev: 0, m: 0, from: 0, n: 4 }, [A, A, A, A]],
      [{ op: "fork", p: 0 }, [A, A, A, A], [A, A, A, A]],
      // the child's read faults privA's page back (migrate_to_ram): both mms map the RAM page
      [{ op: "read", p: 1, m: 0, page: 2, off: 4000, len: 8 }, [A, A, "RAM", A], [A, A, "RAM", A]],
      // → coherentC from the child: the shared RAM page moves in both mms, privA's page is skipped (not SYSTEM)
      [{ op: "migrate", p: 1, dev: 2, m: 0, from: 2, n: 2 }, [A, A, C, A], [A, A, C, A]],
      // the parent's write faults page 0 back and breaks COW
      [{ op: "write", p: 0, m: 0, page: 0, off: 6, len: 1, val: 99 }, ["RAM", A, C, A], ["RAM", A, C, A]],
      // → privB: only the parent's RAM page qualifies
      [{ op: "migrate", p: 0, dev: 1, m: 0, from: 0, n: 4 }, [B, A, C, A], ["RAM", A, C, A]],
      // GUP(FOLL_WRITE) faults privA's page 3 back, breaks COW, then the PTE becomes device-exclusive
      [{ op: "exclusive", p: 0, dev: 0, m: 0, page: 3 }, [B, A, C, "exclusive"], ["RAM", A, C, "RAM"]],
      [{ op: "migrateBack", p: 1, dev: 2, m: 0, from: 0, n: 4 }, [B, A, "RAM", "exclusive"], ["RAM", A, "RAM", "RAM"]],
      [{ op: "migrateBack", p: 0, dev: 1, m: 0, from: 0, n: 4 }, ["RAM", A, "RAM", "exclusive"], ["RAM", A, "RAM", "RAM"]],
      [{ op: "migrate", p: 1, dev: 0, m: 0, from: 3, n: 1 }, ["RAM", A, "RAM", "exclusive"], ["RAM", A, "RAM", A]],
      // eviction finds the shared page 1 and the child's page 3 through the device pfns
      [{ op: "evict", dev: 0 }, ["RAM", "RAM", "RAM", "exclusive"], ["RAM", "RAM", "RAM", "RAM"]],
      // a CPU read restores the device-exclusive entry
      [{ op: "read", p: 0, m: 0, page: 3, off: 0, len: 1 }, ["RAM", "RAM", "RAM", "RAM"], ["RAM", "RAM", "RAM", "RAM"]],
    ];
    const w = new World();
    steps.forEach(([o, want0, want1], i) => {
      w.step(i, o);
      w.check(i, opString(o));
      const at = (p: number) => [0, 1, 2, 3].map((j) => w.where(w.procs[p]!.mm, w.procs[p]!.maps[0]!.start + j * PAGE_SIZE));
      expect({ step: i, p0: at(0) }).toEqual({ step: i, p0: want0 });
      if (want1 !== undefined) expect({ step: i, p1: at(1) }).toEqual({ step: i, p1: want1 });
    });
    expect(w.stats).toEqual({ toDevice: 4 + 1 + 1 + 1, faultBack: 3, toSystem: 2, evicted: 2, exclusive: 1, compoundCollected: 0, compoundMoved: 0, gupHeld: 0, gupSkipped: 0 });
    const [p0, p1] = w.procs;
    const a = p0!.maps[0]!.start;
    expect(Array.from(p0!.mm.read(a + 5, 3))).toEqual([10, 99, 12]);
    expect(Array.from(p1!.mm.read(a + 5, 3))).toEqual([10, 11, 12]);
    expect(Array.from(p1!.mm.read(a + 2 * PAGE_SIZE + 4000, 8))).toEqual([20, 21, 22, 23, 24, 25, 26, 27]);
    runSequence([], w);
  });

  it("SELECT_COMPOUND: a 2 MiB hole and a PMD-mapped THP are one COMPOUND entry; privB takes them as 512 small pages, privA (24) declines", () => {
    const A = "private:privA";
    const B = "private:privB";
    const all = (w: World, what: string) => {
      const map = w.procs[0]!.maps[0]!;
      const got = new Set(Array.from({ length: map.npages }, (_, j) => w.where(w.procs[0]!.mm, map.start + j * PAGE_SIZE)));
      expect([...got]).toEqual([what]);
    };
    const thpMap: Op = { op: "mmap", p: 0, kind: "anon-private", pages: 1, thp: true, file: 0, off: 0 };
    // A 2 MiB hole: migrate_vma_collect_hole gives one MIGRATE | COMPOUND entry; the 512 small dst pages are
    // inserted one by one (migrate_vma_insert_page).
    const hole = new World();
    for (const [i, o] of ([thpMap, { op: "migrateThp", p: 0, dev: 0 }] as Op[]).entries()) {
      hole.step(i, o);
      hole.check(i, opString(o));
    }
    all(hole, "none"); // privA has 24 pages: declined
    hole.step(2, { op: "migrateThp", p: 0, dev: 1 });
    hole.check(2, "migrateThp privB");
    all(hole, B);
    expect(hole.stats).toMatchObject({ compoundCollected: 2, compoundMoved: 1, toDevice: 512 });
    hole.step(3, { op: "write", p: 0, m: 0, page: 300, off: 8, len: 4, val: 40 }); // faults one page back
    hole.check(3, "write");
    expect(hole.where(hole.procs[0]!.mm, hole.procs[0]!.maps[0]!.start + 300 * PAGE_SIZE)).toBe("RAM");
    runSequence([], hole);

    // A PMD-mapped THP: one COMPOUND entry under a PMD migration entry; small dst pages split the source folio.
    const thp = new World();
    const steps: Op[] = [thpMap, { op: "write", p: 0, m: 0, page: 7, off: 0, len: 8, val: 70 }, { op: "migrateThp", p: 0, dev: 0 }];
    steps.forEach((o, i) => {
      thp.step(i, o);
      thp.check(i, opString(o));
    });
    all(thp, "THP"); // declined whole: the PMD is restored
    thp.step(3, { op: "migrateThp", p: 0, dev: 1 });
    thp.check(3, "migrateThp privB");
    all(thp, B);
    expect(thp.stats).toMatchObject({ compoundCollected: 2, compoundMoved: 1, toDevice: 512 });
    thp.step(4, { op: "read", p: 0, m: 0, page: 7, off: 0, len: 8 }); // checks the bytes, faults the page back
    thp.check(4, "read");
    expect(thp.where(thp.procs[0]!.mm, thp.procs[0]!.maps[0]!.start + 7 * PAGE_SIZE)).toBe("RAM");
    expect(thp.where(thp.procs[0]!.mm, thp.procs[0]!.maps[0]!.start + 8 * PAGE_SIZE)).toBe(B);
    thp.step(5, { op: "migrate", p: 0, dev: 0, m: 0, from: 7, n: 1 });
    thp.check(5, "migrate");
    expect(thp.where(thp.procs[0]!.mm, thp.procs[0]!.maps[0]!.start + 7 * PAGE_SIZE)).toBe(A);
    runSequence([], thp);
  });

  it("issue #15 counterexamples replay clean: a pinned PTE-mapped THP ends its PMD chunk's collect; a long-term pin of a held coherent page is -EBUSY", () => {
    const P = PAGE_SIZE;
    const thpMap: Op = { op: "mmap", p: 0, kind: "anon-private", pages: 1, thp: true, file: 0, off: 0 };
    const pin: Op = { op: "pin", p: 0, m: 0, page: 0, longterm: false, get: false };
    const run = (ops: Op[]): World => {
      const w = new World();
      ops.forEach((o, i) => {
        w.step(i, o);
        w.check(i, opString(o));
      });
      return w;
    };
    // D1 (HMMSIM_PROPERTY_RUNS=20000 at run 4343; seed 1 at 1691, seed 2 at 663): mmap 2 MiB with MADV_HUGEPAGE;
    // pin page 0 (faults the THP in); MADV_DONTNEED page 1 (splits the PMD, the folio stays large); migrate pages
    // 0-2 (or the whole THP map with SELECT_COMPOUND) to privA. migrate_vma_collect_pmd() meets page 0's large
    // folio first, migrate_vma_split_folio() fails on the pin, and `migrate_vma_collect_skip(addr, end, walk)`
    // skips the rest of the chunk: the emptied page 1 does not move either (ret 0, cpages 0). The model used to
    // expect page 1 to move.
    for (const migrate of [{ op: "migrate", p: 0, dev: 0, m: 0, from: 0, n: 3 }, { op: "migrateThp", p: 0, dev: 0 }] as Op[]) {
      const w = run([thpMap, pin, { op: "dontneed", p: 0, m: 0, from: 1, n: 1 }, migrate]);
      const { mm, maps } = w.procs[0]!;
      expect([0, 1, 2].map((j) => w.where(mm, maps[0]!.start + j * P))).toEqual(["RAM (PTE of a large folio)", "none", "RAM (PTE of a large folio)"]);
      expect(w.stats.toDevice).toBe(0);
      expect(w.devs[0]!.inUse).toBe(0);
      runSequence([], w);
    }
    // Seed 1 at 20000 runs, run 16066: a device-coherent page pinned (FOLL_PIN), then pinned again with
    // FOLL_LONGTERM: migrate_longterm_unpinnable_folios() turns the new pin into a reference and calls
    // migrate_device_coherent_folio(), which fails on the first pin; the call returns -EBUSY and pins nothing.
    // The model used to expect every write pin of an anonymous page to succeed.
    const w = run([thpMap, { op: "migrate", p: 0, dev: 2, m: 0, from: 0, n: 1 }, pin, { ...pin, longterm: true }]);
    expect(w.log.at(-1)).toMatch(/FOLL_LONGTERM.*\(coherent:coherentC\) = -EBUSY$/);
    expect(w.gup).toHaveLength(1);
    expect(w.where(w.procs[0]!.mm, w.procs[0]!.maps[0]!.start)).toBe("coherent:coherentC");
    runSequence([], w);
  });

  it("seed 1394021173 counterexample replays clean: fork write-protects a GUP-held coherent page, so a FOLL_LONGTERM write pin COWs first (1), not -EBUSY", () => {
    const C = "coherent:coherentC";
    const thpMap: Op = { op: "mmap", p: 0, kind: "anon-private", pages: 1, thp: true, file: 0, off: 0 };
    const toC: Op = { op: "migrate", p: 0, dev: 2, m: 0, from: 0, n: 1 };
    const get: Op = { op: "pin", p: 0, m: 0, page: 0, longterm: false, get: true };
    const pin: Op = { op: "pin", p: 0, m: 0, page: 0, longterm: false, get: false };
    const longterm: Op = { ...pin, longterm: true };
    const fork: Op = { op: "fork", p: 0 };
    const run = (ops: Op[]): World => {
      const w = new World();
      ops.forEach((o, i) => {
        w.step(i, o);
        w.check(i, opString(o));
      });
      return w;
    };
    const at = (w: World, p: number) => w.where(w.procs[p]!.mm, w.procs[p]!.maps[0]!.start);
    // The counterexample: the held page is shared by fork (folio_try_dup_anon_rmap_pte: a FOLL_GET reference is no
    // pin), both PTEs read-only; the parent's FOLL_WRITE pin faults first (can_follow_write_pte → do_wp_page →
    // wp_can_reuse_anon_folio fails on the reference → wp_page_copy) and pins the new RAM page. The model used to
    // expect -EBUSY (migrate_device_coherent_folio on the held page), as if the pin went straight to the coherent page.
    const w = run([thpMap, toC, get, fork, longterm]);
    expect(w.log.at(-1)).toMatch(/^pin_user_pages_fast\(FOLL_PIN\|FOLL_WRITE\|FOLL_LONGTERM, p0, map0, page 0\) at .* \(coherent:coherentC\) = pfn \d+$/);
    expect(w.gup).toHaveLength(2);
    expect([at(w, 0), at(w, 1)]).toEqual(["RAM", C]);
    expect(w.gup[1]!.pfn).toBe(ptePfn(w.procs[0]!.mm.pgtable.pteGet(w.procs[0]!.maps[0]!.start)));
    runSequence([], w);
    // The same from the child: its PTE is as read-only and the page as shared.
    const wc = run([thpMap, toC, get, fork, { ...longterm, p: 1 }]);
    expect(wc.gup).toHaveLength(2);
    expect([at(wc, 0), at(wc, 1)]).toEqual([C, "RAM"]);
    runSequence([], wc);
    // Still -EBUSY: no fork (the coherent page is pinned, then cannot migrate past the reference), and a held
    // FOLL_PIN before fork (fork copies the page for the child, the parent's PTE stays writable and exclusive).
    for (const ops of [[thpMap, toC, get, longterm], [thpMap, toC, pin, fork, longterm]]) {
      const wb = run(ops);
      expect(wb.log.at(-1)).toMatch(/FOLL_LONGTERM.*\(coherent:coherentC\) = -EBUSY$/);
      expect(wb.gup).toHaveLength(1);
      expect(at(wb, 0)).toBe(C);
      if (wb.procs.length > 1) expect(at(wb, 1)).toBe("RAM");
      runSequence([], wb);
    }
  });

  it("seed 1821576334 counterexample replays clean: a pinned coherent page made device-exclusive is restored by GUP's fault, so a FOLL_LONGTERM write pin of it is still -EBUSY", () => {
    const C = "coherent:coherentC";
    const thpMap: Op = { op: "mmap", p: 0, kind: "anon-private", pages: 1, thp: true, file: 0, off: 0 };
    const toC: Op = { op: "migrate", p: 0, dev: 2, m: 0, from: 0, n: 2 };
    const get: Op = { op: "pin", p: 0, m: 0, page: 0, longterm: false, get: true };
    const pin: Op = { op: "pin", p: 0, m: 0, page: 0, longterm: false, get: false };
    const longterm: Op = { ...pin, longterm: true };
    const excl: Op = { op: "exclusive", p: 0, dev: 0, m: 0, page: 0 };
    const run = (ops: Op[]): World => {
      const w = new World();
      ops.forEach((o, i) => {
        w.step(i, o);
        w.check(i, opString(o));
      });
      return w;
    };
    const at = (w: World) => w.where(w.procs[0]!.mm, w.procs[0]!.maps[0]!.start);
    // The counterexample: make_device_exclusive accepts the pinned coherent page (it checks neither pins nor the
    // pgmap); the long-term pin faults on the entry (remove_device_exclusive_entry → restore_exclusive_pte: the same
    // page, writable), pins it, and migrate_device_coherent_folio fails on the first pin. The model used to read the
    // page as "exclusive", not coherent, and expected 1.
    for (const first of [pin, get]) {
      const w = run([thpMap, toC, first, excl, longterm]);
      expect(w.log.at(-2)).toMatch(/^makeDeviceExclusive\(privA, .*\(coherent:coherentC\) = pfn \d+$/);
      expect(w.log.at(-1)).toMatch(/FOLL_LONGTERM.*\(exclusive\) = -EBUSY$/);
      expect(w.gup).toHaveLength(1);
      expect(at(w)).toBe(C); // restored in place
      runSequence([], w);
    }
    // Without a reference held the restored page moves to RAM and that one is pinned: 1.
    const w = run([thpMap, toC, excl, longterm]);
    expect(w.log.at(-1)).toMatch(/FOLL_LONGTERM.*\(exclusive\) = pfn \d+$/);
    expect(w.gup).toHaveLength(1);
    expect(at(w)).toBe("RAM");
    runSequence([], w);
  });

  it("the model catches a wrong byte on a device page (a sequence that must fail does)", () => {
    const w = new World();
    w.step(0, { op: "mmap", p: 0, kind: "anon-private", pages: 2, thp: false, file: 0, off: 0 });
    w.step(1, { op: "write", p: 0, m: 0, page: 1, off: 10, len: 4, val: 7 });
    w.step(2, { op: "migrate", p: 0, dev: 0, m: 0, from: 0, n: 2 });
    w.check(2, "migrate");
    // Corrupt the model's expectation; the no-fault content check and then the read must report it.
    w.procs[0]!.priv.get(w.procs[0]!.maps[0]!.start + PAGE_SIZE)![11] = 99;
    expect(() => w.check(3, "check")).toThrow(/private:privA.* byte 11 is 8, the last byte written there is 99/);
    expect(() => w.step(3, { op: "read", p: 0, m: 0, page: 1, off: 10, len: 4 })).toThrow(/read \[7,8,9,10\] but the last bytes written there are \[7,99,9,10\]/);
  });

  it("an undeclared driver reference (a backing page) is a violation: extraRefs is what makes the check pass", () => {
    const w = new World();
    w.step(0, { op: "mmap", p: 0, kind: "anon-private", pages: 2, thp: false, file: 0, off: 0 });
    w.step(1, { op: "migrate", p: 0, dev: 0, m: 0, from: 0, n: 2 });
    expect(w.devs[0]!.backing.size).toBe(2);
    w.check(1, "declared");
    w.devs[0]!.backing.clear(); // the driver "forgets" its references: its backing pages now look leaked
    expect(() => w.check(1, "undeclared")).toThrow(/refcount_mismatch/);
  });
});
