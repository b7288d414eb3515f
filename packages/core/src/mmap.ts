/**
 * mmap / munmap / exit_mmap (mm/mmap.c do_mmap, mm/vma.c do_vmi_munmap / __split_vma, mm/memory.c unmap_vmas,
 * mm/shmem.c shmem_zero_setup). VMAs are split where an operation needs it but never merged (vma_merge is not
 * modelled). Addresses are chosen bottom-up from 4 GiB, first fit, 2 MiB aligned for lengths of 2 MiB or more
 * (as thp_get_unmapped_area does for anonymous mappings).
 */
import { EEXIST, EINVAL, ENOMEM } from "./errno.js";
import { hugetlbFileRelease, hugetlbReservePages, hugetlbSplitCheck, hugetlbVmOpClose } from "./hugetlb.js";
import { InvalidArgumentError } from "./errors.js";
import type { AddressSpace } from "./filemap.js";
import { handleMmFault, zapPageRange } from "./memory.js";
import { invalidateEnd, invalidateStart } from "./mm-notify.js";
import type { Mm } from "./mm.js";
import { MMU_NOTIFIER_RANGE_MAX, MMU_NOTIFY_UNMAP, mmuNotifierRelease } from "./mmu-notifier-range.js";
import { putPage } from "./page-ref.js";
import { PAGE_SIZE, PMD_SIZE, TASK_SIZE, alignUp, isAligned } from "./page-flags.js";
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_HUGETLB,
  MAP_KNOWN_FLAGS,
  MAP_NORESERVE,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_ALL,
  VM_MAYEXEC,
  VM_MAYREAD,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_DONTEXPAND,
  VM_HUGETLB,
  VM_NORESERVE,
  VM_SHARED,
  VM_WRITE,
  calcVmProtBits,
  isVmHugetlbPage,
  type VmAreaStruct,
} from "./vma.js";
import { FAULT_FLAG_WRITE, VM_FAULT_ERROR } from "./vm-fault.js";

/** Lowest address handed out by mmap without MAP_FIXED. */
export const MMAP_MIN_ADDR = 2 ** 32;

export interface MmapArgs {
  /** Hint, or the exact address with MAP_FIXED / MAP_FIXED_NOREPLACE (page aligned). */
  addr?: number;
  length: number;
  /** PROT_* bits. */
  prot: number;
  /** MAP_SHARED or MAP_PRIVATE, plus MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_POPULATE, MAP_NORESERVE. */
  flags: number;
  /** The file for a file mapping (kernel.createFile). */
  file?: AddressSpace;
  /** File offset in bytes (page aligned). */
  offset?: number;
  /**
   * A driver's file_operations.mmap for a device mapping (no file, not anonymous): called with the new VMA; it
   * may set VM_IO/VM_PFNMAP/VM_MIXEDMAP and call remapPfnRange / vmInsertPage. Returns 0 or -errno (then the
   * mapping is undone and the errno returned).
   */
  deviceMmap?: (vma: VmAreaStruct) => number;
}

function checkRange(addr: number, length: number): number {
  if (!Number.isInteger(addr) || addr < 0) throw new InvalidArgumentError("addr", "must be an integer >= 0", addr);
  if (!isAligned(addr, PAGE_SIZE)) throw new InvalidArgumentError("addr", "must be page aligned", addr);
  if (!Number.isInteger(length) || length <= 0) throw new InvalidArgumentError("length", "must be an integer > 0", length);
  const len = alignUp(length, PAGE_SIZE);
  if (addr + len > TASK_SIZE) throw new InvalidArgumentError("length", "addr + length overflows the address space", length);
  return len;
}

/** get_unmapped_area(): first fit from MMAP_MIN_ADDR; -1 when none. */
export function getUnmappedArea(mm: Mm, len: number): number {
  const align = len >= PMD_SIZE ? PMD_SIZE : PAGE_SIZE;
  let cand = MMAP_MIN_ADDR;
  for (const v of mm.vmas) {
    if (v.vmEnd <= cand) continue;
    if (v.vmStart >= cand + len) break;
    cand = alignUp(v.vmEnd, align);
  }
  return cand + len <= TASK_SIZE ? cand : -1;
}

/** Insert a VMA keeping the list sorted. */
export function insertVma(mm: Mm, vma: VmAreaStruct): void {
  const i = mm.vmas.findIndex((v) => v.vmStart > vma.vmStart);
  if (i < 0) mm.vmas.push(vma);
  else mm.vmas.splice(i, 0, vma);
  if (vma.vmFile !== null) vma.vmFile.mappers.add(vma);
}

