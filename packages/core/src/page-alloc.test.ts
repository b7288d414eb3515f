import { describe, expect, it } from "vitest";
import { KernelRuleError } from "./errors.js";
import { createKernel } from "./kernel.js";
import { PageAllocator } from "./page-alloc.js";
import { PG_head, PG_tail, ZONE_NORMAL } from "./page-flags.js";
import { allocPages, getPage, putPage } from "./page-ref.js";

describe("page allocator (mm/page_alloc.c)", () => {
  it("hands out order-0 and order-9 pages until exhausted", () => {
    const a = new PageAllocator(1024); // two 2 MiB blocks
    const huge = a.alloc(9);
    expect(huge % 512).toBe(0);
    const small: number[] = [];
    for (let i = 0; i < 512; i++) small.push(a.alloc(0));
    expect(new Set(small).size).toBe(512);
    expect(small.every((p) => p < huge || p >= huge + 512)).toBe(true);
    expect(a.alloc(0)).toBe(-1);
    expect(a.alloc(9)).toBe(-1);
    expect(a.nrFree).toBe(0);
  });

  it("prefers partly used blocks for order 0 so order 9 stays possible", () => {
    const a = new PageAllocator(1024);
    const p = a.alloc(0);
    a.alloc(0);
    a.free(p, 0);
    expect(a.alloc(9)).toBeGreaterThanOrEqual(0);
    expect(a.freeHugeBlocks).toBe(0);
    expect(a.alloc(0)).toBe(p);
  });

  it("re-forms a free 2 MiB block when all its pages come back", () => {
    const a = new PageAllocator(512);
    const pages = Array.from({ length: 512 }, () => a.alloc(0));
    expect(a.alloc(9)).toBe(-1);
    for (const p of pages) a.free(p, 0);
    expect(a.alloc(9)).toBe(0);
  });

  it("double free is a kernel bug", () => {
    const a = new PageAllocator(512);
    const p = a.alloc(0);
    a.free(p, 0);
    expect(() => a.free(p, 0)).toThrow(KernelRuleError);
  });

  it("a 64 GiB machine: mem_map at boot with memmap boot, per chunk on first write by default (lazy)", () => {
    const k = createKernel({ ramBytes: 64 * 1024 ** 3, bytes: false, memmap: "boot" });
    expect(k.nrRamPages).toBe(16 * 1024 * 1024);
    expect(k.memmap).toBe("boot");
    // RAM + the zero page: 16 M + 1 pfns in chunks of 32768 pages, 28 bytes per page.
    expect(k.store.allocatedChunks).toBe(513);
    expect(k.store.hostBytes).toBeLessThan(513 * 32768 * 29);
    const p = allocPages(k, 9);
    expect(p).toBe(0);
    expect(k.allocator.nrFree).toBe(16 * 1024 * 1024 - 512);

    const lazy = createKernel({ ramBytes: 64 * 1024 ** 3, bytes: false });
    expect(lazy.memmap).toBe("lazy");
    expect(lazy.store.allocatedChunks).toBe(1); // the zero page's chunk
    expect(allocPages(lazy, 9)).toBe(0);
    expect(lazy.store.allocatedChunks).toBe(2);
    expect(lazy.store.zone(16 * 1024 * 1024 - 1)).toBe(ZONE_NORMAL);
    expect(() => createKernel({ ramBytes: 2 << 20, memmap: "eager" as "boot" })).toThrow(/memmap/);
  });

  it("allocPages preps compound pages; putPage at refcount 0 frees", () => {
    const k = createKernel({ ramBytes: 4 << 20 });
    const free0 = k.allocator.nrFree;
    const h = allocPages(k, 9);
    expect(k.store.test(h, PG_head)).toBe(true);
    expect(k.store.test(h + 5, PG_tail)).toBe(true);
    expect(k.store.folioHead(h + 5)).toBe(h);
    expect(k.store.refcount(h + 5)).toBe(1);
    getPage(k, h + 7); // a tail ref is a folio ref
    expect(k.store.refcount(h)).toBe(2);
    putPage(k, h + 7);
    putPage(k, h);
    expect(k.allocator.nrFree).toBe(free0);
    expect(k.store.flags(h + 5)).toBe(0);
    expect(() => putPage(k, h)).toThrow(KernelRuleError);
  });

  it("-1 (ENOMEM) when RAM is exhausted", () => {
    const k = createKernel({ ramBytes: 2 << 20 });
    for (let i = 0; i < 512; i++) expect(allocPages(k, 0)).toBeGreaterThanOrEqual(0);
    expect(allocPages(k, 0)).toBe(-1);
  });
});
