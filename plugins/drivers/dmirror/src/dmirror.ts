/**
 * lib/test_hmm.c: struct dmirror — one open of /dev/hmm_dmirror<N>, mirroring the opener's mm. It holds the
 * device page table (an xarray of tagged page pointers, here a Map from VA pfn index to `page * 4 + tag`), the
 * mutex, the FLAGS word and an interval notifier over [0, ULONG_MAX & PAGE_MASK) whose invalidate callback
 * (dmirror_interval_invalidate) ignores its own device's MMU_NOTIFY_MIGRATE and otherwise clears the range.
 *
 * Every ioctl is a method with the kernel function's name and semantics: read (dmirror_read), write
 * (dmirror_write), migrateToDevice, migrateToSystem, snapshot, exclusive, checkAtomic (CHECK_EXCLUSIVE), and the
 * dispatcher ioctl() with dmirror_fops_unlocked_ioctl's prologue (alignment, overflow, cpages/faults reset, copy
 * out only on success).
 */
import {
  EBUSY,
  EFAULT,
  EINVAL,
  ENOENT,
  EPERM,
  KernelRuleError,
  PAGE_SHIFT,
  PAGE_SIZE,
  PMD_SHIFT,
  PUD_SHIFT,
  folioUnlock,
  isAligned,
  putPage,
  type Kernel,
  type Mm,
} from "@hmmsim/core";
import { Mutex } from "@hmmsim/engine";
import { isDeviceCoherentPage, isDevicePrivatePage } from "@hmmsim/memremap";
import {
  MMU_NOTIFY_MIGRATE,
  MmuIntervalNotifier,
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalReadBegin,
  mmuIntervalReadRetry,
  mmuIntervalSetSeq,
  mmuNotifierRangeBlockable,
  type MmuIntervalNotifierOps,
  type MmuNotifierRange,
  type NotifierMm,
} from "@hmmsim/mmu-notifier";
import {
  HMM_PFN_ERROR,
  HMM_PFN_REQ_FAULT,
  HMM_PFN_REQ_WRITE,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  hmmPfnToMapOrder,
  hmmPfnToPfn,
  asNotifierMm,
  hmmRangeFault,
  type HmmRange,
} from "@hmmsim/range-fault";
import { makeDeviceExclusive } from "@hmmsim/migrate";
import type { DmirrorDevice } from "./dmirror-device.js";
import { dmirrorMigrateToDevice, dmirrorMigrateToSystem } from "./dmirror-migrate.js";
import {
  HMM_DMIRROR_CHECK_EXCLUSIVE,
  HMM_DMIRROR_EXCLUSIVE,
  HMM_DMIRROR_FLAGS,
  HMM_DMIRROR_MIGRATE_TO_DEV,
  HMM_DMIRROR_MIGRATE_TO_SYS,
  HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL,
  HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE,
  HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL,
  HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE,
  HMM_DMIRROR_PROT_ERROR,
  HMM_DMIRROR_PROT_NONE,
  HMM_DMIRROR_PROT_PMD,
  HMM_DMIRROR_PROT_PUD,
  HMM_DMIRROR_PROT_READ,
  HMM_DMIRROR_PROT_WRITE,
  HMM_DMIRROR_PROT_ZERO,
  HMM_DMIRROR_READ,
  HMM_DMIRROR_RELEASE,
  HMM_DMIRROR_SNAPSHOT,
  HMM_DMIRROR_WRITE,
  type HmmDmirrorCmd,
} from "./test-hmm-uapi.js";

/** #define DPT_XA_TAG_ATOMIC 1UL / DPT_XA_TAG_WRITE 3UL: low tag bits of a device page-table entry. */
export const DPT_XA_TAG_ATOMIC = 1;
export const DPT_XA_TAG_WRITE = 3;

/** HMM_RANGE_DEFAULT_TIMEOUT is 1000 ms of retries; the synchronous plane has no clock, so it bounds the retries. */
export const DMIRROR_RANGE_FAULT_MAX_RETRIES = 1000;

