/** Errors main() turns into a message on stderr and an exit code. */

/** Exit codes: 0 success, 1 the run/self-test failed or its input (spec, trace) is bad, 2 bad command line. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A failure to report in one message (no stack): bad spec file, missing file, self-test failures. Exit 1. */
export class CliError extends Error {
  override readonly name: string = "CliError";
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
  ) {
    super(message);
  }
}

/** A bad command line (unknown option, bad option value, too many arguments). Exit 2, with a hint to --help. */
export class CliUsageError extends CliError {
  override readonly name: string = "CliUsageError";
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message, EXIT_USAGE);
  }
}
