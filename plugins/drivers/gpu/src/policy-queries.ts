/**
 * The reused query objects the GPU driver hands to @hmmsim/policy's hooks: `FaultInfo` (FaultQuery: one distinct
 * faulted page of the block being serviced, read from its service context) and `EvictionQuery` (VictimQuery: the
 * device's root chunks). Neither allocates per call; a tap reads them inside the call.
 */
import type { Mm } from "@hmmsim/core";
import { ACCESS_READ, type AccessType, type FaultQuery, type VictimQuery } from "@hmmsim/policy";
import type { GpuDriver } from "./gpu-driver.js";
import type { GpuMemoryManager } from "./memory-manager.js";
import { CHUNK_PAGES } from "./root-chunks.js";
import type { ServiceBlockContext } from "./service-context.js";
import { GPU_PTE_VALID } from "./va-block.js";

/** The advise hints a FaultInfo reports for its page (filled by the driver from its VA policy ranges). */
export interface PageAdvice {
  preferredLocation: string | null;
  accessedBy: boolean;
  readMostly: boolean;
}

/** The reused FaultQuery handed to the policy hooks. */
export class FaultInfo implements FaultQuery {
  readonly device: string;
  mm!: Mm;
  address = 0;
  access: AccessType = 0;
  duplicates = 0;
  batch = 0;
  batchPages = 0;
  timePs = 0;
  blockStart = 0;
  pageIndex = 0;
  blockFaulted = 0;
  vmaStart = 0;
  vmaEnd = 0;
  preferredLocation: string | null = null;
  accessedBy = false;
  readMostly = false;
  private slot = -1;

  constructor(
    readonly driver: GpuDriver,
    private readonly ctx: ServiceBlockContext,
  ) {
    this.device = driver.name;
  }

  get write(): boolean {
    return this.access !== ACCESS_READ;
  }
  get blockResident(): number {
    const c = this.driver.blocks.chunk[this.slot]!;
    return c < 0 ? 0 : this.driver.chunks.used[c]!;
  }
  get blockMapped(): number {
    return this.driver.blocks.mapped[this.slot]!;
  }
  get deviceFreePages(): number {
    return this.driver.nrPages - this.driver.chunks.usedPages;
  }
  get devicePages(): number {
    return this.driver.nrPages;
  }
  isResident(index: number): boolean {
    const c = this.driver.blocks.chunk[this.slot]!;
    return c >= 0 && this.driver.chunks.isPageUsed(c, index);
  }
  isFaulted(index: number): boolean {
    return this.ctx.faulted[index] === 1;
  }
  isMapped(index: number): boolean {
    return (this.driver.blocks.pte[this.slot * CHUNK_PAGES + index]! & GPU_PTE_VALID) !== 0;
  }
  isThrashing(index: number): boolean {
    return this.ctx.thrashing[index] === 1;
  }

  /** @internal */
  beginBlock(mm: Mm, batch: number, batchPages: number, blockStart: number, slot: number, faulted: number): void {
    this.mm = mm;
    this.batch = batch;
    this.batchPages = batchPages;
    this.blockStart = blockStart;
    this.slot = slot;
    this.blockFaulted = faulted;
    this.timePs = this.driver.engine.now;
  }

  /** @internal */
  setPage(address: number, index: number, access: AccessType, duplicates: number, vmaStart: number, vmaEnd: number): void {
    this.address = address;
    this.pageIndex = index;
    this.access = access;
    this.duplicates = duplicates;
    this.vmaStart = vmaStart;
    this.vmaEnd = vmaEnd;
  }

  /** @internal the advise hints of the page (the driver's VA policy ranges). */
  setAdvice(a: PageAdvice | null): void {
    if (a === null) {
      this.preferredLocation = null;
      this.accessedBy = false;
      this.readMostly = false;
    } else {
      this.preferredLocation = a.preferredLocation;
      this.accessedBy = a.accessedBy;
      this.readMostly = a.readMostly;
    }
  }
}

/** The reused VictimQuery: the device's root chunks are its 2 MiB allocation units. */
export class EvictionQuery implements VictimQuery {
  readonly device: string;
  forBlockStart = 0;

  constructor(
    readonly driver: GpuDriver,
    private readonly pmm: GpuMemoryManager,
  ) {
    this.device = driver.name;
  }
  get timePs(): number {
    return this.driver.engine.now;
  }
  get chunks(): number {
    return this.pmm.chunks.count;
  }
  get usedChunks(): number {
    return this.pmm.chunks.usedChunks;
  }
  first(): number {
    return this.pmm.chunks.first();
  }
  next(chunk: number): number {
    return this.pmm.chunks.nextOf(chunk);
  }
  isEvictable(chunk: number): boolean {
    const c = this.pmm.chunks;
    return chunk >= 0 && chunk < c.count && c.block[chunk]! >= 0 && c.pinned[chunk] === 0;
  }
  chunkBlockStart(chunk: number): number {
    const slot = this.pmm.chunks.block[chunk]!;
    return slot < 0 ? -1 : this.driver.blocks.start[slot]!;
  }
  chunkMm(chunk: number): Mm | null {
    const slot = this.pmm.chunks.block[chunk]!;
    return slot < 0 ? null : this.driver.spaceMm(this.driver.blocks.space[slot]!);
  }
  chunkResidentPages(chunk: number): number {
    return this.pmm.chunks.used[chunk]!;
  }
  chunkLastUsePs(chunk: number): number {
    return this.pmm.chunks.stamp[chunk]!;
  }
  chunkAllocPs(chunk: number): number {
    return this.pmm.chunks.allocStamp[chunk]!;
  }
  chunkLastAccessPs(chunk: number): number {
    return this.pmm.lastAccessPs[chunk]!;
  }
  chunkAccesses(chunk: number): number {
    return this.pmm.accesses[chunk]!;
  }
}
