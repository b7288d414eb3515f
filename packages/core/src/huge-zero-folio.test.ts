// The huge zero folio (mm/huge_memory.c): do_huge_pmd_anonymous_page maps it on a read fault in a THP-eligible
// extent when transparent_hugepage/use_zero_page is set (the kernel's default), with one special read-only PMD that
// holds no reference, mapcount, rss or memcg charge (set_huge_zero_folio); a write faults a THP in its place
// (do_huge_pmd_wp_page → do_huge_zero_wp_pmd) or, with no THP to be had, splits it into zero-page PTEs
// (__split_huge_zero_page_pmd) and COWs one page; zap, fork (copy_huge_pmd), mprotect (change_huge_pmd) and
// MADV_FREE (madvise_free_huge_pmd) leave it as the kernel does.
import { describe, expect, it } from "vitest";
import { FOLL_LONGTERM, FOLL_WRITE, getUserPages, pinUserPagesFast, unpinUserPage } from "./gup.js";
import { putPage } from "./page-ref.js";
import { isHugeZeroPmd } from "./huge-memory.js";
import { createKernel, type KernelOptions } from "./kernel.js";
import { MM_ANONPAGES } from "./mm-counters.js";
import type { Mm } from "./mm.js";
import { HPAGE_PMD_NR, PAGE_SIZE, PG_reserved, PMD_SIZE } from "./page-flags.js";
import { pmdTransHuge, ptePfn, pteSpecial, pteWrite, pteYoung } from "./pgtable.js";
import { record } from "./testing/test-util.js";
import { MADV_DONTNEED, MADV_FREE, MADV_HUGEPAGE, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "./vma.js";

const RW = PROT_READ | PROT_WRITE;

/** A kernel and an mm with a 2 MiB-aligned anonymous extent of `pmds` PMDs (MADV_HUGEPAGE under thp=madvise). */
function setup(opts: Partial<KernelOptions> = {}, pmds = 1): { k: ReturnType<typeof createKernel>; mm: Mm; base: number } {
  const k = createKernel({ ramBytes: 16 << 20, thp: "madvise", ...opts });
  const mm = k.createMm();
  const a = mm.mmap({ length: (pmds + 1) * PMD_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  const base = a + ((PMD_SIZE - (a % PMD_SIZE)) % PMD_SIZE);
  expect(mm.madvise(base, pmds * PMD_SIZE, MADV_HUGEPAGE)).toBe(0);
  return { k, mm, base };
}

/** Reads one byte through the CPU (faulting as needed). */
function readByte(mm: Mm, addr: number): number {
  return mm.read(addr, 1)[0]!;
}

describe("the huge zero folio (mm/huge_memory.c)", () => {
  it("is an order-9 reserved folio with one reference of its own, outside RAM, below the device pfns", () => {
    const k = createKernel({ ramBytes: 8 << 20 });
    const hz = k.hugeZeroPfn;
    expect(hz % HPAGE_PMD_NR).toBe(0);
    expect(hz).toBeGreaterThan(k.zeroPfn);
    expect(k.store.folioNr(hz)).toBe(HPAGE_PMD_NR);
    expect(k.store.folioHead(hz + 300)).toBe(hz);
    expect(k.store.test(hz + 300, PG_reserved)).toBe(true);
    expect(k.store.refcount(hz)).toBe(1);
    expect(k.isHugeZeroPfn(hz)).toBe(true);
    expect(k.isHugeZeroPfn(hz + 1)).toBe(false);
    expect(k.isHugeZeroPage(hz + 511)).toBe(true);
    expect(k.isHugeZeroPage(hz + 512)).toBe(false);
    expect(k.pgmaps.nextPfn).toBeGreaterThanOrEqual(hz + HPAGE_PMD_NR);
  });

  it("do_huge_pmd_anonymous_page: a read fault maps it with one special read-only PMD — no RAM, rss, memcg or notifier", () => {
    const { k, mm, base } = setup();
    const rec = record(mm);
    const free = k.allocator.nrFree;
    expect(readByte(mm, base + 5 * PAGE_SIZE + 17)).toBe(0);
    const pmd = mm.pgtable.pmdGet(base);
    expect(pmdTransHuge(pmd)).toBe(true);
    expect(isHugeZeroPmd(k, pmd)).toBe(true);
    expect(ptePfn(pmd)).toBe(k.hugeZeroPfn);
    expect(pteWrite(pmd)).toBe(false);
    expect(pteSpecial(pmd)).toBe(true);
    expect(mm.pgtable.pteTable(base, false)).toBeNull();
    expect(k.allocator.nrFree).toBe(free);
    expect(mm.rss[MM_ANONPAGES]).toBe(0);
    expect(mm.memcg.usage).toBe(0);
    expect(k.store.refcount(k.hugeZeroPfn)).toBe(1);
    expect(k.store.entireMapcount(k.hugeZeroPfn)).toBe(0);
    expect(rec.starts()).toEqual([]); // filling pmd_none sends no notifier
  });

  it("use_zero_page = 0: a read fault allocates a THP, as before", () => {
    const { k, mm, base } = setup({ thpUseZeroPage: false });
    readByte(mm, base);
    const pmd = mm.pgtable.pmdGet(base);
    expect(isHugeZeroPmd(k, pmd)).toBe(false);
    expect(mm.rss[MM_ANONPAGES]).toBe(HPAGE_PMD_NR);
  });

  it("do_huge_zero_wp_pmd: a write replaces it by a new THP inside MMU_NOTIFY_CLEAR over the 2 MiB (rss, memcg +512)", () => {
    const { k, mm, base } = setup();
    readByte(mm, base);
    const rec = record(mm);
    const free = k.allocator.nrFree;
    mm.write(base + 3 * PAGE_SIZE, new Uint8Array([7, 8, 9]));
    const pmd = mm.pgtable.pmdGet(base);
    expect(pmdTransHuge(pmd)).toBe(true);
    expect(isHugeZeroPmd(k, pmd)).toBe(false);
    expect(pteWrite(pmd)).toBe(true);
    expect(k.store.folioNr(ptePfn(pmd))).toBe(HPAGE_PMD_NR);
    expect(k.allocator.nrFree).toBe(free - HPAGE_PMD_NR);
    expect(mm.rss[MM_ANONPAGES]).toBe(HPAGE_PMD_NR);
    expect(mm.memcg.usage).toBe(HPAGE_PMD_NR);
    expect(rec.starts()).toEqual([{ event: "MMU_NOTIFY_CLEAR", start: base, end: base + PMD_SIZE, owner: null }]);
    expect(Array.from(mm.read(base + 3 * PAGE_SIZE, 4))).toEqual([7, 8, 9, 0]);
    expect(readByte(mm, base + 200 * PAGE_SIZE)).toBe(0);
    expect(k.store.refcount(k.hugeZeroPfn)).toBe(1);
  });

  it("with no THP to be had (memcg limit), the write splits it into zero-page PTEs and COWs one page", () => {
    const k = createKernel({ ramBytes: 16 << 20, thp: "always" });
    const mm = k.createMm({ memcg: k.createMemcg("small", 64 * PAGE_SIZE) });
    const a = mm.mmap({ length: 2 * PMD_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const base = a + ((PMD_SIZE - (a % PMD_SIZE)) % PMD_SIZE);
    readByte(mm, base);
    expect(isHugeZeroPmd(k, mm.pgtable.pmdGet(base))).toBe(true);
    const rec = record(mm);
    mm.write(base + 9 * PAGE_SIZE, new Uint8Array([1]));
    expect(mm.pgtable.pmdGet(base)).toBe(0);
    const t = mm.pgtable.pteTable(base, false)!;
    expect(t).not.toBeNull();
    for (let i = 0; i < HPAGE_PMD_NR; i++) {
      if (i === 9) continue;
      expect(ptePfn(t[i]!)).toBe(k.zeroPfn);
      expect(pteSpecial(t[i]!) && !pteWrite(t[i]!) && pteYoung(t[i]!)).toBe(true);
    }
    expect(ptePfn(t[9]!)).not.toBe(k.zeroPfn);
    expect(pteWrite(t[9]!)).toBe(true);
    expect(mm.rss[MM_ANONPAGES]).toBe(1);
    expect(mm.memcg.usage).toBe(1);
    // __split_huge_pmd's CLEAR over the 2 MiB, then the COW of the zero PTE (wp_page_copy: CLEAR over one page)
    expect(rec.starts()).toEqual([
      { event: "MMU_NOTIFY_CLEAR", start: base, end: base + PMD_SIZE, owner: null },
      { event: "MMU_NOTIFY_CLEAR", start: base + 9 * PAGE_SIZE, end: base + 10 * PAGE_SIZE, owner: null },
    ]);
  });

  it("munmap / MADV_DONTNEED of the whole PMD drop it with nothing to uncharge; a partial one splits it first", () => {
    const { k, mm, base } = setup({}, 2);
    readByte(mm, base);
    readByte(mm, base + PMD_SIZE);
    expect(mm.madvise(base, PMD_SIZE, MADV_DONTNEED)).toBe(0);
    expect(mm.pgtable.pmdGet(base)).toBe(0);
    expect(mm.pgtable.pteTable(base, false)).toBeNull();
    expect(mm.munmap(base + PMD_SIZE + 4 * PAGE_SIZE, 4 * PAGE_SIZE)).toBe(0);
    expect(mm.pgtable.pmdGet(base + PMD_SIZE)).toBe(0);
    const t = mm.pgtable.pteTable(base + PMD_SIZE, false)!;
    expect(ptePfn(t[0]!)).toBe(k.zeroPfn);
    expect(t[4]).toBe(0);
    expect(ptePfn(t[8]!)).toBe(k.zeroPfn);
    expect(mm.rss[MM_ANONPAGES]).toBe(0);
    expect(k.store.refcount(k.hugeZeroPfn)).toBe(1);
  });

  it("MADV_FREE leaves it alone, whole or partial (madvise_free_huge_pmd: is_huge_zero_pmd → out)", () => {
    const { k, mm, base } = setup();
    readByte(mm, base);
    expect(mm.madvise(base + PAGE_SIZE, 3 * PAGE_SIZE, MADV_FREE)).toBe(0);
    expect(isHugeZeroPmd(k, mm.pgtable.pmdGet(base))).toBe(true);
  });

  it("mprotect keeps it read-only through PROT_READ and back to RW (change_huge_pmd: not a normal page)", () => {
    const { k, mm, base } = setup();
    readByte(mm, base);
    expect(mm.mprotect(base, PMD_SIZE, PROT_READ)).toBe(0);
    expect(mm.mprotect(base, PMD_SIZE, RW)).toBe(0);
    const pmd = mm.pgtable.pmdGet(base);
    expect(isHugeZeroPmd(k, pmd)).toBe(true);
    expect(pteWrite(pmd)).toBe(false);
  });

  it("fork (copy_huge_pmd) copies the PMD write-protected with no reference, rmap or rss; each side's write gets its own THP", () => {
    const { k, mm, base } = setup();
    readByte(mm, base);
    const child = mm.fork();
    const cp = child.pgtable.pmdGet(base);
    expect(isHugeZeroPmd(k, cp)).toBe(true);
    expect(pteWrite(cp)).toBe(false);
    expect(pteYoung(cp)).toBe(false); // pmd_mkold
    expect(child.rss[MM_ANONPAGES]).toBe(0);
    expect(k.store.refcount(k.hugeZeroPfn)).toBe(1);
    child.write(base, new Uint8Array([42]));
    expect(isHugeZeroPmd(k, child.pgtable.pmdGet(base))).toBe(false);
    expect(isHugeZeroPmd(k, mm.pgtable.pmdGet(base))).toBe(true);
    expect(readByte(mm, base)).toBe(0);
    expect(readByte(child, base)).toBe(42);
    child.exit();
    expect(k.store.refcount(k.hugeZeroPfn)).toBe(1);
  });

  it("GUP: a read reference is taken on the folio and dropped; a write or a long-term pin faults a THP in first", () => {
    const { k, mm, base } = setup({}, 2);
    readByte(mm, base);
    const pages: number[] = [];
    expect(mm.withReadLock("gup", () => getUserPages(mm, base + 2 * PAGE_SIZE, 2, 0, pages))).toBe(2);
    expect(pages).toEqual([k.hugeZeroPfn + 2, k.hugeZeroPfn + 3]);
    expect(k.store.refcount(k.hugeZeroPfn)).toBe(3);
    for (const p of pages) putPage(k, p); // put_page
    expect(k.store.refcount(k.hugeZeroPfn)).toBe(1);
    const w: number[] = [];
    expect(mm.withReadLock("gup", () => getUserPages(mm, base, 1, FOLL_WRITE, w))).toBe(1);
    expect(k.isHugeZeroPage(w[0]!)).toBe(false);
    expect(isHugeZeroPmd(k, mm.pgtable.pmdGet(base))).toBe(false);
    putPage(k, w[0]!);
    // FOLL_LONGTERM on a COW mapping: gup_must_unshare (not anon) → an unshare fault → do_huge_zero_wp_pmd.
    readByte(mm, base + PMD_SIZE);
    const lt: number[] = [];
    expect(pinUserPagesFast(mm, base + PMD_SIZE, 1, FOLL_LONGTERM, lt)).toBe(1);
    expect(k.isHugeZeroPage(lt[0]!)).toBe(false);
    expect(isHugeZeroPmd(k, mm.pgtable.pmdGet(base + PMD_SIZE))).toBe(false);
    unpinUserPage(k, lt[0]!);
  });
});
