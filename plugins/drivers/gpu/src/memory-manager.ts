/**
 * The device memory manager and eviction (NVIDIA kernel-open/nvidia-uvm/uvm_pmm_gpu.c [S5]): device pages come out
 * of 2 MiB root chunks (root-chunks.ts), one per VA block;
 *
 *  - `ensureChunk`: uvm_pmm_gpu_alloc_user → a free root chunk, else `pick_root_chunk_to_evict` — here the policy's
 *    `selectVictim` (no answer: @hmmsim/policy's `lruVictim`) — and `evict_root_chunk`, then try again;
 *  - `evictChunk`: evict_root_chunk → every in-use page of the chunk back to system memory with
 *    migrate_device_range / pages / finalize, over the link (d2h);
 *  - `pageFree`: dev_pagemap_ops.page_free (uvm_hmm.c `devmem_page_free`): a device page's refcount reached 0;
 *  - pinning: `chunk_is_root_chunk_pinned` — the chunk of a block being serviced is not a victim;
 *  - device accesses per chunk (`accessed`): the time of the last access and the count since the chunk was
 *    allocated to its block, two typed arrays written on the warp's hot path (VictimQuery.chunkLastAccessPs /
 *    chunkAccesses; UVM keeps no such state — its lists move on allocation and migration only).
 */
import { ENOMEM, PAGE_SIZE, allocPages, folioTrylock } from "@hmmsim/core";
import { zoneDevicePageInit } from "@hmmsim/memremap";
import { MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, migrateDeviceFinalize, migrateDevicePages, migrateDeviceRange, migratePfn, migratePfnToPage, mpfnSet } from "@hmmsim/migrate";
import { lruVictim } from "@hmmsim/policy";
import { GpuFaultError, GpuPolicyError } from "./errors.js";
import type { GpuDriver } from "./gpu-driver.js";
import { EvictionQuery } from "./policy-queries.js";
import { CHUNK_PAGES, RootChunks } from "./root-chunks.js";
import { GPU_PTE_REMOTE, GPU_PTE_VALID, VA_BLOCK_SIZE } from "./va-block.js";

export class GpuMemoryManager {
  readonly chunks: RootChunks;
  /** Virtual time of the device's last access to a page of each chunk (its allocation time until then), ps. */
  readonly lastAccessPs: Float64Array;
  /** Device accesses to each chunk's pages since it was allocated to its current block. */
  readonly accesses: Float64Array;
  private readonly evictQuery: EvictionQuery;
  private readonly esrc = new Float64Array(CHUNK_PAGES);
  private readonly edst = new Float64Array(CHUNK_PAGES);

  constructor(
    private readonly d: GpuDriver,
    nChunks: number,
  ) {
    this.chunks = new RootChunks(nChunks);
    this.lastAccessPs = new Float64Array(nChunks);
    this.accesses = new Float64Array(nChunks);
    this.evictQuery = new EvictionQuery(d, this);
  }

  /** Device pages in root chunks no VA block holds (pages free inside allocated chunks are not counted). */
  get freePages(): number {
    return this.chunks.freeChunks * CHUNK_PAGES;
  }

  /** Host bytes of the chunk arrays. */
  get hostBytes(): number {
    const c = this.chunks;
    return (
      c.block.byteLength + c.used.byteLength + c.bits.byteLength + c.stamp.byteLength + c.allocStamp.byteLength + c.pinned.byteLength + c.count * 12 +
      this.lastAccessPs.byteLength + this.accesses.byteLength
    );
  }

  /** A device page `dpfn` = page `j` of chunk `chunk` starts its life (zone_device_page_init: refcount 1, locked). */
  allocDevicePage(chunk: number, j: number, dpfn: number): void {
    zoneDevicePageInit(this.d.kernel, dpfn);
    this.chunks.setPageUsed(chunk, j);
  }

  /** dev_pagemap_ops.page_free: a device page's refcount reached 0. */
  pageFree(pfn: number): void {
    const d = this.d;
    const i = pfn - d.startPfn;
    if (i < 0 || i >= d.nrPages) return;
    const c = Math.floor(i / CHUNK_PAGES);
    const j = i % CHUNK_PAGES;
    const slot = this.chunks.block[c]!;
    if (slot >= 0) {
      const f = d.blocks.pte[slot * CHUNK_PAGES + j]!;
      if ((f & GPU_PTE_VALID) !== 0 && (f & GPU_PTE_REMOTE) === 0) d.mapper.clearPtes(slot, j, j + 1);
    }
    const left = this.chunks.clearPageUsed(c, j);
    if (left === 0 && this.chunks.pinned[c] === 0) this.releaseChunk(c);
  }

  /** Pins root chunk `c` while its block is serviced (chunk_is_root_chunk_pinned: not a victim). */
  pinChunk(c: number): void {
    this.chunks.pinned[c] = 1;
  }