function removeVma(mm: Mm, vma: VmAreaStruct): void {
  const i = mm.vmas.indexOf(vma);
  if (i >= 0) mm.vmas.splice(i, 1);
  if (isVmHugetlbPage(vma)) hugetlbVmOpClose(vma);
  const f = vma.vmFile;
  if (f !== null) {
    f.mappers.delete(vma);
    if (f.mappers.size === 0 && f.hugetlbfs) {
      hugetlbFileRelease(mm.kernel, f);
      mm.kernel.objects.delete(f.id);
    } else if (f.mappers.size === 0 && f.anonShmem) {
      // The anonymous shmem object (shmem_zero_setup) dies with its last mapping: truncate its page cache.
      for (const pfn of f.pages.values()) putPage(mm.kernel, pfn);
      f.pages.clear();
      mm.kernel.objects.delete(f.id);
    }
  }
}

/** __split_vma(): cut vma at addr (page aligned, strictly inside); returns the upper part. */
export function splitVma(mm: Mm, vma: VmAreaStruct, addr: number): VmAreaStruct {
  const upper: VmAreaStruct = { ...vma, vmStart: addr, vmPgoff: vma.vmPgoff + (addr - vma.vmStart) / PAGE_SIZE };
  vma.vmEnd = addr;
  insertVma(mm, upper);
  return upper;
}

/** The VMAs covering [start, end), split so that none crosses start or end. */
export function vmasForRange(mm: Mm, start: number, end: number): VmAreaStruct[] {
  const first = mm.vmaLookup(start);
  if (first !== null && first.vmStart < start) splitVma(mm, first, start);
  const last = mm.vmaLookup(end - 1);
  if (last !== null && last.vmEnd > end) splitVma(mm, last, end);
  return mm.vmasIn(start, end);
}

/** Whether [start, end) is entirely covered by VMAs. */
export function rangeFullyMapped(mm: Mm, start: number, end: number): boolean {
  let a = start;
  for (const v of mm.vmasIn(start, end)) {
    if (v.vmStart > a) return false;
    a = v.vmEnd;
  }
  return a >= end;
}

