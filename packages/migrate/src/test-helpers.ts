/** Test helpers (not exported): a kernel + mm, and a recording MmuIntervalNotifier from @hmmsim/mmu-notifier. */
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
import { MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalSetSeq, type NotifierMm } from "@hmmsim/mmu-notifier";

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
  // @hmmsim/core's Mm calls its user count mmUsers; the notifier package reads `users` (NotifierMm).
  if (!("users" in mm)) Object.defineProperty(mm, "users", { get: () => mm.mmUsers, configurable: true });
  const log: Ev[] = [];
  const sub = new MmuIntervalNotifier();
  const r = mmuIntervalNotifierInsert(sub, mm as unknown as NotifierMm, 0, 2 ** 47, {
    invalidate(s, range, seq) {
      log.push({ event: MMU_NOTIFY_EVENT_NAMES[range.event], start: range.start, end: range.end, owner: range.owner, mm: mm.id });
      mmuIntervalSetSeq(s, seq);
      return true;
    },
  });
  if (r !== 0) throw new Error(`mmu_interval_notifier_insert: ${r}`);
  return log;
}

export function setup(opts?: { ramBytes?: number; bytes?: boolean; thp?: ThpMode; pages?: number }): { k: Kernel; mm: Mm; a: number; n: number } {
  const k = createKernel({ ramBytes: opts?.ramBytes ?? 32 << 20, bytes: opts?.bytes ?? true, thp: opts?.thp ?? "never" });
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
