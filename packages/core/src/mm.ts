/**
 * struct mm_struct (include/linux/mm_types.h): VMAs (sorted, non-overlapping), page tables, rss counters,
 * memcg, mmap_lock, notifier subscriptions. The syscall-level operations (mmap/munmap/mprotect/madvise/fork/exit)
 * take the mmap lock for write themselves (tryDownWrite; a held lock throws MmapLockHeldError, as the
 * functional plane is synchronous); the CPU access methods take it for read, as the arch fault handler does.
 */
import { RwSemaphore } from "@hmmsim/engine";
import { InvalidArgumentError, KernelRuleError, MmapLockHeldError } from "./errors.js";
import { doMadvise } from "./madvise.js";
import type { MemCgroup } from "./memcontrol.js";
import { cpuAccess, cpuRead, cpuWrite } from "./mm-access.js";
import type { Kernel } from "./kernel.js";
import type { MmuNotifierSubscriptionsOps, MmWithNotifiers } from "./mmu-notifier-range.js";
import { doMmap, doMunmap, exitMmap, type MmapArgs } from "./mmap.js";
import { doMprotect } from "./mprotect.js";
import { doMremap } from "./mremap.js";
import { dupMm } from "./fork.js";
import { NR_MM_COUNTERS, type MmCounter } from "./mm-counters.js";
import { PageTable } from "./page-table.js";
import type { VmAreaStruct } from "./vma.js";

export class Mm implements MmWithNotifiers<Mm> {
  readonly pgtable = new PageTable();
  /** VMAs sorted by vmStart, non-overlapping. Read-only for other packages: iterate with `mm.vmas`. */
  readonly vmas: VmAreaStruct[] = [];
  /** rss_stat counters, indexed by MM_FILEPAGES / MM_ANONPAGES / MM_SWAPENTS / MM_SHMEMPAGES. */
  readonly rss: number[] = new Array<number>(NR_MM_COUNTERS).fill(0);
  /** mm->notifier_subscriptions: null until @hmmsim/mmu-notifier registers. */
  notifierSubscriptions: MmuNotifierSubscriptionsOps<Mm> | null = null;
  /** mm->mmap_lock. */
  readonly mmapLock: RwSemaphore;
  /** mm->hugetlb_usage: base pages mapped by hugetlb entries (/proc/pid/status HugetlbPages). Not in rss. */
  hugetlbUsage = 0;
  /** mm->mm_users: 0 once exited (mmget_not_zero fails). */
  mmUsers = 1;

  constructor(
    readonly kernel: Kernel,
    readonly id: number,
    /** The memcg pages faulted into this mm are charged to (mm->memcg / get_mem_cgroup_from_mm). */
    public memcg: MemCgroup,
  ) {
    this.mmapLock = new RwSemaphore(`mm${id}.mmap_lock`);
  }

  /** The mm has exited (exit_mmap ran). */
  get exited(): boolean {
    return this.mmUsers === 0;
  }

  /** get_mm_counter(). */
  counter(member: MmCounter): number {
    return this.rss[member]!;
  }

