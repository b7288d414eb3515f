/**
 * MMU notifiers: per-mm subscriptions, interval notifiers and the collision-retry sequence protocol.
 * Stands for mm/mmu_notifier.c (struct mmu_notifier_subscriptions, mn_itree_*, mmu_interval_*) and
 * include/linux/mmu_notifier.h (mmu_interval_set_seq, mmu_interval_read_retry, mmu_interval_check_retry).
 *
 * The sequence protocol, exactly as the kernel's:
 * - `subscriptions.invalidateSeq` starts at 2; even = idle, odd = an invalidation covering some interval is running.
 * - invalidate_range_start: `active++`; if any interval overlaps [start, end-1], `seq |= 1`; every overlapping
 *   interval's `invalidate(sub, range, curSeq)` runs (curSeq odd).
 * - invalidate_range_end: `active--`; when it reaches 0 with seq odd, `seq++` and deferred inserts/removes apply.
 * - a driver's invalidate calls `mmuIntervalSetSeq(sub, curSeq)` under its lock (or ignores its own events).
 * - `mmuIntervalReadBegin` returns `sub.invalidateSeq` (waiting while it equals the subscriptions' odd seq);
 *   `mmuIntervalReadRetry(sub, seq)` is `sub.invalidateSeq !== seq`.
 */
import {
  EAGAIN,
  EINVAL,
  EOVERFLOW,
  InvalidArgumentError,
  KernelRuleError,
  MMU_NOTIFIER_RANGE_BLOCKABLE,
  MMU_NOTIFIER_RANGE_MAX,
  MMU_NOTIFY_RELEASE,
  type MmuNotifierRange,
  type MmuNotifierSubscriptionsOps,
  type MmWithNotifiers,
} from "@hmmsim/core";
import { WaitQueue, WouldBlockError, type Engine } from "@hmmsim/engine";

/** The mm side the notifier code needs: the subscriptions slot and whether the mm still has users (mmget_not_zero). */
export interface NotifierMm extends MmWithNotifiers<NotifierMm> {
  /** mm->mm_users: 0 once the mm has exited. */
  readonly mmUsers: number;
}

/** struct mmu_interval_notifier_ops. */
export interface MmuIntervalNotifierOps {
  /**
   * Called for every invalidation overlapping the interval. Must call `mmuIntervalSetSeq(sub, curSeq)` under the
   * driver lock unless it deliberately ignores the event. Returns false only if the range is not blockable
   * (`mmuNotifierRangeBlockable(range) === false`) and it would have to sleep.
   */
  invalidate(sub: MmuIntervalNotifier, range: MmuNotifierRange<NotifierMm>, curSeq: number): boolean;
}

/** struct mmu_notifier_ops for a whole-mm subscription (the classic, non-interval API). */
export interface MmuNotifierOps {
  release?(sub: MmuNotifier, mm: NotifierMm): void;
  /** Returns 0 or -EAGAIN (only allowed for non-blockable ranges). */
  invalidateRangeStart?(sub: MmuNotifier, range: MmuNotifierRange<NotifierMm>): number;
  invalidateRangeEnd?(sub: MmuNotifier, range: MmuNotifierRange<NotifierMm>): void;
}

/** struct mmu_notifier (classic whole-mm subscription). */
export class MmuNotifier {
  mm: NotifierMm | null = null;
  constructor(readonly ops: MmuNotifierOps) {}
}

const enum TreeState {
  Unlinked = 0, // RB_EMPTY_NODE
  Linked = 1,
}

/** struct mmu_interval_notifier. `interval` is inclusive: [start, last]. */
export class MmuIntervalNotifier {
  mm: NotifierMm | null = null;
  ops: MmuIntervalNotifierOps | null = null;
  start = 0;
  last = 0;
  /** interval_sub->invalidate_seq */
  invalidateSeq = 0;
  /** @internal whether the node is in the interval tree (vs RB_EMPTY_NODE). */
  treeState: TreeState = TreeState.Unlinked;
  /** @internal on the subscriptions' deferred list. */
  deferred = false;
}

/** mmu_notifier_range_blockable(). */
export function mmuNotifierRangeBlockable(range: MmuNotifierRange<unknown>): boolean {
  return (range.flags & MMU_NOTIFIER_RANGE_BLOCKABLE) !== 0;
}

/**
 * struct mmu_notifier_subscriptions: installed on `mm.notifierSubscriptions` by the first registration
 * (__mmu_notifier_register). The interval "tree" is an array kept sorted by start: drivers register a handful of
 * intervals per mm, so a scan is cheaper than a tree here and keeps callback order deterministic (by start, then
 * insertion order).
 */
