import "reflect-metadata";
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
export { type CreateMachineOptions, MachineCompositionError, createMachine, defaultPlugins } from "./create-machine.js";
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
  checkTransferArgs,
  isCoherentInterconnect,
} from "./interconnect.js";
export { CORE_COST_KINDS, type CoreCostKind, type MachineKernel, createMachineKernel, wireKernel } from "./kernel-wiring.js";
export { DuplexLink, LinkChannel } from "./link-channel.js";
export type { DependencyContainer } from "tsyringe";
export { MapLinkRegistry } from "./link-registry.js";
export { Machine, MachineError, type MachineHooks, type MachineParts, type RunResult } from "./machine.js";
export {
  COHERENT_LINK_KINDS,
  type CpuSpec,
  DEVICE_KINDS,
  type DeviceKind,
  type DeviceMemoryType,
  type DeviceSpec,
  LINK_KINDS,
  type LinkKind,
  type LinkSpec,
  SpecError,
  type SpecIssue,
  formatPath,
  isCoherentLinkSpec,
  parseMachineSpec,
} from "./machine-spec.js";
export type { MachinePlugin } from "./plugin.js";
export { type MachineStats, type PageTotals, STATS_PLUGIN_NAME, StatsCollector, StatsPlugin, getMachineStats } from "./stats-plugin.js";
export {
  CostLedger,
  CostModel,
  CostSpec,
  CpuFaultCost,
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
  PageZeroCost,
  PteUpdateCost,
  TlbShootdownCost,
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
