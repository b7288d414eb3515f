/**
 * `hmmsim`: the command line (bin/hmmsim.js calls main(process.argv.slice(2)) from dist/). Commands:
 *   run [spec]   simulate a machine (a preset or a spec file) running its workload and print a summary;
 *   selftest     the port of the kernel's hmm-tests.c against the dmirror driver, as a TAP report.
 * Output goes through injectable writers (CliIo); the result is an exit code: 0 ok, 1 failure or bad input
 * (spec, trace), 2 bad command line.
 */
import "reflect-metadata"; // the composition root loads the Reflect polyfill tsyringe needs (libraries do not)
import { cac } from "cac";
import { MachineCompositionError, MachineError, PluginLoadError, SimulateOptionError, SpecError } from "@hmmsim/machine";
import { UnknownPresetError } from "@hmmsim/machines";
import { TraceParseError, WorkloadParamError } from "@hmmsim/workloads";
import { CliError, CliUsageError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from "./cli-error.js";
import { type CliIo, processIo } from "./cli-io.js";
import { VERSION, globalHelp, runHelp, selftestHelp } from "./help-text.js";
import { type RunOptions, runCommand } from "./run-command.js";
import { type SelftestCommandOptions, selftestCommand } from "./selftest-command.js";

const COMMAND_HELP: Record<string, () => string> = { run: runHelp, selftest: selftestHelp };

/** Runs the `hmmsim` command line `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  let command: string | undefined;
  try {
    const cli = cac("hmmsim");
    cli.option("-h, --help", "Show help");
    cli.option("-v, --version", "Show the version");
    let action: (() => Promise<number>) | undefined;
    cli
      .command("run [spec]", "Simulate a machine running a workload")
      .option("--json", "Print the summary as JSON")
      .option("--seed <n>", "Override the spec's seed")
      .option("--workload <kind>", "Replace the workload")
      .option("--size <size>", "Working-set size")
      .option("--trace <file>", "Replay a trace file")
      .option("--plugin <module>", "Load a plugin module (repeatable)")
      .option("--max-simulated-time <duration>", "Stop the run after this much virtual time")
      .option("--policy <names>", "Replace every device's policy (a name or a comma-separated list)")
      .option("--policy-spec <json>", "Replace every device's policySpec (a JSON object)")
      .option("--no-progress", "No progress bar")
      .action((spec: string | undefined, opts: RunOptions) => {
        action = () => runCommand(spec, singleOptions(opts, "run", RUN_FLAGS), io);
      });
    cli
      .command("selftest", "Run the HMM self-tests")
      .option("--filter <text>", "Only tests whose name contains <text>")
      .option("--seed <n>", "Seed of the test machines")
      .action((opts: SelftestCommandOptions) => {
        action = () => selftestCommand(io, singleOptions(opts, "selftest", {}));
      });

    const parsed = cli.parse(["node", "hmmsim", ...joinNegativeValues(argv)], { run: false });
    command = cli.matchedCommandName;
    if (!command) {
      const first = parsed.args[0];
      if (first !== undefined) throw new CliUsageError(`unknown command ${JSON.stringify(first)} (commands: run, selftest)`);
      if (parsed.options.version) {
        io.stdout.write(`hmmsim ${VERSION}\n`);
        return EXIT_OK;
      }
      if (parsed.options.help) {
        io.stdout.write(globalHelp());
        return EXIT_OK;
      }
      io.stderr.write(globalHelp());
      return EXIT_USAGE;
    }
    if (parsed.options.help) {
      io.stdout.write(COMMAND_HELP[command]!());
      return EXIT_OK;
    }
    cli.runMatchedCommand(); // checks unknown options, missing values and extra arguments (CACError), then sets `action`
    return await action!();
  } catch (e) {
    return report(e, io, command);
  }
}

/** The options that take a value (`--seed <n>` …). */
const VALUE_OPTIONS: ReadonlySet<string> = new Set(["--seed", "--workload", "--size", "--trace", "--filter", "--plugin", "--max-simulated-time", "--policy", "--policy-spec"]);

/** `run`'s boolean flags (camelCased) and the options that may be given more than once. */
const RUN_FLAGS: { booleans?: readonly string[]; repeatable?: readonly string[] } = { booleans: ["json", "progress"], repeatable: ["plugin"] };

/**
 * cac (mri) turns an option given twice into an array (`--json --json` → json: [true, true], which is not `true`, so
 * the table was printed). A repeated flag means what it says once (the last one wins: `--json --no-json`); a value
 * option given twice with the same value is that value, with different values a usage error naming it; a
 * repeatable option (--plugin) keeps its list.
 */
export function singleOptions<T extends object>(opts: T, command: string, kinds: { booleans?: readonly string[]; repeatable?: readonly string[] }): T {
  const out: Record<string, unknown> = { ...(opts as Record<string, unknown>) };
  for (const [key, value] of Object.entries(out)) {
    if (!Array.isArray(value) || key === "--" || kinds.repeatable?.includes(key)) continue;
    if (kinds.booleans?.includes(key)) {
      out[key] = value[value.length - 1];
      continue;
    }
    const distinct = [...new Set(value.map((v) => String(v)))];
    const flag = "--" + key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
    if (distinct.length > 1) throw new CliUsageError(`${flag} given ${value.length} times with different values (${distinct.map((v) => JSON.stringify(v)).join(", ")}): give it once`, command);
    out[key] = value[0];
  }
  return out as T;
}

/**
 * cac (mri) reads a value that starts with "-" as another option: `--seed -1` would be "Unknown option -1". A
 * negative number after an option that takes a value is joined to it (`--seed=-1`), so the option's own check
 * reports it (`--seed: expected a non-negative integer …`).
 */
export function joinNegativeValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (VALUE_OPTIONS.has(a) && next !== undefined && /^-(\d|\.\d)/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else {
      out.push(a);
    }
  }
  return out;
}

/** Writes the error on stderr and returns its exit code. */
function report(e: unknown, io: CliIo, command: string | undefined): number {
  const err = (s: string) => io.stderr.write(`hmmsim${command ? " " + command : ""}: ${s}\n`);
  if (e instanceof Error && e.name === "CACError") {
    err(`${e.message.replace(/`/g, "")}\n  run \`hmmsim ${command ? command + " " : ""}--help\` for usage`);
    return EXIT_USAGE;
  }
  if (e instanceof CliUsageError) {
    const cmd = e.command ?? command;
    err(`${e.message}\n  run \`hmmsim ${cmd ? cmd + " " : ""}--help\` for usage`);
    return EXIT_USAGE;
  }
  if (e instanceof CliError) {
    err(e.message);
    return e.exitCode;
  }
  if (
    e instanceof UnknownPresetError ||
    e instanceof SpecError ||
    e instanceof PluginLoadError ||
    e instanceof MachineCompositionError ||
    e instanceof MachineError ||
    e instanceof SimulateOptionError
  ) {
    err(e.message);
    return EXIT_FAILURE;
  }
  if (e instanceof TraceParseError) {
    err(`bad trace: ${e.message}`);
    return EXIT_FAILURE;
  }
  if (e instanceof WorkloadParamError) {
    err(`bad workload: ${e.message}`);
    return EXIT_FAILURE;
  }
  const code = (e as { code?: unknown } | null)?.code;
  if (e instanceof Error && typeof code === "string" && /^E[A-Z]+$/.test(code)) {
    err(e.message); // a file the run needed could not be read (ENOENT, EACCES, ...)
    return EXIT_FAILURE;
  }
  // Anything else is a failure inside the simulation (a driver error, an engine deadlock): show where.
  err(e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e));
  return EXIT_FAILURE;
}
