/**
 * mremap(2) (mm/mremap.c: do_mremap, check_mremap_params, check_prep_vma, remap_move, mremap_to, mremap_at,
 * expand_vma, shrink_vma, move_vma, copy_vma_and_data, move_page_tables, move_ptes, move_normal_pmd,
 * move_huge_pmd, unmap_source_vma, dontunmap_complete).
 *
 * Moving keeps the mapping's identity: the new VMA keeps vm_pgoff (vma->vm_pgoff + offset into the old VMA) and
 * the anon_vma, so an anon page keeps its page->index and rmap finds it at vma_address() in the new VMA. Page-table
 * entries move as they are — present PTEs, device-private / device-exclusive / migration entries, and huge PMDs
 * (THP, device-private PMD, PMD migration entry) when both addresses are PMD aligned over a whole PMD (else the
 * PMD is split first). Moved PTEs get the soft-dirty bit (move_soft_dirty_pte). Mapcounts, references and rss do
 * not change. move_page_tables sends MMU_NOTIFY_UNMAP over the old range; the source is then munmap()ed (another
 * UNMAP), unless MREMAP_DONTUNMAP, which leaves the old VMA in place, empty (and, when the whole VMA moved, without
 * its anon_vma: unlink_anon_vmas).
 *
 * Differences: no VMA merging (a moved or grown VMA stays a separate VMA); no try_realign_addr (the notifier range
 * is exactly the moved range); no VM_ACCOUNT/locked_vm accounting; MREMAP_DONTUNMAP without MREMAP_FIXED takes the
 * first free area (get_unmapped_area ignores hints in hmmsim).
 */
import { EFAULT, EINVAL, ENOMEM } from "./errno.js";
import { InvalidArgumentError } from "./errors.js";
import { splitHugePmd } from "./huge-memory.js";
import { invalidateEnd, invalidateStart } from "./mm-notify.js";
import type { Mm } from "./mm.js";
import { MMU_NOTIFY_UNMAP } from "./mmu-notifier-range.js";
import { doMunmap, getUnmappedArea, insertVma } from "./mmap.js";
import { PAGE_SIZE, PMD_SIZE, TASK_SIZE, alignDown, alignUp, isAligned } from "./page-flags.js";
import { pteMksoftDirty, ptePresent } from "./pgtable.js";
import { VM_DONTEXPAND, VM_LOCKED, VM_MAYSHARE, VM_PFNMAP, VM_SHARED, isVmHugetlbPage, type VmAreaStruct } from "./vma.js";

/** include/uapi/linux/mman.h. */
export const MREMAP_MAYMOVE = 1;
export const MREMAP_FIXED = 2;
export const MREMAP_DONTUNMAP = 4;

/** enum mremap_type. */
const MREMAP_NO_RESIZE = 1;
const MREMAP_SHRINK = 2;
const MREMAP_EXPAND = 3;

/** struct vma_remap_struct (the parts hmmsim needs). */
interface Vrm {
  addr: number;
  oldLen: number;
  newLen: number;
  readonly flags: number;
  newAddr: number;
  vma: VmAreaStruct | null;
  delta: number;
  remapType: number;
}

function checkInt(field: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new InvalidArgumentError(field, "must be an integer >= 0", v);
}

/**
 * do_mremap(): returns the (new) address of the mapping, or -EINVAL / -ENOMEM / -EFAULT as the kernel does.
 * Non-integer or negative arguments throw InvalidArgumentError (the kernel's types cannot express them).
 */
export function doMremap(mm: Mm, addr: number, oldLen: number, newLen: number, flags: number, newAddr = 0): number {
  checkInt("addr", addr);
  checkInt("oldLen", oldLen);
  checkInt("newLen", newLen);
  checkInt("flags", flags);
  checkInt("newAddr", newAddr);
  const vrm: Vrm = {
    addr,
    oldLen: alignUp(oldLen, PAGE_SIZE),
    newLen: alignUp(newLen, PAGE_SIZE),
    flags,
    newAddr,
    vma: null,
    delta: 0,
    remapType: 0,
  };
  const r = checkMremapParams(vrm);
  if (r !== 0) return r;
  if (vrmMoveOnly(vrm)) return remapMove(mm, vrm);
  vrm.vma = mm.vmaLookup(vrm.addr);
  const p = checkPrepVma(vrm);
  if (p !== 0) return p;
  return vrmImpliesNewAddr(vrm) ? mremapTo(mm, vrm) : mremapAt(mm, vrm);
}

