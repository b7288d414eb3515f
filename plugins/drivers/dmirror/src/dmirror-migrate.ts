/**
 * lib/test_hmm.c, the migration half of the dmirror driver:
 * - dmirror_migrate_to_device(): migrate_vma_setup(SELECT_SYSTEM|SELECT_COMPOUND) per ≤512-page chunk,
 *   dmirror_migrate_alloc_and_copy (device THP for a compound source, 4 KiB fallback, FAIL_ALLOC),
 *   migrate_vma_pages, dmirror_migrate_finalize_and_map, migrate_vma_finalize, then read the range back;
 * - dmirror_migrate_to_system() and the migrate_to_ram op dmirror_devmem_fault(), both through
 *   dmirror_devmem_fault_alloc_and_copy (which also erases the device page-table entries);
 * - dmirror_device_evict_chunk(): migrate_device_range / pages / finalize over a whole chunk;
 * - dmirror_devmem_folio_split(): the folio_split op keeping the backing pages in step with a device THP split.
 */
import {
  EINVAL,
  ENOMEM,
  HPAGE_PMD_NR,
  KernelRuleError,
  PAGE_SIZE,
  PG_head,
  PG_tail,
  PTRS_PER_PTE,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
  VM_READ,
  allocPages,
  folioTrylock,
  folioUnlock,
  putPage,
  type Kernel,
  type VmFault,
} from "@hmmsim/core";
import { folioIsZoneDevice, isDeviceCoherentPage, isDevicePrivatePage } from "@hmmsim/memremap";
import {
  MIGRATE_PFN_COMPOUND,
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_VALID,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_COMPOUND,
  MIGRATE_VMA_SELECT_DEVICE_COHERENT,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM,
  migrateDeviceFinalize,
  migrateDevicePages,
  migrateDeviceRange,
  migratePfn,
  migratePfnToPage,
  migrateVmaFinalize,
  migrateVmaPages,
  migrateVmaSetup,
  mpfnClear,
  mpfnSet,
  type MigrateVma,
} from "@hmmsim/migrate";
import type { DmirrorChunk, DmirrorDevice, DmirrorModuleContext } from "./dmirror-device.js";
import { DPT_XA_TAG_WRITE, xaTagPointer, type Dmirror } from "./dmirror.js";
import { HMM_DMIRROR_FLAG_FAIL_ALLOC, type HmmDmirrorCmd } from "./test-hmm-uapi.js";

/** BACKING_PAGE(page): the backing system page of a private device page, the page itself otherwise. */
export function backingPage(ctx: DmirrorModuleContext, pfn: number): number {
  if (!isDevicePrivatePage(ctx.kernel, pfn)) return pfn;
  const r = ctx.zdd.backing(pfn);
  if (r < 0) throw new KernelRuleError("dmirror_backing_page_missing", `device page ${pfn} has no backing page`);
  return r;
}

/** dmirror_select_device(). */
function dmirrorSelectDevice(mdevice: DmirrorDevice): number {
  return mdevice.isPrivateZone() ? MIGRATE_VMA_SELECT_DEVICE_PRIVATE : MIGRATE_VMA_SELECT_DEVICE_COHERENT;
}

/** FAIL_ALLOC is one-shot: consume it. */
function takeFailAlloc(dmirror: Dmirror): boolean {
  if (dmirror.flags & HMM_DMIRROR_FLAG_FAIL_ALLOC) {
    dmirror.flags &= ~HMM_DMIRROR_FLAG_FAIL_ALLOC;
    return true;
  }
  return false;
}

function copyHighpage(k: Kernel, dst: number, src: number): void {
  k.pageBytes.copy(dst, src);
}
function clearHighpage(k: Kernel, dst: number): void {
  k.pageBytes.clear(dst);
}

