import { describe, expect, it } from "vitest";
import { TraceParseError, TracePattern, formatTrace, parseTrace } from "./trace.js";
import { createPattern, createWorkload } from "./workload.js";

describe("trace format", () => {
  it("parses reads, writes, hex and decimal addresses, compute times and comments", () => {
    const t = parseTrace("# header\n\nR 0x1000\nW 4096 12.5  # hot\n  R 0xFFFF 0\n");
    expect(t.length).toBe(3);
    expect([...t.addr]).toEqual([0x1000, 4096, 0xffff]);
    expect([...t.write]).toEqual([0, 1, 0]);
    expect([...t.computePs]).toEqual([0, 12500, 0]);
  });

  it("names the line number and the rule of a bad line", () => {
    const text = "R 0x10\n".repeat(11) + "X 0x10\n";
    let err: unknown;
    try {
      parseTrace(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TraceParseError);
    expect((err as TraceParseError).message).toBe('line 12: expected R or W, got "X"');
    expect((err as TraceParseError).line).toBe(12);
    expect((err as TraceParseError).rule).toBe("op");
    expect(String(err)).toBe('TraceParseError: line 12: expected R or W, got "X"');
  });

  it.each([
    ["R", "address", /line 1: expected an address after R/],
    ["W 0xZZ", "address", /line 1: expected a hex \(0x…\) or decimal address, got "0xZZ"/],
    ["R 12 -3", "compute", /line 1: expected a non-negative compute time in ns, got "-3"/],
    ["R 12 3 4", "fields", /line 1: expected at most 3 fields/],
    ["R 9007199254740993", "address", /exceeds 2\^53 - 1/],
  ])("%j breaks rule %s", (line, rule, msg) => {
    expect(() => parseTrace(line)).toThrowError(msg);
    try {
      parseTrace(line);
    } catch (e) {
      expect((e as TraceParseError).rule).toBe(rule);
    }
  });

  it("accepts every user address, a low one and one just below 2^47 in one trace; rejects 2^47 and above naming the line (issue #15)", () => {
    const t = parseTrace("R 0x10000000\nW 0x7ffffffff000\nR 0x400000\nW 140737488355327\n", "mixed.trace");
    expect([...t.addr]).toEqual([0x10000000, 0x7ffffffff000, 0x400000, 2 ** 47 - 1]);
    const p = new TracePattern(t);
    expect([p.base, p.workingSetBytes]).toEqual([0x400000, 2 ** 47 - 0x400000]);
    for (const [text, line] of [["R 0x1000\nW 0x800000000000\n", 2], ["R 0x1000\n# x\nR 140737488355328\n", 3], ["W 0xffffffffffff", 1]] as const) {
      let err: TraceParseError | undefined;
      try {
        parseTrace(text, "high.trace");
      } catch (e) {
        err = e as TraceParseError;
      }
      expect(err).toBeInstanceOf(TraceParseError);
      expect([err!.line, err!.rule]).toEqual([line, "address"]);
      expect(err!.message).toMatch(new RegExp(`^high\\.trace:line ${line}: address \\S+ is not a user address: it must be below 2\\^47 \\(0x800000000000\\)`));
    }
  });

  it("an empty trace (nothing, blank lines or comments only) is a TraceParseError naming the file", () => {
    for (const text of ["", "\n\n", "# only a comment\n   \n# another\n"]) {
      let err: TraceParseError | undefined;
      try {
        parseTrace(text, "empty.trace");
      } catch (e) {
        err = e as TraceParseError;
      }
      expect(err).toBeInstanceOf(TraceParseError);
      expect([err!.line, err!.rule]).toEqual([0, "empty"]);
      expect(err!.message).toMatch(/^empty\.trace: empty trace: no accesses \(\d+ line\(s\), all blank or comments\)$/);
    }
    expect(() => createWorkload({ kind: "trace", params: { file: "e.trace" } }, { readText: () => "# nothing\n" })).toThrowError(
      "e.trace: empty trace: no accesses (2 line(s), all blank or comments)",
    );
    expect(() => parseTrace("")).toThrowError(/^empty trace: no accesses/);
  });

  it("round-trips through formatTrace and replays as a pattern", () => {
    const src = [...createPattern("random", { bytes: "1MiB", count: 100, seed: 1, writeFraction: 0.5, computeNs: 2 })];
    const replay = new TracePattern(parseTrace(formatTrace(src)));
    expect([...replay]).toEqual(src);
    replay.reset();
    expect([...replay]).toHaveLength(100);
  });

  it("a trace workload from a file names the file in errors", () => {
    const readText = () => "R 0x0\nR nope\n";
    expect(() => createWorkload({ kind: "trace", params: { file: "t.trace" } }, { readText })).toThrowError(
      't.trace:line 2: expected a hex (0x…) or decimal address, got "nope"',
    );
  });
});