function vrmImpliesNewAddr(vrm: Vrm): boolean {
  return (vrm.flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) !== 0;
}
function vrmMoveOnly(vrm: Vrm): boolean {
  return (vrm.flags & MREMAP_FIXED) !== 0 && vrm.oldLen === vrm.newLen;
}

/** check_mremap_params(). */
function checkMremapParams(vrm: Vrm): number {
  const { flags } = vrm;
  if (flags & ~(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP)) return -EINVAL;
  if (!isAligned(vrm.addr, PAGE_SIZE)) return -EINVAL;
  if (vrm.newLen === 0) return -EINVAL;
  if (vrm.newLen > TASK_SIZE) return -EINVAL;
  if (!vrmImpliesNewAddr(vrm)) return 0;
  if (vrm.newAddr > TASK_SIZE - vrm.newLen) return -EINVAL;
  if (!isAligned(vrm.newAddr, PAGE_SIZE)) return -EINVAL;
  if (!(flags & MREMAP_MAYMOVE)) return -EINVAL;
  if (flags & MREMAP_DONTUNMAP && vrm.oldLen !== vrm.newLen) return -EINVAL;
  // vrm_overlaps()
  if (vrm.addr + vrm.oldLen > vrm.newAddr && vrm.newAddr + vrm.newLen > vrm.addr) return -EINVAL;
  return 0;
}

/** check_prep_vma(). */
function checkPrepVma(vrm: Vrm): number {
  const vma = vrm.vma;
  if (vma === null) return -EFAULT;
  if (isVmHugetlbPage(vma)) {
    // align_hugetlb(): lengths rounded up to the huge page size, addresses aligned, no expansion.
    vrm.oldLen = alignUp(vrm.oldLen, PMD_SIZE);
    vrm.newLen = alignUp(vrm.newLen, PMD_SIZE);
    if (!isAligned(vrm.addr, PMD_SIZE) || !isAligned(vrm.newAddr, PMD_SIZE) || vrm.newLen > vrm.oldLen) return -EINVAL;
  }
  vrm.delta = Math.abs(vrm.oldLen - vrm.newLen);
  vrm.remapType = vrm.delta === 0 ? MREMAP_NO_RESIZE : vrm.oldLen > vrm.newLen ? MREMAP_SHRINK : MREMAP_EXPAND;
  if (!vrmImpliesNewAddr(vrm)) vrm.newAddr = vrm.addr;
  // vrm_will_map_new()
  if (vrm.remapType !== MREMAP_EXPAND && !vrmImpliesNewAddr(vrm)) return 0;
  let oldLen = vrm.oldLen;
  const newLen = vrm.newLen;
  if (oldLen === 0 && !(vma.vmFlags & (VM_SHARED | VM_MAYSHARE))) return -EINVAL;
  if (vrm.flags & MREMAP_DONTUNMAP && vma.vmFlags & (VM_DONTEXPAND | VM_PFNMAP)) return -EINVAL;
  if (vrm.remapType === MREMAP_SHRINK) oldLen = newLen;
  if (oldLen > vma.vmEnd - vrm.addr) return -EFAULT;
  if (newLen === oldLen) return 0;
  if (vma.vmFlags & (VM_DONTEXPAND | VM_PFNMAP)) return -EFAULT;
  return 0;
}

