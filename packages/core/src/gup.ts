/**
 * get_user_pages / pin_user_pages (mm/gup.c: is_valid_gup_args, __get_user_pages, check_vma_flags,
 * follow_page_mask / follow_page_pte / follow_huge_pmd, faultin_page, try_grab_folio, gup_put_folio,
 * __gup_longterm_locked, check_and_migrate_movable_folios, migrate_longterm_unpinnable_folios, gup_fast_fallback,
 * unpin_user_page(s)); gup_must_unshare and folio_is_longterm_pinnable (include/linux/mm.h).
 *
 * Pages are returned as pfns (of the subpage, as the kernel returns struct page pointers) pushed onto `pages`.
 * - FOLL_GET (get_user_pages*): one reference per page; release with putPage.
 * - FOLL_PIN (pin_user_pages*): a small folio gets GUP_PIN_COUNTING_BIAS (1024) references, a large folio one
 *   reference and one _pincount; the zero page is never pinned. Release with unpinUserPage(s). folioMaybeDmaPinned
 *   (and so migration's pinned-page checks) sees them.
 * - Faulting: a missing or non-present entry (none, zero page for a write, device-private → migrate_to_ram,
 *   device-exclusive → restore) or a write to a read-only entry (COW) goes through handleMmFault; a read-only pin
 *   of a shared anon page faults with FAULT_FLAG_UNSHARE (gup_must_unshare). A migration entry or locked page in the
 *   way returns -EBUSY (the kernel would sleep and retry; the functional plane cannot).
 * - FOLL_LONGTERM: a MEMORY_DEVICE_COHERENT page is not long-term pinnable: its pin is turned into a reference and
 *   kernel.migrateDeviceCoherentFolio moves it to system RAM, then the whole range is pinned again (-EAGAIN loop).
 *   With no migrateDeviceCoherentFolio installed, or when it fails, every pin is dropped and the call returns
 *   -EBUSY. Plain GUP and non-longterm pins leave coherent pages where they are.
 * - Return: the number of pages (possibly fewer than asked), or a negative errno when the first page fails.
 *
 * Not modelled: FOLL_FORCE (throws), FOLL_NOWAIT / FOLL_UNLOCKABLE lock dropping, ZONE_MOVABLE/CMA longterm
 * migration (hmmsim RAM is ZONE_NORMAL), gup_test's benchmarking.
 */
import { MEMORY_DEVICE_COHERENT } from "./dev-pagemap.js";
import { EAGAIN, EBUSY, EFAULT } from "./errno.js";
import { InvalidArgumentError, KernelRuleError } from "./errors.js";
import type { Kernel } from "./kernel.js";
import { handleMmFault, vmNormalPage } from "./memory.js";
import { mmapAssertLocked, type Mm } from "./mm.js";
import { HPAGE_PMD_NR, PAGE_SIZE, PG_anon, PG_anon_exclusive, PG_dirty, PMD_SIZE, isAligned } from "./page-flags.js";
import { GUP_PIN_COUNTING_BIAS, putPages } from "./page-ref.js";
import { pmdTransHuge, ptePfn, ptePresent, pteSpecial, pteWrite } from "./pgtable.js";
import { FAULT_FLAG_REMOTE, FAULT_FLAG_UNSHARE, FAULT_FLAG_WRITE, VM_FAULT_ERROR, VM_FAULT_RETRY, vmFaultToErrno } from "./vm-fault.js";
import { VM_IO, VM_PFNMAP, VM_READ, VM_WRITE, isCowMapping, vmaIsAnonymous, type VmAreaStruct } from "./vma.js";

