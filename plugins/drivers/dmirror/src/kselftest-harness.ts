/**
 * tools/testing/selftests/kselftest_harness.h, the parts hmm-tests.c uses: FIXTURE / FIXTURE_VARIANT /
 * TEST_F / TEST_F_TIMEOUT registration, ASSERT_* (abort the test) and EXPECT_* (record and continue), SKIP(),
 * XFAIL_ADD (an expected failure of one fixture.variant.test: a failure is reported `ok ... # XFAIL`, a pass
 * `ok ... # XPASS`; both count as passed), and the kselftest TAP output (`ok N fixture.variant.test`,
 * `# SKIP reason`, `# Totals: ...`).
 *
 * A test body is written once and runs under two runners: vitest (src/hmm-tests.test.ts) and the TAP runner
 * (runSelftests). Failures throw `TestAbort`; SKIP throws `TestSkip`.
 */

/** ASSERT_* failed: the test stops (the harness marks it failed). */
export class TestAbort extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TestAbort";
  }
}

/** SKIP(return, reason). */
export class TestSkip extends Error {
  constructor(readonly reason: string) {
    super(`SKIP: ${reason}`);
    this.name = "TestSkip";
  }
}

function show(v: unknown): string {
  if (typeof v === "number") return Number.isInteger(v) && Math.abs(v) > 0xffff ? `${v} (0x${v.toString(16)})` : String(v);
  if (typeof v === "bigint") return `0x${v.toString(16)}`;
  return String(v);
}

/** struct __test_metadata: the running test's assertions and log. */
export class TestMetadata {
  /** EXPECT_* failures (the test continues but fails). */
  readonly failures: string[] = [];
  /** Diagnostic lines (kselftest prints them as `# ...`). */
  readonly log: string[] = [];
  /** Number of assertions evaluated (a test that asserts nothing is suspicious). */
  checks = 0;

  constructor(readonly name: string) {}

  private fail(kind: "ASSERT" | "EXPECT", what: string): void {
    const msg = `${this.name}: ${kind}: ${what}`;
    if (kind === "ASSERT") throw new TestAbort(msg);
    this.failures.push(msg);
  }

  private cmp(kind: "ASSERT" | "EXPECT", ok: boolean, a: unknown, op: string, b: unknown, label?: string): void {
    this.checks++;
    if (!ok) this.fail(kind, `Expected ${label ?? "value"} (${show(a)}) ${op} (${show(b)})`);
  }

  ASSERT_EQ<T>(a: T, b: T, label?: string): void {
    if (a !== b) this.cmp("ASSERT", false, a, "==", b, label);
    else this.checks++;
  }
  ASSERT_NE<T>(a: T, b: T, label?: string): void {
    this.cmp("ASSERT", a !== b, a, "!=", b, label);
  }
  ASSERT_GE(a: number, b: number, label?: string): void {
    this.cmp("ASSERT", a >= b, a, ">=", b, label);
  }
  ASSERT_TRUE(v: unknown, label?: string): void {
    this.cmp("ASSERT", Boolean(v), v, "is", "true", label);
  }
  ASSERT_FALSE(v: unknown, label?: string): void {
    this.cmp("ASSERT", !v, v, "is", "false", label);
  }
  EXPECT_EQ<T>(a: T, b: T, label?: string): void {
    this.cmp("EXPECT", a === b, a, "==", b, label);
  }
  EXPECT_NE<T>(a: T, b: T, label?: string): void {
    this.cmp("EXPECT", a !== b, a, "!=", b, label);
  }
  /** SKIP(return, reason). */
  SKIP(reason: string): never {
    throw new TestSkip(reason);
  }
  /** TH_LOG(). */
  TH_LOG(line: string): void {
    this.log.push(line);
  }
}

/** A fixture variant (FIXTURE_VARIANT_ADD). */
export interface FixtureVariant<V> {
  name: string;
  variant: V;
}

