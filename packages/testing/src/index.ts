// @hmmsim/testing public surface (private package): test machine, invariant checker, content snapshots.
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
export { propertyConfig, DEFAULT_PROPERTY_SEED, type PropertyConfig } from "./property-config.js";