/** enum FOLL_* (include/linux/mm_types.h). */
export const FOLL_WRITE = 1 << 0;
export const FOLL_GET = 1 << 1;
export const FOLL_DUMP = 1 << 2;
export const FOLL_FORCE = 1 << 3;
export const FOLL_NOWAIT = 1 << 4;
export const FOLL_NOFAULT = 1 << 5;
export const FOLL_HWPOISON = 1 << 6;
export const FOLL_ANON = 1 << 7;
export const FOLL_LONGTERM = 1 << 8;
export const FOLL_SPLIT_PMD = 1 << 9;
export const FOLL_PCI_P2PDMA = 1 << 10;
export const FOLL_INTERRUPTIBLE = 1 << 11;
export const FOLL_HONOR_NUMA_FAULT = 1 << 12;
/** Internal flags (mm/internal.h, __NR_FOLL = 13). */
export const FOLL_TOUCH = 1 << 13;
export const FOLL_TRIED = 1 << 14;
export const FOLL_REMOTE = 1 << 15;
export const FOLL_PIN = 1 << 16;
export const FOLL_FAST_ONLY = 1 << 17;
export const FOLL_UNLOCKABLE = 1 << 18;
const INTERNAL_GUP_FLAGS = FOLL_TOUCH | FOLL_TRIED | FOLL_REMOTE | FOLL_PIN | FOLL_FAST_ONLY | FOLL_UNLOCKABLE;
const USER_GUP_FLAGS = (1 << 13) - 1;

export { GUP_PIN_COUNTING_BIAS, folioMaybeDmaPinned } from "./page-ref.js";

const NEED_FAULT = -1001;
const NEED_UNSHARE = -1002;
/** Safety net against a fault that reports success but leaves nothing to follow. */
const MAX_FAULTS_PER_PAGE = 8;

/** folio_is_longterm_pinnable(): everything but device-coherent pages (no ZONE_MOVABLE/CMA in hmmsim). */
export function folioIsLongtermPinnable(k: Kernel, pfn: number): boolean {
  return k.pgmaps.pgmapOf(pfn)?.type !== MEMORY_DEVICE_COHERENT;
}

/** try_grab_folio(): FOLL_GET → +refs; FOLL_PIN → +refs×1024 (small) or +refs and _pincount (large); 0. */
export function tryGrabFolio(k: Kernel, pfn: number, refs: number, flags: number): number {
  const s = k.store;
  if (s.refcount(pfn) <= 0) throw new KernelRuleError("try_grab_folio_free_folio", `pfn ${pfn}`);
  if (flags & FOLL_GET) {
    s.refAdd(pfn, refs);
  } else if (flags & FOLL_PIN) {
    if (k.isZeroPfn(pfn)) return 0;
    if (s.isLarge(pfn)) {
      s.refAdd(pfn, refs);
      s.pincountAdd(pfn, refs);
    } else {
      s.refAdd(pfn, refs * GUP_PIN_COUNTING_BIAS);
    }
  }
  return 0;
}

/** gup_put_folio(): undo tryGrabFolio. */
export function gupPutFolio(k: Kernel, pfn: number, refs: number, flags: number): void {
  const s = k.store;
  if (flags & FOLL_PIN) {
    if (k.isZeroPfn(pfn)) return;
    if (s.isLarge(pfn)) s.pincountAdd(pfn, -refs);
    else refs *= GUP_PIN_COUNTING_BIAS;
  }
  putPages(k, pfn, refs);
}

/** unpin_user_page(): release one FOLL_PIN page. */
export function unpinUserPage(k: Kernel, pfn: number): void {
  gupPutFolio(k, pfn, 1, FOLL_PIN);
}

/** unpin_user_pages() / unpin_user_pages_dirty_lock(): release pins (first `n`, default all), optionally dirtying. */
export function unpinUserPages(k: Kernel, pages: readonly number[], n = pages.length, makeDirty = false): void {
  for (let i = 0; i < n; i++) {
    const pfn = pages[i]!;
    if (makeDirty && !k.isZeroPfn(pfn)) k.store.set(k.store.folioHead(pfn), PG_dirty);
    unpinUserPage(k, pfn);
  }
}

/** gup_must_unshare(): a read-only pin must not see a page a later COW could replace. */
function gupMustUnshare(k: Kernel, vma: VmAreaStruct | null, flags: number, pfn: number): boolean {
  if ((flags & (FOLL_WRITE | FOLL_PIN)) !== FOLL_PIN) return false;
  const s = k.store;
  if (k.isZeroPfn(pfn) || !s.test(s.folioHead(pfn), PG_anon)) {
    if (!(flags & FOLL_LONGTERM)) return false;
    if (vma === null) return true;
    return isCowMapping(vma.vmFlags);
  }
  return !s.test(pfn, PG_anon_exclusive);
}

