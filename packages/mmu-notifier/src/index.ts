export {
  MmuIntervalNotifier,
  MmuNotifier,
  MmuNotifierSubscriptions,
  mmuIntervalCheckRetry,
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalNotifierRemoveWait,
  mmuIntervalReadBegin,
  mmuIntervalReadBeginWait,
  mmuIntervalReadRetry,
  mmuIntervalSetSeq,
  mmuNotifierRangeBlockable,
  mmuNotifierRegister,
  mmuNotifierUnregister,
} from "./mmu-notifier.js";
export { WouldBlockError } from "@hmmsim/engine";
export type { MmuIntervalNotifierOps, MmuNotifierOps, NotifierMm } from "./mmu-notifier.js";
// The range type and event values live with the mm (include/linux/mmu_notifier.h is shared by both sides).
export {
  MMU_NOTIFIER_RANGE_BLOCKABLE,
  MMU_NOTIFIER_RANGE_MAX,
  MMU_NOTIFY_CLEAR,
  MMU_NOTIFY_EVENT_NAMES,
  MMU_NOTIFY_EXCLUSIVE,
  MMU_NOTIFY_MIGRATE,
  MMU_NOTIFY_PROTECTION_PAGE,
  MMU_NOTIFY_PROTECTION_VMA,
  MMU_NOTIFY_RELEASE,
  MMU_NOTIFY_SOFT_DIRTY,
  MMU_NOTIFY_UNMAP,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
  mmuNotifierRangeInit,
} from "@hmmsim/core";
export type { MmuNotifierEvent, MmuNotifierRange } from "@hmmsim/core";
