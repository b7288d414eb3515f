/**
 * Where the CLI writes: stdout (results: the summary table, JSON, TAP) and stderr (messages, errors, the
 * progress bar). main() takes them as injectable writers so tests capture output without patching `process`.
 */
import { statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";

export interface CliWriter {
  write(text: string): void;
  /** True if the writer is a terminal (the progress bar is drawn only on a TTY stderr). */
  readonly isTTY?: boolean;
  /** Terminal width in columns, when known. */
  readonly columns?: number;
}

export interface CliIo {
  stdout: CliWriter;
  stderr: CliWriter;
  /** Directory relative spec and trace paths are resolved against (default: process.cwd()). */
  cwd: string;
  /**
   * Embedding and tests: stop any run after this much wall-clock time, ms, with its partial summary (`stopped.reason`
   * "interrupted"; where it stops depends on the host). Not set by the command line.
   */
  maxWallMs?: number;
}

/**
 * The directory the user ran the command from, for their relative paths (`npm start -- ./my.yaml`). `npm start`
 * runs the CLI through turbo, as apps/cli's own `start` script: its cwd is apps/cli and the nested npm resets
 * INIT_CWD to it, so the invocation directory turbo passes (TURBO_INVOCATION_DIR) comes first, then npm's
 * INIT_CWD (`npx hmmsim`, other npm scripts), then the process's cwd. A variable that is not an existing absolute
 * directory is ignored.
 */
export function userCwd(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): string {
  for (const dir of [env.TURBO_INVOCATION_DIR, env.INIT_CWD]) {
    if (!dir || !isAbsolute(dir)) continue;
    try {
      if (statSync(dir).isDirectory()) return dir;
    } catch {
      // not there any more: try the next
    }
  }
  return cwd;
}

/** The process's own stdout/stderr (what bin/hmmsim.js uses); relative paths resolve against userCwd(). */
export function processIo(): CliIo {
  const wrap = (s: NodeJS.WriteStream): CliWriter => ({
    write: (t) => void s.write(t),
    get isTTY() {
      return s.isTTY === true;
    },
    get columns() {
      return s.columns;
    },
  });
  return { stdout: wrap(process.stdout), stderr: wrap(process.stderr), cwd: userCwd() };
}

/** A writer that keeps everything written (tests, embedding). */
export class BufferWriter implements CliWriter {
  readonly chunks: string[] = [];
  constructor(
    readonly isTTY = false,
    readonly columns = 100,
  ) {}
  write(text: string): void {
    this.chunks.push(text);
  }
  get text(): string {
    return this.chunks.join("");
  }
}

/** An io whose stdout/stderr are BufferWriters. */
export function bufferIo(opts: { cwd?: string; stderrIsTTY?: boolean } = {}): CliIo & { stdout: BufferWriter; stderr: BufferWriter } {
  return { stdout: new BufferWriter(), stderr: new BufferWriter(opts.stderrIsTTY ?? false), cwd: resolve(opts.cwd ?? process.cwd()) };
}