/** remap_move(): MREMAP_FIXED with old_len == new_len may move several VMAs, keeping the gaps between them. */
function remapMove(mm: Mm, vrm: Vrm): number {
  const start = vrm.addr;
  const end = vrm.addr + vrm.oldLen;
  const spans = mm.vmasIn(start, end).map((v) => ({ vmStart: v.vmStart, vmEnd: v.vmEnd }));
  let res = -EFAULT;
  let seen = false;
  let lastEnd = 0;
  let target = vrm.newAddr;
  for (const span of spans) {
    const addr = Math.max(span.vmStart, start);
    const len = Math.min(end, span.vmEnd) - addr;
    if (!seen && start < span.vmStart) return -EFAULT;
    const offset = seen ? span.vmStart - lastEnd : 0;
    lastEnd = span.vmEnd;
    const vma = mm.vmaLookup(addr);
    const sub: Vrm = { addr, oldLen: len, newLen: len, flags: vrm.flags, newAddr: target + offset, vma, delta: 0, remapType: 0 };
    let r = checkPrepVma(sub);
    if (r === 0) r = mremapTo(mm, sub);
    if (r < 0) return r;
    if (!seen) res = r;
    seen = true;
    target = r + sub.newLen;
  }
  return res;
}

/** mremap_to(): move (and maybe shrink) to vrm.newAddr (MREMAP_FIXED) or a new area (MREMAP_DONTUNMAP). */
function mremapTo(mm: Mm, vrm: Vrm): number {
  if (vrm.flags & MREMAP_FIXED) {
    const err = doMunmap(mm, vrm.newAddr, vrm.newLen);
    if (err !== 0) return err;
    vrm.vma = mm.vmaLookup(vrm.addr);
    if (vrm.vma === null) return -EFAULT;
  }
  if (vrm.remapType === MREMAP_SHRINK) {
    const r = shrinkVma(mm, vrm);
    if (r !== 0) return r;
    vrm.oldLen = vrm.newLen;
  }
  const r = vrmSetNewAddr(mm, vrm);
  if (r !== 0) return r;
  return moveVma(mm, vrm);
}

/** vrm_set_new_addr(): MREMAP_FIXED keeps newAddr; otherwise get_unmapped_area. */
function vrmSetNewAddr(mm: Mm, vrm: Vrm): number {
  if (vrm.flags & MREMAP_FIXED) return 0;
  const a = getUnmappedArea(mm, vrm.newLen);
  if (a < 0) return -ENOMEM;
  vrm.newAddr = a;
  return 0;
}

/** shrink_vma(): unmap the tail [addr + new_len, addr + old_len). */
function shrinkVma(mm: Mm, vrm: Vrm): number {
  const err = doMunmap(mm, vrm.addr + vrm.newLen, vrm.delta);
  if (err !== 0) return err;
  vrm.vma = mm.vmaLookup(vrm.addr);
  return vrm.vma === null ? -EFAULT : 0;
}

/** mremap_at(): resize in place, or move with MREMAP_MAYMOVE when the VMA cannot grow. */
function mremapAt(mm: Mm, vrm: Vrm): number {
  switch (vrm.remapType) {
    case MREMAP_NO_RESIZE:
      return vrm.addr;
    case MREMAP_SHRINK: {
      const r = shrinkVma(mm, vrm);
      return r !== 0 ? r : vrm.addr;
    }
    default:
      return expandVma(mm, vrm);
  }
}

/** expand_vma(): grow in place when [vm_end, vm_end + delta) is free, else move (MREMAP_MAYMOVE) or -ENOMEM. */
function expandVma(mm: Mm, vrm: Vrm): number {
  const vma = vrm.vma!;
  const end = vma.vmEnd + vrm.delta;
  if (vma.vmEnd - vrm.addr === vrm.oldLen && end <= TASK_SIZE && mm.vmasIn(vma.vmEnd, end).length === 0) {
    // vma_merge_extend(). A shmem or file object does not grow: faults past its end get SIGBUS, as in Linux.
    vma.vmEnd = end;
    return vrm.addr;
  }
  if (!(vrm.flags & MREMAP_MAYMOVE)) return -ENOMEM;
  const r = vrmSetNewAddr(mm, vrm);
  if (r !== 0) return r;
  return moveVma(mm, vrm);
}

