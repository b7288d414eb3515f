export { main } from "./main.js";
export { BufferWriter, type CliIo, type CliWriter, bufferIo, processIo, userCwd } from "./cli-io.js";
export { CliError, CliUsageError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from "./cli-error.js";
export { builtinPlugins } from "./builtin-plugins.js";
export { type SelftestCommandOptions, selftestCommand, selftestExitCode } from "./selftest-command.js";
export { CLI_WORKLOAD_KINDS, DEFAULT_PRESET, type SpecOverrides, type SpecSource, SpecFileError, loadSpecSource, readOverrides } from "./spec-source.js";
