/**
 * Bridge between @hmmsim/core's Mm and @hmmsim/mmu-notifier's NotifierMm (include/linux/mm_types.h mm_users).
 *
 * @hmmsim/mmu-notifier's mmu_interval_notifier_insert reads `mm.users` (mm->mm_users, for its
 * `WARN_ON(atomic_read(&mm->mm_users) <= 0)`); core's Mm calls that counter `mmUsers` and has no `users`. Until
 * core exposes it, `asNotifierMm(mm)` adds a read-only `users` getter (reading `mmUsers`) to the Mm instance and
 * returns it typed as both, so the same object is the notifier's mm and the mm whose operations send the
 * invalidations (core calls `mm.notifierSubscriptions`).
 */
import type { Mm } from "@hmmsim/core";
import type { NotifierMm } from "@hmmsim/mmu-notifier";

export function asNotifierMm(mm: Mm): Mm & NotifierMm {
  if (!("users" in mm)) {
    Object.defineProperty(mm, "users", {
      get(this: Mm): number {
        return this.mmUsers;
      },
      configurable: true,
      enumerable: false,
    });
  }
  return mm as Mm & NotifierMm;
}