/** check_vma_flags(). */
function checkVmaFlags(vma: VmAreaStruct, flags: number): number {
  if (vma.vmFlags & (VM_IO | VM_PFNMAP)) return -EFAULT;
  if (flags & FOLL_ANON && !vmaIsAnonymous(vma)) return -EFAULT;
  if (flags & FOLL_WRITE) {
    if (!(vma.vmFlags & VM_WRITE)) return -EFAULT;
  } else if (!(vma.vmFlags & VM_READ)) {
    return -EFAULT;
  }
  return 0;
}

/** follow_page_mask(): the grabbed pfn, NEED_FAULT, NEED_UNSHARE, or -errno. */
function followPage(mm: Mm, vma: VmAreaStruct, addr: number, flags: number): number {
  const k = mm.kernel;
  const pt = mm.pgtable;
  const pmd = pt.pmdGet(addr);
  let entry: number;
  let pfn: number;
  if (pmd !== 0) {
    // follow_huge_pmd (THP or hugetlb); a non-present PMD (migration, device-private) is no_page_table → fault.
    if (!pmdTransHuge(pmd)) return NEED_FAULT;
    if (flags & FOLL_WRITE && !pteWrite(pmd)) return NEED_FAULT;
    entry = pmd;
    pfn = ptePfn(pmd) + ((Math.floor(addr / PAGE_SIZE) & (HPAGE_PMD_NR - 1)));
  } else {
    const pte = pt.pteGet(addr);
    if (!ptePresent(pte)) return NEED_FAULT;
    if (flags & FOLL_WRITE && !pteWrite(pte)) return NEED_FAULT;
    entry = pte;
    pfn = vmNormalPage(k, pte);
    if (pfn < 0) {
      if (!k.isZeroPfn(ptePfn(pte))) return -EFAULT;
      pfn = k.zeroPfn;
    }
  }
  if (!pteWrite(entry) && gupMustUnshare(k, vma, flags, pfn)) return NEED_UNSHARE;
  const r = tryGrabFolio(k, pfn, 1, flags);
  if (r !== 0) return r;
  if (flags & FOLL_TOUCH && flags & FOLL_WRITE && !k.isZeroPfn(pfn)) k.store.set(k.store.folioHead(pfn), PG_dirty);
  return pfn;
}

/** __get_user_pages(): the caller holds the mmap lock. */
function getUserPagesLocked(mm: Mm, start: number, nrPages: number, flags: number, pages: number[]): number {
  let i = 0;
  for (let addr = start; i < nrPages; addr += PAGE_SIZE) {
    const vma = mm.vmaLookup(addr);
    if (vma === null) return i > 0 ? i : -EFAULT;
    const bad = checkVmaFlags(vma, flags);
    if (bad !== 0) return i > 0 ? i : bad;
    let faults = 0;
    for (;;) {
      const r = followPage(mm, vma, addr, flags);
      if (r >= 0) {
        pages.push(r);
        break;
      }
      if (r !== NEED_FAULT && r !== NEED_UNSHARE) return i > 0 ? i : r;
      // faultin_page()
      if (flags & FOLL_NOFAULT || ++faults > MAX_FAULTS_PER_PAGE) return i > 0 ? i : flags & FOLL_NOFAULT ? -EFAULT : -EBUSY;
      const ff = (flags & FOLL_WRITE ? FAULT_FLAG_WRITE : 0) | (r === NEED_UNSHARE ? FAULT_FLAG_UNSHARE : 0) | (flags & FOLL_REMOTE ? FAULT_FLAG_REMOTE : 0);
      const ret = handleMmFault(mm, addr, ff);
      if (ret & VM_FAULT_ERROR) return i > 0 ? i : vmFaultToErrno(ret, flags);
      if (ret & VM_FAULT_RETRY) return i > 0 ? i : -EBUSY;
    }
    i++;
  }
  return i;
}

/**
 * __gup_longterm_locked(): with FOLL_LONGTERM, pages that may not be long-term pinned (device-coherent) are
 * migrated out and the range pinned again.
 */
