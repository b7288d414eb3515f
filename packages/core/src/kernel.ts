/**
 * One simulated machine's kernel mm state: the struct page store, the RAM allocator, page bytes, the pgmap
 * registry, memcgs, the object table page->mapping points into, the list of mms, the cost sink and trace points.
 * (The kernel's globals: mem_map/vmemmap, the buddy allocator, pgmap_array, root_mem_cgroup, init_mm's list.)
 */
import { PgmapRegistry } from "./dev-pagemap.js";
import { InvalidArgumentError } from "./errors.js";
import { AddressSpace } from "./filemap.js";
import { MemcgRegistry, type MemCgroup } from "./memcontrol.js";
import { Mm } from "./mm.js";
import { emptyTracepoints, type CostSink, type KernelTracepoints } from "./cost.js";
import { PageAllocator } from "./page-alloc.js";
import { PageBytesPool } from "./page-bytes.js";
import { HPAGE_PMD_NR, HPAGE_PMD_ORDER, PAGE_SIZE, PG_head, PG_reserved, PG_tail, PMD_SIZE, ZONE_NORMAL, alignUp } from "./page-flags.js";
import { MAX_PFN, PageStore } from "./page-store.js";
import { AnonVma } from "./rmap.js";
import { Hstate } from "./hugetlb.js";

/**
 * Transparent huge pages (/sys/kernel/mm/transparent_hugepage/enabled): "always" = every anonymous private VMA,
 * "madvise" = VMAs with MADV_HUGEPAGE, "never". A read fault in a THP-eligible extent maps the huge zero folio
 * (do_huge_pmd_anonymous_page with transparent_hugepage/use_zero_page = 1, the kernel's default; see
 * KernelOptions.thpUseZeroPage); a write fault allocates a THP.
 */
export type ThpMode = "always" | "madvise" | "never";

export interface KernelOptions {
  /** System RAM in bytes: a positive multiple of 2 MiB. */
  ramBytes: number;
  /** Keep page bytes (default true); false = timing-only mode, only content tags. */
  bytes?: boolean;
  thp?: ThpMode;
  /**
   * /sys/kernel/mm/transparent_hugepage/use_zero_page (default true, as the kernel's): a read fault in a
   * THP-eligible extent maps the huge zero folio with one read-only PMD; false: it allocates a THP, as a write does.
   */
  thpUseZeroPage?: boolean;
  /** Huge pages in the hugetlb pool at boot (vm.nr_hugepages; default 0, as a machine with none configured). */
  hugetlbPages?: number;
  /**
   * When RAM's struct pages are allocated: "lazy" (default) = per 128 MiB chunk on its first write, so host memory
   * follows what a run touches (a 480 GiB machine that touches 64 MiB costs megabytes, not gigabytes); "boot" = all
   * of them when the kernel is created, as the kernel allocates mem_map at boot (28 host bytes per RAM page, see
   * page-store.ts). The per-page cost is the same either way; it is paid on first use or up front. ZONE_DEVICE
   * struct pages are always lazy.
   */
  memmap?: "boot" | "lazy";
}