/** dmirror_migrate_alloc_and_copy(). */
export function dmirrorMigrateAllocAndCopy(args: MigrateVma, dmirror: Dmirror): void {
  const mdevice = dmirror.mdevice;
  const ctx = mdevice.ctx;
  const k = ctx.kernel;
  const src = args.src!;
  const dst = args.dst!;
  let i = 0;
  for (let addr = args.start; addr < args.end; ) {
    const s = src[i]!;
    const isLarge = (s & MIGRATE_PFN_COMPOUND) !== 0;
    const write = s & MIGRATE_PFN_WRITE ? MIGRATE_PFN_WRITE : 0;
    if (s & MIGRATE_PFN_MIGRATE) {
      // Note that spage might be NULL which is OK since it is an unallocated pte_none() or read-only zero page.
      const spage = migratePfnToPage(s);
      if (spage >= 0 && folioIsZoneDevice(k, spage)) {
        // WARN: "page already in device spage pfn"
      } else {
        const dpage = takeFailAlloc(dmirror) ? -1 : mdevice.devmemAllocPage(isLarge);
        if (dpage < 0) {
          if (isLarge) {
            const nr = spage < 0 ? HPAGE_PMD_NR : k.store.folioNr(spage);
            for (let j = 0; j < nr && addr < args.end; j++) {
              const d = mdevice.devmemAllocPage(false);
              if (d < 0) throw new KernelRuleError("dmirror_migrate_alloc_fallback_oom", `${mdevice.name}: no 4 KiB device page`);
              const rpage = backingPage(ctx, d);
              ctx.zdd.set(rpage, dmirror);
              dst[i] = migratePfn(d) + write;
              if (spage >= 0) copyHighpage(k, rpage, spage + j);
              else clearHighpage(k, rpage);
              i++;
              addr += PAGE_SIZE;
            }
            continue;
          }
        } else {
          const rpage = backingPage(ctx, dpage);
          // Normally, a device would use the page->zone_device_data to point to the mirror but here we use it to
          // hold the page for the simulated device memory and that page holds the pointer to the mirror.
          ctx.zdd.set(rpage, dmirror);
          dst[i] = migratePfn(dpage) + write;
          if (isLarge) {
            dst[i] = mpfnSet(dst[i]!, MIGRATE_PFN_COMPOUND);
            if (k.store.isLarge(dpage)) {
              const n = k.store.folioNr(dpage);
              for (let j = 0; j < n; j++) {
                if (spage >= 0) copyHighpage(k, rpage + j, spage + j);
                else clearHighpage(k, rpage + j);
                i++;
                addr += PAGE_SIZE;
              }
              continue;
            }
          }
          if (spage >= 0) copyHighpage(k, rpage, spage);
          else clearHighpage(k, rpage);
        }
      }
    }
    i++;
    addr += PAGE_SIZE;
  }
}

/** dmirror_migrate_finalize_and_map(): map the migrated pages (their backing pages) in the device page table. */
export function dmirrorMigrateFinalizeAndMap(args: MigrateVma, dmirror: Dmirror): number {
  const ctx = dmirror.mdevice.ctx;
  const k = ctx.kernel;
  const src = args.src!;
  const dst = args.dst!;
  const startPfn = args.start / PAGE_SIZE;
  const endPfn = args.end / PAGE_SIZE;
  dmirror.lock();
  for (let pfn = startPfn, i = 0; pfn < endPfn; pfn++, i++) {
    if (!(src[i]! & MIGRATE_PFN_MIGRATE)) continue;
    const dpage = migratePfnToPage(dst[i]!);
    if (dpage < 0) continue;
    const nr = dst[i]! & MIGRATE_PFN_COMPOUND ? k.store.folioNr(dpage) : 1;
    const rpage = backingPage(ctx, dpage);
    for (let j = 0; j < nr; j++) {
      const entry = xaTagPointer(rpage + j, dst[i]! & MIGRATE_PFN_WRITE ? DPT_XA_TAG_WRITE : 0);
      dmirror.pt.set(pfn + j, entry);
    }
  }
  dmirror.unlock();
  return 0;
}

/** A struct migrate_vma over the driver's PTRS_PER_PTE-entry src/dst arrays. */
function newMigrateVma(src: Float64Array, dst: Float64Array): MigrateVma {
  return { vma: null, src, dst, start: 0, end: 0, npages: 0, cpages: 0, pgmapOwner: null, flags: 0, faultPage: null };
}

