/**
 * The user space of tools/testing/selftests/mm/hmm-tests.c: a process with an mm and a file table, and the libc
 * calls the tests make — open/close/ioctl, mmap/munmap/mprotect/madvise/mremap, fork/waitpid/kill/_exit,
 * pthread_create/join, pread/pwrite on an O_TMPFILE (hmm_create_file) — plus the vm_util.h helpers
 * (read_pmd_pagesize, pagemap_get_entry, default_huge_page_size, hugetlb_free_default_pages).
 *
 * Calls return like libc: -1 (or MAP_FAILED) with `errno` set. Memory is accessed as int32 arrays, as the C
 * tests do, through the CPU (faults and all). A CPU access the kernel cannot resolve kills the process with
 * SIGSEGV/SIGBUS (`ProcessKilled`). A forked child runs as a function against the child's Mm; an ASSERT failing
 * in it aborts the child (SIGABRT), which the parent sees as !WIFEXITED, as in kselftest.
 */
import {
  EBADF,
  EINVAL,
  ENOENT,
  ENOMEM,
  ESRCH,
  InvalidArgumentError,
  MAP_ANONYMOUS,
  PAGE_SIZE,
  PG_dirty,
  PMD_SIZE,
  SegmentationFault,
  SyscallError,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
  filemapGetPage,
  isDevicePrivateEntry,
  isSwapPte,
  ptePresent,
  putPage,
  type AddressSpace,
  type Kernel,
  type Mm,
} from "@hmmsim/core";
import type { Rng } from "@hmmsim/engine";
import { GupTestFile, type GupTest } from "./gup-test.js";
import { TestAbort } from "./kselftest-harness.js";
import { DmirrorFile, type HmmDmirrorModule } from "./test-hmm.js";
import type { HmmDmirrorCmd } from "./test-hmm-uapi.js";

/** ECHILD (include/uapi/asm-generic/errno-base.h). */
const ECHILD = 10;
/** (void *)-1. */
export const MAP_FAILED = -1;
/** MAP_HUGETLB (include/uapi/asm-generic/mman-common.h). */
export { MAP_HUGETLB } from "@hmmsim/core";
/** MADV_COLLAPSE (include/uapi/asm-generic/mman-common.h). */
export const MADV_COLLAPSE = 25;
/** mremap flags (include/uapi/linux/mman.h). */
export { MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE } from "@hmmsim/core";
export const SIGABRT = 6;
export const SIGKILL = 9;
export const SIGBUS = 7;
export const SIGSEGV = 11;
/** /proc/pid/pagemap bits (fs/proc/task_mmu.c). */
export const PM_PRESENT = 1n << 63n;
export const PM_SWAP = 1n << 62n;

/** wait(2) status macros (Linux encoding). */
export const WIFEXITED = (s: number): boolean => (s & 0x7f) === 0;
export const WEXITSTATUS = (s: number): number => (s >> 8) & 0xff;
export const WIFSIGNALED = (s: number): boolean => (s & 0x7f) !== 0 && (s & 0x7f) !== 0x7f;
export const WTERMSIG = (s: number): number => s & 0x7f;

/** The process died of a signal (a CPU access the kernel could not resolve, or abort()). */
export class ProcessKilled extends Error {
  constructor(
    readonly signal: number,
    readonly detail: string,
  ) {
    super(`killed by signal ${signal}: ${detail}`);
    this.name = "ProcessKilled";
  }
}

/** An open file description (struct file): shared across fork, released with its last reference. */
/** What a file descriptor of a test process refers to. */
export type OpenFile =
  | { kind: "dmirror"; file: DmirrorFile; refs: number }
  | { kind: "tmpfile"; file: AddressSpace; refs: number }
  | { kind: "pagemap"; refs: number }
  | { kind: "gup_test"; file: GupTestFile; refs: number };

/** The simulated machine the self-test runs on: kernel, the loaded dmirror module, and the seeded RNG. */
export interface SelftestSystem {
  readonly kernel: Kernel;
  readonly module: HmmDmirrorModule;
  readonly rng: Rng;
  /** Processes by pid. */
  readonly procs: Map<number, TestProcess>;
  nextPid: number;
  /** Files whose page cache is freed once nothing references them (tmpfiles). */
  readonly liveFiles: Map<AddressSpace, { fds: number }>;
  /** CONFIG_GUP_TEST with debugfs mounted: /sys/kernel/debug/gup_test can be opened. */
  readonly gupTest: boolean;
  /** vm.nr_hugepages before HUGETLB_SETUP_DEFAULT_PAGES (restored after the test), or null if it did not run. */
  readonly savedNrHugepages: number | null;
}

