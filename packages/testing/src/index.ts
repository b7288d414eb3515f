// @hmmsim/testing public surface: test machine, invariant checker, content snapshots (dmirror's self-tests use them at run time).
export { createTestMachine, type TestMachine, type TestMachineOptions, type MmapOptions } from "./test-machine.js";
export {
  checkInvariants,
  assertInvariants,
  InvariantViolationError,
  type InvariantOptions,
  type Violation,
} from "./invariants.js";
export { snapshotContents, compareContents, resolveContentPfn, type ContentSnapshot } from "./contents.js";
export { TestDevice, type TestDeviceOptions } from "./test-device.js";
// The property tests' settings live beside the engine's seeded RNG and explorer (they have no other dependency);
// re-exported here, where the tests that use them look.
export {
  propertyConfig,
  propertyParameters,
  withPropertyReport,
  exploreConfig,
  checkExplore,
  type PropertyConfig,
  type ExploreConfig,
} from "@hmmsim/engine";