export class MmuNotifierSubscriptions implements MmuNotifierSubscriptionsOps<NotifierMm> {
  invalidateSeq = 2;
  activeInvalidateRanges = 0;
  hasItree = false;
  readonly itree: MmuIntervalNotifier[] = [];
  readonly list: MmuNotifier[] = [];
  readonly deferredList: MmuIntervalNotifier[] = [];
  private wq: WaitQueue | null = null;

  constructor(readonly mm: NotifierMm) {}

  /** mn_itree_is_invalidating() */
  isInvalidating(): boolean {
    return (this.invalidateSeq & 1) === 1;
  }

  /** @internal the wait queue (subscriptions->wq); created with the engine of the first task that waits. */
  waitQueue(engine: Engine): WaitQueue {
    if (this.wq === null) this.wq = new WaitQueue("mmu_notifier_subscriptions.wq", engine);
    return this.wq;
  }

  /** interval_tree_insert */
  treeInsert(sub: MmuIntervalNotifier): void {
    let i = this.itree.length;
    while (i > 0 && this.itree[i - 1]!.start > sub.start) i--;
    this.itree.splice(i, 0, sub);
    sub.treeState = TreeState.Linked;
  }

  /** interval_tree_remove */
  treeRemove(sub: MmuIntervalNotifier): void {
    const i = this.itree.indexOf(sub);
    if (i >= 0) this.itree.splice(i, 1);
    sub.treeState = TreeState.Unlinked;
  }

  /** The intervals overlapping [start, last], in tree order (interval_tree_iter_first / _next). */
  overlapping(start: number, last: number): MmuIntervalNotifier[] {
    const out: MmuIntervalNotifier[] = [];
    for (const sub of this.itree) {
      if (sub.start > last) break;
      if (sub.last >= start) out.push(sub);
    }
    return out;
  }

  /** mn_itree_inv_start_range(): returns the overlapping intervals and the current seq. */
  private invStartRange(range: MmuNotifierRange<NotifierMm>): { subs: MmuIntervalNotifier[]; seq: number } {
    this.activeInvalidateRanges++;
    const subs = this.overlapping(range.start, range.end - 1);
    if (subs.length > 0) this.invalidateSeq |= 1;
    return { subs, seq: this.invalidateSeq };
  }

  /** mn_itree_inv_end() */
  private invEnd(): void {
    if (--this.activeInvalidateRanges !== 0 || !this.isInvalidating()) return;
    this.invalidateSeq++; // make it even
    // Deferred adds and removes progress now (the rtnl_unlock()-like mechanism).
    for (const sub of this.deferredList.splice(0)) {
      sub.deferred = false;
      if (sub.treeState === TreeState.Unlinked) this.treeInsert(sub);
      else this.treeRemove(sub);
    }
    this.wq?.wakeUpAll();
  }

  /** mn_itree_invalidate() */
  private itreeInvalidate(range: MmuNotifierRange<NotifierMm>): number {
    const { subs, seq } = this.invStartRange(range);
    let err = 0;
    for (const sub of subs) {
      const ret = sub.ops!.invalidate(sub, range, seq);
      if (!ret) {
        if (mmuNotifierRangeBlockable(range)) {
          // WARN_ON(mmu_notifier_range_blockable(range)): a blockable invalidation may not fail.
          throw new KernelRuleError(
            "mn_itree_invalidate_blockable_refused",
            "WARN_ON(mmu_notifier_range_blockable(range)): an interval notifier's invalidate returned false for a blockable range",
          );
        }
        err = -EAGAIN;
        break;
      }
    }
    // On -EAGAIN the non-blocking caller is not allowed to call invalidate_range_end().
    if (err) this.invEnd();
    return err;
  }

  /** __mmu_notifier_invalidate_range_start() */
  invalidateRangeStart(range: MmuNotifierRange<NotifierMm>): number {
    if (this.hasItree) {
      const ret = this.itreeInvalidate(range);
      if (ret) return ret;
    }
    if (this.list.length === 0) return 0;
    // mn_hlist_invalidate_range_start()
    let ret = 0;
    for (const sub of this.list) {
      const start = sub.ops.invalidateRangeStart;
      if (!start) continue;
      const r = start.call(sub.ops, sub, range);
      if (r) {
        if (mmuNotifierRangeBlockable(range) || r !== -EAGAIN) {
          throw new KernelRuleError(
            "mn_hlist_invalidate_range_start_failed",
            `WARN_ON(blockable || ret != -EAGAIN): invalidate_range_start returned ${r}`,
          );
        }
        ret = r;
      }
    }
    if (ret) {
      // Non-blocking failure: any subscription that succeeded start expects its end now.
      for (const sub of this.list) sub.ops.invalidateRangeEnd?.(sub, range);
    }
    return ret;
  }