export class Kernel {
  readonly store = new PageStore();
  readonly allocator: PageAllocator;
  readonly pageBytes: PageBytesPool;
  readonly pgmaps: PgmapRegistry;
  readonly memcgs = new MemcgRegistry();
  /** The default hstate: the pool of 2 MiB hugetlb pages (empty unless hugetlbPages / setHugetlbPages). */
  readonly hugetlbPool: Hstate;
  readonly nrRamPages: number;
  /** The shared zero page (ZERO_PAGE(0)): reserved, never freed, never written. */
  readonly zeroPfn: number;
  /**
   * The head pfn of the huge zero folio (huge_zero_folio, mm/huge_memory.c): an order-9 folio of zeroes, reserved,
   * never freed, never written, mapped read-only by PMDs only (is_huge_zero_pmd). hmmsim has the persistent one
   * (CONFIG_PERSISTENT_HUGE_ZERO_FOLIO): set up at boot outside the page allocator, as the zero page is.
   */
  readonly hugeZeroPfn: number;
  thp: ThpMode;
  /** transparent_hugepage/use_zero_page (KernelOptions.thpUseZeroPage). */
  thpUseZeroPage: boolean;
  /** When RAM's struct pages were allocated (KernelOptions.memmap). */
  readonly memmap: "boot" | "lazy";
  /**
   * migrate_device_coherent_folio() (mm/migrate_device.c), filled in by @hmmsim/migrate: move one
   * MEMORY_DEVICE_COHERENT page to a new system page, remapping every mapping. Called by FOLL_LONGTERM GUP with one
   * plain reference on the folio (the caller's; not a pin), which the callee always consumes (migrate_device_finalize
   * or the restore path drops it). Returns 0 when the page moved, -EBUSY when it could not. While null, a
   * FOLL_LONGTERM pin of a coherent page fails with -EBUSY.
   */
  migrateDeviceCoherentFolio: ((pfn: number) => number) | null = null;
  /** Cost sink for the timing plane; null (the default) costs nothing. */
  charge: CostSink | null = null;
  readonly tracepoints: KernelTracepoints = emptyTracepoints();
  /** Live mms by id. */
  readonly mms = new Map<number, Mm>();
  private nextMmId = 1;
  /** page->mapping targets by id. */
  readonly objects = new Map<number, AnonVma | AddressSpace>();
  private nextObjectId = 1;

  constructor(opts: KernelOptions) {
    const { ramBytes } = opts;
    if (!Number.isInteger(ramBytes) || ramBytes <= 0 || ramBytes % PMD_SIZE !== 0)
      throw new InvalidArgumentError("ramBytes", "must be a positive multiple of 2 MiB", ramBytes);
    const nr = ramBytes / PAGE_SIZE;
    if (nr > MAX_PFN / 2) throw new InvalidArgumentError("ramBytes", "must be below 8 TiB", ramBytes);
    if (opts.thp !== undefined && opts.thp !== "always" && opts.thp !== "madvise" && opts.thp !== "never")
      throw new InvalidArgumentError("thp", "must be always, madvise or never", opts.thp);
    if (opts.bytes !== undefined && typeof opts.bytes !== "boolean")
      throw new InvalidArgumentError("bytes", "must be a boolean", opts.bytes);
    if (opts.memmap !== undefined && opts.memmap !== "boot" && opts.memmap !== "lazy")
      throw new InvalidArgumentError("memmap", "must be boot or lazy", opts.memmap);
    this.nrRamPages = nr;
    if (opts.thpUseZeroPage !== undefined && typeof opts.thpUseZeroPage !== "boolean")
      throw new InvalidArgumentError("thpUseZeroPage", "must be a boolean", opts.thpUseZeroPage);
    this.thp = opts.thp ?? "madvise";
    this.thpUseZeroPage = opts.thpUseZeroPage ?? true;
    this.allocator = new PageAllocator(nr);
    this.store.initRange(0, nr, ZONE_NORMAL);
    this.zeroPfn = nr;
    this.store.initRange(this.zeroPfn, 1, ZONE_NORMAL);
    this.memmap = opts.memmap ?? "lazy";
    if (this.memmap === "boot") this.store.populate(0, nr + 1); // mem_map at boot (RAM + zero page)
    this.store.setFlagsWord(this.zeroPfn, PG_reserved);
    this.store.setRefcount(this.zeroPfn, 1);
    // The huge zero folio: the next naturally aligned 2 MiB of pfns after the zero page, a compound folio whose
    // head holds the one reference nothing ever drops.
    this.hugeZeroPfn = alignUp(nr + 1, HPAGE_PMD_NR);
    this.store.initRange(this.hugeZeroPfn, HPAGE_PMD_NR, ZONE_NORMAL);
    for (let p = this.hugeZeroPfn; p < this.hugeZeroPfn + HPAGE_PMD_NR; p++) {
      this.store.setFlagsWord(p, PG_reserved | (p === this.hugeZeroPfn ? PG_head : PG_tail));
      this.store.setOrder(p, HPAGE_PMD_ORDER);
    }
    this.store.setRefcount(this.hugeZeroPfn, 1);
    this.pageBytes = new PageBytesPool(this.store, opts.bytes ?? true);
    this.pgmaps = new PgmapRegistry(this.store, this.hugeZeroPfn + HPAGE_PMD_NR);
    this.hugetlbPool = new Hstate(this);
    if (opts.hugetlbPages !== undefined) {
      if (!Number.isInteger(opts.hugetlbPages) || opts.hugetlbPages < 0)
        throw new InvalidArgumentError("hugetlbPages", "must be an integer >= 0", opts.hugetlbPages);
      this.hugetlbPool.setMaxHugePages(opts.hugetlbPages);
    }
  }

