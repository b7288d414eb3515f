// @hmmsim/range-fault public surface: hmm_range_fault (mm/hmm.c), HMM_PFN_* (include/linux/hmm.h), the generic
// page-table walker it runs on (mm/pagewalk.c), and the documented driver retry loop (lib/test_hmm.c).
export * from "./hmm-pfn.js";
export { hmmRangeFault, hmmRangeMm, HMM_NO_PROGRESS_LIMIT, type HmmRange } from "./hmm-range-fault.js";
export {
  walkPageRange,
  ACTION_SUBTREE,
  ACTION_CONTINUE,
  ACTION_AGAIN,
  PGWALK_RDLOCK,
  PGWALK_WRLOCK,
  type MmWalk,
  type MmWalkOps,
} from "./walk-page-range.js";
export {
  mirrorRangeFault,
  mirrorRangeFaultStats,
  HMM_RANGE_DEFAULT_TIMEOUT,
  HMM_RANGE_DEFAULT_ATTEMPTS,
  type MirrorRangeFaultOptions,
  type MirrorRangeFaultStats,
  type MirrorWindow,
} from "./mirror-range-fault.js";
export { asNotifierMm } from "./notifier-mm.js";