  /** find_vma(): the first VMA with vmEnd > addr (it may start above addr), or null. */
  findVma(addr: number): VmAreaStruct | null {
    const v = this.vmas;
    let lo = 0;
    let hi = v.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (v[mid]!.vmEnd > addr) hi = mid;
      else lo = mid + 1;
    }
    return lo < v.length ? v[lo]! : null;
  }

  /** vma_lookup(): the VMA containing addr, or null. */
  vmaLookup(addr: number): VmAreaStruct | null {
    const vma = this.findVma(addr);
    return vma !== null && vma.vmStart <= addr ? vma : null;
  }

  /** VMAs intersecting [start, end), in order. */
  vmasIn(start: number, end: number): VmAreaStruct[] {
    const out: VmAreaStruct[] = [];
    for (let vma = this.findVma(start), i = vma === null ? -1 : this.vmas.indexOf(vma); i >= 0 && i < this.vmas.length; i++) {
      const v = this.vmas[i]!;
      if (v.vmStart >= end) break;
      out.push(v);
    }
    return out;
  }

  /** Throws if the mm has exited (use after exit). */
  assertLive(field = "mm"): void {
    if (this.mmUsers === 0) throw new InvalidArgumentError(field, `mm ${this.id} is used after exit`);
  }

  /** Run fn under mmap_write_lock (trylock: a held lock throws MmapLockHeldError). */
  withWriteLock<T>(op: string, fn: () => T): T {
    this.assertLive();
    if (!this.mmapLock.tryDownWrite()) throw new MmapLockHeldError(this.id, op);
    try {
      return fn();
    } finally {
      this.mmapLock.upWrite();
    }
  }
  /** Run fn under mmap_read_lock (trylock). */
  withReadLock<T>(op: string, fn: () => T): T {
    this.assertLive();
    if (!this.mmapLock.tryDownRead()) throw new MmapLockHeldError(this.id, op);
    try {
      return fn();
    } finally {
      this.mmapLock.upRead();
    }
  }

  // --- syscalls ------------------------------------------------------------------------------------------------
  /** mmap(2): returns the mapped address, or a negative errno (-ENOMEM: no room, -EEXIST: MAP_FIXED_NOREPLACE). */
  mmap(args: MmapArgs): number {
    return this.withWriteLock("mmap", () => doMmap(this, args));
  }
  /** munmap(2): 0, or -EINVAL when it would split a hugetlb VMA inside a huge page. */
  munmap(addr: number, length: number): number {
    return this.withWriteLock("munmap", () => doMunmap(this, addr, length));
  }
  /** mprotect(2): 0, -ENOMEM (range not fully mapped), -EACCES. */
  mprotect(addr: number, length: number, prot: number): number {
    return this.withWriteLock("mprotect", () => doMprotect(this, addr, length, prot));
  }
  /**
   * madvise(2) with MADV_DONTNEED / MADV_FREE / MADV_HUGEPAGE / MADV_NOHUGEPAGE / MADV_COLLAPSE: 0, -ENOMEM,
   * -EINVAL (MADV_COLLAPSE also -EAGAIN / -EBUSY).
   */
  madvise(addr: number, length: number, advice: number): number {
    return this.withWriteLock("madvise", () => doMadvise(this, addr, length, advice));
  }
  /**
   * mremap(2) with MREMAP_MAYMOVE / MREMAP_FIXED / MREMAP_DONTUNMAP: the new address, or -EINVAL / -ENOMEM /
   * -EFAULT (see mremap.ts).
   */
  mremap(oldAddr: number, oldLen: number, newLen: number, flags: number, newAddr?: number): number {
    return this.withWriteLock("mremap", () => doMremap(this, oldAddr, oldLen, newLen, flags, newAddr));
  }
  /** fork(2)'s dup_mm: a child mm sharing every COW page. */
  fork(): Mm {
    return this.withWriteLock("fork", () => dupMm(this));
  }
  /** exit: mmput → exit_mmap (notifier release, then unmap everything). */
  exit(): void {
    this.withWriteLock("exit", () => exitMmap(this));
  }

  // --- CPU access ----------------------------------------------------------------------------------------------
  /** Read `len` bytes at addr as the CPU would (faulting); throws SegmentationFault on a failed fault. */
  read(addr: number, len: number): Uint8Array {
    return this.withReadLock("read", () => cpuRead(this, addr, len));
  }
  /** Write bytes at addr as the CPU would; each touched page gets a fresh content tag. */
  write(addr: number, bytes: Uint8Array): void {
    this.withReadLock("write", () => cpuWrite(this, addr, bytes));
  }
  readU32(addr: number): number {
    const b = this.read(addr, 4);
    return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  }
  writeU32(addr: number, value: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value >>> 0, true);
    this.write(addr, b);
  }
  /**
   * Touch one page as the CPU would, without bytes (cheap; the bytes-off workhorse): faults as needed, returns
   * the pfn accessed. A write sets the page's content tag (to `tag`, or a fresh one).
   */
  touch(addr: number, write: boolean, tag?: number): number {
    return this.withReadLock("touch", () => cpuAccess(this, addr, write, tag));
  }
  /** Content tag of the page mapped at addr (faulting it in for read, like a load). */
  readTag(addr: number): number {
    const pfn = this.touch(addr, false);
    return this.kernel.store.tag(pfn);
  }
}

/** mmap_assert_locked(): the caller must hold mm's mmap lock (read or write). */
export function mmapAssertLocked(mm: Mm): void {
  if (!mm.mmapLock.isLocked()) throw new KernelRuleError("mmap_assert_locked", `mm ${mm.id}: mmap_lock not held`);
}
/** mmap_assert_write_locked(). */
export function mmapAssertWriteLocked(mm: Mm): void {
  if (!mm.mmapLock.writeLocked)
    throw new KernelRuleError("mmap_assert_write_locked", `mm ${mm.id}: mmap_lock not held for write`);
}
