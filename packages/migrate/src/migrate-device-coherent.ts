/**
 * migrate_device_coherent_folio() (mm/migrate_device.c): move one MEMORY_DEVICE_COHERENT folio back to system RAM
 * so that GUP may pin it FOLL_LONGTERM (mm/gup.c migrate_longterm_unpinnable_folios calls it after converting its
 * pin into a plain reference). @hmmsim/core calls it through the `kernel.migrateDeviceCoherentFolio` slot; install
 * it with `installMigrateDeviceCoherentFolio(kernel)`.
 *
 * Kernel steps, with this package's exported device-side API:
 * 1. Collect and unmap the one folio: the kernel locks it, builds `src = migrate_pfn(pfn) | MIGRATE` and calls
 *    migrate_device_unmap() (internal) on it, using the caller's reference as the collection reference. hmmsim
 *    calls `migrateDevicePfns(k, [pfn], 1)` (migrate_device_range-like: it takes its own reference and the lock,
 *    then unmaps) and drops the caller's reference right after, so the folio ends in the same state: one
 *    collection reference, locked, mapped by migration entries. A folio locked by someone else (the kernel would
 *    sleep in folio_lock), still mapped or pinned is restored by the unmap: -EBUSY.
 * 2. Allocate an order-0 system page (folio_alloc(GFP_USER)) and lock it; none → dst 0.
 * 3. migrateDevicePages; if the entry still migrates, copy the bytes and content tag (folio_copy).
 * 4. migrateDeviceFinalize: the PTEs point at the new page (or back at the old one), references dropped.
 * Returns 0 when the folio moved, else -EBUSY. The caller's reference is consumed on every path.
 *
 * A large folio is a kernel WARN_ON_ONCE (coherent devices in hmmsim, as dmirror's, hand out order-0 pages):
 * KernelRuleError, and nothing changes (the caller keeps its reference).
 */
import {
  EBUSY,
  InvalidArgumentError,
  KernelRuleError,
  MEMORY_DEVICE_COHERENT,
  allocPages,
  folioTrylock,
  pagePgmap,
  putPage,
  type Kernel,
} from "@hmmsim/core";
import { migrateDeviceFinalize, migrateDevicePages, migrateDevicePfns } from "./migrate-device.js";
import { MIGRATE_PFN_MIGRATE, migratePfn } from "./migrate-pfn.js";

/**
 * migrate_device_coherent_folio(folio): `pfn` is the folio (head) the caller holds one reference on. Returns 0
 * (the data now lives in a system page mapped where the coherent page was) or -EBUSY.
 */
export function migrateDeviceCoherentFolio(k: Kernel, pfn: number): number {
  if (k === null || typeof k !== "object" || !("store" in k)) throw new InvalidArgumentError("k", "must be a Kernel");
  if (!Number.isInteger(pfn) || !k.store.pfnValid(pfn)) throw new InvalidArgumentError("pfn", "must be a pfn with a struct page", pfn);
  const s = k.store;
  if (s.refcount(s.folioHead(pfn)) <= 0) throw new KernelRuleError("migrate_device_coherent_folio_no_ref", `pfn ${pfn}: the caller must hold a reference`);
  if (s.folioNr(pfn) > 1 || s.isTail(pfn)) throw new KernelRuleError("migrate_device_coherent_folio_large", `WARN_ON_ONCE(folio_test_large(folio)) at pfn ${pfn}`);
  if (pagePgmap(k, pfn)?.type !== MEMORY_DEVICE_COHERENT)
    throw new InvalidArgumentError("pfn", "must be a MEMORY_DEVICE_COHERENT page", pfn);

  const src = [pfn];
  const dst = [0];
  migrateDevicePfns(k, src, 1);
  // The collection holds its own reference now: the caller's one is consumed here.
  putPage(k, pfn);
  if ((src[0]! & MIGRATE_PFN_MIGRATE) === 0) return -EBUSY;

  const dpage = allocPages(k, 0);
  if (dpage >= 0) {
    if (!folioTrylock(k, dpage)) throw new KernelRuleError("migrate_device_coherent_folio_lock", `new page ${dpage} is locked`);
    dst[0] = migratePfn(dpage);
  }
  migrateDevicePages(k, src, dst, 1);
  if ((src[0]! & MIGRATE_PFN_MIGRATE) !== 0) {
    // folio_copy(dfolio, folio)
    k.pageBytes.copy(dpage, pfn);
    if (k.charge !== null) k.charge("pageCopy", 1);
  }
  migrateDeviceFinalize(k, src, dst, 1);
  return (src[0]! & MIGRATE_PFN_MIGRATE) !== 0 ? 0 : -EBUSY;
}

/** Fill `kernel.migrateDeviceCoherentFolio` (the slot GUP's FOLL_LONGTERM path calls) with this implementation. */
export function installMigrateDeviceCoherentFolio(k: Kernel): void {
  k.migrateDeviceCoherentFolio = (pfn) => migrateDeviceCoherentFolio(k, pfn);
}