/** One registered TEST_F. */
export interface TestF<Self, V> {
  fixture: string;
  name: string;
  /** TEST_F_TIMEOUT's timeout in seconds (kselftest's default is 30). */
  timeout: number;
  body: (self: Self, variant: V, t: TestMetadata) => void;
}

/** kselftest_harness.h's default per-test timeout (TEST_TIMEOUT_DEFAULT), seconds. */
export const TEST_TIMEOUT_DEFAULT = 30;

/** Outcome of one test instance, as the harness reports it (KSFT_PASS / FAIL / SKIP / XFAIL / XPASS). */
export type TestOutcome = "pass" | "fail" | "skip" | "xfail" | "xpass";

/**
 * XFAIL_ADD(fixture, variant, test): the harness expects this instance to fail (__run_test turns its exit code into
 * KSFT_XFAIL, or KSFT_XPASS if it passed). hmmsim carries the reason with it and prints it as the TAP diagnostic
 * (the kernel prints the test's own reason, or "unknown").
 */
export interface TestXfail {
  fixture: string;
  variant: string;
  test: string;
  reason: string;
}

export interface TestResult {
  /** `fixture.variant.test`, as kselftest names it. */
  name: string;
  fixture: string;
  variant: string;
  test: string;
  outcome: TestOutcome;
  /** The skip reason, or the failure messages. */
  reason?: string;
  messages: string[];
}

/** Counts of the kselftest `# Totals:` line. */
export interface Totals {
  pass: number;
  fail: number;
  xfail: number;
  xpass: number;
  skip: number;
  error: number;
}

/**
 * The kselftest TAP report: `TAP version 13`, `1..N`, per test its diagnostics as `# ` lines then `ok N name`,
 * `not ok N name` or `ok N name # SKIP reason`, and the totals.
 */
export function formatTap(results: readonly TestResult[], fixtures: number): { lines: string[]; totals: Totals } {
  const lines: string[] = ["TAP version 13", `1..${results.length}`, `# Starting ${results.length} tests from ${fixtures} test cases.`];
  const totals: Totals = { pass: 0, fail: 0, xfail: 0, xpass: 0, skip: 0, error: 0 };
  results.forEach((r, i) => {
    const n = i + 1;
    lines.push(`#  RUN           ${r.name} ...`);
    for (const m of r.messages) for (const l of m.split("\n")) lines.push(`# ${l}`);
    if (r.outcome === "pass") {
      totals.pass++;
      lines.push(`#            OK  ${r.name}`, `ok ${n} ${r.name}`);
    } else if (r.outcome === "skip") {
      totals.skip++;
      lines.push(`#      SKIP      ${r.reason ?? ""}`, `#            OK  ${r.name}`, `ok ${n} ${r.name} # SKIP ${r.reason ?? ""}`);
    } else if (r.outcome === "xfail") {
      totals.xfail++;
      lines.push(`#          FAIL  ${r.name}`, `ok ${n} ${r.name} # XFAIL ${r.reason ?? "unknown"}`);
    } else if (r.outcome === "xpass") {
      totals.xpass++;
      lines.push(`#            OK  ${r.name}`, `ok ${n} ${r.name} # XPASS ${r.reason ?? "unknown"}`);
    } else {
      totals.fail++;
      lines.push(`#          FAIL  ${r.name}`, `not ok ${n} ${r.name}`);
    }
  });
  // __test_passed(): every exit code but KSFT_FAIL (XFAIL and XPASS included).
  const passed = totals.pass + totals.skip + totals.xfail + totals.xpass;
  lines.push(
    totals.fail === 0 ? `# PASSED: ${passed} / ${results.length} tests passed.` : `# FAILED: ${passed} / ${results.length} tests passed.`,
  );
  lines.push(
    `# Totals: pass:${totals.pass} fail:${totals.fail} xfail:${totals.xfail} xpass:${totals.xpass} skip:${totals.skip} error:${totals.error}`,
  );
  return { lines, totals };
}
