export { main } from "./main.js";
export { BufferWriter, type CliIo, type CliWriter, bufferIo, processIo } from "./cli-io.js";
export { CliError, CliUsageError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from "./cli-error.js";
export { type LinkDirectionSummary, type RunSummary, buildSummary, formatSummary } from "./run-summary.js";
export { type SimulateOptions, machinePlugins, prepareWorkload, simulate } from "./simulate.js";
export { CLI_WORKLOAD_KINDS, DEFAULT_PRESET, type SpecOverrides, type SpecSource, SpecFileError, loadSpecSource, readOverrides } from "./spec-source.js";
