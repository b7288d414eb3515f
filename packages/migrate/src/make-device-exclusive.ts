/**
 * make_device_exclusive() (mm/rmap.c, the ≥6.15 one-page API) and the GUP it starts with
 * (mm/gup.c get_user_page_vma_remote with FOLL_GET | FOLL_WRITE | FOLL_SPLIT_PMD).
 *
 * The restore on the next CPU access (do_swap_page → remove_device_exclusive_entry, MMU_NOTIFY_CLEAR with owner
 * NULL) is @hmmsim/core's fault handler.
 */
import {
  EFAULT,
  EOPNOTSUPP,
  FAULT_FLAG_REMOTE,
  FAULT_FLAG_WRITE,
  FaultWouldBlockError,
  InvalidArgumentError,
  KernelRuleError,
  MMU_NOTIFY_EXCLUSIVE,
  PAGE_SIZE,
  PG_anon,
  PG_dirty,
  VM_FAULT_ERROR,
  VM_FAULT_RETRY,
  VM_IO,
  VM_PFNMAP,
  VM_WRITE,
  alignDown,
  folioTrylock,
  folioUnlock,
  getPage,
  handleMmFault,
  invalidateEnd,
  invalidateStart,
  isMigrationEntry,
  isVmHugetlbPage,
  makeDeviceExclusiveEntry,
  mmapAssertLocked,
  pmdTransHuge,
  pteDirty,
  ptePfn,
  ptePresent,
  pteSoftDirty,
  pteWrite,
  putPage,
  splitHugePmd,
  vmFaultToErrno,
  vmNormalPage,
  type Mm,
} from "@hmmsim/core";

const MAX_TRIES = 16;

/**
 * get_user_page_vma_remote(mm, addr, FOLL_GET | FOLL_WRITE | FOLL_SPLIT_PMD): the page mapped writable at addr
 * (faulting it in writable, breaking COW, migrating a device-private page back, restoring a device-exclusive
 * entry; a PMD-mapped THP is split into PTEs first), with a reference. Returns the pfn or a negative errno: no
 * VMA, a VM_IO/VM_PFNMAP VMA, a VMA without VM_WRITE, or a special mapping → -EFAULT; a fault error →
 * vm_fault_to_errno. A fault that would sleep (migration entry, locked page) throws FaultWouldBlockError.
 */
export function getUserPageWrite(mm: Mm, addr: number): number {
  const k = mm.kernel;
  const pt = mm.pgtable;
  const vma = mm.vmaLookup(addr);
  if (vma === null) return -EFAULT;
  if ((vma.vmFlags & (VM_IO | VM_PFNMAP)) !== 0 || (vma.vmFlags & VM_WRITE) === 0) return -EFAULT;
  for (let tries = 0; tries < MAX_TRIES; tries++) {
    const pmd = pt.pmdGet(addr);
    if (pmd !== 0 && pmdTransHuge(pmd)) splitHugePmd(mm, vma, addr); // FOLL_SPLIT_PMD
    if (pt.pmdGet(addr) === 0) {
      const pte = pt.pteGet(addr);
      if (ptePresent(pte) && pteWrite(pte)) {
        const page = vmNormalPage(k, pte);
        if (page < 0) return -EFAULT;
        getPage(k, page);
        return page;
      }
    }
    const ret = handleMmFault(mm, addr, FAULT_FLAG_WRITE | FAULT_FLAG_REMOTE);
    if ((ret & VM_FAULT_ERROR) !== 0) return vmFaultToErrno(ret);
    if ((ret & VM_FAULT_RETRY) !== 0) {
      throw new FaultWouldBlockError(addr, isMigrationEntry(pt.pteGet(addr)) || isMigrationEntry(pt.pmdGet(addr)) ? "migration-entry" : "page-locked");
    }
  }
  throw new KernelRuleError("gup_no_progress", `0x${addr.toString(16)}`);
}

/**
 * make_device_exclusive(mm, addr, owner): make the page at addr (aligned down) exclusive to a device. GUP it
 * writable (see getUserPageWrite), require an anon non-hugetlb folio (-EOPNOTSUPP), lock it, send
 * MMU_NOTIFY_EXCLUSIVE over [addr, addr + PAGE_SIZE) with `owner` (the caller filters its own event), re-check
 * that the same page is still mapped writable by a PTE (else retry), and replace the PTE by a device-exclusive
 * entry (dirty moved to the folio, soft-dirty kept; mapcount and the mapping's reference stay). Returns the pfn
 * with the folio locked and referenced (the caller programs its device, then folioUnlock + putPage), or a
 * negative errno. The caller holds the mmap lock. A folio locked by someone else (folio_lock_killable would
 * sleep) throws FaultWouldBlockError.
 */
export function makeDeviceExclusive(mm: Mm, addr: number, owner: unknown): number {
  if (mm === null || typeof mm !== "object" || !("pgtable" in mm)) throw new InvalidArgumentError("mm", "must be an Mm");
  if (!Number.isSafeInteger(addr) || addr < 0) throw new InvalidArgumentError("addr", "must be an integer >= 0", addr);
  mm.assertLive();
  mmapAssertLocked(mm);
  const k = mm.kernel;
  const s = k.store;
  const pt = mm.pgtable;
  addr = alignDown(addr, PAGE_SIZE);
  for (let tries = 0; tries < MAX_TRIES; tries++) {
    const page = getUserPageWrite(mm, addr);
    if (page < 0) return page;
    const vma = mm.vmaLookup(addr)!;
    if (!s.test(s.folioHead(page), PG_anon) || isVmHugetlbPage(vma)) {
      putPage(k, page);
      return -EOPNOTSUPP;
    }
    if (!folioTrylock(k, page)) {
      putPage(k, page);
      throw new FaultWouldBlockError(addr, "page-locked");
    }
    const range = invalidateStart(mm, MMU_NOTIFY_EXCLUSIVE, addr, addr + PAGE_SIZE, owner);
    const pte = pt.pteGet(addr);
    if (pt.pmdGet(addr) !== 0 || !ptePresent(pte) || ptePfn(pte) !== page || !pteWrite(pte)) {
      invalidateEnd(range);
      folioUnlock(k, page);
      putPage(k, page);
      continue;
    }
    pt.pteSet(addr, 0); // ptep_clear_flush
    if (pteDirty(pte)) s.set(s.folioHead(page), PG_dirty); // folio_mark_dirty
    pt.pteSet(addr, makeDeviceExclusiveEntry(page, pteSoftDirty(pte)));
    if (k.charge !== null) {
      k.charge("pteUpdate", 1);
      k.charge("tlbShootdown", 1);
    }
    invalidateEnd(range);
    return page;
  }
  throw new KernelRuleError("make_device_exclusive_no_progress", `0x${addr.toString(16)}`);
}