/** dmirror_migrate_to_device(). */
export function dmirrorMigrateToDevice(dmirror: Dmirror, cmd: HmmDmirrorCmd): number {
  const mm = dmirror.mm;
  const size = cmd.npages * PAGE_SIZE;
  const start = cmd.addr;
  const end = start + size;
  if (end < start) return -EINVAL;
  // Since the mm is for the mirrored process, get a reference first.
  if (mm.exited) return -EINVAL;
  const srcPfns = new Float64Array(PTRS_PER_PTE);
  const dstPfns = new Float64Array(PTRS_PER_PTE);
  const args = newMigrateVma(srcPfns, dstPfns);
  const ret = mm.withReadLock("dmirror_migrate_to_device", () => {
    for (let addr = start, next: number; addr < end; addr = next) {
      const vma = mm.vmaLookup(addr);
      if (vma === null || !(vma.vmFlags & VM_READ)) return -EINVAL;
      next = Math.min(end, addr + PTRS_PER_PTE * PAGE_SIZE);
      if (next > vma.vmEnd) next = vma.vmEnd;
      args.vma = vma;
      args.start = addr;
      args.end = next;
      args.pgmapOwner = dmirror.mdevice;
      args.flags = MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND;
      const r = migrateVmaSetup(args);
      if (r) return r;
      dmirrorMigrateAllocAndCopy(args, dmirror);
      migrateVmaPages(args);
      dmirrorMigrateFinalizeAndMap(args, dmirror);
      migrateVmaFinalize(args);
    }
    return 0;
  });
  if (ret) return ret;
  // Return the migrated data for verification. Only for pages in device zone.
  return dmirror.readBack(cmd, start, end);
}

/**
 * dmirror_devmem_fault_alloc_and_copy(): system pages for every collected device page (a THP for a device THP;
 * FAIL_ALLOC falls back to 4 KiB pages for a THP and is VM_FAULT_OOM for a 4 KiB page), copy from the backing
 * page, and erase the device page-table entry of each page. Returns 0 or VM_FAULT_OOM.
 */
export function dmirrorDevmemFaultAllocAndCopy(args: MigrateVma, dmirror: Dmirror): number {
  const ctx = dmirror.mdevice.ctx;
  const k = ctx.kernel;
  const src = args.src!;
  const dst = args.dst!;
  let si = 0;
  let order = 0;
  for (let addr = args.start; addr < args.end; ) {
    let spage = migratePfnToPage(src[si]!);
    if (spage < 0 || !(src[si]! & MIGRATE_PFN_MIGRATE)) {
      addr += PAGE_SIZE;
    } else if (!isDevicePrivatePage(k, spage) && !isDeviceCoherentPage(k, spage)) {
      // WARN_ON
      addr += PAGE_SIZE;
    } else {
      spage = backingPage(ctx, spage);
      order = Math.log2(k.store.folioNr(spage));
      if (order) dst[si] = MIGRATE_PFN_COMPOUND;
      if (src[si]! & MIGRATE_PFN_WRITE) dst[si] = mpfnSet(dst[si]!, MIGRATE_PFN_WRITE);
      let dpage: number;
      if (takeFailAlloc(dmirror)) {
        dst[si] = mpfnClear(dst[si]!, MIGRATE_PFN_COMPOUND);
        dpage = -1;
      } else {
        dpage = allocPages(k, order);
      }
      // As the kernel: earlier entries keep their dst pages. The caller's migrate_vma_finalize without
      // migrate_vma_pages would then map pages that never got src's mapping (a kernel bug on a genuine OOM in the
      // middle of a range); @hmmsim/migrate refuses that with migrate_vma_finalize_dst_without_pages. FAIL_ALLOC
      // fails the first allocation, so the self-tests never leave such an entry.
      if (dpage < 0 && !order) return VM_FAULT_OOM;
      if (dpage >= 0) {
        lockPage(k, dpage);
        dst[si] = dst[si]! + migratePfn(dpage); // *dst |= migrate_pfn(page_to_pfn(dpage)); dst held only flags
      }
      for (let i = 0; i < 2 ** order; i++) {
        let dstPage: number;
        // Try with smaller pages if large allocation fails.
        if (dpage < 0 && order) {
          const p = allocPages(k, 0);
          if (p < 0) {
            // Unlock and free pages already allocated, clear the remaining dst entries.
            for (let j = i - 1; j >= 0; j--) {
              const fpage = migratePfnToPage(dst[si + j]!);
              folioUnlock(k, fpage);
              putPage(k, fpage);
            }
            for (let j = 0; j < 2 ** order; j++) dst[si + j] = 0;
            return VM_FAULT_OOM;
          }
          lockPage(k, p);
          dst[si + i] = migratePfn(p);
          dstPage = p;
        } else {
          dstPage = dpage + i;
        }
        dmirror.pt.delete(addr / PAGE_SIZE);
        addr += PAGE_SIZE;
        copyHighpage(k, dstPage, spage + i);
      }
    }
    si += 2 ** order;
  }
  return 0;
}