  /**
   * echo n > /proc/sys/vm/nr_hugepages: grow or shrink the hugetlb pool; returns the pool size reached (it may be
   * smaller than n when RAM has too few free 2 MiB blocks, or larger when pages are in use or reserved).
   */
  setHugetlbPages(n: number): number {
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("n", "must be an integer >= 0", n);
    return this.hugetlbPool.setMaxHugePages(n);
  }

  /** Bytes mode (false: timing-only). */
  get bytes(): boolean {
    return this.pageBytes.enabled;
  }

  /** A new process address space (mm_alloc), charged to `memcg` (default root). */
  createMm(opts?: { memcg?: MemCgroup }): Mm {
    const memcg = opts?.memcg ?? this.memcgs.root;
    if (this.memcgs.byId(memcg.id) !== memcg) throw new InvalidArgumentError("memcg", "belongs to another kernel");
    const mm = new Mm(this, this.nextMmId++, memcg);
    this.mms.set(mm.id, mm);
    return mm;
  }

  /** A memcg with a limit in bytes (rounded down to pages). */
  createMemcg(name: string, limitBytes: number): MemCgroup {
    if (!(limitBytes >= 0)) throw new InvalidArgumentError("limitBytes", "must be >= 0", limitBytes);
    return this.memcgs.create(name, limitBytes === Infinity ? Infinity : Math.floor(limitBytes / PAGE_SIZE));
  }

  /** An in-memory file of `size` bytes with an empty page cache (reads as zeroes). */
  createFile(size: number, opts?: { shmem?: boolean; name?: string }): AddressSpace {
    if (!Number.isInteger(size) || size < 0) throw new InvalidArgumentError("size", "must be an integer >= 0", size);
    const id = this.nextObjectId++;
    const f = new AddressSpace(id, size, opts?.shmem ?? false, opts?.name ?? `file${id}`);
    this.objects.set(id, f);
    return f;
  }

  /** anon_vma_alloc(). */
  createAnonVma(): AnonVma {
    const id = this.nextObjectId++;
    const a = new AnonVma(id);
    this.objects.set(id, a);
    return a;
  }

  /** is_zero_pfn(). */
  isZeroPfn(pfn: number): boolean {
    return pfn === this.zeroPfn;
  }

  /** is_huge_zero_pfn(): the head pfn of the huge zero folio (what a huge zero PMD maps). */
  isHugeZeroPfn(pfn: number): boolean {
    return pfn === this.hugeZeroPfn;
  }

  /** is_huge_zero_folio(page_folio(pfn)): a page of the huge zero folio. */
  isHugeZeroPage(pfn: number): boolean {
    return pfn >= this.hugeZeroPfn && pfn < this.hugeZeroPfn + HPAGE_PMD_NR;
  }
}

/** Create a simulated machine's kernel. */
export function createKernel(opts: KernelOptions): Kernel {
  if (opts === null || typeof opts !== "object") throw new InvalidArgumentError("opts", "must be an object");
  return new Kernel(opts);
}
