export {
  PRESETS_DIR,
  type PresetName,
  type PresetOptions,
  PresetSpecError,
  UnknownPresetError,
  isPresetName,
  loadPreset,
  presetNames,
  presetPath,
  readPresetText,
} from "./presets.js";
