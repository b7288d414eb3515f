// @hmmsim/engine public surface.
export { PS_PER_NS, PS_PER_US, PS_PER_MS, PS_PER_S, MAX_TIME_PS, addTime, checkDuration, checkTime } from "./time.js";
export {
  EngineError,
  VirtualTimeError,
  VirtualTimeOverflowError,
  DeadlockError,
  LivelockError,
  ForeignAwaitError,
  EngineUsageError,
  EngineOptionError,
  WouldBlockError,
  LockMisuseError,
  type BlockedTask,
} from "./errors.js";
export { Rng } from "./rng.js";
export { EventQueue } from "./event-queue.js";
export {
  Engine,
  Task,
  errorMessage,
  type EngineOptions,
  type PctOptions,
  type SpawnOptions,
  type TaskState,
  type TieBreak,
  type Waitable,
} from "./engine.js";
export { Mutex } from "./mutex.js";
export { RwSemaphore, MAX_READERS_WAKEUP } from "./rw-semaphore.js";
export { WaitQueue } from "./wait-queue.js";
export { Completion } from "./completion.js";
export {
  explore,
  replay,
  runSeed,
  type ExploreOptions,
  type ExploreResult,
  type ExploreFailure,
  type ExploreStrategy,
  type FailureKind,
  type Scenario,
} from "./explore.js";
export {
  measure,
  measureAsync,
  measureInterleaved,
  measureInterleavedAsync,
  type InterleavedAsyncCase,
  type InterleavedCase,
  type InterleavedMeasurement,
  type InterleavedOptions,
  type MeasureOptions,
  type Measurement,
} from "./measure.js";
export {
  propertyConfig,
  propertyParameters,
  propertyFailure,
  withPropertyReport,
  exploreConfig,
  exploreFailure,
  checkExplore,
  replayCommand,
  derivedSeed,
  gitHead,
  seedHash,
  type Env,
  type PropertyConfig,
  type ExploreConfig,
  type DerivedSeed,
  type TestLocation,
  type SoakRecord,
} from "./seed-config.js";
