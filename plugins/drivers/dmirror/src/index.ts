// @hmmsim/driver-dmirror public surface: the kernel's lib/test_hmm.c driver (dmirror), the same driver as a machine
// driver plugin (DmirrorDriverPlugin), and the port of tools/testing/selftests/mm/hmm-tests.c with its TAP runner
// (the `hmmsim selftest` command).
export * from "./test-hmm-uapi.js";
export {
  DMIRROR_NDEVICES,
  DEVMEM_CHUNK_SIZE,
  DEVMEM_CHUNK_PAGES,
  DmirrorChunk,
  DmirrorDevice,
  ZoneDeviceData,
  type DmirrorDeviceOptions,
  dmirrorDevmemFree,
  type DmirrorModuleContext,
} from "./dmirror-device.js";
export {
  DPT_XA_TAG_ATOMIC,
  DPT_XA_TAG_WRITE,
  DMIRROR_RANGE_FAULT_MAX_RETRIES,
  Dmirror,
  DmirrorBounce,
  xaPointerTag,
  xaTagPointer,
  xaUntagPointer,
  type DmirrorStats,
} from "./dmirror.js";
export {
  backingPage,
  dmirrorDevmemFault,
  dmirrorDevmemFaultAllocAndCopy,
  dmirrorDevmemFolioSplit,
  dmirrorDeviceEvictChunk,
  dmirrorMigrateAllocAndCopy,
  dmirrorMigrateFinalizeAndMap,
  dmirrorMigrateToDevice,
  dmirrorMigrateToSystem,
} from "./dmirror-migrate.js";
export { DmirrorFile, HmmDmirrorModule, hmmDmirrorInit, hmmDmirrorInitDevices, type DmirrorDeviceDef, type HmmDmirrorParams } from "./test-hmm.js";
export { DMIRROR_BUSY_RETRIES, DMIRROR_BUSY_RETRY_PS, DmirrorDeviceError, DmirrorDriver, type DmirrorDriverParts } from "./dmirror-driver.js";
export {
  DMIRROR_DRIVER_NAME,
  DMIRROR_VERSION,
  DmirrorDevices,
  DmirrorDriverPlugin,
  DmirrorWithoutKernel,
  PLUGIN_NAME,
  type DmirrorDriverSpec,
} from "./plugin.js";
export {
  TestAbort,
  TestMetadata,
  TestSkip,
  TEST_TIMEOUT_DEFAULT,
  formatTap,
  type FixtureVariant,
  type TestF,
  type TestOutcome,
  type TestResult,
  type Totals,
} from "./kselftest-harness.js";
export {
  MAP_FAILED,
  MAP_HUGETLB,
  MADV_COLLAPSE,
  PM_PRESENT,
  PM_SWAP,
  ProcessKilled,
  TestProcess,
  WEXITSTATUS,
  WIFEXITED,
  WIFSIGNALED,
  WTERMSIG,
  type OpenFile,
  type SelftestSystem,
  type TestThread,
} from "./test-process.js";
export {
  HMM2_VARIANTS,
  HMM_TESTS,
  HMM_VARIANTS,
  KERNEL_TEST_NAMES,
  hmmDmirrorCmd,
  type AnyHmmTest,
  type Hmm2Self,
  type Hmm2Test,
  type Hmm2Variant,
  type HmmBuffer,
  type HmmSelf,
  type HmmTest,
  type HmmVariant,
} from "./hmm-tests.js";
export {
  createSelftestSystem,
  postTestChecks,
  runSelftest,
  runSelftests,
  selftestInstances,
  type SelftestInstance,
  type SelftestOptions,
  type SelftestReport,
} from "./run-selftests.js";
export type { GupTest, GupTestFile, GupTestStats } from "./gup-test.js";
