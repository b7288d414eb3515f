/**
 * The gup_test debugfs driver (mm/gup_test.c, mm/gup_test.h; CONFIG_GUP_TEST, /sys/kernel/debug/gup_test) that
 * hmm-tests.c's hmm_gup_test drives through gup_test_exec(). Each command runs get_user_pages* / pin_user_pages*
 * of @hmmsim/core on the caller's mm (current->mm) over [addr, addr + size) in calls of nr_pages_per_call pages,
 * checks the pins (verify_dma_pinned) and releases every page at once (put_back_pages), as __gup_test_ioctl does.
 *
 * Modelled commands: GUP_FAST_BENCHMARK (get_user_pages_fast), PIN_FAST_BENCHMARK (pin_user_pages_fast),
 * PIN_LONGTERM_BENCHMARK (pin_user_pages with FOLL_LONGTERM added), GUP_BASIC_TEST (get_user_pages),
 * PIN_BASIC_TEST (pin_user_pages), DUMP_USER_PAGES_TEST (get or pin; dump_page is a log line in the kernel and
 * nothing here). Not modelled: PIN_LONGTERM_TEST_START / _STOP / _READ (the persistent long-term pin fixture of
 * gup_longterm.c): -EINVAL, what the kernel answers for an unknown command.
 *
 * Deviations: no wall clock, so get_delta_usec / put_delta_usec are 0; the mmap read lock is taken with trylock
 * (MmapLockHeldError if the caller holds it for write, where the kernel would deadlock). A pinned page that is not
 * dma-pinned, or a long-term pin on a page that may not be long-term pinned, is the kernel's WARN in
 * verify_dma_pinned: KernelRuleError.
 */
import {
  EINVAL,
  FOLL_LONGTERM,
  KernelRuleError,
  PAGE_SIZE,
  folioIsLongtermPinnable,
  folioMaybeDmaPinned,
  getUserPages,
  getUserPagesFast,
  pinUserPages,
  pinUserPagesFast,
  putPage,
  unpinUserPages,
  type Mm,
} from "@hmmsim/core";

/** GUP_TEST_MAX_PAGES_TO_DUMP. */
export const GUP_TEST_MAX_PAGES_TO_DUMP = 8;
/** GUP_TEST_FLAG_DUMP_PAGES_USE_PIN. */
export const GUP_TEST_FLAG_DUMP_PAGES_USE_PIN = 0x1;

/** sizeof(struct gup_test): 4 u64 + 3 u32 + 8 u32 = 76, padded to 80. */
const SIZEOF_GUP_TEST = 80;
/** _IOWR('g', nr, struct gup_test). */
function iowrG(nr: number): number {
  return ((3 << 30) >>> 0) + (SIZEOF_GUP_TEST << 16) + (0x67 << 8) + nr;
}
export const GUP_FAST_BENCHMARK = iowrG(1);
export const PIN_FAST_BENCHMARK = iowrG(2);
export const PIN_LONGTERM_BENCHMARK = iowrG(3);
export const GUP_BASIC_TEST = iowrG(4);
export const PIN_BASIC_TEST = iowrG(5);
export const DUMP_USER_PAGES_TEST = iowrG(6);

/** struct gup_test (mm/gup_test.h): input range and flags, output timings and the size actually processed. */
export interface GupTest {
  getDeltaUsec: number;
  putDeltaUsec: number;
  addr: number;
  size: number;
  nrPagesPerCall: number;
  gupFlags: number;
  testFlags: number;
  /** 1-based page numbers to dump (DUMP_USER_PAGES_TEST); 0 = none. */
  whichPages: number[];
}

/** A struct gup_test with the given fields and the rest zero. */
export function gupTestArgs(init: Partial<GupTest>): GupTest {
  return { getDeltaUsec: 0, putDeltaUsec: 0, addr: 0, size: 0, nrPagesPerCall: 0, gupFlags: 0, testFlags: 0, whichPages: [], ...init };
}

/** Statistics of one gup_test file (for tests of the model). */
export interface GupTestStats {
  /** Pages obtained by the last command (gup->size / PAGE_SIZE after it). */
  lastNrPages: number;
  /** Commands run. */
  calls: number;
}

/** put_back_pages(). */
function putBackPages(mm: Mm, cmd: number, pages: number[], testFlags: number): void {
  const k = mm.kernel;
  const usePin =
    cmd === PIN_FAST_BENCHMARK ||
    cmd === PIN_BASIC_TEST ||
    cmd === PIN_LONGTERM_BENCHMARK ||
    (cmd === DUMP_USER_PAGES_TEST && (testFlags & GUP_TEST_FLAG_DUMP_PAGES_USE_PIN) !== 0);
  if (usePin) unpinUserPages(k, pages);
  else for (const p of pages) putPage(k, p);
}

