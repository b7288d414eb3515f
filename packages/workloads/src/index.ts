export { type Access, type AccessBatch, AccessPattern, type Common, type CommonParams, MAX_ACCESSES, WORKLOAD_PAGE_BYTES, createAccessBatch } from "./access-pattern.js";
export { BFS_EDGE_BYTES, BFS_LEVEL_BYTES, BFS_OFFSET_BYTES, BfsPattern, type BfsParams } from "./bfs.js";
export type { PatternContext, PatternDefinition, RandomSource } from "./pattern-definition.js";
export { RandomPattern, type RandomParams } from "./random.js";
export { type AdviseParams, type PrefetchParams, type RangeAdvice, RangeActionPattern, isRangeAction } from "./range-action.js";
export { formatSize, parseSize } from "./size.js";
export { StencilPattern, type StencilParams } from "./stencil.js";
export { StridedPattern, type StridedParams } from "./strided.js";
export { StreamingPattern, type StreamingParams } from "./streaming.js";
export { TRACE_ADDRESS_LIMIT, type Trace, TraceParseError, TracePattern, type TraceRule, formatTrace, parseTrace } from "./trace.js";
export {
  PATTERN_KINDS,
  PATTERNS,
  type PatternKind,
  type PhaseTarget,
  WORKLOAD_KINDS,
  type Workload,
  type WorkloadPhase,
  type WorkloadSpec,
  createPattern,
  createWorkload,
  validatePattern,
  validateWorkload,
} from "./workload.js";
export { type ParamIssue, WorkloadParamError } from "./workload-param-error.js";
export { type NumberRule, ParamReader } from "./param-reader.js";
