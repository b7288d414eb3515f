/** `hmmsim selftest`: the dmirror port of the kernel's hmm-tests.c, printed as a kselftest TAP report. */
import * as dmirror from "@hmmsim/driver-dmirror";
import { CliError } from "./cli-error.js";
import type { CliIo } from "./cli-io.js";

export async function selftestCommand(_io: CliIo): Promise<number> {
  if (!("runSelftests" in dmirror)) {
    throw new CliError("the dmirror self-test port (@hmmsim/driver-dmirror) is not available in this build: it exports no runSelftests yet. No test was run.");
  }
  throw new CliError("selftest: runSelftests is exported but the CLI is not wired to it yet. No test was run.");
}
