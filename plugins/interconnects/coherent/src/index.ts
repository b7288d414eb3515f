export { CoherentLink, type CoherentLinkParams, buildCoherentLink, coherentLinkParams, nvlinkPeerLinkParams } from "./coherent-link.js";
export { COHERENT_LINK_FIELDS, coherentLinkSpecIssues } from "./link-spec.js";
export { COHERENT_VERSION, CoherentPlugin, PLUGIN_NAME } from "./plugin.js";
export {
  COHERENT_LINK_KINDS,
  COHERENT_PRESETS,
  CUSTOM_COHERENT_DEFAULTS,
  CUSTOM_COHERENT_LINK_KIND,
  type CoherentPreset,
  type CoherentPresetKind,
  type CoherentSpec,
  NVLINK_PEER_PRESETS,
  type NvlinkPeerKind,
  type NvlinkPeerPreset,
  defaultSpec,
  isNvlinkPeerKind,
} from "./spec.js";