export function doMmap(mm: Mm, args: MmapArgs): number {
  if (args === null || typeof args !== "object") throw new InvalidArgumentError("args", "must be an object");
  const { flags, prot } = args;
  if (!Number.isInteger(flags) || (flags & ~MAP_KNOWN_FLAGS) !== 0)
    throw new InvalidArgumentError("flags", "unknown MAP_* bits", flags);
  const type = flags & (MAP_SHARED | MAP_PRIVATE);
  if (type !== MAP_SHARED && type !== MAP_PRIVATE)
    throw new InvalidArgumentError("flags", "exactly one of MAP_SHARED and MAP_PRIVATE", flags);
  if (!Number.isInteger(prot) || (prot & ~PROT_ALL) !== 0) throw new InvalidArgumentError("prot", "unknown PROT_* bits", prot);
  const anon = (flags & MAP_ANONYMOUS) !== 0;
  const hugetlb = (flags & MAP_HUGETLB) !== 0;
  if (hugetlb && !anon) return -EINVAL; // MAP_HUGETLB on a file that is not on hugetlbfs
  if (anon && args.file !== undefined) throw new InvalidArgumentError("file", "must be absent with MAP_ANONYMOUS");
  if (anon && args.deviceMmap !== undefined) throw new InvalidArgumentError("deviceMmap", "must be absent with MAP_ANONYMOUS");
  if (!anon && args.file === undefined && args.deviceMmap === undefined)
    throw new InvalidArgumentError("file", "required without MAP_ANONYMOUS (or a deviceMmap)");
  if (args.file !== undefined && mm.kernel.objects.get(args.file.id) !== args.file)
    throw new InvalidArgumentError("file", "belongs to another kernel");
  const offset = args.offset ?? 0;
  if (!Number.isInteger(offset) || offset < 0 || !isAligned(offset, PAGE_SIZE))
    throw new InvalidArgumentError("offset", "must be a page-aligned integer >= 0", offset);
  const fixed = (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) !== 0;
  const hint = args.addr ?? 0;
  let len = checkRange(fixed ? hint : 0, args.length);
  if (fixed) checkRange(hint, args.length);
  if (hugetlb) {
    // ksys_mmap_pgoff: len = ALIGN(len, huge_page_size); hugetlb_get_unmapped_area: a fixed address must be aligned.
    len = alignUp(len, PMD_SIZE);
    if (fixed && !isAligned(hint, PMD_SIZE)) return -EINVAL;
    if (fixed) checkRange(hint, len);
  }

  let addr: number;
  if (fixed) {
    addr = hint;
    if (mm.vmasIn(addr, addr + len).length > 0) {
      if (flags & MAP_FIXED_NOREPLACE) return -EEXIST;
      const r = doMunmap(mm, addr, len);
      if (r !== 0) return r;
    }
  } else {
    addr = getUnmappedArea(mm, len);
    if (addr < 0) return -ENOMEM;
  }
  const shared = type === MAP_SHARED;
  let vmFlags = calcVmProtBits(prot) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
  if (shared) vmFlags |= VM_SHARED | VM_MAYSHARE;
  let file = args.file ?? null;
  let vmPgoff = offset / PAGE_SIZE;
  let vmOps: VmAreaStruct["vmOps"] = null;
  if (hugetlb) {
    // hugetlb_file_setup(HUGETLB_ANON_FILE): an internal hugetlbfs file, not vma_is_anonymous.
    file = mm.kernel.createFile(len, { name: "anon_hugepage" });
    file.hugetlbfs = true;
    file.anonShmem = true;
    vmPgoff = 0;
    vmOps = { name: "hugetlb" };
    vmFlags |= VM_HUGETLB | VM_DONTEXPAND | (flags & MAP_NORESERVE ? VM_NORESERVE : 0);
  } else if (anon && shared) {
    // shmem_zero_setup(): MAP_SHARED|MAP_ANONYMOUS is backed by a shmem object; not vma_is_anonymous.
    file = mm.kernel.createFile(len, { shmem: true, name: "dev/zero" });
    file.anonShmem = true;
    vmPgoff = 0;
    vmOps = { name: "shmem" };
  } else if (file !== null) {
    vmOps = { name: file.shmem ? "shmem" : "file" };
  } else if (args.deviceMmap !== undefined) {
    vmOps = { name: "device" };
  } else {
    vmPgoff = addr / PAGE_SIZE;
  }
  const vma: VmAreaStruct = { vmMm: mm, vmStart: addr, vmEnd: addr + len, vmFlags, vmPgoff, vmFile: file, vmOps, anonVma: null };
  insertVma(mm, vma);
  if (hugetlb && hugetlbReservePages(vma, (flags & MAP_NORESERVE) !== 0) !== 0) {
    removeVma(mm, vma);
    return -ENOMEM;
  }
  if (args.deviceMmap !== undefined) {
    const r = args.deviceMmap(vma);
    if (r !== 0) {
      doMunmap(mm, addr, len);
      return r < 0 ? r : -22;
    }
  }
  if (flags & MAP_POPULATE) {
    const w = (vmFlags & (VM_WRITE | VM_SHARED)) === VM_WRITE ? FAULT_FLAG_WRITE : 0;
    for (let a = addr; a < addr + len; a += PAGE_SIZE) {
      if (handleMmFault(mm, a, w) & VM_FAULT_ERROR) break;
    }
  }
  return addr;
}

export function doMunmap(mm: Mm, addr: number, length: number): number {
  const len = checkRange(addr, length);
  const end = addr + len;
  if (mm.vmasIn(addr, end).length === 0) return 0;
  const bad = hugetlbSplitCheck(mm, addr, end);
  if (bad !== 0) return bad;
  const vmas = vmasForRange(mm, addr, end);
  const range = invalidateStart(mm, MMU_NOTIFY_UNMAP, vmas[0]!.vmStart, vmas[vmas.length - 1]!.vmEnd);
  for (const vma of vmas) zapPageRange(mm, vma, vma.vmStart, vma.vmEnd, true);
  for (const vma of vmas) removeVma(mm, vma);
  invalidateEnd(range);
  return 0;
}

/**
 * exit_mmap(): mmu_notifier_release (MMU_NOTIFY_RELEASE to every interval), then unmap every VMA with one
 * MMU_NOTIFY_UNMAP over [0, ULONG_MAX), free the page tables, drop the mm from its anon_vmas and the kernel.
 */
export function exitMmap(mm: Mm): void {
  mmuNotifierRelease(mm);
  const vmas = [...mm.vmas];
  const range = invalidateStart(mm, MMU_NOTIFY_UNMAP, 0, MMU_NOTIFIER_RANGE_MAX);
  for (const vma of vmas) zapPageRange(mm, vma, vma.vmStart, vma.vmEnd, true);
  for (const vma of vmas) {
    removeVma(mm, vma);
    if (vma.anonVma !== null) vma.anonVma.mms.delete(mm);
  }
  invalidateEnd(range);
  mm.mmUsers = 0;
  mm.kernel.mms.delete(mm.id);
}
