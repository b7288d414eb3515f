import { describe, expect, it } from "vitest";
import { MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_PRIVATE, type DevPagemap } from "./dev-pagemap.js";
import { splitFolio } from "./huge-memory.js";
import { createKernel } from "./kernel.js";
import { registerPgmap, zoneDeviceFolioInitK } from "./memremap.js";
import { HPAGE_PMD_NR, PAGE_SIZE, PG_head, PG_locked, PG_lru, PG_uptodate, PMD_SIZE } from "./page-flags.js";
import { allocPages, folioTrylock, folioUnlock, getPage, putPage } from "./page-ref.js";
import { ptePfn } from "./pgtable.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "./vma.js";

function devicePgmap(type: 1 | 2, calls: [number, number][], freed: number[]): DevPagemap {
  return {
    type,
    range: { start: 0, end: -1 },
    owner: {},
    ops: { pageFree: (pfn) => freed.push(pfn), migrateToRam: () => 0, folioSplit: (h, t) => calls.push([h, t]) },
  };
}

describe("transparent huge pages (mm/huge_memory.c)", () => {
  it("do_huge_pmd_anonymous_page puts the THP on the LRU, uptodate", () => {
    const k = createKernel({ ramBytes: 8 << 20, thp: "always" });
    const mm = k.createMm();
    const a = mm.mmap({ length: 2 * PMD_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const base = a + ((PMD_SIZE - (a % PMD_SIZE)) % PMD_SIZE);
    mm.touch(base, true);
    const pmd = mm.pgtable.pmdGet(base);
    expect(pmd).not.toBe(0);
    const head = ptePfn(pmd);
    expect(k.store.test(head, PG_head)).toBe(true);
    expect(k.store.test(head, PG_lru)).toBe(true);
    expect(k.store.test(head, PG_uptodate)).toBe(true);
  });

  it("split_huge_page(page) leaves only the caller's page locked, with the caller's reference; tails on the LRU", () => {
    const k = createKernel({ ramBytes: 8 << 20 });
    const head = allocPages(k, 9);
    k.store.set(head, PG_lru);
    expect(folioTrylock(k, head)).toBe(true);
    getPage(k, head); // the caller's extra reference (refcount 2: allocation + caller)
    const page = head + 7;
    const freed: number[] = [];
    k.tracepoints.pageFree = (pfn) => freed.push(pfn);
    expect(splitFolio(k, page, 2)).toBe(0);
    expect(k.store.test(page, PG_locked)).toBe(true);
    expect(k.store.refcount(page)).toBe(2);
    for (const p of [head, head + 1, head + 511]) expect(k.store.test(p, PG_locked)).toBe(false);
    // Every other page had no mapping and no reference: freed by the split's folio_put.
    expect(freed).toHaveLength(HPAGE_PMD_NR - 1);
    expect(freed).not.toContain(page);
    expect(k.store.test(page, PG_lru)).toBe(true);
    folioUnlock(k, page);
    putPage(k, page);
    putPage(k, page);
    expect(k.allocator.nrFree).toBe(k.nrRamPages);
  });

  it("splitting a locked head keeps the head locked and unlocks the tails (mapped pages stay)", () => {
    const k = createKernel({ ramBytes: 8 << 20, thp: "always" });
    const mm = k.createMm();
    const a = mm.mmap({ length: 2 * PMD_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const base = a + ((PMD_SIZE - (a % PMD_SIZE)) % PMD_SIZE);
    mm.touch(base, true);
    const head = ptePfn(mm.pgtable.pmdGet(base));
    // munmap half of the THP: the PMD is split, the folio stays large and PTE-mapped.
    expect(mm.munmap(base + PMD_SIZE / 2, PMD_SIZE / 2)).toBe(0);
    getPage(k, head);
    expect(folioTrylock(k, head)).toBe(true);
    expect(splitFolio(k, head, 1)).toBe(0);
    expect(k.store.test(head, PG_locked)).toBe(true);
    expect(k.store.test(head + 1, PG_locked)).toBe(false);
    expect(k.store.test(head + 255, PG_locked)).toBe(false);
    expect(k.store.refcount(head + 255)).toBe(1); // its PTE mapping
    expect(k.store.refcount(head + 256)).toBe(0); // unmapped half: freed
    expect(k.store.test(head + 1, PG_lru)).toBe(true);
    folioUnlock(k, head);
    putPage(k, head);
    expect(mm.read(base + 255 * PAGE_SIZE, 1)[0]).toBe(0);
  });

  it("a device-private folio split calls the pgmap's folio_split per new folio, then with -1", () => {
    const k = createKernel({ ramBytes: 8 << 20 });
    const calls: [number, number][] = [];
    const freed: number[] = [];
    const { startPfn } = registerPgmap(k, devicePgmap(MEMORY_DEVICE_PRIVATE, calls, freed), 1024);
    zoneDeviceFolioInitK(k, startPfn, 9); // refcount 1, locked
    expect(splitFolio(k, startPfn, 1)).toBe(0);
    expect(calls).toHaveLength(HPAGE_PMD_NR);
    expect(calls[0]).toEqual([startPfn, startPfn + 1]);
    expect(calls[510]).toEqual([startPfn, startPfn + 511]);
    expect(calls[511]).toEqual([startPfn, -1]);
    expect(freed).toHaveLength(HPAGE_PMD_NR - 1); // the tails had no reference left
    expect(k.store.test(startPfn, PG_locked)).toBe(true);
    expect(k.store.folioNr(startPfn)).toBe(1);

    const coherentCalls: [number, number][] = [];
    const c = registerPgmap(k, devicePgmap(MEMORY_DEVICE_COHERENT, coherentCalls, []), 512).startPfn;
    zoneDeviceFolioInitK(k, c, 9);
    expect(splitFolio(k, c, 1)).toBe(0);
    expect(coherentCalls).toHaveLength(0); // zone_device_private_split_cb: device-private only
  });

  it("split_folio of a THP PMD-mapped in two mms (after fork) splits both PMDs (unmap_folio) and keeps the bytes", () => {
    const k = createKernel({ ramBytes: 16 << 20, thp: "always" });
    const parent = k.createMm();
    const a = parent.mmap({ length: 2 * PMD_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const base = a + ((PMD_SIZE - (a % PMD_SIZE)) % PMD_SIZE);
    parent.write(base + 3 * PAGE_SIZE, new Uint8Array([7, 8, 9]));
    const child = parent.fork();
    const head = ptePfn(parent.pgtable.pmdGet(base));
    expect(ptePfn(child.pgtable.pmdGet(base))).toBe(head);
    expect(k.store.entireMapcount(head)).toBe(2);
    getPage(k, head); // the caller's reference
    expect(folioTrylock(k, head)).toBe(true);
    // can_split_folio: one reference too many (a pin, say) fails with -EBUSY and changes nothing.
    getPage(k, head);
    expect(splitFolio(k, head, 1)).toBe(-16);
    expect(parent.pgtable.pmdGet(base)).not.toBe(0);
    expect(k.store.entireMapcount(head)).toBe(2);
    putPage(k, head);
    expect(splitFolio(k, head, 1)).toBe(0);
    for (const mm of [parent, child]) {
      expect(mm.pgtable.pmdGet(base)).toBe(0);
      expect(ptePfn(mm.pgtable.pteGet(base + 3 * PAGE_SIZE))).toBe(head + 3);
    }
    expect(k.store.folioNr(head + 3)).toBe(1);
    expect(k.store.mapcount(head + 3)).toBe(2);
    expect(k.store.refcount(head + 3)).toBe(2); // two PTE mappings
    expect(k.store.refcount(head)).toBe(3); // two mappings + the caller's
    folioUnlock(k, head);
    putPage(k, head);
    expect([...child.read(base + 3 * PAGE_SIZE, 3)]).toEqual([7, 8, 9]);
    // COW still works page by page: the child's write copies one 4 KiB page, the parent keeps its bytes.
    child.write(base + 3 * PAGE_SIZE, new Uint8Array([1]));
    expect([...parent.read(base + 3 * PAGE_SIZE, 3)]).toEqual([7, 8, 9]);
    expect([...child.read(base + 3 * PAGE_SIZE, 3)]).toEqual([1, 8, 9]);
    child.exit();
    parent.exit();
    expect(k.allocator.nrFree).toBe(k.nrRamPages);
  });
});
