import { describe, expect, it } from "vitest";
import { bufferIo } from "./cli-io.js";
import { main } from "./main.js";
import { selftestExitCode } from "./selftest-command.js";

async function cli(argv: string[]) {
  const io = bufferIo();
  const code = await main(argv, io);
  return { code, out: io.stdout.text, err: io.stderr.text };
}

describe("hmmsim selftest", () => {
  it("--filter: runs the matching hmm-tests.c tests, prints the kselftest TAP report and returns 0 when they pass", async () => {
    const r = await cli(["selftest", "--filter", "open_close"]);
    expect(r.err).toBe("");
    const lines = r.out.trimEnd().split("\n");
    expect(lines[0]).toBe("TAP version 13");
    expect(lines[1]).toBe("1..2"); // open_close in the device-private and the device-coherent variant of fixture hmm
    expect(lines).toContain("ok 1 hmm.hmm_device_private.open_close");
    expect(lines).toContain("ok 2 hmm.hmm_device_coherent.open_close");
    expect(lines.at(-1)).toBe("# Totals: pass:2 fail:0 xfail:0 xpass:0 skip:0 error:0");
    expect(r.code).toBe(0);
  });

  it("a fixture's tests: one TAP line per test, totals that add up, exit 0 exactly when no test failed", async () => {
    const r = await cli(["selftest", "--filter", "hmm2."]);
    const lines = r.out.trimEnd().split("\n");
    expect(lines[0]).toBe("TAP version 13");
    const n = Number(/^1\.\.(\d+)$/.exec(lines[1]!)![1]);
    expect(n).toBeGreaterThanOrEqual(6);
    const results = lines.filter((l) => /^(not )?ok \d+ /.test(l));
    expect(results).toHaveLength(n);
    expect(results.every((l) => / hmm2\.hmm2_device_(private|coherent)\./.test(l))).toBe(true);
    const failed = results.filter((l) => l.startsWith("not ok")).length;
    const m = /^# Totals: pass:(\d+) fail:(\d+) xfail:0 xpass:0 skip:(\d+) error:0$/.exec(lines.at(-1)!)!;
    expect(Number(m[1]) + Number(m[2]) + Number(m[3])).toBe(n);
    expect(Number(m[2])).toBe(failed);
    expect(r.code).toBe(failed === 0 ? 0 : 1);
  });

  it("exit status follows kselftest: non-zero on any fail, xpass or error; skips and xfails pass", () => {
    const t = { pass: 3, fail: 0, xfail: 0, xpass: 0, skip: 0, error: 0 };
    expect(selftestExitCode(t)).toBe(0);
    expect(selftestExitCode({ ...t, skip: 2, xfail: 1 })).toBe(0);
    expect(selftestExitCode({ ...t, fail: 1 })).toBe(1);
    expect(selftestExitCode({ ...t, xpass: 1 })).toBe(1);
    expect(selftestExitCode({ ...t, error: 1 })).toBe(1);
  });

  it("a filter that matches nothing is an error, exit 1; a bad --seed is a usage error, exit 2", async () => {
    const r = await cli(["selftest", "--filter", "no_such_test"]);
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err).toContain('no test name contains "no_such_test"');
    const s = await cli(["selftest", "--seed", "x"]);
    expect(s.code).toBe(2);
    expect(s.err).toMatch(/--seed: expected a non-negative integer/);
  });
});
