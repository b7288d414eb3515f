import "reflect-metadata";
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
  type MachineSpec,
  SpecError,
  type SpecIssue,
  formatPath,
  isCoherentLinkSpec,
  parseMachineSpec,
} from "./machine-spec.js";
export { formatDuration, formatSize, parseBandwidth, parseDuration, parseFrequency, parseSize } from "./units.js";
