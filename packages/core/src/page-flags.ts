/**
 * Page geometry (arch/x86/include/asm/page_types.h, pgtable_types.h) and struct page flags
 * (include/linux/page-flags.h). Flags are bit masks in one Uint32 per page.
 */
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
export const PAGE_MASK = -PAGE_SIZE; // use alignDown(); bitwise & truncates to 32 bits
export const PMD_SHIFT = 21;
export const PMD_SIZE = 2 * 1024 * 1024;
export const PUD_SHIFT = 30;
export const PUD_SIZE = 1024 * 1024 * 1024;
/** x86-64 4-level paging: one PGD entry maps 512 GiB (the P4D level is folded into it). */
export const PGDIR_SIZE = 512 * PUD_SIZE;
export const PTRS_PER_PTE = 512;
export const PTRS_PER_PMD = 512;
/** HPAGE_PMD_ORDER / HPAGE_PMD_NR: a PMD-mapped THP is an order-9 folio of 512 pages. */
export const HPAGE_PMD_ORDER = 9;
export const HPAGE_PMD_NR = 512;
export const HPAGE_PMD_SIZE = PMD_SIZE;
/** The top of the simulated user address space (TASK_SIZE): 2^47, as x86-64 with 4-level paging. */
export const TASK_SIZE = 2 ** 47;

/** enum pageflags (include/linux/page-flags.h), as masks. */
export const PG_locked = 1 << 0;
export const PG_referenced = 1 << 1;
export const PG_uptodate = 1 << 2;
export const PG_dirty = 1 << 3;
export const PG_lru = 1 << 4;
export const PG_head = 1 << 5;
/** hmmsim: marks a compound tail page (the kernel encodes it in page->compound_head bit 0). */
export const PG_tail = 1 << 6;
/** hmmsim: folio_test_anon() (the kernel encodes it as PAGE_MAPPING_ANON in page->mapping). */
export const PG_anon = 1 << 7;
export const PG_anon_exclusive = 1 << 8;
export const PG_swapbacked = 1 << 9;
export const PG_reserved = 1 << 10;
export const PG_hwpoison = 1 << 11;
export const PG_writeback = 1 << 12;
export const PG_active = 1 << 13;
/** PageBuddy: the page is free in the page allocator. */
export const PG_buddy = 1 << 14;
/** folio_test_hugetlb() (the kernel keeps it in the folio's page_type): a hugetlb pool folio, on the head. */
export const PG_hugetlb = 1 << 15;

/** enum zone_type (include/linux/mmzone.h). */
export const ZONE_DMA = 0;
export const ZONE_DMA32 = 1;
export const ZONE_NORMAL = 2;
export const ZONE_MOVABLE = 3;
export const ZONE_DEVICE = 4;
/** hmmsim: a pfn with no struct page (hole between RAM and device ranges): !pfn_valid(). */
export const ZONE_NONE = 255;

export function alignDown(addr: number, size: number): number {
  return addr - (addr % size);
}
export function alignUp(addr: number, size: number): number {
  const r = addr % size;
  return r === 0 ? addr : addr + (size - r);
}
export function isAligned(addr: number, size: number): boolean {
  return addr % size === 0;
}