/** xa_tag_pointer(page, tag). */
export function xaTagPointer(page: number, tag: number): number {
  return page * 4 + tag;
}
/** xa_untag_pointer(entry): the page, or -1 for NULL. */
export function xaUntagPointer(entry: number | undefined): number {
  return entry === undefined ? -1 : Math.floor(entry / 4);
}
/** xa_pointer_tag(entry): 0 for NULL. */
export function xaPointerTag(entry: number | undefined): number {
  return entry === undefined ? 0 : entry & 3;
}

/** struct dmirror_bounce: the kernel-side staging buffer of READ / WRITE / MIGRATE / EXCLUSIVE. */
export class DmirrorBounce {
  cpages = 0;
  /** null in bytes-off mode (nothing to copy). */
  readonly ptr: Uint8Array | null;
  constructor(
    readonly addr: number,
    readonly size: number,
    bytes: boolean,
  ) {
    this.ptr = bytes ? new Uint8Array(size) : null;
  }
}

/**
 * copy_to_user(): -EFAULT for a NULL user pointer. A user buffer here is the test's malloc'd memory (a host
 * array); the kernel cannot see a malloc's size, only whether the address is mapped, and the heap around a small
 * malloc is mapped — so bytes past the array's end are accepted and dropped (hmm-tests.c snapshot migrates a
 * page with a 7-byte mirror).
 */
function copyToUser(dst: Uint8Array | null, src: Uint8Array | null, n: number): number {
  if (dst === null) return -EFAULT;
  if (src !== null) dst.set(src.subarray(0, Math.min(n, dst.length)));
  return 0;
}
/** copy_from_user(): -EFAULT for a NULL user pointer; bytes past the user array read as zero (see copyToUser). */
function copyFromUser(dst: Uint8Array | null, src: Uint8Array | null, n: number): number {
  if (src === null) return -EFAULT;
  if (dst !== null) dst.set(src.subarray(0, Math.min(n, src.length)));
  return 0;
}

/** Kernel-side statistics (not in the kernel driver; for tests and traces). */
export interface DmirrorStats {
  invalidations: number;
  ignoredMigrateInvalidations: number;
  rangeFaultRetries: number;
}

/** struct dmirror. */
export class Dmirror {
  /** dmirror->pt: VA pfn index → xa_tag_pointer(page, tag). */
  readonly pt = new Map<number, number>();
  readonly notifier = new MmuIntervalNotifier();
  readonly mutex: Mutex;
  /** dmirror->flags (HMM_DMIRROR_FLAGS). */
  flags = 0;
  readonly stats: DmirrorStats = { invalidations: 0, ignoredMigrateInvalidations: 0, rangeFaultRetries: 0 };
  /**
   * Test hook (not kernel code): called where dmirror_fault drops the mmap lock between 32-page chunks, so a
   * harness can run another thread's operation there (the race of hmm-tests.c anon_teardown).
   */
  onUnlocked: (() => void) | null = null;

  private constructor(
    readonly mdevice: DmirrorDevice,
    readonly mm: Mm,
  ) {
    this.mutex = new Mutex(`${mdevice.name}.dmirror.mutex`);
  }

  get kernel(): Kernel {
    return this.mdevice.kernel;
  }

  /** dmirror_fops_open(): a mirror of `mm` (current->mm) on `mdevice`. Returns it, or a negative errno. */
  static open(mdevice: DmirrorDevice, mm: Mm): Dmirror | number {
    const d = new Dmirror(mdevice, mm);
    const ops: MmuIntervalNotifierOps = { invalidate: (mni, range, curSeq) => d.intervalInvalidate(mni, range, curSeq) };
    const ret = mmuIntervalNotifierInsert(d.notifier, asNotifierMm(mm), 0, alignDownPage(Number.MAX_SAFE_INTEGER), ops);
    if (ret) return ret;
    return d;
  }

