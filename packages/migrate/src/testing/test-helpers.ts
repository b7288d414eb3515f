/**
 * Test helpers (not exported): a kernel + mm (tracked for the per-test invariant check), and a recording
 * MmuIntervalNotifier from @hmmsim/mmu-notifier.
 */
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MMU_NOTIFY_EVENT_NAMES,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  createKernel,
  type Kernel,
  type Mm,
  type ThpMode,
} from "@hmmsim/core";
import { MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalSetSeq } from "@hmmsim/mmu-notifier";
import { assertInvariants, type InvariantOptions } from "@hmmsim/testing";

export interface Ev {
  event: string;
  start: number;
  end: number;
  owner: unknown;
  mm: number;
}

/**
 * Insert an interval notifier over the whole address space of `mm` that records every invalidation (and
 * bumps its sequence, as a driver that does not filter would).
 */
export function recordNotifier(mm: Mm): Ev[] {
  const log: Ev[] = [];
  const sub = new MmuIntervalNotifier();
  const r = mmuIntervalNotifierInsert(sub, mm, 0, 2 ** 47, {
    invalidate(s, range, seq) {
      log.push({ event: MMU_NOTIFY_EVENT_NAMES[range.event], start: range.start, end: range.end, owner: range.owner, mm: mm.id });
      mmuIntervalSetSeq(s, seq);
      return true;
    },
  });
  if (r !== 0) throw new Error(`mmu_interval_notifier_insert: ${r}`);
  return log;
}

/** Kernels created by setup() / trackKernel() since the last assertTrackedInvariants(), with their check's options. */
const tracked: { k: Kernel; opts: InvariantOptions | undefined }[] = [];

/** Track a kernel a test created itself (setup() tracks its own): assertTrackedInvariants checks it. */
export function trackKernel(k: Kernel, opts?: InvariantOptions): Kernel {
  const t = tracked.find((x) => x.k === k);
  if (t !== undefined) t.opts = opts;
  else tracked.push({ k, opts });
  return k;
}

/**
 * @hmmsim/testing's assertInvariants (refcounts, mapcounts, rss, memcg, page locks, no migration entry left, the
 * allocator and pgmap state) on every tracked kernel, which are then forgotten. Test files call it from afterEach,
 * so every test ends on a checked state; a test that legitimately keeps something (a reference it holds) declares
 * it with trackKernel(k, { extraRefs }).
 */
export function assertTrackedInvariants(): void {
  for (const { k, opts } of tracked.splice(0)) assertInvariants(k, opts);
}

export function setup(opts?: { ramBytes?: number; bytes?: boolean; thp?: ThpMode; pages?: number }): { k: Kernel; mm: Mm; a: number; n: number } {
  const k = trackKernel(createKernel({ ramBytes: opts?.ramBytes ?? 32 << 20, bytes: opts?.bytes ?? true, thp: opts?.thp ?? "never" }));
  const mm = k.createMm();
  const n = opts?.pages ?? 16;
  const a = mm.mmap({ length: n * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  return { k, mm, a, n };
}

/** A page of bytes derived from a seed. */
export function pattern(seed: number, len = PAGE_SIZE): Uint8Array {
  const b = new Uint8Array(len);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Run fn under mm's mmap read lock. */
export function locked<T>(mm: Mm, fn: () => T): T {
  return mm.withReadLock("test", fn);
}
