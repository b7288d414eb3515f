/**
 * A one-line progress bar on stderr, for long runs. It is driven by simulated progress (the workload's completed
 * accesses, reported by the run), never by wall-clock time. Two forms:
 *   - known total (streaming, strided, random, stencil, trace):  `hmmsim a100 [######......]  42% 12.3 ms simulated`
 *     redrawn only when the whole percent changes (at most ~100 frames);
 *   - unknown total (a BFS phase: its length depends on the graph): a bouncing block and a count,
 *     `hmmsim x [   ===      ]     123,456 accesses 12.3 ms simulated`, redrawn when the count has grown by 2%
 *     (at least 4,096 accesses), so a long run draws a few hundred frames.
 * Every field has a fixed width (the bar, the percent or count, the label), so the line does not jitter as the
 * figures grow. The bar is drawn only when enabled (stderr is a TTY and the output is not --json); a disabled bar
 * ignores every call. `renderProgress` is the pure rendering function.
 *
 * The label carries the simulated time and its rate ("12.3 ms simulated at 45 µs/s, 3.4 h left": run-command.ts), which
 * change while the figure does not (a thrashing device: the simulated time grows, the accesses do not), so a frame
 * is also redrawn when the figure has not changed for REDRAW_MS of wall-clock time.
 */
import type { CliWriter } from "./cli-io.js";

/** Width the label ("123 ms simulated at 45.6 µs/s, 12 min left") is padded to. */
export const LABEL_WIDTH = 44;
/** A frame whose figure did not change is redrawn after this much wall-clock time, ms (its label moves on). */
export const REDRAW_MS = 250;
/** Width the access count of the unknown-total form is padded to ("99,999,999,999" fits). */
export const COUNT_WIDTH = 14;
const SPINNER = "===";

export interface ProgressFrame {
  title: string;
  /** Units (accesses) done. */
  done: number;
  /** Units in all, or undefined when the run cannot know it in advance. */
  total: number | undefined;
  /** Shown after the bar, padded to LABEL_WIDTH (longer labels are cut). */
  label: string;
  /** Terminal width (0 or undefined: 80); the line is kept within it, between 40 and 120 columns. */
  columns?: number;
  /** Frame number: moves the bouncing block of the unknown-total form. */
  tick?: number;
}

/** The line for one frame (without the leading "\r\x1b[K"). Same width for every frame of a run. */
export function renderProgress(f: ProgressFrame): string {
  const cols = Math.max(40, Math.min(f.columns || 80, 120));
  const label = f.label.length > LABEL_WIDTH ? f.label.slice(0, LABEL_WIDTH) : f.label.padEnd(LABEL_WIDTH);
  const known = f.total !== undefined && f.total > 0;
  const figure = known ? `${String(Math.floor(frac(f.done, f.total!) * 100)).padStart(3)}%` : `${f.done.toLocaleString("en-US").padStart(COUNT_WIDTH)} accesses`;
  // title + " [" + bar + "] " + figure + " " + label, within cols - 1 (no wrap on the last column).
  const fixed = f.title.length + 4 + figure.length + 1 + LABEL_WIDTH;
  const width = Math.max(10, Math.min(40, cols - 1 - fixed));
  let bar: string;
  if (known) {
    const full = Math.round(frac(f.done, f.total!) * width);
    bar = "#".repeat(full) + ".".repeat(width - full);
  } else {
    const span = width - SPINNER.length; // the block bounces between 0 and span
    const t = (f.tick ?? 0) % (2 * span);
    const at = t <= span ? t : 2 * span - t;
    bar = " ".repeat(at) + SPINNER + " ".repeat(span - at);
  }
  return `${f.title} [${bar}] ${figure} ${label}`;
}

function frac(done: number, total: number): number {
  return Math.min(1, Math.max(0, done / total));
}

export class ProgressBar {
  #lastPercent = -1;
  #nextCount = 0;
  #drawn = false;
  frames = 0;

  #lastDrawMs = 0;

  constructor(
    private readonly out: CliWriter,
    readonly enabled: boolean,
    private readonly title = "simulating",
    /** Wall clock, ms (tests inject one). */
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * `done` of `total` units (accesses; total undefined when unknown in advance); `label` (e.g. the simulated time
   * so far) is shown after the bar.
   */
  update(done: number, total: number | undefined, label = ""): void {
    if (!this.enabled) return;
    const now = this.clock();
    const stale = this.#drawn && now - this.#lastDrawMs >= REDRAW_MS;
    if (total !== undefined && total > 0) {
      const percent = Math.floor(frac(done, total) * 100);
      if (percent === this.#lastPercent && !stale) return;
      this.#lastPercent = percent;
    } else {
      if (done < this.#nextCount && !stale) return;
      if (done >= this.#nextCount) this.#nextCount = done + Math.max(4096, Math.ceil(done * 0.02));
    }
    this.#lastDrawMs = now;
    this.out.write(`\r\x1b[K${renderProgress({ title: this.title, done, total, label, columns: this.out.columns, tick: this.frames })}`);
    this.#drawn = true;
    this.frames++;
  }

  /** Clears the bar's line (before the summary is printed). */
  finish(): void {
    if (this.#drawn) this.out.write("\r\x1b[K");
    this.#drawn = false;
  }
}
