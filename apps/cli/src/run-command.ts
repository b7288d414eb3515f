/** `hmmsim run [spec]`: load the spec, apply the overrides, simulate, print the summary (table or JSON). */
import type { CliIo } from "./cli-io.js";
import { EXIT_OK } from "./cli-error.js";
import { ProgressBar } from "./progress-bar.js";
import { formatSummary, formatTime, simulate } from "@hmmsim/machine";
import { loadSpecSource, readOverrides } from "./spec-source.js";

/** The options cac parses for `run` (camelCased; `--no-progress` sets progress to false). */
export interface RunOptions {
  json?: boolean;
  seed?: unknown;
  workload?: unknown;
  size?: unknown;
  trace?: unknown;
  plugin?: unknown;
  progress?: boolean;
}

export async function runCommand(specArg: string | undefined, opts: RunOptions, io: CliIo): Promise<number> {
  const overrides = readOverrides(opts, io.cwd);
  const source = await loadSpecSource(specArg, overrides, io.cwd);
  if (!source.spec.workload) io.stderr.write(`hmmsim run: note: ${source.file} has no workload, so nothing runs on the machine (give one with --workload/--size or --trace)\n`);
  const bar = new ProgressBar(io.stderr, opts.progress !== false && opts.json !== true && io.stderr.isTTY === true, `hmmsim ${source.spec.name}`);
  try {
    const summary = await simulate({
      spec: source.spec,
      plugins: source.plugins,
      source: { preset: source.preset, file: source.file },
      onProgress: (done, total, nowPs) => bar.update(done, total, formatTime(nowPs) + " simulated"),
    });
    bar.finish();
    io.stdout.write(opts.json === true ? JSON.stringify(summary, null, 2) + "\n" : formatSummary(summary));
    return EXIT_OK;
  } finally {
    bar.finish();
  }
}
