/**
 * Content snapshots: record what each page of a VA range holds (content tag, and bytes when the kernel keeps
 * them) and compare later, to prove nothing was lost across migration, fork, COW, mprotect or eviction. Pages are
 * resolved through the page tables without faulting (the check never changes state), the way a read would
 * see them: a present entry's page, a device-private / device-exclusive / migration entry's page (the data lives
 * there), the page cache for an unfaulted file or shmem page, and zeroes for an unfaulted anonymous page.
 */
import {
  PAGE_SIZE,
  PMD_SIZE,
  isDeviceExclusiveEntry,
  isDevicePrivateEntry,
  isMigrationEntry,
  linearPageIndex,
  pmdTransHuge,
  ptePfn,
  ptePresent,
  type Mm,
} from "@hmmsim/core";
import type { Violation } from "./invariants.js";

/**
 * The pfn whose contents a read of `addr` in `mm` would return right now, without faulting; -1 when the read
 * would see zeroes (no page yet, or the zero page). Throws for an address outside every VMA.
 */
export function resolveContentPfn(mm: Mm, addr: number): number {
  const vma = mm.vmaLookup(addr);
  if (vma === null) throw new Error(`resolveContentPfn: mm ${mm.id} has no VMA at 0x${addr.toString(16)}`);
  const k = mm.kernel;
  const pmd = mm.pgtable.pmdGet(addr);
  if (pmd !== 0 && (pmdTransHuge(pmd) || isDevicePrivateEntry(pmd) || isMigrationEntry(pmd))) {
    const pfn = ptePfn(pmd) + (Math.floor(addr / PAGE_SIZE) % (PMD_SIZE / PAGE_SIZE));
    return pfn === k.zeroPfn ? -1 : pfn;
  }
  const pte = mm.pgtable.pteGet(addr);
  if (pte !== 0 && (ptePresent(pte) || isDevicePrivateEntry(pte) || isDeviceExclusiveEntry(pte) || isMigrationEntry(pte))) {
    const pfn = ptePfn(pte);
    return pfn === k.zeroPfn ? -1 : pfn;
  }
  if (vma.vmFile !== null) return vma.vmFile.pages.get(linearPageIndex(vma, addr)) ?? -1;
  return -1;
}

export interface ContentSnapshot {
  mmId: number;
  start: number;
  end: number;
  /** Content tag per page (0 = zero-filled). */
  tags: number[];
  /** 4 KiB per page when the kernel keeps bytes, else null. */
  bytes: Uint8Array[] | null;
}

/** Snapshot tags (and bytes) of the pages of [start, end) (page aligned) in mm. */
export function snapshotContents(mm: Mm, start: number, end: number): ContentSnapshot {
  if (start % PAGE_SIZE !== 0 || end % PAGE_SIZE !== 0 || start >= end)
    throw new Error(`snapshotContents: [0x${start.toString(16)}, 0x${end.toString(16)}) must be a non-empty page-aligned range`);
  const k = mm.kernel;
  const tags: number[] = [];
  const bytes: Uint8Array[] | null = k.bytes ? [] : null;
  for (let a = start; a < end; a += PAGE_SIZE) {
    const pfn = resolveContentPfn(mm, a);
    tags.push(pfn < 0 ? 0 : k.store.tag(pfn));
    if (bytes !== null) bytes.push(pfn < 0 ? new Uint8Array(PAGE_SIZE) : k.pageBytes.snapshot(pfn));
  }
  return { mmId: mm.id, start, end, tags, bytes };
}

/** Compare mm's current contents of the snapshot's range with it: one `content_changed` violation per page. */
export function compareContents(mm: Mm, snap: ContentSnapshot): Violation[] {
  const now = snapshotContents(mm, snap.start, snap.end);
  const out: Violation[] = [];
  for (let i = 0; i < snap.tags.length; i++) {
    const addr = snap.start + i * PAGE_SIZE;
    if (now.tags[i] !== snap.tags[i]) {
      out.push({ rule: "content_changed", mmId: mm.id, addr, message: `mm ${mm.id} 0x${addr.toString(16)}: content tag ${snap.tags[i]} became ${now.tags[i]}` });
      continue;
    }
    if (snap.bytes !== null && now.bytes !== null) {
      const a = snap.bytes[i]!;
      const b = now.bytes[i]!;
      let diff = -1;
      for (let j = 0; j < PAGE_SIZE; j++)
        if (a[j] !== b[j]) {
          diff = j;
          break;
        }
      if (diff >= 0)
        out.push({ rule: "content_changed", mmId: mm.id, addr, message: `mm ${mm.id} 0x${addr.toString(16)}: byte ${diff} was ${a[diff]}, now ${b[diff]} (tag unchanged)` });
    }
  }
  return out;
}