  /** mutex_lock() in the synchronous plane: the lock can only be free (held = a deadlock the kernel would hit). */
  lock(): void {
    if (!this.mutex.tryLock()) throw new KernelRuleError("dmirror_mutex_deadlock", `${this.mdevice.name}: dmirror->mutex is already held`);
  }
  unlock(): void {
    this.mutex.unlock();
  }

  /** dmirror_do_update(): erase pfn indices start>>PAGE_SHIFT ..= end>>PAGE_SHIFT (inclusive, as xa_for_each_range). */
  doUpdate(start: number, end: number): void {
    const first = Math.floor(start / PAGE_SIZE);
    const last = Math.floor(end / PAGE_SIZE);
    if (last - first + 1 > this.pt.size) {
      for (const idx of [...this.pt.keys()]) if (idx >= first && idx <= last) this.pt.delete(idx);
    } else {
      for (let idx = first; idx <= last; idx++) this.pt.delete(idx);
    }
  }

  /** dmirror_interval_invalidate(). */
  intervalInvalidate(mni: MmuIntervalNotifier, range: MmuNotifierRange<NotifierMm>, curSeq: number): boolean {
    // Ignore invalidation callbacks for device private pages since the invalidation is handled as part of the
    // migration process.
    if (range.event === MMU_NOTIFY_MIGRATE && range.owner === this.mdevice) {
      this.stats.ignoredMigrateInvalidations++;
      return true;
    }
    if (mmuNotifierRangeBlockable(range)) this.lock();
    else if (!this.mutex.tryLock()) return false;
    this.stats.invalidations++;
    mmuIntervalSetSeq(mni, curSeq);
    this.doUpdate(range.start, range.end);
    this.unlock();
    return true;
  }

  /** dmirror_do_fault(): store each faulted page, tagged WRITE if HMM_PFN_WRITE. Called with the mutex held. */
  doFault(range: HmmRange): number {
    const pfns = range.hmmPfns;
    for (let pfn = range.start / PAGE_SIZE, i = 0; pfn < range.end / PAGE_SIZE; pfn++, i++) {
      const e = pfns[i]!;
      // Since we asked for hmm_range_fault() to populate pages, it shouldn't return an error entry on success.
      if (e & HMM_PFN_ERROR || !(e & HMM_PFN_VALID)) throw new KernelRuleError("dmirror_do_fault_invalid_entry", `index ${i}`);
      const page = hmmPfnToPfn(e);
      let entry = xaTagPointer(page, 0);
      if (e & HMM_PFN_WRITE) entry = xaTagPointer(page, DPT_XA_TAG_WRITE);
      else if (range.defaultFlags & HMM_PFN_WRITE) return -EFAULT; // WARN_ON in the kernel
      this.pt.set(pfn, entry);
    }
    return 0;
  }

  /** dmirror_range_fault(): the read_begin / hmm_range_fault / read_retry loop of hmm.rst. */
  rangeFault(range: HmmRange): number {
    const mm = this.mm;
    let ret: number;
    for (let tries = 0; ; tries++) {
      if (tries >= DMIRROR_RANGE_FAULT_MAX_RETRIES) return -EBUSY;
      range.notifierSeq = mmuIntervalReadBegin(range.notifier);
      ret = mm.withReadLock("dmirror_range_fault", () => hmmRangeFault(range));
      if (ret) {
        if (ret === -EBUSY) {
          this.stats.rangeFaultRetries++;
          continue;
        }
        return ret;
      }
      this.lock();
      if (mmuIntervalReadRetry(range.notifier, range.notifierSeq)) {
        this.unlock();
        this.stats.rangeFaultRetries++;
        continue;
      }
      break;
    }
    ret = this.doFault(range);
    this.unlock();
    return ret;
  }

