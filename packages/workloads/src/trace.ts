import { AccessPattern, type AccessBatch } from "./access-pattern.js";
import type { PatternDefinition } from "./pattern-definition.js";

/**
 * Trace format (text, one access per line):
 *
 *   # comment (a line whose first non-blank character is '#'; also after the fields: `R 0x1000 # hot`)
 *   R 0x1000          read of byte address 0x1000, no compute time
 *   W 4096 12.5       write of address 4096 after 12.5 ns of compute
 *
 * Fields are separated by blanks. Field 1 is `R` or `W` (case-sensitive). Field 2 is the address: `0x…` hex or
 * a decimal integer, below 2^47 (TRACE_ADDRESS_LIMIT: x86-64's 47-bit user address space, TASK_SIZE; a user
 * program's address is never above it). Optional field 3 is the compute time before the access in ns (a
 * non-negative decimal number; converted to integer ps, rounded to nearest). Blank lines are ignored. A trace
 * needs at least one access.
 */

/** Every trace address lies below this: 2^47, the top of x86-64's user address space (the kernel's TASK_SIZE). */
export const TRACE_ADDRESS_LIMIT = 2 ** 47;

/** The rule a bad trace broke: a line's op, address, compute time or field count, or the whole trace is empty. */
export type TraceRule = "op" | "address" | "compute" | "fields" | "empty";

/**
 * `TraceParseError: line 12: expected R or W, got "X"`. `line` is 1-based; 0 for a problem of the whole trace
 * (`t.trace: empty trace: no accesses`). `source` (a file name) prefixes the message.
 */
export class TraceParseError extends Error {
  override readonly name = "TraceParseError";
  constructor(
    readonly line: number,
    readonly rule: TraceRule,
    readonly detail: string,
    readonly source?: string,
  ) {
    super(line > 0 ? `${source ? source + ":" : ""}line ${line}: ${detail}` : `${source ? source + ": " : ""}${detail}`);
  }
}

/** A parsed trace as a struct of typed arrays (length = number of accesses). */
export interface Trace {
  readonly length: number;
  readonly addr: Float64Array;
  readonly write: Uint8Array;
  readonly computePs: Float64Array;
}

const DEC_RE = /^\d+$/;
const HEX_RE = /^0[xX][0-9a-fA-F]+$/;
const NUM_RE = /^\d+(\.\d+)?([eE][+-]?\d+)?$/;

/** Parses a trace; throws TraceParseError naming the first bad line. `source` (a file name) prefixes messages. */
export function parseTrace(text: string, source?: string): Trace {
  let cap = 1024;
  let addr = new Float64Array(cap);
  let write = new Uint8Array(cap);
  let computePs = new Float64Array(cap);
  let n = 0;
  let lineNo = 0;
  let pos = 0;
  const len = text.length;
  while (pos <= len) {
    let end = text.indexOf("\n", pos);
    if (end < 0) end = len;
    lineNo++;
    let line = text.slice(pos, end);
    pos = end + 1;
    const hash = line.indexOf("#");
    if (hash >= 0) line = line.slice(0, hash);
    line = line.trim();
    if (line.length === 0) {
      if (end === len) break;
      continue;
    }
    const f = line.split(/\s+/);
    const fail = (rule: TraceRule, detail: string): never => {
      throw new TraceParseError(lineNo, rule, detail, source);
    };
    const op = f[0]!;
    if (op !== "R" && op !== "W") fail("op", `expected R or W, got ${JSON.stringify(op)}`);
    if (f.length < 2) fail("address", "expected an address after " + op);
    if (f.length > 3) fail("fields", `expected at most 3 fields (op, address, compute_ns), got ${f.length}`);
    const a = f[1]!;
    let value: number;
    if (HEX_RE.test(a)) value = parseInt(a.slice(2), 16);
    else if (DEC_RE.test(a)) value = Number(a);
    else value = fail("address", `expected a hex (0x…) or decimal address, got ${JSON.stringify(a)}`);
    if (!Number.isSafeInteger(value)) fail("address", `address ${a} exceeds 2^53 - 1`);
    if (value >= TRACE_ADDRESS_LIMIT) fail("address", `address ${a} is not a user address: it must be below 2^47 (0x800000000000), the top of the 47-bit user address space`);
    let ps = 0;
    if (f.length === 3) {
      const c = f[2]!;
      if (!NUM_RE.test(c) || !Number.isFinite(Number(c))) {
        fail("compute", `expected a non-negative compute time in ns, got ${JSON.stringify(c)}`);
      }
      ps = Math.round(Number(c) * 1000);
    }
    if (n === cap) {
      cap *= 2;
      addr = grow(addr, cap);
      write = grow(write, cap);
      computePs = grow(computePs, cap);
    }
    addr[n] = value;
    write[n] = op === "W" ? 1 : 0;
    computePs[n] = ps;
    n++;
    if (end === len) break;
  }
  if (n === 0) throw new TraceParseError(0, "empty", `empty trace: no accesses (${lineNo} line(s), all blank or comments)`, source);
  return { length: n, addr: addr.subarray(0, n), write: write.subarray(0, n), computePs: computePs.subarray(0, n) };
}

