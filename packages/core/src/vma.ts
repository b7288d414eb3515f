/**
 * struct vm_area_struct and VM_* flags (include/linux/mm.h, include/linux/mm_types.h), PROT_/MAP_/MADV_
 * constants (include/uapi/asm-generic/mman-common.h) and the VMA predicates (vma_is_anonymous,
 * is_cow_mapping, vm_get_page_prot's write rule).
 */
import type { AddressSpace } from "./filemap.js";
import type { Mm } from "./mm.js";
import type { AnonVma } from "./rmap.js";

export const VM_NONE = 0;
export const VM_READ = 0x1;
export const VM_WRITE = 0x2;
export const VM_EXEC = 0x4;
export const VM_SHARED = 0x8;
export const VM_MAYREAD = 0x10;
export const VM_MAYWRITE = 0x20;
export const VM_MAYEXEC = 0x40;
export const VM_MAYSHARE = 0x80;
export const VM_GROWSDOWN = 0x100;
export const VM_PFNMAP = 0x400;
export const VM_LOCKED = 0x2000;
export const VM_IO = 0x4000;
export const VM_DONTCOPY = 0x20000;
export const VM_DONTEXPAND = 0x40000;
export const VM_ACCOUNT = 0x100000;
export const VM_NORESERVE = 0x200000;
export const VM_HUGETLB = 0x400000;
export const VM_DONTDUMP = 0x4000000;
export const VM_MIXEDMAP = 0x10000000;
export const VM_HUGEPAGE = 0x20000000;
export const VM_NOHUGEPAGE = 0x40000000;
export const VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP;
export const VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC;

export const PROT_NONE = 0x0;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const PROT_EXEC = 0x4;
export const PROT_ALL = PROT_READ | PROT_WRITE | PROT_EXEC;

export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const MAP_POPULATE = 0x8000;
export const MAP_FIXED_NOREPLACE = 0x100000;
export const MAP_HUGETLB = 0x40000;
export const MAP_KNOWN_FLAGS =
  MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_NORESERVE | MAP_POPULATE | MAP_FIXED_NOREPLACE | MAP_HUGETLB;

export const MADV_NORMAL = 0;
export const MADV_DONTNEED = 4;
export const MADV_FREE = 8;
export const MADV_HUGEPAGE = 14;
export const MADV_NOHUGEPAGE = 15;
export const MADV_COLLAPSE = 25;

/** A VMA's vm_operations_struct stand-in: its presence makes the VMA non-anonymous. */
export interface VmOperationsStruct {
  name: string;
}

/** struct vm_area_struct. [vmStart, vmEnd) is page aligned. */
export interface VmAreaStruct {
  vmMm: Mm;
  vmStart: number;
  vmEnd: number;
  vmFlags: number;
  /** Offset of vmStart in the file, in pages (for anon: vmStart >> PAGE_SHIFT, kept across splits). */
  vmPgoff: number;
  vmFile: AddressSpace | null;
  vmOps: VmOperationsStruct | null;
  anonVma: AnonVma | null;
  /**
   * vm_private_data of a hugetlb VMA: the reservation map it owns (HPAGE_RESV_OWNER), shared by the VMAs a split
   * or mremap made of it; null/absent when the VMA owns no reservations (a fork child, an mremap source).
   */
  hugetlbResv?: HugetlbResvMap | null;
}

/**
 * struct resv_map of a private hugetlb mapping, reduced to the huge-page indices (vm_pgoff / 512 units) that still
 * hold a reservation from mmap time (not yet consumed by a fault).
 */
export interface HugetlbResvMap {
  reserved: Set<number>;
}

/** vma_is_anonymous(): no vm_ops. MAP_SHARED|MAP_ANONYMOUS is shmem, not anonymous. */
export function vmaIsAnonymous(vma: VmAreaStruct): boolean {
  return vma.vmOps === null;
}
/** is_cow_mapping(): private and may be written. */
export function isCowMapping(vmFlags: number): boolean {
  return (vmFlags & (VM_SHARED | VM_MAYWRITE)) === VM_MAYWRITE;
}
/** vm_get_page_prot's write bit: only shared writable mappings get writable PTEs up front (private ones COW). */
export function vmPageProtWrite(vmFlags: number): boolean {
  return (vmFlags & (VM_SHARED | VM_WRITE)) === (VM_SHARED | VM_WRITE);
}
/** calc_vm_prot_bits(). */
export function calcVmProtBits(prot: number): number {
  return (prot & PROT_READ ? VM_READ : 0) | (prot & PROT_WRITE ? VM_WRITE : 0) | (prot & PROT_EXEC ? VM_EXEC : 0);
}
/** linear_page_index(vma, address). */
export function linearPageIndex(vma: VmAreaStruct, address: number): number {
  return (address - vma.vmStart) / 4096 + vma.vmPgoff;
}
/** is_vm_hugetlb_page(). */
export function isVmHugetlbPage(vma: VmAreaStruct): boolean {
  return (vma.vmFlags & VM_HUGETLB) !== 0;
}
