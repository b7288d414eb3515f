/**
 * Driver mmap helpers (mm/memory.c vm_insert_page, remap_pfn_range): what a device's file_operations.mmap uses
 * to populate special mappings. vm_insert_page maps a normal page in a VM_MIXEDMAP VMA (a reference, file rmap,
 * MM_FILEPAGES); remap_pfn_range maps raw pfns in a VM_IO|VM_PFNMAP VMA with special PTEs (no struct page
 * accounting, vm_normal_page() = NULL).
 */
import { EBUSY, EINVAL } from "./errno.js";
import type { Kernel } from "./kernel.js";
import { incMmCounter, mmCounterFile } from "./mm-counters.js";
import { PAGE_SIZE, PG_anon, isAligned } from "./page-flags.js";
import { getPage } from "./page-ref.js";
import { pfnPte } from "./pgtable.js";
import { pageAddFileRmap } from "./rmap.js";
import { VM_DONTDUMP, VM_DONTEXPAND, VM_IO, VM_MIXEDMAP, VM_PFNMAP, vmPageProtWrite, type VmAreaStruct } from "./vma.js";

/** vm_insert_page(vma, addr, page): 0, -EINVAL (bad address/page, VM_PFNMAP VMA), -EBUSY (entry not none). */
export function vmInsertPage(vma: VmAreaStruct, addr: number, pfn: number): number {
  const mm = vma.vmMm;
  const k: Kernel = mm.kernel;
  if (!isAligned(addr, PAGE_SIZE) || addr < vma.vmStart || addr >= vma.vmEnd) return -EINVAL;
  if (vma.vmFlags & VM_PFNMAP) return -EINVAL;
  if (!k.store.pfnValid(pfn) || k.store.refcount(pfn) <= 0 || k.store.test(k.store.folioHead(pfn), PG_anon)) return -EINVAL;
  vma.vmFlags |= VM_MIXEDMAP;
  if (mm.pgtable.pmdGet(addr) !== 0 || mm.pgtable.pteGet(addr) !== 0) return -EBUSY;
  getPage(k, pfn);
  pageAddFileRmap(k, pfn);
  incMmCounter(mm, mmCounterFile(k, pfn));
  mm.pgtable.pteSet(addr, pfnPte(pfn, vmPageProtWrite(vma.vmFlags)));
  if (k.charge !== null) k.charge("pteUpdate", 1);
  return 0;
}

/** remap_pfn_range(vma, addr, pfn, size, prot): 0 or -EINVAL. Sets VM_IO|VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP. */
export function remapPfnRange(vma: VmAreaStruct, addr: number, pfn: number, size: number): number {
  const mm = vma.vmMm;
  if (!isAligned(addr, PAGE_SIZE) || !Number.isInteger(size) || size <= 0 || !isAligned(size, PAGE_SIZE)) return -EINVAL;
  if (addr < vma.vmStart || addr + size > vma.vmEnd || !Number.isInteger(pfn) || pfn < 0) return -EINVAL;
  for (let a = addr; a < addr + size; a += PAGE_SIZE) if (mm.pgtable.pteGet(a) !== 0 || mm.pgtable.pmdGet(a) !== 0) return -EINVAL;
  vma.vmFlags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
  const w = vmPageProtWrite(vma.vmFlags);
  for (let a = addr, p = pfn; a < addr + size; a += PAGE_SIZE, p++) mm.pgtable.pteSet(a, pfnPte(p, w, { special: true }));
  if (mm.kernel.charge !== null) mm.kernel.charge("pteUpdate", size / PAGE_SIZE);
  return 0;
}