function gupLongtermLocked(mm: Mm, start: number, nrPages: number, flags: number, pages: number[]): number {
  if (!(flags & FOLL_LONGTERM)) return getUserPagesLocked(mm, start, nrPages, flags, pages);
  for (let round = 0; ; round++) {
    const got: number[] = [];
    const n = getUserPagesLocked(mm, start, nrPages, flags, got);
    if (n <= 0) return n;
    const rc = checkAndMigrateMovable(mm.kernel, got);
    if (rc === 0) {
      pages.push(...got);
      return n;
    }
    if (rc !== -EAGAIN) return rc;
    if (round >= MAX_FAULTS_PER_PAGE) return -EBUSY;
  }
}

/**
 * check_and_migrate_movable_folios(): 0 when every page may stay pinned; otherwise every pin is dropped, the
 * device-coherent pages are migrated (kernel.migrateDeviceCoherentFolio) and -EAGAIN (retry) or -EBUSY returned.
 */
function checkAndMigrateMovable(k: Kernel, pfns: number[]): number {
  if (pfns.every((p) => folioIsLongtermPinnable(k, p))) return 0;
  // migrate_longterm_unpinnable_folios()
  let ret = -EAGAIN;
  for (let i = 0; i < pfns.length; i++) {
    const pfn = pfns[i]!;
    if (folioIsLongtermPinnable(k, pfn)) {
      gupPutFolio(k, pfn, 1, FOLL_PIN);
      continue;
    }
    if (ret !== -EAGAIN) {
      gupPutFolio(k, pfn, 1, FOLL_PIN);
      continue;
    }
    // Convert the pin into a plain reference, which migrate_device_coherent_folio consumes.
    k.store.refAdd(pfn, 1);
    gupPutFolio(k, pfn, 1, FOLL_PIN);
    const migrate = k.migrateDeviceCoherentFolio;
    if (migrate === null) {
      putPages(k, pfn, 1);
      ret = -EBUSY;
    } else if (migrate(k.store.folioHead(pfn)) !== 0) {
      ret = -EBUSY;
    }
  }
  pfns.length = 0;
  return ret;
}

/** is_valid_gup_args(): misuse the kernel WARNs about throws; returns the flags with `toSet` added. */
function validGupArgs(mm: Mm, start: number, nrPages: number, flags: number, pages: number[], toSet: number, allowed: number): number {
  if (mm === null || typeof mm !== "object" || typeof mm.assertLive !== "function") throw new InvalidArgumentError("mm", "must be an Mm");
  mm.assertLive();
  if (!Number.isInteger(start) || start < 0 || !isAligned(start, PAGE_SIZE))
    throw new InvalidArgumentError("start", "must be a page-aligned integer >= 0", start);
  if (!Number.isInteger(nrPages) || nrPages < 0) throw new InvalidArgumentError("nrPages", "must be an integer >= 0", nrPages);
  if (!Number.isInteger(flags) || flags < 0) throw new InvalidArgumentError("gupFlags", "must be FOLL_* bits", flags);
  if (!Array.isArray(pages)) throw new InvalidArgumentError("pages", "must be an array to push pfns onto");
  if (flags & FOLL_FORCE) throw new InvalidArgumentError("gupFlags", "FOLL_FORCE is not modelled", flags);
  if (flags & ~allowed) throw new KernelRuleError("is_valid_gup_args", `unexpected gup flags 0x${(flags & ~allowed).toString(16)}`);
  if (flags & INTERNAL_GUP_FLAGS) throw new KernelRuleError("is_valid_gup_args", "internal FOLL_* flags passed by the caller");
  if (flags & FOLL_LONGTERM && flags & FOLL_PCI_P2PDMA) throw new KernelRuleError("is_valid_gup_args", "FOLL_LONGTERM with FOLL_PCI_P2PDMA");
  if (flags & FOLL_LONGTERM && !(toSet & FOLL_PIN)) throw new KernelRuleError("is_valid_gup_args", "FOLL_LONGTERM without FOLL_PIN");
  return flags | toSet;
}

/**
 * get_user_pages(): FOLL_GET a reference on nrPages pages from `start` of mm (get_user_pages_remote semantics);
 * the caller holds the mmap lock. Release each page with putPage.
 */
