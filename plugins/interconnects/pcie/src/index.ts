export { PCIE_LINK_FIELDS, pcieLinkSpecIssues } from "./link-spec.js";
export { PcieLink, pcieLinkParams } from "./pcie-link.js";
export { PCIE_VERSION, PLUGIN_NAME, PciePlugin } from "./plugin.js";
export { CUSTOM_LINK_KIND, PCIE_LINK_KINDS, PCIE_PRESETS, type PcieGen, type PciePreset, type PciePresetKind, type PcieSpec, defaultSpec } from "./spec.js";
