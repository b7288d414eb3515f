/**
 * A one-line progress bar on stderr, for long runs. It is driven by simulated progress (the workload's completed
 * accesses, reported by the run), never by wall-clock time, and redraws only when the whole percent changes, so a run draws at most ~100 frames. The bar is drawn only when enabled (stderr is a TTY and the
 * output is not --json); a disabled bar ignores every call.
 */
import type { CliWriter } from "./cli-io.js";

export class ProgressBar {
  #lastPercent = -1;
  #drawn = false;
  frames = 0;

  constructor(
    private readonly out: CliWriter,
    readonly enabled: boolean,
    private readonly title = "simulating",
  ) {}

  /** `done` of `total` units (accesses); `label` (e.g. the simulated time so far) is shown after the bar. */
  update(done: number, total: number, label = ""): void {
    if (!this.enabled || !(total > 0)) return;
    const frac = Math.min(1, Math.max(0, done / total));
    const percent = Math.floor(frac * 100);
    if (percent === this.#lastPercent) return;
    this.#lastPercent = percent;
    const cols = Math.max(40, Math.min(this.out.columns || 80, 120)); // 0 or undefined: width unknown
    const width = Math.max(10, Math.min(40, cols - this.title.length - label.length - 12));
    const full = Math.round(frac * width);
    this.out.write(`\r\x1b[K${this.title} [${"#".repeat(full)}${".".repeat(width - full)}] ${String(percent).padStart(3)}%${label ? " " + label : ""}`);
    this.#drawn = true;
    this.frames++;
  }

  /** Clears the bar's line (before the summary is printed). */
  finish(): void {
    if (this.#drawn) this.out.write("\r\x1b[K");
    this.#drawn = false;
  }
}