/** verify_dma_pinned(): the kernel WARNs (and dumps the page) on the first page that breaks the rule. */
function verifyDmaPinned(mm: Mm, cmd: number, pages: number[]): void {
  if (cmd !== PIN_FAST_BENCHMARK && cmd !== PIN_BASIC_TEST && cmd !== PIN_LONGTERM_BENCHMARK) return;
  const k = mm.kernel;
  pages.forEach((pfn, i) => {
    if (!folioMaybeDmaPinned(k, pfn)) throw new KernelRuleError("gup_test_not_dma_pinned", `pages[${i}] (pfn ${pfn}) is NOT dma-pinned`);
    if (cmd === PIN_LONGTERM_BENCHMARK && !folioIsLongtermPinnable(k, pfn))
      throw new KernelRuleError("gup_test_not_longterm_pinnable", `pages[${i}] (pfn ${pfn}) is NOT pinnable but pinned`);
  });
}

/** The open /sys/kernel/debug/gup_test file (gup_test_open → struct gup_test_data). */
export class GupTestFile {
  readonly stats: GupTestStats = { lastNrPages: 0, calls: 0 };

  /**
   * gup_test_ioctl(file, cmd, arg) from a process whose mm is `mm`: 0 (with `gup.size` set to the bytes actually
   * processed and the pages already released) or -EINVAL (unknown command, zero or unaligned size, zero
   * nr_pages_per_call, range overflow).
   */
  ioctl(mm: Mm, cmd: number, gup: GupTest): number {
    switch (cmd) {
      case GUP_FAST_BENCHMARK:
      case PIN_FAST_BENCHMARK:
      case PIN_LONGTERM_BENCHMARK:
      case GUP_BASIC_TEST:
      case PIN_BASIC_TEST:
      case DUMP_USER_PAGES_TEST:
        break;
      default:
        return -EINVAL;
    }
    this.stats.calls++;
    return this.gupTestIoctl(mm, cmd, gup);
  }

  /** __gup_test_ioctl(). */
  private gupTestIoctl(mm: Mm, cmd: number, gup: GupTest): number {
    const { addr, size, nrPagesPerCall } = gup;
    if (!Number.isSafeInteger(addr) || addr < 0 || !Number.isSafeInteger(size) || size <= 0) return -EINVAL;
    if (!Number.isInteger(nrPagesPerCall) || nrPagesPerCall <= 0 || size % PAGE_SIZE !== 0) return -EINVAL;
    // The kernel's ULONG_MAX / check_add_overflow checks cannot trigger on safe integers.
    const end = addr + size;
    const needsMmapLock = cmd !== GUP_FAST_BENCHMARK && cmd !== PIN_FAST_BENCHMARK;
    const run = (): number => {
      const pages: number[] = [];
      let nr = nrPagesPerCall;
      for (let a = addr; a < end; ) {
        if (nr !== nrPagesPerCall) break;
        nr = Math.min(nr, (end - a) / PAGE_SIZE);
        const next = a + nr * PAGE_SIZE;
        const flags = gup.gupFlags;
        // GUP works on the page containing each address (gup_fast masks it, __get_user_pages follows it).
        const start = a - (a % PAGE_SIZE);
        switch (cmd) {
          case GUP_FAST_BENCHMARK:
            nr = getUserPagesFast(mm, start, nr, flags, pages);
            break;
          case GUP_BASIC_TEST:
            nr = getUserPages(mm, start, nr, flags, pages);
            break;
          case PIN_FAST_BENCHMARK:
            nr = pinUserPagesFast(mm, start, nr, flags, pages);
            break;
          case PIN_BASIC_TEST:
            nr = pinUserPages(mm, start, nr, flags, pages);
            break;
          case PIN_LONGTERM_BENCHMARK:
            nr = pinUserPages(mm, start, nr, flags | FOLL_LONGTERM, pages);
            break;
          case DUMP_USER_PAGES_TEST:
            nr = gup.testFlags & GUP_TEST_FLAG_DUMP_PAGES_USE_PIN ? pinUserPages(mm, start, nr, flags, pages) : getUserPages(mm, start, nr, flags, pages);
            break;
        }
        if (nr <= 0) break;
        a = next;
      }
      // Shifting the meaning of nr_pages: now it is the actual number pinned.
      gup.getDeltaUsec = 0;
      gup.size = pages.length * PAGE_SIZE;
      verifyDmaPinned(mm, cmd, pages);
      if (cmd === DUMP_USER_PAGES_TEST) {
        // dump_pages_test(): out-of-range indices are zeroed; dump_page() only logs.
        for (let i = 0; i < gup.whichPages.length; i++) if (gup.whichPages[i]! > pages.length) gup.whichPages[i] = 0;
      }
      putBackPages(mm, cmd, pages, gup.testFlags);
      gup.putDeltaUsec = 0;
      this.stats.lastNrPages = pages.length;
      return 0;
    };
    return needsMmapLock ? mm.withReadLock("gup_test", run) : run();
  }

  /** gup_test_release(): nothing is held between commands. */
  release(): void {}
}
