// @hmmsim/driver-gpu public surface.
export { GpuDriver, GPU_MAX_VA_SPACES, type GpuDriverOptions, type GpuDriverStats, type GpuPeer, type GpuPteInfo } from "./gpu-driver.js";
export type { AccessList, GpuKernelResult, RunKernelOptions } from "./gpu-kernel.js";
export { KernelRun } from "./gpu-kernel.js";
export { GPU_SPEC_BOUNDS, cyclesToPs, defaultSpec, gpuDriverSpecIssues, resolveGpuSpec } from "./gpu-spec.js";
export { GpuDriverSpec } from "./tokens.js";
export { DRIVER_NAME, GpuDevices, GpuDriverPlugin, PLUGIN_NAME } from "./plugin.js";
export { DeviceTlb, tlbTag2m, tlbTag4k } from "./device-tlb.js";
export { CHUNK_PAGES, RootChunks } from "./root-chunks.js";
export { GPU_PTE_PEER, GPU_PTE_REMOTE, GPU_PTE_VALID, GPU_PTE_WRITE, VA_BLOCK_SIZE, VaBlocks } from "./va-block.js";
export { FaultBatch, FaultBuffer } from "./fault-buffer.js";
export { GpuFaultError, GpuForwardProgressError, GpuInputError, GpuPolicyError, GpuSpecError } from "./errors.js";
export { PAGE_REQ_READ, PAGE_REQ_SNAPSHOT, PAGE_REQ_WRITE, ServiceBlockContext, type VaSpace } from "./service-context.js";
export { VaPolicies, memAdviceIssues, type VaPolicyRange } from "./va-policy.js";
// The driver's parts along UVM's seams (GpuDriver's members): exported as types, for reading and for tests.
export { ACCESS_COUNTER_BATCH_COUNT, type AccessCounters } from "./access-counters.js";
export {
  UVM_PERF_FAULT_MAX_THROTTLE_PER_SERVICE,
  UVM_PERF_FAULT_REPLAY_POLICY_BATCH,
  UVM_PERF_FAULT_REPLAY_POLICY_BATCH_FLUSH,
  type ReplayableFaultService,
} from "./fault-service.js";
export type { HmmCallbacks } from "./hmm-callbacks.js";
export type { BlockMapper } from "./block-map.js";
export type { DeviceMigration, MigrateReason } from "./migrate-to-device.js";
export type { FaultInfo, PageAdvice } from "./policy-queries.js";
export type { GpuMemoryManager } from "./memory-manager.js";
