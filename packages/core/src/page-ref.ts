/**
 * Folio references, allocation and freeing (include/linux/mm.h folio_get/folio_put/folio_try_get,
 * mm/swap.c __folio_put, mm/page_alloc.c alloc_pages/free_unref_folios, mm/memremap.c free_zone_device_folio),
 * and the folio lock (include/linux/pagemap.h folio_trylock/folio_unlock).
 *
 * A normal folio whose refcount drops to 0 goes back to the allocator (memcg uncharged, bytes dropped). A
 * ZONE_DEVICE folio at refcount 0 runs free_zone_device_folio: clear AnonExclusive, memcg uncharge, clear
 * mapping, call pgmap.ops.pageFree(pfn), put pgmap->ref ×nr. The zero page is reserved and never freed.
 */
import {
  MEMORY_DEVICE_COHERENT,
  MEMORY_DEVICE_PRIVATE,
} from "./dev-pagemap.js";
import { KernelRuleError } from "./errors.js";
import type { Kernel } from "./kernel.js";
import { memcgUncharge, memcgUnchargeAt } from "./memcontrol.js";
import { PAGE_SLOT_MASK } from "./page-store.js";
import {
  PG_anon,
  PG_anon_exclusive,
  PG_dirty,
  PG_head,
  PG_hugetlb,
  PG_locked,
  PG_lru,
  PG_reserved,
  PG_swapbacked,
  PG_tail,
  ZONE_DEVICE,
  ZONE_NONE,
} from "./page-flags.js";

/**
 * alloc_pages(GFP_HIGHUSER_MOVABLE, order): a RAM folio with refcount 1, or -1 when RAM is exhausted (the
 * caller returns -ENOMEM / VM_FAULT_OOM). Order 9 preps a compound folio (PG_head + PG_tail). Not zeroed unless
 * `zero` (clear_highpage on each page, charged as pageZero).
 */
export function allocPages(k: Kernel, order: number, zero = false): number {
  const pfn = k.allocator.alloc(order);
  if (pfn < 0) return -1;
  const s = k.store;
  const nr = 1 << order;
  if (order === 0 && !zero) {
    // the common single page, the same state as the loop below gives
    const c = s.pagesOf(pfn);
    const i = pfn & PAGE_SLOT_MASK;
    c.flags[i] = 0;
    c.order[i] = 0;
    c.mapcount[i] = 0;
    c.mapping[i] = 0;
    s.setIndex(pfn, 0);
    c.refcount[i] = 1;
    if (k.tracepoints.pageAlloc !== null) k.tracepoints.pageAlloc(pfn, order);
    return pfn;
  }
  for (let p = pfn; p < pfn + nr; p++) {
    s.setFlagsWord(p, order === 0 ? 0 : p === pfn ? PG_head : PG_tail);
    s.setOrder(p, order);
    s.setMapcount(p, 0);
    s.setMapping(p, 0);
    s.setIndex(p, 0);
  }
  s.setRefcount(pfn, 1);
  if (zero) {
    for (let p = pfn; p < pfn + nr; p++) k.pageBytes.clear(p);
    if (k.charge !== null) k.charge("pageZero", nr);
  }
  if (k.tracepoints.pageAlloc !== null) k.tracepoints.pageAlloc(pfn, order);
  return pfn;
}

/** folio_get(page_folio(pfn)). Getting a free folio is a kernel bug. */
export function getPage(k: Kernel, pfn: number): void {
  const s = k.store;
  if (s.zone(pfn) === ZONE_NONE) throw new KernelRuleError("get_page_invalid_pfn", `pfn ${pfn}`);
  const head = s.folioHead(pfn);
  const v = s.refcount(head);
  if (v <= 0) throw new KernelRuleError("get_page_on_free_folio", `pfn ${pfn}`);
  s.setRefcount(head, v + 1);
}