/** lock_page() of a freshly allocated page (never contended). */
function lockPage(k: Kernel, pfn: number): void {
  if (!folioTrylock(k, pfn)) throw new KernelRuleError("dmirror_lock_new_page", `pfn ${pfn} is already locked`);
}

/** dmirror_successful_migrated_pages(). */
function dmirrorSuccessfulMigratedPages(args: MigrateVma): number {
  let cpages = 0;
  const src = args.src!;
  for (let i = 0; i < args.npages; i++) if (src[i]! & MIGRATE_PFN_VALID && src[i]! & MIGRATE_PFN_MIGRATE) cpages++;
  return cpages;
}

/** dmirror_migrate_to_system(). */
export function dmirrorMigrateToSystem(dmirror: Dmirror, cmd: HmmDmirrorCmd): number {
  const mm = dmirror.mm;
  const size = cmd.npages * PAGE_SIZE;
  const start = cmd.addr;
  const end = start + size;
  if (end < start) return -EINVAL;
  if (mm.exited) return -EINVAL;
  const args = newMigrateVma(new Float64Array(PTRS_PER_PTE), new Float64Array(PTRS_PER_PTE));
  cmd.cpages = 0;
  return mm.withReadLock("dmirror_migrate_to_system", () => {
    for (let addr = start, next: number; addr < end; addr = next) {
      const vma = mm.vmaLookup(addr);
      if (vma === null || !(vma.vmFlags & VM_READ)) return -EINVAL;
      next = Math.min(end, addr + PTRS_PER_PTE * PAGE_SIZE);
      if (next > vma.vmEnd) next = vma.vmEnd;
      args.vma = vma;
      args.start = addr;
      args.end = next;
      args.pgmapOwner = dmirror.mdevice;
      args.flags = dmirrorSelectDevice(dmirror.mdevice) | MIGRATE_VMA_SELECT_COMPOUND;
      const r = migrateVmaSetup(args);
      if (r) return r;
      if (dmirrorDevmemFaultAllocAndCopy(args, dmirror)) {
        migrateVmaFinalize(args); // straight after setup, as the kernel: every source page is restored
        return -ENOMEM;
      }
      migrateVmaPages(args);
      cmd.cpages += dmirrorSuccessfulMigratedPages(args);
      migrateVmaFinalize(args);
    }
    return 0;
  });
}

/** dmirror_devmem_fault(): the migrate_to_ram op (private devices). Returns VM_FAULT_* bits. */
export function dmirrorDevmemFault(ctx: DmirrorModuleContext, vmf: VmFault): number {
  const k = ctx.kernel;
  const head = k.store.folioHead(vmf.page);
  const rpage = ctx.zdd.backing(head);
  const dmirror = rpage < 0 ? null : ctx.zdd.mirror(rpage);
  if (dmirror === null) throw new KernelRuleError("dmirror_devmem_fault_no_mirror", `device page ${vmf.page} has no dmirror`);
  let order = Math.log2(k.store.folioNr(head));
  // When folios are partially mapped, we can't rely on the folio order of vmf->page as the folio might not be
  // fully split yet: a fault at PTE level (vmf->pte) migrates one page.
  if (!vmf.atPmd) order = 0; // if (vmf->pte)
  const span = PAGE_SIZE * 2 ** order;
  const start = vmf.address - (vmf.address % span);
  const nr = span / PAGE_SIZE;
  const args = newMigrateVma(new Float64Array(nr), new Float64Array(nr));
  args.vma = vmf.vma;
  args.start = start;
  args.end = start + span;
  args.pgmapOwner = dmirror.mdevice;
  args.flags = dmirrorSelectDevice(dmirror.mdevice);
  args.faultPage = vmf.page;
  if (order) args.flags |= MIGRATE_VMA_SELECT_COMPOUND;
  // In practice migrate_vma_setup() should never fail unless the test is wrong as it just tests some static VMA
  // properties.
  if (migrateVmaSetup(args)) return VM_FAULT_SIGBUS;
  const ret = dmirrorDevmemFaultAllocAndCopy(args, dmirror);
  if (ret) {
    migrateVmaFinalize(args);
    return ret;
  }
  migrateVmaPages(args);
  // No device finalize step is needed since dmirror_devmem_fault_alloc_and_copy() will have already invalidated
  // the device page table.
  migrateVmaFinalize(args);
  return 0;
}

