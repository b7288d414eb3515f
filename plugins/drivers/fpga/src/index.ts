// @hmmsim/driver-fpga public surface.
export {
  FPGA_MAX_VA_SPACES,
  FpgaDriver,
  type FpgaBuffer,
  type FpgaDriverOptions,
  type FpgaDriverStats,
  type FpgaMappingInfo,
  type RunJobOptions,
} from "./fpga-driver.js";
export { JobRun, XLATE_HOST, XLATE_LOCAL, XLATE_MISS, type AccessList, type FpgaJobResult, type FpgaStreamResult } from "./fpga-job.js";
export { FPGA_JOB_MODES, FPGA_SPEC_BOUNDS, cyclesToPs, defaultSpec, fpgaDriverSpecIssues, resolveFpgaSpec, type FpgaJobMode, type FpgaNumericSpecField } from "./fpga-spec.js";
export { FpgaDriverSpec } from "./tokens.js";
export { DRIVER_NAME, FpgaDevices, FpgaDriverPlugin, PLUGIN_NAME, streamStallRows } from "./plugin.js";
export { FpgaTlb, tlbTag2m, tlbTag4k } from "./fpga-tlb.js";
export { CHUNK_PAGES, CardMemory } from "./card-memory.js";
export { BLOCK_SIZE, DeviceMappings, FPGA_MAP_HOST, FPGA_MAP_VALID, FPGA_MAP_WRITE } from "./device-mappings.js";
export { FpgaFaultError, FpgaForwardProgressError, FpgaInputError, FpgaPolicyError, FpgaSpecError } from "./errors.js";