  /** __mmu_notifier_invalidate_range_end() */
  invalidateRangeEnd(range: MmuNotifierRange<NotifierMm>): void {
    if (this.hasItree) this.invEnd();
    for (const sub of this.list) sub.ops.invalidateRangeEnd?.(sub, range);
  }

  /** __mmu_notifier_release(): mn_itree_release() then mn_hlist_release(). */
  release(mm: NotifierMm): void {
    if (this.hasItree) {
      const range: MmuNotifierRange<NotifierMm> = {
        flags: MMU_NOTIFIER_RANGE_BLOCKABLE,
        event: MMU_NOTIFY_RELEASE,
        mm,
        start: 0,
        end: MMU_NOTIFIER_RANGE_MAX,
        owner: null,
      };
      const { subs, seq } = this.invStartRange(range);
      for (const sub of subs) {
        if (!sub.ops!.invalidate(sub, range, seq)) {
          throw new KernelRuleError("mn_itree_release_refused", "WARN_ON(!ret): invalidate returned false for MMU_NOTIFY_RELEASE");
        }
      }
      this.invEnd();
    }
    if (this.list.length > 0) {
      for (const sub of this.list) sub.ops.release?.(sub, mm);
      this.list.length = 0;
    }
  }
}

function subscriptionsOf(mm: NotifierMm): MmuNotifierSubscriptions | null {
  const s = mm.notifierSubscriptions;
  if (s === null) return null;
  if (!(s instanceof MmuNotifierSubscriptions)) {
    throw new KernelRuleError("mm_notifier_subscriptions_foreign", "mm.notifierSubscriptions is not a MmuNotifierSubscriptions (installed by another implementation)");
  }
  return s;
}

/** __mmu_notifier_register(NULL or subscription, mm): allocate and install the subscriptions on first use. */
function register(mm: NotifierMm): MmuNotifierSubscriptions {
  let subs = subscriptionsOf(mm);
  if (subs === null) {
    subs = new MmuNotifierSubscriptions(mm);
    mm.notifierSubscriptions = subs;
  }
  return subs;
}

/** mmu_notifier_register(): a whole-mm subscription. Returns 0 or -EINVAL (mm has no users). */
export function mmuNotifierRegister(sub: MmuNotifier, mm: NotifierMm): number {
  if (mm.mmUsers <= 0) return -EINVAL;
  if (sub.mm !== null) throw new KernelRuleError("mmu_notifier_register_twice", "the subscription is already registered");
  const subs = register(mm);
  sub.mm = mm;
  subs.list.unshift(sub); // hlist_add_head_rcu
  return 0;
}

/** mmu_notifier_unregister(): runs ->release, then unlinks. */
export function mmuNotifierUnregister(sub: MmuNotifier, mm: NotifierMm): void {
  const subs = subscriptionsOf(mm);
  if (subs === null || sub.mm !== mm) throw new KernelRuleError("mmu_notifier_unregister_not_registered", "not registered on this mm");
  const i = subs.list.indexOf(sub);
  if (i >= 0) {
    sub.ops.release?.(sub, mm);
    subs.list.splice(i, 1);
  }
  sub.mm = null;
}

/**
 * mmu_interval_notifier_insert(): subscribe `sub` to [start, start+length-1] of `mm`.
 * Returns 0, -EOVERFLOW (length 0 or start+length-1 overflows the address space) or -EINVAL (mm has no users).
 */
export function mmuIntervalNotifierInsert(
  sub: MmuIntervalNotifier,
  mm: NotifierMm,
  start: number,
  length: number,
  ops: MmuIntervalNotifierOps,
): number {
  if (!Number.isSafeInteger(start) || start < 0) {
    throw new InvalidArgumentError("start", "mmu_interval_notifier_insert: must be a non-negative safe integer", start);
  }
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new InvalidArgumentError("length", "mmu_interval_notifier_insert: must be a non-negative safe integer", length);
  }
  if (sub.mm !== null) throw new KernelRuleError("mmu_interval_notifier_insert_twice", "the interval notifier is already inserted");
  // length == 0 || check_add_overflow(start, length - 1, &last)
  if (length === 0 || start + (length - 1) > MMU_NOTIFIER_RANGE_MAX) return -EOVERFLOW;
  // WARN_ON(atomic_read(&mm->mm_users) <= 0)
  if (mm.mmUsers <= 0) return -EINVAL;
  const subs = register(mm);
  subs.hasItree = true;
  sub.mm = mm;
  sub.ops = ops;
  sub.start = start;
  sub.last = start + (length - 1);
  sub.treeState = TreeState.Unlinked;
  if (subs.activeInvalidateRanges) {
    if (subs.isInvalidating()) {
      sub.deferred = true;
      subs.deferredList.unshift(sub);
    } else {
      subs.invalidateSeq |= 1;
      subs.treeInsert(sub);
    }
    sub.invalidateSeq = subs.invalidateSeq;
  } else {
    // The starting seq is odd, not equal to the current (even) invalidate_seq.
    sub.invalidateSeq = subs.invalidateSeq - 1;
    subs.treeInsert(sub);
  }
  return 0;
}

