export { TaskCostLedger } from "./cost-ledger.js";
export {
  COST_KINDS,
  CPU_FAULT,
  type CostKind,
  CpuFaultModel,
  DEVICE_FAULT,
  DMA,
  DeviceFaultModel,
  PAGE_COPY,
  PAGE_SIZE,
  PAGE_ZERO,
  PTE_UPDATE,
  PageCopyModel,
  PageZeroModel,
  PteUpdateModel,
  TLB_SHOOTDOWN,
  TlbShootdownModel,
  bytesToPs,
  defaultCostSpec,
  resolveCostSpec,
} from "./cost-model.js";
export { COST_MODEL_PLUGIN_NAME, CostModelPlugin, DefaultCostModel, LinkDmaModel } from "./cost-model-plugin.js";
export { type CreateMachineOptions, MachineCompositionError, createMachine, defaultPlugins, validateMachineSpec } from "./create-machine.js";
export {
  type AccessBuffer,
  type AccessSource,
  type DeviceDriver,
  type DeviceDriverCounters,
  DeviceDriverRegistry,
  type DeviceKernelResult,
  type DeviceStreamResult,
  type MemAdvice,
} from "./device-driver.js";
export { type PartialSpec, PluginRegistry } from "./plugin-registry.js";
export { type DevicePolicies, type PolicyNames, type ResolvedPolicy, formatPolicy, resolveDevicePolicies } from "./device-policies.js";
export { createHooksRegistry } from "./hooks-registry.js";
export {
  type CoherentInterconnect,
  InterconnectError,
  LINK_DIRECTIONS,
  type LinkContext,
  type LinkDirection,
  type LinkDirectionStats,
  type LinkParams,
  type LinkSharing,
  type LinkTransferRecord,
  type PeerInterconnect,
  checkTransferArgs,
  isCoherentInterconnect,
  isPeerInterconnect,
} from "./interconnect.js";
export { CORE_COST_KINDS, type CoreCostKind, type MachineKernel, createMachineKernel, wireKernel } from "./kernel-wiring.js";
export { DuplexLink, LinkChannel, PeerLink } from "./link-channel.js";
export { PgmapOwner, PgmapOwnerGroups } from "./pgmap-owners.js";
export type { DependencyContainer } from "tsyringe";
export { MapLinkRegistry } from "./link-registry.js";
export { Machine, MachineError, type MachineHooks, type MachineParts, type MachineRunOptions, type RunResult } from "./machine.js";
export {
  COMMON_LINK_FIELDS,
  type CpuSpec,
  type DeviceKind,
  type DeviceMemoryType,
  type DeviceSpec,
  type LinkKind,
  type LinkSpec,
  SpecError,
  type SpecIssue,
  formatPath,
  parseMachineSpec,
} from "./machine-spec.js";
export { SPEC_LIMITS } from "./spec-limits.js";
export { parseSpecText } from "./spec-text.js";
export {
  REQUESTED_STOPS,
  type RunLimitFailure,
  type RunStop,
  SimulationStoppedError,
  type StopReason,
  isRunLimitFailure,
  stopReasonOf,
} from "./run-stop.js";
export {
  type BuiltinPluginKind,
  type ComponentRef,
  type DisposableComponent,
  type MachinePlugin,
  NAMED_PLUGIN_KINDS,
  type NamedPluginKind,
  PLUGIN_KINDS,
  type PluginKind,
  type PluginModule,
  type PluginModuleExport,
} from "./plugin.js";
export { type MachineStats, type PageTotals, STATS_PLUGIN_NAME, StatsCollector, StatsPlugin, getMachineStats } from "./stats-plugin.js";
export {
  CostLedger,
  CostModel,
  CostSpec,
  CpuFaultCost,
  DeviceDrivers,
  DeviceFaultCost,
  DmaCost,
  Engine,
  Interconnect,
  InterconnectFactory,
  Kernel,
  LinkRegistry,
  MachineComponent,
  MachineSpec,
  PageCopyCost,
  PgmapOwners,
  PageZeroCost,
  PteUpdateCost,
  TlbShootdownCost,
  TraceHooks,
} from "./tokens.js";
export {
  type DeviceFaultBatchEvent,
  type DmaTransferEvent,
  type EvictionEvent,
  type InvalidateEvent,
  MachineTrace,
  type MachineTraceHooks,
  type MigrateEvent,
  type PageFaultEvent,
} from "./trace-points.js";
export { formatDuration, formatSize, parseBandwidth, parseDuration, parseFrequency, parseSize } from "./units.js";
export { MACHINE_VERSION, packageVersion } from "./version.js";
export {
  type LinkDirectionSummary,
  type RunSummary,
  type SummaryExtras,
  THRASH_THRESHOLDS,
  buildSummary,
  formatBandwidth,
  formatBytes,
  formatSummary,
  formatTime,
} from "./run-summary.js";
export { CPU_ACCESS_BYTES, type PhaseSummary, USER_MIN_ADDR, WORKLOAD_BASE, type WorkloadRun, type WorkloadRunOptions, spawnWorkload, startWorkload } from "./run-workload.js";
export { PROGRESS_EVERY_EVENTS, type SimulateOptions, SimulateOptionError, prepareWorkload, simulate } from "./simulate.js";
export { type LoadPluginsOptions, type LoadedPlugin, PluginLoadError, loadPluginModule, loadPlugins } from "./load-plugins.js";
