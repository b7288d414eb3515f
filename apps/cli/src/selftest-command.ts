/**
 * `hmmsim selftest`: the port of the kernel's tools/testing/selftests/mm/hmm-tests.c against the dmirror driver
 * (@hmmsim/driver-dmirror, lib/test_hmm.c), printed as kselftest's TAP report. Exit 1 if any test failed
 * (kselftest's ksft_finished(): fail, xpass or error).
 */
import { type Totals, runSelftests } from "@hmmsim/driver-dmirror";
import { CliUsageError, EXIT_FAILURE, EXIT_OK } from "./cli-error.js";
import type { CliIo } from "./cli-io.js";

export interface SelftestCommandOptions {
  /** Run only the tests whose `fixture.variant.test` name contains this text. */
  filter?: unknown;
  seed?: unknown;
}

export async function selftestCommand(io: CliIo, opts: SelftestCommandOptions = {}): Promise<number> {
  let filter: string | undefined;
  if (opts.filter !== undefined) {
    if (typeof opts.filter !== "string" || opts.filter === "") throw new CliUsageError("--filter: expected a text to find in the test names", "selftest");
    filter = opts.filter;
  }
  let seed: number | undefined;
  if (opts.seed !== undefined) {
    const n = Number(opts.seed);
    if (opts.seed === true || opts.seed === "" || !Number.isSafeInteger(n) || n < 0) throw new CliUsageError(`--seed: expected a non-negative integer, got ${JSON.stringify(opts.seed)}`, "selftest");
    seed = n;
  }
  const report = runSelftests({ ...(filter !== undefined ? { filter: (name: string) => name.includes(filter) } : {}), ...(seed !== undefined ? { seed } : {}) });
  if (report.results.length === 0) {
    io.stderr.write(`hmmsim selftest: no test name contains ${JSON.stringify(filter)}\n`);
    return EXIT_FAILURE;
  }
  io.stdout.write(report.lines.join("\n") + "\n");
  return selftestExitCode(report.totals);
}

/** kselftest's verdict (ksft_finished): failure if any test failed, passed unexpectedly or errored. */
export function selftestExitCode(t: Totals): number {
  return t.fail + t.xpass + t.error > 0 ? EXIT_FAILURE : EXIT_OK;
}