/** The part of mmu_interval_notifier_remove() before its wait; returns the seq to wait for (0 = none). */
function removeBegin(sub: MmuIntervalNotifier): { subs: MmuNotifierSubscriptions; seq: number } {
  if (sub.mm === null) throw new KernelRuleError("mmu_interval_notifier_remove_not_inserted", "the interval notifier is not inserted");
  const subs = subscriptionsOf(sub.mm)!;
  let seq = 0;
  if (subs.isInvalidating()) {
    if (sub.treeState === TreeState.Unlinked) {
      // Removed after insert put it on the deferred list, before the list was processed.
      const i = subs.deferredList.indexOf(sub);
      if (i >= 0) subs.deferredList.splice(i, 1);
      sub.deferred = false;
    } else {
      sub.deferred = true;
      subs.deferredList.unshift(sub);
      seq = subs.invalidateSeq;
    }
  } else {
    subs.treeRemove(sub);
  }
  return { subs, seq };
}

/**
 * mmu_interval_notifier_remove() from synchronous code. When an invalidation is running the removal is deferred
 * and the kernel sleeps until it ends; synchronous code cannot sleep, so that case throws `WouldBlockError`
 * (use `mmuIntervalNotifierRemoveWait` from a task). Once it returns no callback runs for `sub` again.
 */
export function mmuIntervalNotifierRemove(sub: MmuIntervalNotifier): void {
  const subs = sub.mm === null ? null : subscriptionsOf(sub.mm);
  if (subs && subs.isInvalidating() && sub.treeState === TreeState.Linked) {
    throw new WouldBlockError(
      "mmu_interval_notifier_remove: an invalidation is in progress, the removal would sleep (and it cannot be called from an ops callback); use mmuIntervalNotifierRemoveWait in a task",
    );
  }
  removeBegin(sub);
  sub.mm = null;
}

/** mmu_interval_notifier_remove() from an engine task: waits for a running invalidation to end. */
export async function mmuIntervalNotifierRemoveWait(sub: MmuIntervalNotifier, engine: Engine): Promise<void> {
  const { subs, seq } = removeBegin(sub);
  if (seq) await subs.waitQueue(engine).waitEvent(() => subs.invalidateSeq !== seq);
  sub.mm = null;
}

/**
 * mmu_interval_read_begin() from synchronous code: returns the sequence to pass to read_retry. If an invalidation
 * covering this interval is in flight the kernel sleeps until it ends; synchronous code cannot, so that throws
 * `WouldBlockError` (use `mmuIntervalReadBeginWait` in a task).
 */
export function mmuIntervalReadBegin(sub: MmuIntervalNotifier): number {
  const subs = requireInserted(sub, "mmu_interval_read_begin");
  const seq = sub.invalidateSeq;
  if (seq === subs.invalidateSeq) {
    throw new WouldBlockError(
      "mmu_interval_read_begin: an invalidation covering this interval is in progress and read_begin would sleep; use mmuIntervalReadBeginWait in a task",
    );
  }
  return seq;
}

/** mmu_interval_read_begin() from an engine task: waits while an invalidation covering the interval runs. */
export async function mmuIntervalReadBeginWait(sub: MmuIntervalNotifier, engine: Engine): Promise<number> {
  const subs = requireInserted(sub, "mmu_interval_read_begin");
  const seq = sub.invalidateSeq;
  if (seq === subs.invalidateSeq) await subs.waitQueue(engine).waitEvent(() => subs.invalidateSeq !== seq);
  return seq;
}

/** mmu_interval_set_seq(): called by the invalidate callback, under the driver lock, with the cur_seq it was given. */
export function mmuIntervalSetSeq(sub: MmuIntervalNotifier, curSeq: number): void {
  sub.invalidateSeq = curSeq;
}

/** mmu_interval_read_retry(): true if the range was invalidated since read_begin. Call under the driver lock. */
export function mmuIntervalReadRetry(sub: MmuIntervalNotifier, seq: number): boolean {
  return sub.invalidateSeq !== seq;
}

/** mmu_interval_check_retry(): the same test without the lock, as an early exit for long operations. */
export function mmuIntervalCheckRetry(sub: MmuIntervalNotifier, seq: number): boolean {
  return sub.invalidateSeq !== seq;
}

function requireInserted(sub: MmuIntervalNotifier, fn: string): MmuNotifierSubscriptions {
  if (sub.mm === null) throw new KernelRuleError(`${fn}_not_inserted`, "the interval notifier is not inserted");
  return subscriptionsOf(sub.mm)!;
}
