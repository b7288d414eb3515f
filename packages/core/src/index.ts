// @hmmsim/core public surface.
export * from "./errno.js";
export * from "./errors.js";
export * from "./page-flags.js";
export { PageStore, MAX_PFN, PAGE_SLOT_MASK, type PageChunk, type PageInfo } from "./page-store.js";
export { PageAllocator } from "./page-alloc.js";
export { PageBytesPool } from "./page-bytes.js";
export * from "./dev-pagemap.js";
export * from "./memremap.js";
export * from "./memcontrol.js";
export * from "./pgtable.js";
export * from "./page-table.js";
export * from "./vma.js";
export { AddressSpace } from "./filemap.js";
export * from "./rmap.js";
export * from "./mm-counters.js";
export * from "./vm-fault.js";
export * from "./cost.js";
export { Kernel, createKernel, type KernelOptions, type ThpMode } from "./kernel.js";
export { Mm, mmapAssertLocked, mmapAssertWriteLocked } from "./mm.js";
export {
  allocPages,
  getPage,
  putPage,
  putPages,
  folioTryGet,
  folioTrylock,
  folioUnlock,
  folioTestLocked,
  GUP_PIN_COUNTING_BIAS,
  folioMaybeDmaPinned,
} from "./page-ref.js";
export {
  FOLL_WRITE,
  FOLL_GET,
  FOLL_DUMP,
  FOLL_FORCE,
  FOLL_NOWAIT,
  FOLL_NOFAULT,
  FOLL_HWPOISON,
  FOLL_ANON,
  FOLL_LONGTERM,
  FOLL_SPLIT_PMD,
  FOLL_PCI_P2PDMA,
  FOLL_INTERRUPTIBLE,
  FOLL_HONOR_NUMA_FAULT,
  FOLL_TOUCH,
  FOLL_TRIED,
  FOLL_REMOTE,
  FOLL_PIN,
  FOLL_FAST_ONLY,
  FOLL_UNLOCKABLE,
  getUserPages,
  getUserPagesFast,
  pinUserPages,
  pinUserPagesFast,
  unpinUserPage,
  unpinUserPages,
  tryGrabFolio,
  gupPutFolio,
  folioIsLongtermPinnable,
} from "./gup.js";
export { handleMmFault, vmNormalPage, zapPageRange, restoreExclusivePte, filemapGetPage } from "./memory.js";
export { thpEligible, splitHugePmd, splitFolio, isHugeZeroPmd } from "./huge-memory.js";
export { MMAP_MIN_ADDR, getUnmappedArea, splitVma, type MmapArgs } from "./mmap.js";
export { changeProtection } from "./mprotect.js";
export { MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP, doMremap, movePageTables } from "./mremap.js";
export { invalidateStart, invalidateEnd } from "./mm-notify.js";
export { vmInsertPage, remapPfnRange } from "./vm-insert.js";
export * from "./mmu-notifier-range.js";
export {
  madviseCollapse,
  madviseCollapseErrno,
  SCAN_FAIL,
  SCAN_SUCCEED,
  SCAN_PMD_NULL,
  SCAN_PMD_NONE,
  SCAN_PMD_MAPPED,
  SCAN_PMD_MIGRATION,
  SCAN_PTE_NON_PRESENT,
  SCAN_PAGE_RO,
  SCAN_PAGE_NULL,
  SCAN_PAGE_ANON,
  SCAN_PAGE_LOCK,
  SCAN_PAGE_LRU,
  SCAN_PAGE_COUNT,
  SCAN_ALLOC_HUGE_PAGE_FAIL,
  SCAN_CGROUP_CHARGE_FAIL,
  SCAN_VMA_CHECK,
} from "./khugepaged.js";
export * from "./pagemap.js";
export {
  Hstate,
  HUGETLB_PAGE_ORDER,
  hstateVma,
  hugePageOrder,
  hugePageSize,
  folioTestHugetlb,
  hugetlbFault,
  unmapHugepageRange,
  hugetlbSplitCheck,
} from "./hugetlb.js";
