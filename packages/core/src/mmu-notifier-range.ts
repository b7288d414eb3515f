/**
 * The notifier side of mm (include/linux/mmu_notifier.h): event values, `struct mmu_notifier_range`, and the
 * calls the mm operations make (`mmu_notifier_invalidate_range_start/end`, `mmu_notifier_release`).
 *
 * As in the kernel, an mm has no notifier machinery until something subscribes (`mm->notifier_subscriptions`
 * is NULL; `mm_has_notifiers()` is false): the calls below are then no-ops. @hmmsim/mmu-notifier installs a
 * `MmuNotifierSubscriptionsOps` on the mm (mm/mmu_notifier.c: `__mmu_notifier_register`).
 */

/** enum mmu_notifier_event (include/linux/mmu_notifier.h). */
export const MMU_NOTIFY_UNMAP = 0;
export const MMU_NOTIFY_CLEAR = 1;
export const MMU_NOTIFY_PROTECTION_VMA = 2;
export const MMU_NOTIFY_PROTECTION_PAGE = 3;
export const MMU_NOTIFY_SOFT_DIRTY = 4;
export const MMU_NOTIFY_RELEASE = 5;
export const MMU_NOTIFY_MIGRATE = 6;
export const MMU_NOTIFY_EXCLUSIVE = 7;
export type MmuNotifierEvent = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7;
export const MMU_NOTIFY_EVENT_NAMES = [
  "MMU_NOTIFY_UNMAP",
  "MMU_NOTIFY_CLEAR",
  "MMU_NOTIFY_PROTECTION_VMA",
  "MMU_NOTIFY_PROTECTION_PAGE",
  "MMU_NOTIFY_SOFT_DIRTY",
  "MMU_NOTIFY_RELEASE",
  "MMU_NOTIFY_MIGRATE",
  "MMU_NOTIFY_EXCLUSIVE",
] as const;

/** range->flags: the invalidation may sleep (include/linux/mmu_notifier.h). */
export const MMU_NOTIFIER_RANGE_BLOCKABLE = 1 << 0;

/** ULONG_MAX stand-in for `[0, ULONG_MAX]` ranges (mn_itree_release): the top of the 2^53 address space. */
export const MMU_NOTIFIER_RANGE_MAX = Number.MAX_SAFE_INTEGER;

/** struct mmu_notifier_range. `end` is exclusive. `owner` is compared by identity (===), as the kernel compares pointers. */
export interface MmuNotifierRange<TMm = unknown> {
  mm: TMm;
  start: number;
  end: number;
  flags: number;
  event: MmuNotifierEvent;
  owner: unknown;
}

/**
 * What an mm calls on `mm->notifier_subscriptions` (mm/mmu_notifier.c: `__mmu_notifier_invalidate_range_start`,
 * `__mmu_notifier_invalidate_range_end`, `__mmu_notifier_release`). Implemented by @hmmsim/mmu-notifier.
 */
export interface MmuNotifierSubscriptionsOps<TMm = unknown> {
  /** 0, or -EAGAIN when a callback refused a non-blockable range. */
  invalidateRangeStart(range: MmuNotifierRange<TMm>): number;
  invalidateRangeEnd(range: MmuNotifierRange<TMm>): void;
  /** mm teardown: MMU_NOTIFY_RELEASE over [0, ULONG_MAX] to every interval (mn_itree_release). */
  release(mm: TMm): void;
}

/** The part of an mm the notifier calls need (Mm implements it). */
export interface MmWithNotifiers<TMm = unknown> {
  notifierSubscriptions: MmuNotifierSubscriptionsOps<TMm> | null;
}

/** mmu_notifier_range_init(). */
export function mmuNotifierRangeInit<TMm>(
  event: MmuNotifierEvent,
  flags: number,
  mm: TMm,
  start: number,
  end: number,
  owner: unknown = null,
): MmuNotifierRange<TMm> {
  return { mm, start, end, flags, event, owner };
}

/** mmu_notifier_invalidate_range_start(): a no-op unless the mm has subscriptions. Returns 0 or -EAGAIN. */
export function mmuNotifierInvalidateRangeStart<TMm extends MmWithNotifiers<TMm>>(range: MmuNotifierRange<TMm>): number {
  const subs = range.mm.notifierSubscriptions;
  return subs === null ? 0 : subs.invalidateRangeStart(range);
}

/** mmu_notifier_invalidate_range_end(). */
export function mmuNotifierInvalidateRangeEnd<TMm extends MmWithNotifiers<TMm>>(range: MmuNotifierRange<TMm>): void {
  const subs = range.mm.notifierSubscriptions;
  if (subs !== null) subs.invalidateRangeEnd(range);
}

/** mmu_notifier_release() (exit_mmap). */
export function mmuNotifierRelease<TMm extends MmWithNotifiers<TMm>>(mm: TMm): void {
  const subs = mm.notifierSubscriptions;
  if (subs !== null) subs.release(mm);
}