/** move_vma(): copy_vma + move_page_tables, then unmap the source (or dontunmap_complete). */
function moveVma(mm: Mm, vrm: Vrm): number {
  const vma = vrm.vma!;
  const newPgoff = vma.vmPgoff + (vrm.addr - vma.vmStart) / PAGE_SIZE;
  // copy_vma(): same flags, file, anon_vma; vm_pgoff of the moved part.
  const newVma: VmAreaStruct = { ...vma, vmStart: vrm.newAddr, vmEnd: vrm.newAddr + vrm.newLen, vmPgoff: newPgoff };
  insertVma(mm, newVma);
  if (vma.anonVma !== null && newVma.vmPgoff !== newVma.vmStart / PAGE_SIZE) vma.anonVma.nonLinear = true;
  movePageTables(mm, vma, vrm.addr, vrm.newAddr, vrm.oldLen);
  // fixup_hugetlb_reservations(): the source no longer owns the reservations; the new VMA does.
  if (isVmHugetlbPage(vma)) vma.hugetlbResv = null;
  if (vrm.flags & MREMAP_DONTUNMAP) {
    // dontunmap_complete()
    vma.vmFlags &= ~VM_LOCKED;
    if (vrm.addr === vma.vmStart && vrm.addr + vrm.oldLen === vma.vmEnd) vma.anonVma = null;
  } else {
    doMunmap(mm, vrm.addr, vrm.oldLen);
  }
  return vrm.newAddr;
}

/**
 * move_page_tables(): move every entry of [oldAddr, oldAddr + len) to newAddr, one PMD extent at a time, under
 * one MMU_NOTIFY_UNMAP over the old range. Returns the number of entries moved.
 */
export function movePageTables(mm: Mm, vma: VmAreaStruct, oldAddr: number, newAddr: number, len: number): number {
  if (len === 0) return 0;
  const k = mm.kernel;
  const pt = mm.pgtable;
  const oldEnd = oldAddr + len;
  const range = invalidateStart(mm, MMU_NOTIFY_UNMAP, oldAddr, oldEnd);
  let moved = 0;
  let flush = 0;
  for (let o = oldAddr, n = newAddr; o < oldEnd; ) {
    // get_extent(NORMAL_PMD)
    const extent = Math.min(alignDown(o, PMD_SIZE) + PMD_SIZE - o, oldEnd - o, alignDown(n, PMD_SIZE) + PMD_SIZE - n);
    const pmd = pt.pmdGet(o);
    if (extent === PMD_SIZE) pt.freePteTableIfEmpty(n); // free_pgtables() left nothing at an unmapped destination
    if (pmd !== 0) {
      if (extent === PMD_SIZE && pt.pmdGet(n) === 0 && pt.pteTable(n, false) === null) {
        // move_huge_pmd(): the huge entry moves whole, soft-dirty set.
        pt.pmdSet(o, 0);
        pt.pmdSet(n, pteMksoftDirty(pmd));
        moved++;
        if (ptePresent(pmd)) flush += PMD_SIZE / PAGE_SIZE;
        o += extent;
        n += extent;
        continue;
      }
      splitHugePmd(mm, vma, o);
    } else if (extent === PMD_SIZE && pt.pteTable(o, false) !== null && pt.pmdGet(n) === 0 && pt.pteTable(n, false) === null) {
      // move_normal_pmd(): hand the whole PTE table over.
      const t = pt.pteTable(o, false)!;
      let present = 0;
      for (let i = 0; i < 512; i++) if (ptePresent(t[i]!)) present++;
      pt.movePteTable(o, n);
      moved++;
      flush += present;
      o += extent;
      n += extent;
      continue;
    }
    const t = pt.pteTable(o, false);
    if (t !== null) {
      // move_ptes()
      for (let a = o, b = n; a < o + extent; a += PAGE_SIZE, b += PAGE_SIZE) {
        const i = (Math.floor(a / PAGE_SIZE) & 511);
        const e = t[i]!;
        if (e === 0) continue;
        t[i] = 0;
        pt.pteSet(b, pteMksoftDirty(e));
        moved++;
        if (ptePresent(e)) flush++;
      }
    }
    o += extent;
    n += extent;
  }
  if (k.charge !== null && moved > 0) {
    k.charge("pteUpdate", moved * 2);
    if (flush > 0) k.charge("tlbShootdown", flush);
  }
  invalidateEnd(range);
  return moved;
}