function grow<T extends Float64Array | Uint8Array>(a: T, cap: number): T {
  const b = new (a.constructor as new (n: number) => T)(cap);
  b.set(a);
  return b;
}

/** Formats accesses in the trace format (inverse of parseTrace; compute printed in ns, omitted when 0). */
export function formatTrace(accesses: Iterable<{ addr: number; write: boolean; computePs: number }>): string {
  const out: string[] = [];
  for (const a of accesses) {
    const base = `${a.write ? "W" : "R"} 0x${a.addr.toString(16)}`;
    out.push(a.computePs ? `${base} ${a.computePs / 1000}` : base);
  }
  return out.length ? out.join("\n") + "\n" : "";
}

/** Replays a parsed trace. `base` is 0: trace addresses are used as they are. */
export class TracePattern extends AccessPattern {
  readonly kind = "trace";
  readonly base: number;
  readonly workingSetBytes: number;
  readonly expectedLength: number;
  private i = 0;

  constructor(readonly trace: Trace) {
    super();
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < trace.length; i++) {
      const a = trace.addr[i]!;
      if (a < lo) lo = a;
      if (a > hi) hi = a;
    }
    this.base = trace.length ? lo : 0;
    this.workingSetBytes = trace.length ? hi - lo + 1 : 0;
    this.expectedLength = trace.length;
  }

  fill(b: AccessBatch): number {
    const n = Math.min(b.capacity, this.trace.length - this.i);
    b.addr.set(this.trace.addr.subarray(this.i, this.i + n));
    b.write.set(this.trace.write.subarray(this.i, this.i + n));
    b.computePs.set(this.trace.computePs.subarray(this.i, this.i + n));
    this.i += n;
    return n;
  }

  reset(): void {
    this.i = 0;
  }
}

const NO_TRACE: Trace = { length: 0, addr: new Float64Array(0), write: new Uint8Array(0), computePs: new Float64Array(0) };

export const trace: PatternDefinition = {
  kind: "trace",
  read(r, ctx) {
    const hasText = r.has("text");
    const hasFile = r.has("file");
    if (hasText === hasFile) {
      r.raw("text");
      r.raw("file");
      r.issue(hasText ? "file" : "text", "give exactly one of text (the trace) or file (a path)");
      return () => new TracePattern(NO_TRACE); // never built: the issue above stops createPattern first
    }
    if (hasText) {
      const text = r.raw("text");
      if (typeof text !== "string") r.issue("text", "expected a string");
      return () => new TracePattern(parseTrace(String(text)));
    }
    const file = r.string("file");
    return () => {
      if (!ctx.readText) throw new Error(`trace.file: no readText given to read ${JSON.stringify(file)}`);
      return new TracePattern(parseTrace(ctx.readText(file), file));
    };
  },
};