  /** dmirror_fault(): fault [start, end) in 32-page chunks (write: HMM_PFN_REQ_WRITE). */
  fault(start: number, end: number, write: boolean): number {
    const mm = this.mm;
    const pfns = new Float64Array(32);
    const range: HmmRange = {
      notifier: this.notifier,
      notifierSeq: 0,
      start: 0,
      end: 0,
      hmmPfns: pfns,
      pfnFlagsMask: 0,
      defaultFlags: HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0),
      devPrivateOwner: this.mdevice,
    };
    let ret = 0;
    // Since the mm is for the mirrored process, get a reference first.
    if (mm.exited) return 0;
    for (let addr = start; addr < end; addr = range.end) {
      range.start = addr;
      range.end = Math.min(addr + pfns.length * PAGE_SIZE, end);
      // The kernel passes its 32-entry array; hmmsim's hmmRangeFault wants exactly one entry per page.
      range.hmmPfns = pfns.subarray(0, (range.end - range.start) / PAGE_SIZE);
      range.hmmPfns.fill(0);
      ret = this.rangeFault(range);
      if (ret) break;
      if (this.onUnlocked !== null && range.end < end) this.onUnlocked();
    }
    return ret;
  }

  /** dmirror_do_read(): copy mirrored pages into the bounce buffer; -ENOENT at the first missing entry. */
  doRead(start: number, end: number, bounce: DmirrorBounce): number {
    const pb = this.kernel.pageBytes;
    let off = alignDownPage(start - bounce.addr);
    for (let pfn = start / PAGE_SIZE; pfn < end / PAGE_SIZE; pfn++) {
      const page = xaUntagPointer(this.pt.get(pfn));
      if (page < 0) return -ENOENT;
      if (bounce.ptr !== null) pb.read(page, 0, PAGE_SIZE, bounce.ptr, off);
      off += PAGE_SIZE;
      bounce.cpages++;
    }
    return 0;
  }

  /** dmirror_read() (HMM_DMIRROR_READ). */
  read(cmd: HmmDmirrorCmd): number {
    const size = cmd.npages * PAGE_SIZE;
    let start = cmd.addr;
    const end = start + size;
    if (end < start) return -EINVAL;
    const bounce = new DmirrorBounce(start, size, this.kernel.bytes);
    let ret: number;
    while (true) {
      this.lock();
      ret = this.doRead(start, end, bounce);
      this.unlock();
      if (ret !== -ENOENT) break;
      start = cmd.addr + bounce.cpages * PAGE_SIZE;
      ret = this.fault(start, end, false);
      if (ret) break;
      cmd.faults++;
    }
    if (ret === 0) ret = copyToUser(cmd.ptr, bounce.ptr, bounce.size);
    cmd.cpages = bounce.cpages;
    return ret;
  }

  /** dmirror_do_write(): copy the bounce buffer into mirrored pages; needs WRITE-tagged entries. */
  doWrite(start: number, end: number, bounce: DmirrorBounce): number {
    const pb = this.kernel.pageBytes;
    let off = alignDownPage(start - bounce.addr);
    for (let pfn = start / PAGE_SIZE; pfn < end / PAGE_SIZE; pfn++) {
      const entry = this.pt.get(pfn);
      const page = xaUntagPointer(entry);
      if (page < 0 || xaPointerTag(entry) !== DPT_XA_TAG_WRITE) return -ENOENT;
      if (bounce.ptr !== null) pb.write(page, 0, bounce.ptr.subarray(off, off + PAGE_SIZE));
      else pb.setTag(page, pb.nextTag());
      off += PAGE_SIZE;
      bounce.cpages++;
    }
    return 0;
  }

  /** dmirror_write() (HMM_DMIRROR_WRITE). */
  write(cmd: HmmDmirrorCmd): number {
    const size = cmd.npages * PAGE_SIZE;
    let start = cmd.addr;
    const end = start + size;
    if (end < start) return -EINVAL;
    const bounce = new DmirrorBounce(start, size, this.kernel.bytes);
    let ret = copyFromUser(bounce.ptr, cmd.ptr, bounce.size);
    if (ret === 0) {
      while (true) {
        this.lock();
        ret = this.doWrite(start, end, bounce);
        this.unlock();
        if (ret !== -ENOENT) break;
        start = cmd.addr + bounce.cpages * PAGE_SIZE;
        ret = this.fault(start, end, true);
        if (ret) break;
        cmd.faults++;
      }
    }
    cmd.cpages = bounce.cpages;
    return ret;
  }

  /**
   * Read [start, end) back from the device page table into cmd.ptr (the tail of MIGRATE_TO_DEV and EXCLUSIVE:
   * dmirror_bounce_init + dmirror_do_read + copy_to_user). The bounce buffer is elided: the range is checked
   * first (-ENOENT at the first missing page, cpages = pages before it, user buffer untouched), then copied
   * straight into the user buffer — the same observable result without a second copy of a 256 MiB range.
   */
  readBack(cmd: HmmDmirrorCmd, start: number, end: number): number {
    this.lock();
    try {
      let cpages = 0;
      for (let pfn = start / PAGE_SIZE; pfn < end / PAGE_SIZE; pfn++, cpages++) {
        if (xaUntagPointer(this.pt.get(pfn)) < 0) {
          cmd.cpages = cpages;
          return -ENOENT;
        }
      }
      cmd.cpages = cpages;
      if (cmd.ptr === null) return -EFAULT;
      if (!this.kernel.bytes) return 0;
      const pb = this.kernel.pageBytes;
      const user = cmd.ptr;
      for (let pfn = start / PAGE_SIZE, off = 0; pfn < end / PAGE_SIZE && off < user.length; pfn++, off += PAGE_SIZE) {
        pb.read(xaUntagPointer(this.pt.get(pfn)), 0, Math.min(PAGE_SIZE, user.length - off), user, off);
      }
      return 0;
    } finally {
      this.unlock();
    }
  }

  /** dmirror_migrate_to_device() (HMM_DMIRROR_MIGRATE_TO_DEV). */
  migrateToDevice(cmd: HmmDmirrorCmd): number {
    return dmirrorMigrateToDevice(this, cmd);
  }

  /** dmirror_migrate_to_system() (HMM_DMIRROR_MIGRATE_TO_SYS). */
  migrateToSystem(cmd: HmmDmirrorCmd): number {
    return dmirrorMigrateToSystem(this, cmd);
  }

  /** dmirror_check_atomic() (HMM_DMIRROR_CHECK_EXCLUSIVE): -EPERM if any page still has an ATOMIC entry. */
  checkAtomic(start: number, end: number): number {
    for (let pfn = start / PAGE_SIZE; pfn < end / PAGE_SIZE; pfn++) {
      if (xaPointerTag(this.pt.get(pfn)) === DPT_XA_TAG_ATOMIC) return -EPERM;
    }
    return 0;
  }

  /** dmirror_atomic_map(): store the exclusive page tagged ATOMIC. */
  atomicMap(addr: number, page: number): number {
    this.lock();
    this.pt.set(addr / PAGE_SIZE, xaTagPointer(page, DPT_XA_TAG_ATOMIC));
    this.unlock();
    return 0;
  }

  /** dmirror_exclusive() (HMM_DMIRROR_EXCLUSIVE): make_device_exclusive each page (owner NULL), map it ATOMIC. */
  exclusive(cmd: HmmDmirrorCmd): number {
    const size = cmd.npages * PAGE_SIZE;
    const mm = this.mm;
    const start = cmd.addr;
    const end = start + size;
    if (end < start) return -EINVAL;
    // Since the mm is for the mirrored process, get a reference first.
    if (mm.exited) return -EINVAL;
    let ret = 0;
    mm.withReadLock("dmirror_exclusive", () => {
      for (let addr = start; !ret && addr < end; addr += PAGE_SIZE) {
        const page = makeDeviceExclusive(mm, addr, null);
        if (page < 0) {
          ret = page;
          break;
        }
        ret = this.atomicMap(addr, page);
        folioUnlock(this.kernel, page);
        putPage(this.kernel, page);
      }
    });
    if (ret) return ret;
    // Return the migrated data for verification.
    return this.readBack(cmd, start, end);
  }

  /** dmirror_mkentry(): one snapshot byte for an hmm pfn entry. */
  mkentry(entry: number): number {
    if (entry & HMM_PFN_ERROR) return HMM_DMIRROR_PROT_ERROR;
    if (!(entry & HMM_PFN_VALID)) return HMM_DMIRROR_PROT_NONE;
    const k = this.kernel;
    const page = hmmPfnToPfn(entry);
    let perm: number;
    if (isDevicePrivatePage(k, page)) {
      // Is the page migrated to this device or some other?
      perm = this.mdevice.chunkOf(page) !== undefined ? HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL : HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE;
    } else if (isDeviceCoherentPage(k, page)) {
      perm = this.mdevice.chunkOf(page) !== undefined ? HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL : HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE;
    } else if (k.isZeroPfn(page)) {
      perm = HMM_DMIRROR_PROT_ZERO;
    } else {
      perm = HMM_DMIRROR_PROT_NONE;
    }
    perm |= entry & HMM_PFN_WRITE ? HMM_DMIRROR_PROT_WRITE : HMM_DMIRROR_PROT_READ;
    const order = hmmPfnToMapOrder(entry);
    if (order + PAGE_SHIFT === PMD_SHIFT) perm |= HMM_DMIRROR_PROT_PMD;
    else if (order + PAGE_SHIFT === PUD_SHIFT) perm |= HMM_DMIRROR_PROT_PUD;
    return perm;
  }

  /** dmirror_range_snapshot(): a temporary notifier over the chunk, then the retry loop without faulting. */
  rangeSnapshot(range: HmmRange, perm: Uint8Array): number {
    const mm = this.mm;
    const notifier = new MmuIntervalNotifier();
    range.notifier = notifier;
    // dmirror_snapshot_invalidate: snapshots only need to set the sequence number since any invalidation in the
    // interval invalidates the whole snapshot.
    let ret = mmuIntervalNotifierInsert(notifier, asNotifierMm(mm), range.start, range.end - range.start, {
      invalidate: (mni, r, curSeq) => {
        if (mmuNotifierRangeBlockable(r)) this.lock();
        else if (!this.mutex.tryLock()) return false;
        mmuIntervalSetSeq(mni, curSeq);
        this.unlock();
        return true;
      },
    });
    if (ret) return ret;
    try {
      for (let tries = 0; ; tries++) {
        if (tries >= DMIRROR_RANGE_FAULT_MAX_RETRIES) return (ret = -EBUSY);
        range.notifierSeq = mmuIntervalReadBegin(range.notifier);
        ret = mm.withReadLock("dmirror_range_snapshot", () => hmmRangeFault(range));
        if (ret) {
          if (ret === -EBUSY) continue;
          return ret;
        }
        this.lock();
        if (mmuIntervalReadRetry(range.notifier, range.notifierSeq)) {
          this.unlock();
          continue;
        }
        break;
      }
      const n = (range.end - range.start) / PAGE_SIZE;
      for (let i = 0; i < n; i++) perm[i] = this.mkentry(range.hmmPfns[i]!);
      this.unlock();
      return 0;
    } finally {
      mmuIntervalNotifierRemove(notifier);
    }
  }

  /** dmirror_snapshot() (HMM_DMIRROR_SNAPSHOT): one byte per page, in 32-page chunks. */
  snapshot(cmd: HmmDmirrorCmd): number {
    const mm = this.mm;
    const size = cmd.npages * PAGE_SIZE;
    const start = cmd.addr;
    const end = start + size;
    if (end < start) return -EINVAL;
    if (mm.exited) return -EINVAL;
    const pfns = new Float64Array(32);
    const perm = new Uint8Array(32);
    const range: HmmRange = {
      notifier: this.notifier,
      notifierSeq: 0,
      start: 0,
      end: 0,
      hmmPfns: pfns,
      pfnFlagsMask: 0,
      defaultFlags: 0,
      devPrivateOwner: this.mdevice,
    };
    let ret = 0;
    let uoff = 0;
    for (let addr = start, next; addr < end; addr = next) {
      next = Math.min(addr + pfns.length * PAGE_SIZE, end);
      range.start = addr;
      range.end = next;
      range.hmmPfns = pfns.subarray(0, (next - addr) / PAGE_SIZE);
      range.hmmPfns.fill(0);
      ret = this.rangeSnapshot(range, perm);
      if (ret) break;
      const n = (range.end - range.start) / PAGE_SIZE;
      if (cmd.ptr === null) {
        ret = -EFAULT;
        break;
      }
      if (uoff < cmd.ptr.length) cmd.ptr.set(perm.subarray(0, Math.min(n, cmd.ptr.length - uoff)), uoff);
      cmd.cpages += n;
      uoff += n;
    }
    return ret;
  }

  /**
   * dmirror_fops_unlocked_ioctl(): copy the command in, check it, dispatch, and copy it back out only on success.
   * `uarg` is the user's struct (its cpages/faults are updated only when the call returns 0).
   */
  ioctl(command: number, uarg: HmmDmirrorCmd | null): number {
    if (uarg === null || typeof uarg !== "object") return -EFAULT;
    const cmd: HmmDmirrorCmd = { addr: uarg.addr, ptr: uarg.ptr, npages: uarg.npages, cpages: uarg.cpages, faults: uarg.faults };
    if (!Number.isSafeInteger(cmd.addr) || cmd.addr < 0 || !Number.isSafeInteger(cmd.npages) || cmd.npages < 0) return -EINVAL;
    if (!isAligned(cmd.addr, PAGE_SIZE)) return -EINVAL;
    if (cmd.addr >= cmd.addr + cmd.npages * PAGE_SIZE) return -EINVAL;
    cmd.cpages = 0;
    cmd.faults = 0;
    let ret: number;
    switch (command) {
      case HMM_DMIRROR_READ:
        ret = this.read(cmd);
        break;
      case HMM_DMIRROR_WRITE:
        ret = this.write(cmd);
        break;
      case HMM_DMIRROR_MIGRATE_TO_DEV:
        ret = this.migrateToDevice(cmd);
        break;
      case HMM_DMIRROR_MIGRATE_TO_SYS:
        ret = this.migrateToSystem(cmd);
        break;
      case HMM_DMIRROR_EXCLUSIVE:
        ret = this.exclusive(cmd);
        break;
      case HMM_DMIRROR_CHECK_EXCLUSIVE:
        ret = this.checkAtomic(cmd.addr, cmd.addr + cmd.npages * PAGE_SIZE);
        break;
      case HMM_DMIRROR_SNAPSHOT:
        ret = this.snapshot(cmd);
        break;
      case HMM_DMIRROR_RELEASE:
        this.mdevice.removeChunks();
        ret = 0;
        break;
      case HMM_DMIRROR_FLAGS:
        this.flags = cmd.npages;
        ret = 0;
        break;
      default:
        return -EINVAL;
    }
    if (ret) return ret;
    uarg.cpages = cmd.cpages;
    uarg.faults = cmd.faults;
    return 0;
  }

  /**
   * dmirror_fops_release(): remove the notifier, evict every allocated page of this device (the newest driver
   * does so on every close), destroy the page table.
   */
  release(): void {
    mmuIntervalNotifierRemove(this.notifier);
    this.mdevice.evictAllChunks();
    this.pt.clear();
  }
}

function alignDownPage(a: number): number {
  return a - (a % PAGE_SIZE);
}