/** A forked child that is still running (an idle child, like hmm_cow_in_device's spinning one). */
interface ChildRecord {
  proc: TestProcess;
  status: number | null;
}

/** A pthread of the test process (anon_teardown's unmap thread). */
export interface TestThread {
  ran: boolean;
  run(): void;
}

export class TestProcess {
  errno = 0;
  readonly fds = new Map<number, OpenFile>();
  private readonly children = new Map<number, ChildRecord>();
  /** Diagnostics of failed children (shown with the test's failure). */
  readonly childLog: string[] = [];
  exited = false;
  /** Exit status once exited (wait(2) encoding). */
  status = 0;

  constructor(
    readonly sys: SelftestSystem,
    readonly mm: Mm,
    readonly pid: number,
  ) {
    sys.procs.set(pid, this);
  }

  get kernel(): Kernel {
    return this.sys.kernel;
  }

  private err(e: number): number {
    this.errno = e;
    return -1;
  }
  private allocFd(f: OpenFile): number {
    let fd = 3;
    while (this.fds.has(fd)) fd++;
    this.fds.set(fd, f);
    return fd;
  }

  // --- files ------------------------------------------------------------------------------------------------------
  /** open(2) of /dev/hmm_dmirror<N>, /proc/self/pagemap or /sys/kernel/debug/gup_test (if the machine has it). */
  open(path: string): number {
    const m = /^\/dev\/hmm_dmirror(\d+)$/.exec(path);
    if (m !== null) {
      const f = this.sys.module.open(Number(m[1]), this.mm);
      if (typeof f === "number") return this.err(-f === ENOENT ? ENOENT : -f);
      return this.allocFd({ kind: "dmirror", file: f, refs: 1 });
    }
    if (path === "/proc/self/pagemap") return this.allocFd({ kind: "pagemap", refs: 1 });
    if (path === "/sys/kernel/debug/gup_test" && this.sys.gupTest) return this.allocFd({ kind: "gup_test", file: new GupTestFile(), refs: 1 });
    return this.err(ENOENT);
  }

  /** hmm_create_file(size): open("/tmp", O_TMPFILE | O_EXCL | O_RDWR) + ftruncate(size). */
  hmmCreateFile(size: number): number {
    const file = this.kernel.createFile(size, { name: `tmpfile-${this.pid}` });
    this.sys.liveFiles.set(file, { fds: 1 });
    return this.allocFd({ kind: "tmpfile", file, refs: 1 });
  }

  /** close(2). */
  close(fd: number): number {
    const f = this.fds.get(fd);
    if (f === undefined) return this.err(EBADF);
    this.fds.delete(fd);
    this.fput(f);
    return 0;
  }

  private fput(f: OpenFile): void {
    if (--f.refs > 0) return;
    if (f.kind === "dmirror") this.sys.module.close(f.file);
    else if (f.kind === "gup_test") f.file.release();
    else if (f.kind === "tmpfile") {
      const live = this.sys.liveFiles.get(f.file);
      if (live !== undefined) live.fds--;
      releaseUnusedFiles(this.sys);
    }
  }

  /** ioctl(2) on a dmirror fd (struct hmm_dmirror_cmd) or the gup_test fd (struct gup_test): 0, or -1 with errno. */
  ioctl(fd: number, request: number, arg: HmmDmirrorCmd | GupTest): number {
    const f = this.fds.get(fd);
    if (f === undefined) return this.err(EBADF);
    let r: number;
    if (f.kind === "dmirror" && "cpages" in arg) r = this.cpu(() => f.file.ioctl(request, arg));
    else if (f.kind === "gup_test" && "gupFlags" in arg) r = this.cpu(() => f.file.ioctl(this.mm, request, arg));
    else return this.err(25 /* ENOTTY */);
    return r < 0 ? this.err(-r) : r;
  }

  private tmpfile(fd: number): AddressSpace | null {
    const f = this.fds.get(fd);
    return f !== undefined && f.kind === "tmpfile" ? f.file : null;
  }