/**
 * dmirror_devmem_folio_split(head, tail): a device THP is being split. Each new tail page gets its slice of the
 * backing folio (and that slice the dmirror pointer); the call for the head (tail < 0) makes the backing folio
 * order 0.
 */
export function dmirrorDevmemFolioSplit(ctx: DmirrorModuleContext, head: number, tail: number): void {
  const k = ctx.kernel;
  const s = k.store;
  const rpage = isDevicePrivatePage(k, head) ? ctx.zdd.backing(head) : head;
  if (rpage < 0) {
    if (tail >= 0) ctx.zdd.set(tail, undefined);
    return;
  }
  if (!isDevicePrivatePage(k, head)) return;
  if (tail < 0 || tail === head) {
    // folio_reset_order(rfolio); folio_init_count(rfolio)
    s.setFlagsWord(rpage, s.flags(rpage) & ~(PG_head | PG_tail));
    s.setOrder(rpage, 0);
    s.setRefcount(rpage, 1);
    return;
  }
  const offset = tail - head;
  const rpageTail = rpage + offset;
  ctx.zdd.set(tail, rpageTail);
  ctx.zdd.set(rpageTail, ctx.zdd.get(rpage));
  // clear_compound_head(rpage_tail); folio_init_count(page_folio(rpage_tail))
  s.setFlagsWord(rpageTail, s.flags(rpageTail) & ~(PG_head | PG_tail));
  s.setOrder(rpageTail, 0);
  s.setRefcount(rpageTail, 1);
}

/** dmirror_device_evict_chunk(): migrate every allocated page of the chunk back to system memory. */
export function dmirrorDeviceEvictChunk(ctx: DmirrorModuleContext, chunk: DmirrorChunk): void {
  const k = ctx.kernel;
  const startPfn = chunk.pfnFirst;
  const npages = chunk.pfnLast - chunk.pfnFirst;
  const src = new Float64Array(npages);
  const dst = new Float64Array(npages);
  migrateDeviceRange(k, src, startPfn, npages);
  for (let i = 0; i < npages; i++) {
    let spage = migratePfnToPage(src[i]!);
    if (spage < 0 || !(src[i]! & MIGRATE_PFN_MIGRATE)) continue;
    if (!isDevicePrivatePage(k, spage) && !isDeviceCoherentPage(k, spage)) continue; // WARN_ON
    let order = Math.log2(k.store.folioNr(spage));
    spage = backingPage(ctx, spage);
    let dpage: number;
    if (src[i]! & MIGRATE_PFN_COMPOUND) {
      dpage = allocPages(k, order);
    } else {
      dpage = allocPages(k, 0);
      order = 0;
    }
    if (dpage < 0) throw new KernelRuleError("dmirror_evict_nofail_alloc", "__GFP_NOFAIL allocation failed: system RAM exhausted");
    lockPage(k, dpage);
    dst[i] = migratePfn(dpage);
    if (src[i]! & MIGRATE_PFN_WRITE) dst[i] = mpfnSet(dst[i]!, MIGRATE_PFN_WRITE);
    if (order) dst[i] = mpfnSet(dst[i]!, MIGRATE_PFN_COMPOUND);
    // folio_copy(page_folio(dpage), page_folio(spage))
    const n = k.store.folioNr(spage);
    for (let j = 0; j < n; j++) copyHighpage(k, dpage + j, spage + j);
  }
  migrateDevicePages(k, src, dst, npages);
  migrateDeviceFinalize(k, src, dst, npages);
}
