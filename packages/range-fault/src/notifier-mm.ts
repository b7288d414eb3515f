/**
 * @hmmsim/core's Mm as @hmmsim/mmu-notifier's NotifierMm (include/linux/mm_types.h mm_users, notifier_subscriptions).
 *
 * Mm satisfies NotifierMm directly (`mmUsers`, `notifierSubscriptions`); this identity function is kept so driver
 * code can state the intent at the call site (`mmuIntervalNotifierInsert(sub, asNotifierMm(mm), …)`).
 */
import type { Mm } from "@hmmsim/core";
import type { NotifierMm } from "@hmmsim/mmu-notifier";

export function asNotifierMm(mm: Mm): Mm & NotifierMm {
  return mm;
}
