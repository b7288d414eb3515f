export { CoherentLink, type CoherentLinkParams, coherentLinkParams } from "./coherent-link.js";
export { CoherentPlugin, PLUGIN_NAME } from "./plugin.js";
export { COHERENT_PRESETS, type CoherentPreset, type CoherentSpec, defaultSpec } from "./spec.js";