export function getUserPages(mm: Mm, start: number, nrPages: number, gupFlags: number, pages: number[]): number {
  const flags = validGupArgs(mm, start, nrPages, gupFlags, pages, FOLL_GET | FOLL_TOUCH, USER_GUP_FLAGS);
  mmapAssertLocked(mm);
  return gupLongtermLocked(mm, start, nrPages, flags, pages);
}

/** pin_user_pages(): FOLL_PIN (FOLL_LONGTERM allowed); the caller holds the mmap lock. Release with unpinUserPages. */
export function pinUserPages(mm: Mm, start: number, nrPages: number, gupFlags: number, pages: number[]): number {
  const flags = validGupArgs(mm, start, nrPages, gupFlags, pages, FOLL_PIN | FOLL_TOUCH, USER_GUP_FLAGS);
  mmapAssertLocked(mm);
  return gupLongtermLocked(mm, start, nrPages, flags, pages);
}

/** get_user_pages_fast(): lockless walk of present entries, then the slow path (taking the mmap lock) for the rest. */
export function getUserPagesFast(mm: Mm, start: number, nrPages: number, gupFlags: number, pages: number[]): number {
  const allowed = FOLL_WRITE | FOLL_LONGTERM | FOLL_NOFAULT | FOLL_PCI_P2PDMA | FOLL_HONOR_NUMA_FAULT;
  const flags = validGupArgs(mm, start, nrPages, gupFlags, pages, FOLL_GET, allowed);
  return gupFastFallback(mm, start, nrPages, flags, pages);
}

/** pin_user_pages_fast(): FOLL_PIN variant of getUserPagesFast. Release with unpinUserPages. */
export function pinUserPagesFast(mm: Mm, start: number, nrPages: number, gupFlags: number, pages: number[]): number {
  const allowed = FOLL_WRITE | FOLL_LONGTERM | FOLL_NOFAULT | FOLL_PCI_P2PDMA | FOLL_HONOR_NUMA_FAULT;
  const flags = validGupArgs(mm, start, nrPages, gupFlags, pages, FOLL_PIN, allowed);
  return gupFastFallback(mm, start, nrPages, flags, pages);
}

/** gup_fast(): grab present, writable-enough, pinnable pages without faulting; stop at the first that is not. */
function gupFast(mm: Mm, start: number, nrPages: number, flags: number, pages: number[]): number {
  const k = mm.kernel;
  const pt = mm.pgtable;
  let n = 0;
  for (let addr = start; n < nrPages; addr += PAGE_SIZE) {
    const pmd = pt.pmdGet(addr);
    let entry: number;
    let pfn: number;
    if (pmd !== 0) {
      if (!pmdTransHuge(pmd)) break;
      entry = pmd;
      pfn = ptePfn(pmd) + (Math.floor(addr / PAGE_SIZE) % (PMD_SIZE / PAGE_SIZE));
    } else {
      entry = pt.pteGet(addr);
      if (!ptePresent(entry) || pteSpecial(entry)) break;
      pfn = ptePfn(entry);
    }
    if (flags & FOLL_WRITE && !pteWrite(entry)) break;
    if (flags & FOLL_LONGTERM && !folioIsLongtermPinnable(k, pfn)) break;
    if (!pteWrite(entry) && gupMustUnshare(k, null, flags, pfn)) break;
    tryGrabFolio(k, pfn, 1, flags);
    pages.push(pfn);
    n++;
  }
  return n;
}

/** gup_fast_fallback(). */
function gupFastFallback(mm: Mm, start: number, nrPages: number, flags: number, pages: number[]): number {
  if (nrPages === 0) return 0;
  const nrPinned = gupFast(mm, start, nrPages, flags, pages);
  if (nrPinned === nrPages || flags & FOLL_FAST_ONLY) return nrPinned;
  const rest = (): number =>
    gupLongtermLocked(mm, start + nrPinned * PAGE_SIZE, nrPages - nrPinned, flags | FOLL_TOUCH, pages);
  // The slow path takes mmap_read_lock unless the caller already holds the lock.
  const ret = mm.mmapLock.isLocked() ? rest() : mm.withReadLock("gup", rest);
  if (ret <= 0) return nrPinned > 0 ? nrPinned : ret;
  return nrPinned + ret;
}
