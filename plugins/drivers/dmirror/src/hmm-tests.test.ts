// The hmm-tests.c port under vitest: every TEST_F × variant, run exactly as the TAP runner runs it (fresh
// machine, fixture setup, body, teardown, process exit, invariant + leak checks). Skips carry the kernel's own
// SKIP reason. Known failures (gaps in other packages, see README) are asserted to fail the way they do today,
// so a fix shows up as a failing expectation here, never as a silent pass.
import { describe, expect, it } from "vitest";
import { HMM_TESTS, KERNEL_TEST_NAMES } from "./hmm-tests.js";
import { runSelftest, runSelftests, selftestInstances } from "./run-selftests.js";

/** Tests that fail today, by kselftest name, with the failure message they fail with and why (README). */
export const KNOWN_FAILURES: ReadonlyMap<string, { message: RegExp; why: string }> = new Map([
  ...["hmm_device_private", "hmm_device_coherent"].map(
    (v) =>
      [
        `hmm.${v}.migrate_file_private`,
        {
          message: /Expected mirror\[1\] \(0\) == \(1\)/,
          why: "@hmmsim/migrate rmapWalk places an anon folio at index << PAGE_SHIFT, ignoring vm_pgoff: COW pages of a MAP_PRIVATE file VMA are never found, so their migration entries are not removed",
        },
      ] as const,
  ),
  [
    "hmm.hmm_device_private.migrate_anon_huge_fault",
    { message: /Expected m\[0\] \(34\) == \(38\)/, why: "@hmmsim/migrate has no THP migration (SELECT_COMPOUND has no effect): the device page is 4 KiB, not a device-private PMD" },
  ],
  ...["hmm_device_private", "hmm_device_coherent"].flatMap((v) => [
    [`hmm.${v}.migrate_remap_fault`, { message: /Expected mremap\(\) \(-1\) != \(-1\)/, why: "@hmmsim/core has no mremap" }] as const,
    [
      `hmm.${v}.migrate_anon_huge_err`,
      { message: /Expected value \(-2\) == \(0\)/, why: "@hmmsim/migrate has no THP migration: FAIL_ALLOC skips one 4 KiB page (-ENOENT) instead of falling back from a THP" },
    ] as const,
    [
      `hmm.${v}.migrate_anon_huge_zero_err`,
      { message: /Expected value \(-2\) == \(0\)/, why: "@hmmsim/migrate has no compound holes: FAIL_ALLOC skips one 4 KiB hole (-ENOENT)" },
    ] as const,
  ]),
]);

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
    const r = runSelftests({ filter: /open_close|anon_write_hugetlbfs$/ });
    expect(r.lines.slice(0, 2)).toEqual(["TAP version 13", "1..4"]);
    expect(r.lines).toContain("ok 1 hmm.hmm_device_private.open_close");
    expect(r.lines).toContain("ok 2 hmm.hmm_device_private.anon_write_hugetlbfs # SKIP Not enough huge pages");
    expect(r.lines.at(-1)).toBe("# Totals: pass:2 fail:0 xfail:0 xpass:0 skip:2 error:0");
    expect(r.totals).toEqual({ pass: 2, fail: 0, xfail: 0, xpass: 0, skip: 2, error: 0 });
  });

  it("reports a failing test as `not ok` and counts it", () => {
    const r = runSelftests({ filter: "hmm_device_private.migrate_remap_fault" });
    expect(r.lines).toContain("not ok 1 hmm.hmm_device_private.migrate_remap_fault");
    expect(r.totals.fail).toBe(1);
  });
});

describe("hmm-tests.c port", () => {
  for (const inst of selftestInstances()) {
    const known = KNOWN_FAILURES.get(inst.name);
    const timeout = inst.def.timeout * 1000;
    if (known !== undefined) {
      it(`${inst.name} (known failure: ${known.why})`, () => {
        const r = runSelftest(inst);
        expect(r.outcome).toBe("fail");
        expect(r.messages[0]).toMatch(known.message);
      }, timeout);
      continue;
    }
    it(inst.name, (ctx) => {
      const r = runSelftest(inst);
      if (r.outcome === "skip") {
        ctx.skip(r.reason);
        return;
      }
      expect(r.outcome, r.messages.join("\n")).toBe("pass");
    }, timeout);
  }
});
