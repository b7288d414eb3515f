// The hmm-tests.c port under vitest: every TEST_F × variant, run exactly as the TAP runner runs it (fresh
// machine, fixture setup, body, teardown, process exit, invariant + leak checks). Skips carry the kernel's own
// SKIP reason. The one XFAIL (a failure of the kernel's own test, README) must fail exactly as the kernel's does.
import { describe, expect, it } from "vitest";
import { ANON_TEARDOWN_CHUNK_NS, ANON_TEARDOWN_MAX_SLEEP_NS, HMM_TESTS, HMM_XFAILS, KERNEL_TEST_NAMES, anonTeardownPoint, anonTeardownRaces } from "./hmm-tests.js";
import { runSelftest, runSelftests, selftestInstances } from "./run-selftests.js";

/**
 * The instances the port marks XFAIL (HMM_XFAILS: the kernel's own test fails there too), with the failure they
 * must fail with: any other outcome, an XPASS included, fails here.
 */
const XFAIL_MESSAGES: ReadonlyMap<string, RegExp> = new Map([["hmm.hmm_device_coherent.migrate_anon_huge_err", /Expected value \(-12\) == \(0\)/]]);

describe("hmm-tests.c port: the list of tests", () => {
  it("ports every TEST_F of the kernel file, in file order, per fixture", () => {
    expect(HMM_TESTS.filter((t) => t.fixture === "hmm").map((t) => t.name)).toEqual(KERNEL_TEST_NAMES.hmm);
    expect(HMM_TESTS.filter((t) => t.fixture === "hmm2").map((t) => t.name)).toEqual(KERNEL_TEST_NAMES.hmm2);
    // 37 TEST_F + 1 TEST_F_TIMEOUT: 35 in fixture hmm, 3 in fixture hmm2.
    expect(KERNEL_TEST_NAMES.hmm.length).toBe(35);
    expect(KERNEL_TEST_NAMES.hmm2.length).toBe(3);
    expect(HMM_TESTS.find((t) => t.name === "benchmark_thp_migration")!.timeout).toBe(120);
  });

  it("registers 76 instances: every test in both variants of its fixture", () => {
    const insts = selftestInstances();
    expect(insts.length).toBe(2 * 35 + 2 * 3);
    expect(new Set(insts.map((i) => i.name)).size).toBe(insts.length);
    expect(insts[0]!.name).toBe("hmm.hmm_device_private.open_close");
    expect(insts[35]!.name).toBe("hmm.hmm_device_coherent.open_close");
    expect(insts[70]!.name).toBe("hmm2.hmm2_device_private.migrate_mixed");
  });

  it("produces a kselftest TAP report", () => {
    // A machine whose HUGETLB_SETUP_DEFAULT_PAGES gets no huge page: the hugetlbfs test SKIPs as the kernel's does.
    const r = runSelftests({ filter: /open_close|anon_write_hugetlbfs$/, hugetlbSetup: false });
    expect(r.lines.slice(0, 2)).toEqual(["TAP version 13", "1..4"]);
    expect(r.lines).toContain("ok 1 hmm.hmm_device_private.open_close");
    expect(r.lines).toContain("ok 2 hmm.hmm_device_private.anon_write_hugetlbfs # SKIP Not enough huge pages");
    expect(r.lines.at(-1)).toBe("# Totals: pass:2 fail:0 xfail:0 xpass:0 skip:2 error:0");
    expect(r.totals).toEqual({ pass: 2, fail: 0, xfail: 0, xpass: 0, skip: 2, error: 0 });
    // Without CONFIG_GUP_TEST the gup test SKIPs with the kernel's reason.
    const g = runSelftests({ filter: "hmm_device_private.hmm_gup_test", gupTest: false });
    expect(g.lines).toContain("ok 1 hmm.hmm_device_private.hmm_gup_test # SKIP Skipping test, could not find gup_test driver");
    // With the harness's pool (the default) the same test runs and passes.
    expect(runSelftests({ filter: "hmm_device_private.anon_write_hugetlbfs" }).lines).toContain("ok 1 hmm.hmm_device_private.anon_write_hugetlbfs");
  });

  it("reports a failing test as `not ok`, with its reason, and counts it", () => {
    // 4 MiB of RAM: the test's first 2 MiB THP write finds no memory: VM_FAULT_OOM, the OOM killer's SIGKILL.
    const r = runSelftests({ filter: "hmm_device_private.migrate", ramBytes: 4 << 20 });
    const failed = r.results.filter((x) => x.outcome === "fail");
    expect(failed.map((x) => x.name)).toContain("hmm.hmm_device_private.migrate");
    expect(failed.find((x) => x.name === "hmm.hmm_device_private.migrate")!.reason).toMatch(/killed by signal 9: write at 0x[0-9a-f]+: out of memory/);
    const n = r.results.findIndex((x) => x.name === "hmm.hmm_device_private.migrate") + 1;
    expect(r.lines).toContain(`not ok ${n} hmm.hmm_device_private.migrate`);
    expect(r.totals.fail).toBe(failed.length);
    expect(r.lines.at(-1)).toBe(`# Totals: pass:${r.totals.pass} fail:${failed.length} xfail:0 xpass:0 skip:${r.totals.skip} error:0`);
  });

  it("reports an XFAIL instance as `ok ... # XFAIL reason`, counted as passed", () => {
    const r = runSelftests({ filter: /hmm_device_coherent\.migrate_anon_huge_err$/ });
    expect(r.lines).toContain(`ok 1 hmm.hmm_device_coherent.migrate_anon_huge_err # XFAIL ${HMM_XFAILS[0]!.reason}`);
    expect(r.totals).toEqual({ pass: 0, fail: 0, xfail: 1, xpass: 0, skip: 0, error: 0 });
    expect(r.lines).toContain("# PASSED: 1 / 1 tests passed.");
  });
});

