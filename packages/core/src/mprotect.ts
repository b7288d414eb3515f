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
import { isHugeZeroPmd, splitHugePmd } from "./huge-memory.js";
import { hugetlbSplitCheck } from "./hugetlb.js";
import { invalidateEnd, invalidateStart } from "./mm-notify.js";
import type { Mm } from "./mm.js";
import { MMU_NOTIFY_PROTECTION_VMA } from "./mmu-notifier-range.js";
import { rangeFullyMapped, vmasForRange } from "./mmap.js";
import { PAGE_SIZE, PG_anon, PG_anon_exclusive, PMD_SIZE, PUD_SIZE, TASK_SIZE, alignDown, alignUp, isAligned } from "./page-flags.js";
import {
  _PAGE_SOFT_DIRTY,
  isMigrationEntryDirty,
  isMigrationEntryYoung,
  isWritableDevicePrivateEntry,
  isWritableMigrationEntry,
  makeDevicePrivateEntry,
  makeMigrationEntry,
  pmdTransHuge,
  pteMkwrite,
  ptePfn,
  ptePresent,
  pteSoftDirty,
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

/**
 * change_protection() over [start, end) of one VMA with its (new) vmFlags. As linux-mm's change_pud_range(): one
 * MMU_NOTIFY_PROTECTION_VMA range, from the first PUD that is not none (a 1 GiB page-directory slot with a PMD
 * table; the range starts where that PUD meets [start, end)) to `end`, and none when every PUD is none. (Kernels
 * before the notifier moved to the PUD level started it at the first populated PMD, per PUD.) A THP the range
 * covers only in part is split first, with its own MMU_NOTIFY_CLEAR inside ("ideally all invalidations for the
 * range would be batched").
 */
export function changeProtection(mm: Mm, vma: VmAreaStruct, start: number, end: number): void {
  const pt = mm.pgtable;
  let first = -1;
  for (let chunk = start; chunk < end; chunk = alignDown(chunk, PUD_SIZE) + PUD_SIZE) {
    if (pt.dirs.has(Math.floor(chunk / PUD_SIZE))) {
      first = chunk;
      break;
    }
  }
  if (first < 0) return;
  const range = invalidateStart(mm, MMU_NOTIFY_PROTECTION_VMA, first, end);
  let updated = 0;
  for (let a = first; a < end; ) {
    const pmdStart = alignDown(a, PMD_SIZE);
    const next = Math.min(end, pmdStart + PMD_SIZE);
    if (!pt.dirs.has(Math.floor(a / PUD_SIZE))) {
      a = Math.min(end, alignDown(a, PUD_SIZE) + PUD_SIZE);
      continue;
    }
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
        const i = (Math.floor(p / PAGE_SIZE) & 511);
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

/** change_pte_range's per-entry rule (present: pte_modify + try-change-writable; writable swap entries → readable, always). */
function changeEntry(mm: Mm, vma: VmAreaStruct, e: number, huge: boolean): number {
  const k = mm.kernel;
  const s = k.store;
  const write = (vma.vmFlags & VM_WRITE) !== 0;
  if (ptePresent(e) && (!huge || pmdTransHuge(e))) {
    if (!write) return pteWrite(e) ? pteWrprotect(e) : e;
    // change_huge_pmd(): can_change_pmd_writable() is false for the huge zero folio (not a normal page).
    if (huge && isHugeZeroPmd(k, e)) return e;
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
  // change_softleaf_pte() / change_huge_pmd(), whatever the new protection ("a protection check is difficult so
  // just be safe and disable write"): a writable migration entry becomes readable-exclusive for an anon folio,
  // readable otherwise (young/dirty live in the offset, soft-dirty is kept); a writable device-private entry
  // becomes readable (soft-dirtiness not preserved).
  let n = e;
  if (isWritableDevicePrivateEntry(e)) n = makeDevicePrivateEntry(ptePfn(e), false);
  else if (isWritableMigrationEntry(e)) {
    const pfn = ptePfn(e);
    n = makeMigrationEntry(pfn, s.test(s.folioHead(pfn), PG_anon) ? "read-exclusive" : "read", {
      young: isMigrationEntryYoung(e),
      dirty: isMigrationEntryDirty(e),
    });
    if (pteSoftDirty(e)) n += _PAGE_SOFT_DIRTY;
  }
  return huge && n !== e ? pmdMkhuge(n) : n;
}
