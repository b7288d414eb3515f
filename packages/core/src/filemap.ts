/**
 * A simple in-memory file with a page cache (struct address_space; mm/filemap.c filemap_fault /
 * __filemap_get_folio, mm/shmem.c for the shmem object behind MAP_SHARED|MAP_ANONYMOUS). Page-cache pages hold one
 * reference (the cache's), are on the LRU, have mapping = the file and index = the page offset. A shmem page is
 * swap-backed (PG_swapbacked) and counted in MM_SHMEMPAGES when mapped; other file pages in MM_FILEPAGES.
 */
import type { HugetlbResvMap, VmAreaStruct } from "./vma.js";

export class AddressSpace {
  readonly kind = "file" as const;
  /** Page index → pfn of the cached page. */
  readonly pages = new Map<number, number>();
  /** VMAs mapping this file (i_mmap), for the reverse map. */
  readonly mappers = new Set<VmAreaStruct>();
  constructor(
    /** Id in Kernel.objects, stored in page->mapping. */
    readonly id: number,
    /** Size in bytes (i_size). */
    public size: number,
    /** shmem (MAP_SHARED|MAP_ANONYMOUS backing, or createFile({ shmem: true })). */
    readonly shmem: boolean,
    readonly name: string,
  ) {}
  /** The object behind a MAP_SHARED|MAP_ANONYMOUS mapping: freed with its last mapping. */
  anonShmem = false;
  /** MAP_HUGETLB's internal hugetlbfs file: `pages` maps the page index of each huge page's head to its pfn. */
  hugetlbfs = false;
  /** The reservations a shared hugetlb mapping made (the inode's resv_map), null when none. */
  hugetlbResv: HugetlbResvMap | null = null;
  /** Cached pages. */
  get nrpages(): number {
    return this.pages.size;
  }
}
