export { PCIE_LINK_FIELDS, pcieLinkSpecIssues } from "./link-spec.js";
export { PcieLink, buildPcieLink, pcieLinkParams } from "./pcie-link.js";
export { PCIE_VERSION, PLUGIN_NAME, PciePlugin } from "./plugin.js";
export { CUSTOM_LINK_KIND, PCIE_LINK_KINDS, PCIE_P2P_LINK_KIND, PCIE_P2P_PRESET, PCIE_PRESETS, type PcieGen, type PciePreset, type PciePresetKind, type PcieSpec, defaultSpec } from "./spec.js";