/** folio_try_get(): take a reference unless the folio is free (refcount 0). */
export function folioTryGet(k: Kernel, pfn: number): boolean {
  if (k.store.refcount(pfn) <= 0) return false;
  k.store.refAdd(pfn, 1);
  return true;
}

/** folio_put(page_folio(pfn)): drop a reference; at 0 the folio is freed (see the file comment). */
export function putPage(k: Kernel, pfn: number): void {
  putPages(k, pfn, 1);
}

/** folio_put_refs(). */
export function putPages(k: Kernel, pfn: number, n: number): void {
  const s = k.store;
  let head = pfn;
  let c = s.pagesIfAny(pfn);
  let i = pfn & PAGE_SLOT_MASK;
  if (c !== undefined && (c.flags[i]! & PG_tail) !== 0) {
    head = s.folioHead(pfn);
    c = s.pagesIfAny(head);
    i = head & PAGE_SLOT_MASK;
  }
  if (c === undefined) {
    // a struct page never written: refcount 0 (and put of 0 references a no-op write, as setRefcount(head, 0))
    if (n > 0) throw new KernelRuleError("folio_put_underflow", `pfn ${head} refcount 0 - ${n}`);
    c = s.pagesOf(head);
  }
  const v = c.refcount[i]! - n;
  if (v < 0) throw new KernelRuleError("folio_put_underflow", `pfn ${head} refcount ${v + n} - ${n}`);
  c.refcount[i] = v;
  if (v > 0) return;
  const flags = c.flags[i]!;
  if ((flags & PG_reserved) !== 0) {
    throw new KernelRuleError("put_page_reserved", `pfn ${head} (zero page) reached refcount 0`);
  }
  if (s.zone(head) === ZONE_DEVICE) freeZoneDeviceFolio(k, head);
  else if ((flags & PG_hugetlb) !== 0) k.hugetlbPool.freeFolio(head);
  else freeFolio(k, head);
}

/** __folio_put → free_unref_folios for a RAM folio (free_page_is_bad checks first). */
function freeFolio(k: Kernel, head: number): void {
  const s = k.store;
  const c = s.pagesOf(head);
  const i = head & PAGE_SLOT_MASK;
  if (c.order[i] === 0) {
    // the common single page: the same checks and resets, its struct page read from its chunk once
    if (c.mapcount[i] !== 0) throw new KernelRuleError("bad_page_nonzero_mapcount", `pfn ${head}`);
    if (s.entireMapcount(head) !== 0) throw new KernelRuleError("bad_page_nonzero_entire_mapcount", `pfn ${head}`);
    if ((c.flags[i]! & PG_locked) !== 0) throw new KernelRuleError("bad_page_locked", `pfn ${head}`);
    memcgUnchargeAt(k.memcgs, c, i);
    k.pageBytes.release(head);
    s.resetFreedPage(head);
    k.allocator.free(head, 0);
    if (k.tracepoints.pageFree !== null) k.tracepoints.pageFree(head, 0);
    return;
  }
  const order = s.order(head);
  const nr = 1 << order;
  for (let p = head; p < head + nr; p++) {
    if (s.mapcount(p) !== 0) throw new KernelRuleError("bad_page_nonzero_mapcount", `pfn ${p}`);
  }
  if (s.entireMapcount(head) !== 0) throw new KernelRuleError("bad_page_nonzero_entire_mapcount", `pfn ${head}`);
  if ((s.flags(head) & PG_locked) !== 0) throw new KernelRuleError("bad_page_locked", `pfn ${head}`);
  memcgUncharge(s, k.memcgs, head);
  for (let p = head; p < head + nr; p++) {
    k.pageBytes.release(p);
    s.resetFreedPage(p);
  }
  k.allocator.free(head, order);
  if (k.tracepoints.pageFree !== null) k.tracepoints.pageFree(head, order);
}