  /** The block is done with root chunk `c`: unpin it, and give it back if none of its pages is in use. */
  unpinChunk(c: number): void {
    this.chunks.pinned[c] = 0;
    if (this.chunks.used[c] === 0) this.releaseChunk(c);
  }

  private releaseChunk(c: number): void {
    const d = this.d;
    const slot = this.chunks.block[c]!;
    if (slot >= 0 && d.blocks.chunk[slot] === c) d.blocks.chunk[slot] = -1;
    this.chunks.release(c);
  }

  /** A root chunk for the block (uvm_pmm_gpu_alloc_user: free chunk, else evict one chosen by selectVictim). */
  async ensureChunk(slot: number, blockStart: number): Promise<number> {
    const d = this.d;
    const have = d.blocks.chunk[slot]!;
    if (have >= 0) return have;
    for (let attempt = 0; attempt < 4; attempt++) {
      const now = d.engine.now;
      const c = this.chunks.alloc(slot, now);
      if (c >= 0) {
        d.blocks.chunk[slot] = c;
        this.lastAccessPs[c] = now;
        this.accesses[c] = 0;
        return c;
      }
      const q = this.evictQuery;
      q.forBlockStart = blockStart;
      const v = d.policy.selectVictim.call(q) ?? lruVictim(q);
      if (v === -1) return -1;
      if (!Number.isInteger(v) || v < 0 || v >= this.chunks.count || this.chunks.block[v]! < 0 || this.chunks.pinned[v] === 1) {
        throw new GpuPolicyError("selectVictim", `must answer an evictable root chunk (allocated, not being serviced) or -1, got ${String(v)}`);
      }
      await this.evictChunk(v);
    }
    return -1;
  }

  /** evict_root_chunk(): migrate every in-use page of chunk `c` back to system memory (migrate_device_*). */
  async evictChunk(c: number): Promise<void> {
    const d = this.d;
    const slot = this.chunks.block[c]!;
    if (slot < 0) return;
    const k = d.kernel;
    const src = this.esrc;
    const dst = this.edst;
    const base = d.startPfn + c * CHUNK_PAGES;
    const blockStart = d.blocks.start[slot]!;
    this.chunks.pinned[c] = 1;
    migrateDeviceRange(k, src, base, CHUNK_PAGES);
    let n = 0;
    for (let i = 0; i < CHUNK_PAGES; i++) {
      const m = src[i]!;
      if ((m & MIGRATE_PFN_MIGRATE) === 0) {
        dst[i] = 0;
        continue;
      }
      const spfn = allocPages(k, 0);
      if (spfn < 0) {
        throw new GpuFaultError(d.name, blockStart + i * PAGE_SIZE, -ENOMEM, "system RAM exhausted while evicting device memory (__GFP_NOFAIL): every evicted page needs a free page of RAM and none is left");
      }
      folioTrylock(k, spfn);
      k.pageBytes.copy(spfn, migratePfnToPage(m));
      dst[i] = (m & MIGRATE_PFN_WRITE) !== 0 ? mpfnSet(migratePfn(spfn), MIGRATE_PFN_WRITE) : migratePfn(spfn);
      n++;
    }
    // Our own device mappings of these pages go now (the CPU side was unmapped by migrate_device_range).
    if (d.blocks.mapped[slot]! > 0) d.mapper.clearPtes(slot, 0, CHUNK_PAGES, true);
    d.stats.evictions++;
    d.stats.evictedPages += n;
    const now = d.engine.now;
    const trace = d.trace;
    if (trace.eviction.isUsed()) trace.eviction.call({ device: d.name, mm: d.spaceMm(d.blocks.space[slot]!), start: blockStart, npages: n, bytes: n * PAGE_SIZE, timePs: now });
    if (trace.migrateBegin.isUsed()) {
      trace.migrateBegin.call({ device: d.name, mm: d.spaceMm(d.blocks.space[slot]!), dir: "d2h", start: blockStart, end: blockStart + VA_BLOCK_SIZE, npages: n, bytes: 0, reason: "eviction", timePs: now });
    }
    await d.ledger.settle();
    if (n > 0) await d.link.transfer("d2h", n * PAGE_SIZE);
    migrateDevicePages(k, src, dst, CHUNK_PAGES);
    let moved = 0;
    for (let i = 0; i < CHUNK_PAGES; i++) if ((src[i]! & MIGRATE_PFN_MIGRATE) !== 0 && dst[i] !== 0) moved++;
    migrateDeviceFinalize(k, src, dst, CHUNK_PAGES);
    this.chunks.pinned[c] = 0;
    if (this.chunks.block[c] === slot && this.chunks.used[c] === 0) this.releaseChunk(c);
    if (trace.migrateEnd.isUsed()) {
      trace.migrateEnd.call({ device: d.name, mm: d.spaceMm(d.blocks.space[slot]!), dir: "d2h", start: blockStart, end: blockStart + VA_BLOCK_SIZE, npages: moved, bytes: moved * PAGE_SIZE, reason: "eviction", timePs: d.engine.now });
    }
  }
}
