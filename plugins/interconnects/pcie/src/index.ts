export { PcieLink, pcieLinkParams } from "./pcie-link.js";
export { PLUGIN_NAME, PciePlugin } from "./plugin.js";
export { PCIE_PRESETS, type PcieGen, type PciePreset, type PcieSpec, defaultSpec } from "./spec.js";
