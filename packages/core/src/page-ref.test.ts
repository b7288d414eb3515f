// Error paths of the folio reference and lock helpers leave the struct pages as they were: no chunk of the
// mem_map is allocated for a page nobody ever wrote (its fields read as their defaults).
import { describe, expect, it } from "vitest";
import { createKernel } from "./kernel.js";
import { memcgMigrate, memcgUncharge } from "./memcontrol.js";
import { folioUnlock, getPage, putPage, putPages } from "./page-ref.js";

describe("folio_put / folio_unlock / memcg on a never-written struct page", () => {
  it("throw the kernel's rule and allocate nothing", () => {
    const k = createKernel({ ramBytes: 512 << 20, bytes: false });
    // a RAM pfn in a 128 MiB chunk no allocation has touched (the allocator hands out low pfns first)
    const pfn = k.nrRamPages - 1;
    const chunks = k.store.allocatedChunks;
    expect(() => putPage(k, pfn)).toThrow(/folio_put_underflow/);
    expect(() => putPages(k, pfn, 3)).toThrow(/folio_put_underflow/);
    expect(() => folioUnlock(k, pfn)).toThrow(/folio_unlock_not_locked/);
    expect(() => getPage(k, pfn)).toThrow(/get_page_on_free_folio/);
    memcgUncharge(k.store, k.memcgs, pfn);
    memcgMigrate(k.store, k.memcgs, pfn, pfn - 1);
    expect(k.store.allocatedChunks).toBe(chunks);
    expect(k.store.info(pfn)).toMatchObject({ refcount: 0, flags: 0, memcgId: 0 });
  });
});
