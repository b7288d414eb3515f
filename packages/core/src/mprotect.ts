/**
 * mprotect (mm/mprotect.c: do_mprotect_pkey, mprotect_fixup, change_protection → change_pmd_range /
 * change_pte_range / change_huge_pmd). MMU_NOTIFY_PROTECTION_VMA is sent only where page tables exist: from the
 * first populated PMD of each PUD-sized chunk to the chunk's end, as change_pmd_range does.
 *
 * PROT_NONE is enforced by the VMA (the fault path's access check and hmm_range_fault's VMA test); PTEs are
 * write-protected but stay present (no protnone bit). The range is checked for holes first: -ENOMEM and nothing
 * changed (the kernel may have changed the VMAs before the hole).
 */
import { EACCES, ENOMEM } from "./errno.js";
import { InvalidArgumentError } from "./errors.js";
import { splitHugePmd } from "./huge-memory.js";
import { hugetlbSplitCheck } from "./hugetlb.js";
import { invalidateEnd, invalidateStart } from "./mm-notify.js";
import type { Mm } from "./mm.js";
import { MMU_NOTIFY_PROTECTION_VMA } from "./mmu-notifier-range.js";
import { rangeFullyMapped, vmasForRange } from "./mmap.js";
import { PAGE_SIZE, PG_anon, PG_anon_exclusive, PMD_SIZE, PUD_SIZE, TASK_SIZE, alignDown, alignUp, isAligned } from "./page-flags.js";
import {
  isDevicePrivateEntry,
  isWritableDevicePrivateEntry,
  isWritableMigrationEntry,
  makeDevicePrivateEntry,
  makeMigrationEntry,
  pmdTransHuge,
  pteMkwrite,
  ptePfn,
  ptePresent,
  pteSpecial,
  pteWrite,
  pteWrprotect,
  pmdMkhuge,
} from "./pgtable.js";
import { PROT_ALL, VM_ACCESS_FLAGS, VM_MAYWRITE, VM_SHARED, VM_WRITE, calcVmProtBits, vmPageProtWrite, type VmAreaStruct } from "./vma.js";

export function doMprotect(mm: Mm, addr: number, length: number, prot: number): number {
  if (!Number.isInteger(addr) || addr < 0 || !isAligned(addr, PAGE_SIZE))
    throw new InvalidArgumentError("addr", "must be a page-aligned integer >= 0", addr);
  if (!Number.isInteger(length) || length < 0) throw new InvalidArgumentError("length", "must be an integer >= 0", length);
  if (!Number.isInteger(prot) || (prot & ~PROT_ALL) !== 0) throw new InvalidArgumentError("prot", "unknown PROT_* bits", prot);
  const len = alignUp(length, PAGE_SIZE);
  if (addr + len > TASK_SIZE) throw new InvalidArgumentError("length", "addr + length overflows the address space", length);
  if (len === 0) return 0;
  const end = addr + len;
  if (!rangeFullyMapped(mm, addr, end)) return -ENOMEM;
  const bad = hugetlbSplitCheck(mm, addr, end);
  if (bad !== 0) return bad;
  const newBits = calcVmProtBits(prot);
  for (const v of mm.vmasIn(addr, end)) if ((newBits & VM_WRITE) !== 0 && (v.vmFlags & VM_MAYWRITE) === 0) return -EACCES;
  for (const vma of vmasForRange(mm, addr, end)) {
    const old = vma.vmFlags;
    vma.vmFlags = (old & ~VM_ACCESS_FLAGS) | newBits;
    changeProtection(mm, vma, vma.vmStart, vma.vmEnd);
  }
  return 0;
}

/** change_protection() over [start, end) of one VMA with its (new) vmFlags. */
export function changeProtection(mm: Mm, vma: VmAreaStruct, start: number, end: number): void {
  const pt = mm.pgtable;
  for (let chunk = start; chunk < end; ) {
    const chunkEnd = Math.min(end, alignDown(chunk, PUD_SIZE) + PUD_SIZE);
    let first = -1;
    for (let a = chunk; a < chunkEnd; a = alignDown(a, PMD_SIZE) + PMD_SIZE) {
      if (pt.pmdGet(a) !== 0 || pt.pteTable(a, false) !== null) {
        first = a;
        break;
      }
    }
    if (first >= 0) {
      const range = invalidateStart(mm, MMU_NOTIFY_PROTECTION_VMA, first, chunkEnd);
      let updated = 0;
      for (let a = first; a < chunkEnd; ) {
        const pmdStart = alignDown(a, PMD_SIZE);
        const next = Math.min(chunkEnd, pmdStart + PMD_SIZE);
        const pmd = pt.pmdGet(a);
        if (pmd !== 0) {
          if (a === pmdStart && next === pmdStart + PMD_SIZE) {
            const n = changeEntry(mm, vma, pmd, true);
            if (n !== pmd) {
              pt.pmdSet(pmdStart, n);
              updated++;
            }
            a = next;
            continue;
          }
          splitHugePmd(mm, vma, pmdStart);
        }
        const t = pt.pteTable(a, false);
        if (t !== null) {
          for (let p = a; p < next; p += PAGE_SIZE) {
            const i = Math.floor(p / PAGE_SIZE) % 512;
            const e = t[i]!;
            if (e === 0) continue;
            const n = changeEntry(mm, vma, e, false);
            if (n !== e) {
              t[i] = n;
              updated++;
            }
          }
        }
        a = next;
      }
      const k = mm.kernel;
      if (k.charge !== null && updated > 0) {
        k.charge("pteUpdate", updated);
        k.charge("tlbShootdown", updated);
      }
      invalidateEnd(range);
    }
    chunk = chunkEnd;
  }
}

/** change_pte_range's per-entry rule (present: pte_modify + try-change-writable; writable swap entries → readable). */
function changeEntry(mm: Mm, vma: VmAreaStruct, e: number, huge: boolean): number {
  const k = mm.kernel;
  const s = k.store;
  const write = (vma.vmFlags & VM_WRITE) !== 0;
  if (ptePresent(e) && (!huge || pmdTransHuge(e))) {
    if (!write) return pteWrite(e) ? pteWrprotect(e) : e;
    if (pteWrite(e) || pteSpecial(e)) {
      if (pteSpecial(e) && ptePfn(e) !== k.zeroPfn && vmPageProtWrite(vma.vmFlags)) return pteMkwrite(e);
      return e;
    }
    const pfn = ptePfn(e);
    if (pfn === k.zeroPfn) return e;
    if ((vma.vmFlags & VM_SHARED) !== 0) return pteMkwrite(e);
    // can_change_private_pte_writable: an exclusive anon page.
    if (s.test(s.folioHead(pfn), PG_anon) && s.test(pfn, PG_anon_exclusive)) return pteMkwrite(e);
    return e;
  }
  if (write) return e;
  let n = e;
  if (isWritableDevicePrivateEntry(e)) n = makeDevicePrivateEntry(ptePfn(e), false);
  else if (isWritableMigrationEntry(e)) {
    const pfn = ptePfn(e);
    n = makeMigrationEntry(pfn, s.test(s.folioHead(pfn), PG_anon) && s.test(pfn, PG_anon_exclusive) ? "read-exclusive" : "read", {
      young: (e & 8) !== 0,
      dirty: (e & 4) !== 0,
    });
  } else if (isDevicePrivateEntry(e)) return e;
  return huge && n !== e ? pmdMkhuge(n) : n;
}