  /** pwrite(2) through the page cache. Returns bytes written or -1. */
  pwrite(fd: number, buf: Uint8Array, count: number, offset: number): number {
    const file = this.tmpfile(fd);
    if (file === null) return this.err(EBADF);
    const k = this.kernel;
    for (let done = 0; done < count; ) {
      const pos = offset + done;
      const idx = Math.floor(pos / PAGE_SIZE);
      const off = pos % PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - off, count - done);
      if (pos + n > file.size) file.size = pos + n;
      const pfn = filemapGetPage(this.mm, file, idx);
      if (pfn < 0) return done > 0 ? done : this.err(ENOMEM);
      k.pageBytes.write(pfn, off, buf.subarray(done, done + n));
      k.store.set(pfn, PG_dirty);
      putPage(k, pfn);
      done += n;
    }
    return count;
  }

  /** pread(2) through the page cache. Returns bytes read or -1. */
  pread(fd: number, buf: Uint8Array, count: number, offset: number): number {
    const file = this.tmpfile(fd);
    if (file === null) return this.err(EBADF);
    const k = this.kernel;
    const end = Math.min(offset + count, file.size);
    for (let pos = offset; pos < end; ) {
      const idx = Math.floor(pos / PAGE_SIZE);
      const off = pos % PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - off, end - pos);
      const pfn = file.pages.get(idx);
      if (pfn === undefined) buf.fill(0, pos - offset, pos - offset + n);
      else k.pageBytes.read(pfn, off, n, buf, pos - offset);
      pos += n;
    }
    return Math.max(0, end - offset);
  }

  // --- memory map -----------------------------------------------------------------------------------------------
  /** mmap(2). fd -1 (anonymous), a tmpfile fd, or a dmirror fd (dmirror_fops_mmap). */
  mmap(addr: number, length: number, prot: number, flags: number, fd: number, offset: number): number {
    try {
      let r: number;
      if (flags & MAP_ANONYMOUS) r = this.mm.mmap({ addr: addr || undefined, length, prot, flags });
      else {
        const f = this.fds.get(fd);
        if (f === undefined) return this.err(EBADF);
        if (f.kind === "tmpfile") r = this.mm.mmap({ addr: addr || undefined, length, prot, flags, file: f.file, offset });
        else if (f.kind === "dmirror") {
          const file = f.file;
          r = this.mm.mmap({ addr: addr || undefined, length, prot, flags, offset, deviceMmap: (vma) => file.mmap(vma) });
        } else return this.err(19 /* ENODEV */);
      }
      return r < 0 ? (this.err(-r), MAP_FAILED) : r;
    } catch (e) {
      if (e instanceof InvalidArgumentError) return (this.err(EINVAL), MAP_FAILED);
      throw e;
    }
  }

  private sys0(fn: () => number): number {
    try {
      const r = fn();
      return r < 0 ? this.err(-r) : r;
    } catch (e) {
      if (e instanceof InvalidArgumentError) return this.err(EINVAL);
      throw e;
    }
  }

  /** munmap(2). */
  munmap(addr: number, length: number): number {
    const r = this.sys0(() => this.mm.munmap(addr, length));
    releaseUnusedFiles(this.sys);
    return r;
  }
  /** mprotect(2). */
  mprotect(addr: number, length: number, prot: number): number {
    return this.sys0(() => this.mm.mprotect(addr, length, prot));
  }
  /**
   * madvise(2). @hmmsim/core implements MADV_DONTNEED, MADV_FREE, MADV_HUGEPAGE and MADV_NOHUGEPAGE; any other
   * advice (MADV_COLLAPSE) gets -EINVAL, what madvise_behavior_valid() answers for advice the kernel lacks.
   */
  madvise(addr: number, length: number, advice: number): number {
    return this.sys0(() => this.mm.madvise(addr, length, advice));
  }
  /**
   * mremap(2) (mm/mremap.c do_mremap through @hmmsim/core's Mm.mremap): the new address, or MAP_FAILED with errno
   * (EINVAL / ENOMEM / EFAULT). Device-private PTEs and PMDs move with the mapping.
   */
  mremap(oldAddr: number, oldSize: number, newSize: number, flags: number, newAddr?: number): number {
    try {
      const r = this.mm.mremap(oldAddr, oldSize, newSize, flags, newAddr);
      releaseUnusedFiles(this.sys);
      return r < 0 ? (this.err(-r), MAP_FAILED) : r;
    } catch (e) {
      if (e instanceof InvalidArgumentError) return (this.err(EINVAL), MAP_FAILED);
      throw e;
    }
  }

  // --- CPU access -------------------------------------------------------------------------------------------------
  /**
   * Run a CPU access; an unresolvable fault kills the process: SIGBUS / SIGSEGV (arch/x86/mm/fault.c
   * do_user_addr_fault → do_sigbus / bad_area), or SIGKILL for VM_FAULT_OOM (pagefault_out_of_memory: the OOM
   * killer's victim here is the faulting test process itself).
   */
  private cpu<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof SegmentationFault) {
        const sig = e.fault & VM_FAULT_OOM ? SIGKILL : e.fault & VM_FAULT_SIGBUS ? SIGBUS : SIGSEGV;
        throw new ProcessKilled(sig, e.message);
      }
      throw e;
    }
  }

  /** `int *ptr = addr; ptr[0..n)`: read n ints (page by page, in address order). */
  readI32(addr: number, n: number): Int32Array {
    const bytes = this.cpu(() => this.mm.read(addr, n * 4));
    return new Int32Array(bytes.buffer, bytes.byteOffset, n);
  }
  /** `*(int *)addr`. */
  peekI32(addr: number): number {
    return this.readI32(addr, 1)[0]!;
  }
  /** `*(int *)addr = v`. */
  pokeI32(addr: number, v: number): void {
    this.writeI32(addr, Int32Array.of(v));
  }
  /** `ptr[i] = values[i]` for the whole array. */
  writeI32(addr: number, values: Int32Array): void {
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    this.cpu(() => this.mm.write(addr, bytes));
  }
  /** `for (i = 0; i < n; ++i) ptr[i] = f(i)`, written a page at a time. */
  fillI32(addr: number, n: number, f: (i: number) => number): void {
    const per = PAGE_SIZE / 4;
    const buf = new Int32Array(per);
    for (let base = 0; base < n; base += per) {
      const m = Math.min(per, n - base);
      for (let j = 0; j < m; j++) buf[j] = f(base + j);
      this.writeI32(addr + base * 4, m === per ? buf : buf.subarray(0, m));
    }
  }
  /**
   * `for (i = 0; i < n; ++i) ASSERT_EQ(ptr[i]++, expect(i))`: each page is read (a load fault), checked, then
   * written back incremented (a store), in address order.
   */
  incrementI32(addr: number, n: number, check: (i: number, old: number) => void): void {
    const per = PAGE_SIZE / 4;
    for (let base = 0; base < n; base += per) {
      const m = Math.min(per, n - base);
      const v = this.readI32(addr + base * 4, m).slice();
      for (let j = 0; j < m; j++) {
        check(base + j, v[j]!);
        v[j] = v[j]! + 1;
      }
      this.writeI32(addr + base * 4, v);
    }
  }

  /** pagemap_get_entry(fd, addr) (vm_util.c): the /proc/self/pagemap word for addr. */
  pagemapGetEntry(fd: number, addr: number): bigint {
    const f = this.fds.get(fd);
    if (f === undefined || f.kind !== "pagemap") throw new ProcessKilled(SIGABRT, "pagemap_get_entry: bad fd");
    const pt = this.mm.pgtable;
    const a = addr - (addr % PAGE_SIZE);
    const pmd = pt.pmdGet(a);
    const e = pmd !== 0 ? pmd : pt.pteGet(a);
    if (e === 0) return 0n;
    if (ptePresent(e)) return PM_PRESENT;
    if (isSwapPte(e) || isDevicePrivateEntry(e)) return PM_SWAP;
    return 0n;
  }

  // --- processes --------------------------------------------------------------------------------------------------
  /**
   * fork(2). With `child`, the child runs it now to completion (`_exit(0)` when it returns; a failed ASSERT
   * aborts it; a fatal fault kills it) — the parent's waitpid() follows. Without, the child idles until killed.
   * Returns the child's pid, or -1 with errno when the kernel's fork fails (ENOMEM, EBUSY).
   */
  fork(child?: (c: TestProcess) => void): number {
    let cmm: Mm;
    try {
      cmm = this.mm.fork();
    } catch (e) {
      if (e instanceof SyscallError) return this.err(-e.errno); // fork() = -1, errno ENOMEM / EBUSY
      throw e;
    }
    const c = new TestProcess(this.sys, cmm, this.sys.nextPid++);
    for (const [fd, f] of this.fds) {
      f.refs++;
      c.fds.set(fd, f);
    }
    const rec: ChildRecord = { proc: c, status: null };
    this.children.set(c.pid, rec);
    if (child !== undefined) {
      let status = 0;
      try {
        child(c);
      } catch (e) {
        if (e instanceof TestAbort) {
          this.childLog.push(`child ${c.pid}: ${e.message}`);
          status = SIGABRT; // the harness abort()s a child whose ASSERT fails
        } else if (e instanceof ProcessKilled) {
          this.childLog.push(`child ${c.pid}: ${e.message}`);
          status = e.signal;
        } else throw e;
      }
      c.exit(status);
      rec.status = status;
    }
    return c.pid;
  }

  /** kill(2). */
  kill(pid: number, sig: number): number {
    const rec = this.children.get(pid);
    if (rec === undefined || rec.proc.exited) return this.err(ESRCH);
    rec.proc.exit(sig & 0x7f);
    rec.status = sig & 0x7f;
    return 0;
  }

  /** waitpid(2): the child's pid and wait status (a running child cannot be waited for synchronously). */
  waitpid(pid: number): { pid: number; status: number } {
    const rec = this.children.get(pid);
    if (rec === undefined || rec.status === null) {
      this.err(ECHILD);
      return { pid: -1, status: 0 };
    }
    this.children.delete(pid);
    return { pid, status: rec.status };
  }

  /** Process exit (do_exit): exit_mm (mm teardown: notifier release, unmap), then exit_files. `status` as wait(2). */
  exit(status: number): void {
    if (this.exited) return;
    this.exited = true;
    this.status = status;
    for (const rec of this.children.values()) if (!rec.proc.exited) rec.proc.exit(SIGKILL); // no orphans in a test
    this.mm.exit();
    for (const [fd, f] of [...this.fds]) {
      this.fds.delete(fd);
      this.fput(f);
    }
    releaseUnusedFiles(this.sys);
    this.sys.procs.delete(this.pid);
  }

  /** _exit(code). */
  exitCode(code: number): void {
    this.exit((code & 0xff) << 8);
  }

  /**
   * pthread_create(fn): the thread runs at point `at` of the next dmirror ioctl — 0: before its first fault chunk;
   * k ≥ 1: where dmirror_fault drops the mmap lock after its k-th 32-page chunk — or, past the last chunk, at
   * pthread_join. Without `at`, the seeded RNG draws it uniformly from [0, maxPoints].
   */
  pthreadCreate(fn: () => void, maxPoints: number, at?: number): TestThread {
    const k = at ?? this.sys.rng.int(maxPoints + 1);
    const th: TestThread = {
      ran: false,
      run: () => {
        if (th.ran) return;
        th.ran = true;
        for (const f of this.fds.values()) if (f.kind === "dmirror") f.file.dmirror.onUnlocked = null;
        fn();
      },
    };
    if (k === 0) {
      th.run();
      return th;
    }
    let points = 0;
    for (const f of this.fds.values()) {
      if (f.kind === "dmirror")
        f.file.dmirror.onUnlocked = () => {
          if (++points >= k) th.run();
        };
    }
    return th;
  }
  /** hmm_random() (hmm-tests.c): a random unsigned 32-bit number, here from the system's seeded RNG. */
  hmmRandom(): number {
    return this.sys.rng.nextU32();
  }
  /** pthread_join(). */
  pthreadJoin(th: TestThread): void {
    th.run();
  }
}

/** Free the page cache of tmpfiles with no fd and no mapping left (the unlinked inode's last iput). */
export function releaseUnusedFiles(sys: SelftestSystem): void {
  for (const [file, live] of sys.liveFiles) {
    if (live.fds > 0 || file.mappers.size > 0) continue;
    for (const pfn of file.pages.values()) putPage(sys.kernel, pfn);
    file.pages.clear();
    sys.kernel.objects.delete(file.id);
    sys.liveFiles.delete(file);
  }
}

/** read_pmd_pagesize() (vm_util.c): /sys/kernel/mm/transparent_hugepage/hpage_pmd_size. */
export function readPmdPagesize(): number {
  return PMD_SIZE;
}
/** default_huge_page_size() (vm_util.c): /proc/meminfo Hugepagesize. */
export function defaultHugePageSize(p: TestProcess): number {
  return p.kernel.hugetlbPool.size;
}
/** hugetlb_free_default_pages() (hugepage_settings.c): HugePages_Free of /proc/meminfo (the default hstate). */
export function hugetlbFreeDefaultPages(p: TestProcess): number {
  return p.kernel.hugetlbPool.freeHugePages;
}
