/** struct vm_fault (include/linux/mm.h), the argument of dev_pagemap_ops.migrate_to_ram, and fault flags. */
import type { Mm } from "./mm.js";
import type { VmAreaStruct } from "./vma.js";

/** enum fault_flag (include/linux/mm_types.h). */
export const FAULT_FLAG_WRITE = 1 << 0;
export const FAULT_FLAG_MKWRITE = 1 << 1;
export const FAULT_FLAG_ALLOW_RETRY = 1 << 2;
export const FAULT_FLAG_RETRY_NOWAIT = 1 << 3;
export const FAULT_FLAG_KILLABLE = 1 << 4;
export const FAULT_FLAG_TRIED = 1 << 5;
export const FAULT_FLAG_USER = 1 << 6;
export const FAULT_FLAG_REMOTE = 1 << 7;
export const FAULT_FLAG_INSTRUCTION = 1 << 8;
export const FAULT_FLAG_INTERRUPTIBLE = 1 << 9;
export const FAULT_FLAG_UNSHARE = 1 << 10;
export const FAULT_FLAG_ORIG_PTE_VALID = 1 << 11;
export const FAULT_FLAG_VMA_LOCK = 1 << 12;
export const FAULT_FLAG_ALL = (1 << 13) - 1;

/** vm_fault_t bits (include/linux/mm_types.h, enum vm_fault_reason). */
export const VM_FAULT_OOM = 0x000001;
export const VM_FAULT_SIGBUS = 0x000002;
export const VM_FAULT_MAJOR = 0x000004;
export const VM_FAULT_HWPOISON = 0x000010;
export const VM_FAULT_HWPOISON_LARGE = 0x000020;
export const VM_FAULT_SIGSEGV = 0x000040;
export const VM_FAULT_NOPAGE = 0x000100;
export const VM_FAULT_LOCKED = 0x000200;
export const VM_FAULT_RETRY = 0x000400;
export const VM_FAULT_FALLBACK = 0x000800;
export const VM_FAULT_DONE_COW = 0x001000;
export const VM_FAULT_NEEDDSYNC = 0x002000;
export const VM_FAULT_COMPLETED = 0x004000;
export const VM_FAULT_ERROR =
  VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV | VM_FAULT_HWPOISON | VM_FAULT_HWPOISON_LARGE | VM_FAULT_FALLBACK;

/** vm_fault_to_errno() (include/linux/mm.h): OOM → -ENOMEM, HWPOISON → -EHWPOISON, SIGBUS/SIGSEGV → -EFAULT. */
export function vmFaultToErrno(ret: number, gupFlags = 0): number {
  if (ret & VM_FAULT_OOM) return -12;
  if (ret & (VM_FAULT_HWPOISON | VM_FAULT_HWPOISON_LARGE)) return gupFlags & 0x40 /* FOLL_HWPOISON */ ? -133 : -14;
  if (ret & (VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV)) return -14;
  return 0;
}

/** struct vm_fault. */
export interface VmFault {
  vma: VmAreaStruct;
  mm: Mm;
  /** Faulting address, page aligned. */
  address: number;
  /** The address as faulted (not aligned). */
  realAddress: number;
  /** FAULT_FLAG_*. */
  flags: number;
  /** Offset in the VMA's file/anon space (linear_page_index). */
  pgoff: number;
  /** The page of the entry being faulted: the device-private pfn for migrate_to_ram, else -1. */
  page: number;
  /** The PTE value read at fault time (the PMD value when `atPmd`). */
  origPte: number;
  /**
   * The fault is on a huge PMD entry (the kernel's vmf->pte == NULL, do_huge_pmd_device_private): `page` is the
   * head of a PMD-mapped device-private folio. false: a PTE-level fault on one page.
   */
  atPmd: boolean;
}