describe("hmm-tests.c port", () => {
  for (const inst of selftestInstances()) {
    const timeout = inst.def.timeout * 1000;
    const xfail = XFAIL_MESSAGES.get(inst.name);
    it(xfail === undefined ? inst.name : `${inst.name} (XFAIL: the kernel's test fails here too)`, (ctx) => {
      const r = runSelftest(inst);
      if (xfail !== undefined) {
        expect(r.outcome, r.messages.join("\n")).toBe("xfail");
        expect(r.messages[0]).toMatch(xfail);
        return;
      }
      if (r.outcome === "skip") {
        ctx.skip(r.reason);
        return;
      }
      expect(r.outcome, r.messages.join("\n")).toBe("pass");
    }, timeout);
  }
  it("XFAIL_MESSAGES names exactly the port's XFAIL instances", () => {
    expect([...XFAIL_MESSAGES.keys()]).toEqual(HMM_XFAILS.map((x) => `${x.fixture}.${x.variant}.${x.test}`));
  });
});

describe("anon_teardown: the race varies as the C test's random sleep does", () => {
  it("the thread's sleep (hmm_random() % 32000 ns) picks where the munmap lands; sleeps past the fault loop succeed", () => {
    // 1024 pages = 32 chunks of 32: the fault loop ends at 32 × 500 ns; the last chunk starts at 15,500 ns.
    expect(anonTeardownPoint(0, 32)).toBe(0); // before the READ's first fault chunk
    expect(anonTeardownPoint(1, 32)).toBe(1); // after the first chunk
    expect(anonTeardownPoint(15_500, 32)).toBe(31); // after the 31st: the last chunk then faults an unmapped range
    expect(anonTeardownPoint(15_501, 32)).toBe(32); // once the fault loop is done: the READ succeeds
    expect(anonTeardownPoint(ANON_TEARDOWN_MAX_SLEEP_NS - 1, 32)).toBe(32);
    let success = 0;
    for (let d = 0; d < ANON_TEARDOWN_MAX_SLEEP_NS; d++) if (anonTeardownPoint(d, 32) === 32) success++;
    expect(success).toBe(ANON_TEARDOWN_MAX_SLEEP_NS - 31 * ANON_TEARDOWN_CHUNK_NS - 1); // 16,499 of 32,000: 51.6 %
  });

  it("with the default seed both variants reach the success branch, and its asserts hold", () => {
    anonTeardownRaces.iterations = 0;
    anonTeardownRaces.success = 0;
    const r = runSelftests({ filter: /\.anon_teardown$/ });
    expect(r.totals).toMatchObject({ pass: 2, fail: 0 });
    expect(anonTeardownRaces.iterations).toBe(20); // NTIMES per variant
    // seed 1: 10 of the 20 READs ran with no munmap in the way and checked every word the device read
    expect(anonTeardownRaces.success).toBeGreaterThanOrEqual(2);
    expect(anonTeardownRaces.success).toBeLessThan(20);
  });

  it("over 10 seeds the success branch runs in about half the iterations (51.6 % expected)", () => {
    anonTeardownRaces.iterations = 0;
    anonTeardownRaces.success = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const r = runSelftests({ filter: /hmm_device_private\.anon_teardown$/, seed, checks: false });
      expect(r.totals.fail).toBe(0);
    }
    expect(anonTeardownRaces.iterations).toBe(100);
    const share = anonTeardownRaces.success / anonTeardownRaces.iterations;
    console.log(`anon_teardown: success branch in ${anonTeardownRaces.success} of ${anonTeardownRaces.iterations} iterations`);
    expect(share).toBeGreaterThan(0.35);
    expect(share).toBeLessThan(0.7);
  });
});
