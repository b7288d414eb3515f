/**
 * The ready machine presets: spec files in ../presets/<name>.yaml (one directory up from both src/ and dist/,
 * so the same code finds them when run from source by vitest and compiled by node). Each file is a machine spec
 * (@hmmsim/machine's schema) with a default workload and seed; its comments cite their sources by key [Sx]
 * (docs/references.md).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type MachineSpec, SpecError, type SpecIssue, parseMachineSpec } from "@hmmsim/machine";

/** Every preset, in the order the CLI lists them. */
export const presetNames = Object.freeze(["a100-pcie4", "h100-pcie5", "gh200-c2c", "fpga-u250-pcie3", "fpga-u55c-pcie4", "fpga-cxl-coherent"] as const);
export type PresetName = (typeof presetNames)[number];

/** Absolute path of the directory holding the preset files. */
export const PRESETS_DIR: string = fileURLToPath(new URL("../presets/", import.meta.url));

export interface PresetOptions {
  /** Read the preset file from this directory instead of PRESETS_DIR (tests, local copies). */
  dir?: string;
}

/** A preset name that is not one of presetNames; `validNames` lists the valid ones. */
export class UnknownPresetError extends Error {
  override readonly name = "UnknownPresetError";
  readonly validNames: readonly string[] = presetNames;
  constructor(readonly preset: string) {
    super(`unknown preset ${JSON.stringify(preset)}: expected one of ${presetNames.join(", ")}`);
  }
}

/** A preset file that does not validate: SpecError's issues (each with its path) plus the file it came from. */
export class PresetSpecError extends SpecError {
  constructor(
    readonly preset: string,
    readonly file: string,
    issues: readonly SpecIssue[],
  ) {
    super(issues);
    this.message = `preset ${preset} (${file}): ${this.message}`;
  }
}

export function isPresetName(name: string): name is PresetName {
  return (presetNames as readonly string[]).includes(name);
}

/** The file of preset `name` (`<dir>/<name>.yaml`); throws UnknownPresetError for an unknown name. */
export function presetPath(name: string, opts: PresetOptions = {}): string {
  if (!isPresetName(name)) throw new UnknownPresetError(name);
  return join(opts.dir ?? PRESETS_DIR, `${name}.yaml`);
}

/** The text (YAML, with its source comments) of preset `name`. */
export function readPresetText(name: string, opts: PresetOptions = {}): string {
  return readFileSync(presetPath(name, opts), "utf8");
}

/**
 * The parsed, validated spec of preset `name` (normalized: bytes, ps, B/s, Hz). Throws UnknownPresetError for an
 * unknown name and PresetSpecError (a SpecError: every issue with its path) if the file does not validate.
 */
export function loadPreset(name: string, opts: PresetOptions = {}): MachineSpec {
  const file = presetPath(name, opts);
  const text = readFileSync(file, "utf8");
  try {
    return parseMachineSpec(text);
  } catch (e) {
    if (e instanceof SpecError) throw new PresetSpecError(name, file, e.issues);
    throw e;
  }
}
