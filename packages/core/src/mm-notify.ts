/**
 * How the core's mm operations send notifier events: mmu_notifier_range_init + mmu_notifier_invalidate_range_start
 * (which sets MMU_NOTIFIER_RANGE_BLOCKABLE) and _end, through src/mmu-notifier-range.ts, plus the invalidate
 * tracepoint. Every core call is blockable, so a refusal (-EAGAIN) is a broken rule.
 */
import { KernelRuleError } from "./errors.js";
import type { Mm } from "./mm.js";
import {
  MMU_NOTIFIER_RANGE_BLOCKABLE,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
  mmuNotifierRangeInit,
  type MmuNotifierEvent,
  type MmuNotifierRange,
} from "./mmu-notifier-range.js";

export function invalidateStart(
  mm: Mm,
  event: MmuNotifierEvent,
  start: number,
  end: number,
  owner: unknown = null,
): MmuNotifierRange<Mm> {
  const range = mmuNotifierRangeInit(event, MMU_NOTIFIER_RANGE_BLOCKABLE, mm, start, end, owner);
  const tp = mm.kernel.tracepoints.invalidate;
  if (tp !== null) tp(range);
  const ret = mmuNotifierInvalidateRangeStart(range);
  if (ret !== 0) throw new KernelRuleError("mmu_notifier_blockable_range_refused", `returned ${ret}`);
  return range;
}

export function invalidateEnd(range: MmuNotifierRange<Mm>): void {
  mmuNotifierInvalidateRangeEnd(range);
}
