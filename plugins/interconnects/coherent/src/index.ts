export { CoherentLink, type CoherentLinkParams, coherentLinkParams } from "./coherent-link.js";
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
  defaultSpec,
} from "./spec.js";