/** free_zone_device_folio() (mm/memremap.c). */
function freeZoneDeviceFolio(k: Kernel, head: number): void {
  const s = k.store;
  const nr = s.folioNr(head);
  const rec = k.pgmaps.recordById(s.pgmapId(head));
  if (rec === undefined) throw new KernelRuleError("free_zone_device_folio_no_pgmap", `pfn ${head}`);
  if (nr === 1) {
    // the common single page: the same steps on one struct page, read from its chunk once
    const c = s.pagesOf(head);
    const i = head & PAGE_SLOT_MASK;
    if (c.mapcount[i] !== 0) throw new KernelRuleError("bad_page_nonzero_mapcount", `pfn ${head}`);
    memcgUnchargeAt(k.memcgs, c, i);
    c.mapping[i] = 0;
    c.flags[i] = c.flags[i]! & ~(PG_anon_exclusive | PG_anon | PG_dirty | PG_lru | PG_swapbacked);
  } else {
    for (let p = head; p < head + nr; p++) {
      if (s.mapcount(p) !== 0) throw new KernelRuleError("bad_page_nonzero_mapcount", `pfn ${p}`);
      s.clear(p, PG_anon_exclusive);
    }
    memcgUncharge(s, k.memcgs, head);
    s.setMapping(head, 0);
    s.clear(head, PG_anon | PG_dirty | PG_lru | PG_swapbacked);
  }
  const type = rec.pgmap.type;
  if (type === MEMORY_DEVICE_PRIVATE || type === MEMORY_DEVICE_COHERENT) {
    if (typeof rec.pgmap.ops.pageFree !== "function")
      throw new KernelRuleError("free_zone_device_folio_no_folio_free", `pgmap ${rec.id}`);
    rec.pgmap.ops.pageFree(head);
    for (let p = head; p < head + nr; p++) k.pageBytes.release(p);
    rec.refs -= nr;
  } else {
    // FS_DAX / GENERIC / P2PDMA: the page stays in use by its owner at refcount 0 (wake_up_var / p2pdma free).
    rec.refs -= nr;
  }
}

/** folio_trylock(). */
export function folioTrylock(k: Kernel, pfn: number): boolean {
  const s = k.store;
  const h = s.folioHead(pfn);
  const c = s.pagesOf(h);
  const i = h & PAGE_SLOT_MASK;
  const f = c.flags[i]!;
  if ((f & PG_locked) !== 0) return false;
  c.flags[i] = f | PG_locked;
  return true;
}
/** folio_unlock(): unlocking an unlocked folio is a kernel bug. */
export function folioUnlock(k: Kernel, pfn: number): void {
  const s = k.store;
  const h = s.folioHead(pfn);
  const c = s.pagesIfAny(h);
  const i = h & PAGE_SLOT_MASK;
  const f = c === undefined ? 0 : c.flags[i]!;
  if (c === undefined || (f & PG_locked) === 0) throw new KernelRuleError("folio_unlock_not_locked", `pfn ${h}`);
  c.flags[i] = f & ~PG_locked;
}
/** folio_test_locked(). */
export function folioTestLocked(k: Kernel, pfn: number): boolean {
  return k.store.test(k.store.folioHead(pfn), PG_locked);
}

/** GUP_PIN_COUNTING_BIAS (include/linux/mm.h): a FOLL_PIN on a small folio adds this to its refcount. */
export const GUP_PIN_COUNTING_BIAS = 1024;

/**
 * folio_maybe_dma_pinned() (include/linux/mm.h): a large folio counts pins in _pincount; a small one is "maybe
 * pinned" once its refcount reaches GUP_PIN_COUNTING_BIAS (false positives with very many plain references, as in
 * the kernel).
 */
export function folioMaybeDmaPinned(k: Kernel, pfn: number): boolean {
  const s = k.store;
  if (s.isLarge(pfn)) return s.pincount(pfn) > 0;
  return s.refcount(pfn) >= GUP_PIN_COUNTING_BIAS;
}
