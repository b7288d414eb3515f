/**
 * `hmmsim run [spec]`: load the spec, apply the overrides, simulate, print the summary (table or JSON).
 *
 * A run that stops at its time limit (--max-simulated-time, the spec's maxSimulatedTime) prints its partial summary
 * (its `stopped` says why) and exits 0. A run that stops at a limit of the machine or the engine (virtual time past
 * 2^53 ps, memory exhausted, a device making no forward progress: SimulationStoppedError) prints its partial
 * summary on stdout, the reason on stderr (no stack) and exits 1.
 */
import type { CliIo } from "./cli-io.js";
import { EXIT_FAILURE, EXIT_OK } from "./cli-error.js";
import { ProgressBar } from "./progress-bar.js";
import { type RunSummary, SimulationStoppedError, formatSummary, formatTime, simulate } from "@hmmsim/machine";
import { loadSpecSource, readOverrides } from "./spec-source.js";

/** The options cac parses for `run` (camelCased; `--no-progress` sets progress to false). */
export interface RunOptions {
  json?: boolean;
  seed?: unknown;
  workload?: unknown;
  size?: unknown;
  trace?: unknown;
  plugin?: unknown;
  maxSimulatedTime?: unknown;
  policy?: unknown;
  policySpec?: unknown;
  progress?: boolean;
}

export async function runCommand(specArg: string | undefined, opts: RunOptions, io: CliIo): Promise<number> {
  const overrides = readOverrides(opts, io.cwd);
  const source = await loadSpecSource(specArg, overrides, io.cwd);
  if (!source.spec.workload) io.stderr.write(`hmmsim run: note: ${source.file} has no workload, so nothing runs on the machine (give one with --workload/--size or --trace)\n`);
  const bar = new ProgressBar(io.stderr, opts.progress !== false && opts.json !== true && io.stderr.isTTY === true, `hmmsim ${source.spec.name}`);
  const print = (summary: RunSummary) => io.stdout.write(opts.json === true ? JSON.stringify(summary, null, 2) + "\n" : formatSummary(summary));
  const t0 = Date.now();
  try {
    let summary: RunSummary;
    try {
      summary = await simulate({
        spec: source.spec,
        plugins: source.plugins,
        source: { preset: source.preset, file: source.file },
        ...(overrides.maxSimulatedTime !== undefined ? { maxSimulatedPs: overrides.maxSimulatedTime } : {}),
        ...(io.maxWallMs !== undefined ? { interrupt: wallClockLimit(io.maxWallMs) } : {}),
        ...(bar.enabled ? { onProgress: (done: number, total: number | undefined, nowPs: number) => bar.update(done, total, progressLabel(done, total, nowPs, Date.now() - t0)) } : {}),
      });
    } catch (e) {
      if (!(e instanceof SimulationStoppedError)) throw e;
      bar.finish();
      print(e.summary);
      io.stderr.write(`hmmsim run: ${e.message}\n`);
      return EXIT_FAILURE;
    }
    bar.finish();
    print(summary);
    if (summary.stopped) io.stderr.write(`hmmsim run: note: the run stopped early (${summary.stopped.reason}): ${summary.stopped.message}; the summary covers what ran\n`);
    return EXIT_OK;
  } finally {
    bar.finish();
  }
}

/**
 * The progress bar's label: simulated time so far, how fast it advances (simulated time per wall-clock second) and,
 * when the total is known, the wall-clock time left at this pace: `12.3 ms simulated at 45 µs/s, 3.4 h left`. A thrashing
 * run shows at once: the simulated time grows, the accesses do not, the time left is hours.
 */
export function progressLabel(done: number, total: number | undefined, nowPs: number, wallMs: number): string {
  let label = `${formatTime(nowPs)} simulated`;
  if (wallMs >= 200) {
    label += ` at ${formatTime(Math.round((nowPs * 1000) / wallMs))}/s`;
    if (total !== undefined && total > 0 && done > 0 && done < total) label += `, ${formatWall((wallMs * (total - done)) / done)} left`;
  }
  return label;
}

/** SimulateOptions.interrupt for CliIo.maxWallMs: stop once `ms` of wall-clock time have passed. */
function wallClockLimit(ms: number): () => string | null {
  const deadline = Date.now() + ms;
  return () => (Date.now() > deadline ? `stopped after ${ms} ms of wall-clock time (the embedder's limit)` : null);
}

/** "45 s", "12 min", "3.4 h". */
function formatWall(ms: number): string {
  const s = ms / 1000;
  if (s < 90) return `${Math.ceil(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
