/**
 * The `hmmsim selftest` runner: kselftest's test_harness_run() for the hmm-tests.c port. Every TEST_F × variant
 * runs as the kernel harness runs it — in a fresh process, fixture setup, body, teardown — here each on a fresh
 * simulated machine with the dmirror module loaded (so one test's device state cannot leak into the next). After
 * the test process exits, the machine is checked: @hmmsim/testing's checkInvariants must be clean, every device
 * page must have been freed through the pgmap's pageFree, and every RAM page must be free again.
 */
import { errnoName, type Kernel } from "@hmmsim/core";
import { Rng } from "@hmmsim/engine";
import { installMigrateDeviceCoherentFolio } from "@hmmsim/migrate";
import { checkInvariants, createTestMachine } from "@hmmsim/testing";
import {
  HMM2_VARIANTS,
  HMM_TESTS,
  HMM_VARIANTS,
  HMM_XFAILS,
  HUGETLB_SETUP_DEFAULT_PAGES,
  hmm2Setup,
  hmm2Teardown,
  hmmSetup,
  hmmTeardown,
  type AnyHmmTest,
  type Hmm2Variant,
  type HmmVariant,
} from "./hmm-tests.js";
import { TestAbort, TestMetadata, TestSkip, formatTap, type TestResult, type Totals } from "./kselftest-harness.js";
import { hmmDmirrorInit, type HmmDmirrorModule } from "./test-hmm.js";
import { ProcessKilled, TestProcess, releaseUnusedFiles, type SelftestSystem } from "./test-process.js";

/** Options of runSelftests / runSelftest. */
export interface SelftestOptions {
  /** Run only the tests whose kselftest name (`fixture.variant.test`) matches. */
  filter?: string | RegExp | ((name: string) => boolean);
  /** Seed of the machine's RNG (thread interleavings of anon_teardown). Default 1. */
  seed?: number;
  /** System RAM of each test machine in bytes (default 1 GiB: benchmark_thp_migration moves 256 MiB). */
  ramBytes?: number;
  /** Load the module with spm_addr_dev0/1 set, creating the coherent devices 2 and 3 (default true). */
  coherent?: boolean;
  /** Run the invariant and leak checks after each test (default true). */
  checks?: boolean;
  /**
   * Run hmm-tests.c's HUGETLB_SETUP_DEFAULT_PAGES(1) on each machine (default true). false: a machine where it
   * gets no huge page (the hugetlb tests then SKIP, as the kernel's do).
   */
  hugetlbSetup?: boolean;
  /** CONFIG_GUP_TEST: /sys/kernel/debug/gup_test exists (default true; false: hmm_gup_test SKIPs). */
  gupTest?: boolean;
  /** Keep page bytes (default true; false = @hmmsim/core's bytes-off mode, content tags only). */
  bytes?: boolean;
}

/** One test instance: a TEST_F in one variant of its fixture. */
export interface SelftestInstance {
  /** kselftest's name: `fixture.variant.test`. */
  name: string;
  fixture: "hmm" | "hmm2";
  variant: string;
  test: string;
  def: AnyHmmTest;
}

/** The report: TAP lines, totals and per-test results. */
export interface SelftestReport {
  lines: string[];
  totals: Totals;
  results: TestResult[];
}

/** Every instance in kselftest's order: fixture hmm (each variant, each test), then hmm2. */
export function selftestInstances(): SelftestInstance[] {
  const out: SelftestInstance[] = [];
  for (const fixture of ["hmm", "hmm2"] as const) {
    const variants = fixture === "hmm" ? HMM_VARIANTS : HMM2_VARIANTS;
    for (const v of variants) {
      for (const def of HMM_TESTS) {
        if (def.fixture !== fixture) continue;
        out.push({ name: `${fixture}.${v.name}.${def.name}`, fixture, variant: v.name, test: def.name, def });
      }
    }
  }
  return out;
}

function matches(filter: SelftestOptions["filter"], name: string): boolean {
  if (filter === undefined) return true;
  if (typeof filter === "string") return name.includes(filter);
  if (filter instanceof RegExp) return filter.test(name);
  return filter(name);
}

/**
 * HUGETLB_SETUP_DEFAULT_PAGES(n) on `kernel`: if fewer than n default huge pages are free, grow vm.nr_hugepages by
 * the difference (the pool may get fewer if RAM is short). Returns the nr_hugepages to restore at the end.
 */
export function hugetlbSetupDefaultPages(kernel: Kernel, n: number): number {
  const pool = kernel.hugetlbPool;
  const saved = pool.nrHugePages;
  if (pool.freeHugePages < n) kernel.setHugetlbPages(saved + (n - pool.freeHugePages));
  return saved;
}

/**
 * A fresh machine for one test: kernel (1 GiB RAM, THP madvise, the harness's hugetlb pool, GUP's
 * migrate_device_coherent_folio installed), the dmirror module, the RNG.
 */
export function createSelftestSystem(opts: SelftestOptions = {}, label = ""): SelftestSystem {
  const seed = opts.seed ?? 1;
  const machine = createTestMachine({ ramBytes: opts.ramBytes ?? 1024 * 1024 * 1024, seed, bytes: opts.bytes ?? true });
  // The test machine's first mm is not used: each test gets its own process.
  machine.mm.exit();
  installMigrateDeviceCoherentFolio(machine.kernel);
  const savedNrHugepages = (opts.hugetlbSetup ?? true) ? hugetlbSetupDefaultPages(machine.kernel, HUGETLB_SETUP_DEFAULT_PAGES) : null;
  const params = (opts.coherent ?? true) ? { spmAddrDev0: 0x100000000, spmAddrDev1: 0x110000000 } : {};
  const module = hmmDmirrorInit(machine.kernel, params);
  return {
    kernel: machine.kernel,
    module,
    rng: new Rng(seed).derive(label),
    procs: new Map(),
    nextPid: 1001,
    liveFiles: new Map(),
    gupTest: opts.gupTest ?? true,
    savedNrHugepages,
  };
}

function describeError(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

/** The leak and invariant checks after a test's process has exited. */
export function postTestChecks(kernel: Kernel, module: HmmDmirrorModule): string[] {
  const out: string[] = [];
  const inUse = module.devicePagesInUse();
  if (inUse !== 0) out.push(`leak: ${inUse} device page(s) still in use after teardown (not freed through pageFree)`);
  if (kernel.mms.size !== 0) out.push(`leak: ${kernel.mms.size} mm(s) still alive after the test process exited`);
  const pool = kernel.hugetlbPool;
  if (pool.freeHugePages !== pool.nrHugePages || pool.resvHugePages !== 0)
    out.push(`leak: hugetlb pool has ${pool.nrHugePages - pool.freeHugePages} page(s) in use and ${pool.resvHugePages} reserved after teardown`);
  const poolPages = pool.nrHugePages * 2 ** pool.order;
  if (kernel.allocator.nrFree + poolPages !== kernel.nrRamPages)
    out.push(`leak: ${kernel.nrRamPages - kernel.allocator.nrFree - poolPages} RAM page(s) still allocated after teardown`);
  for (const v of checkInvariants(kernel, { extraRefs: module.driverRefs() })) out.push(`invariant [${v.rule}] ${v.message}`);
  return out;
}

/** Run one test instance the way kselftest does. */
export function runSelftest(inst: SelftestInstance, opts: SelftestOptions = {}): TestResult {
  const sys = createSelftestSystem(opts, inst.name);
  const p = new TestProcess(sys, sys.kernel.createMm(), sys.nextPid++);
  const t = new TestMetadata(inst.name);
  const messages: string[] = [];
  let outcome = "pass" as TestResult["outcome"];
  let reason: string | undefined;
  const fail = (m: string) => {
    outcome = "fail";
    messages.push(m);
  };
  const runBody = () => {
    if (inst.fixture === "hmm") {
      const variant = HMM_VARIANTS.find((v) => v.name === inst.variant)!.variant as HmmVariant;
      const self = hmmSetup(p, variant, t);
      try {
        (inst.def.body as (s: typeof self, v: HmmVariant, m: TestMetadata) => void)(self, variant, t);
      } finally {
        if (self.fd >= 0) hmmTeardown(self, t);
      }
    } else {
      const variant = HMM2_VARIANTS.find((v) => v.name === inst.variant)!.variant as Hmm2Variant;
      const self = hmm2Setup(p, variant, t);
      try {
        (inst.def.body as (s: typeof self, v: Hmm2Variant, m: TestMetadata) => void)(self, variant, t);
      } finally {
        if (self.fd0 >= 0 && self.fd1 >= 0) hmm2Teardown(self, t);
      }
    }
  };
  try {
    runBody();
  } catch (e) {
    if (e instanceof TestSkip) {
      outcome = "skip";
      reason = e.reason;
    } else if (e instanceof TestAbort) fail(e.message);
    else if (e instanceof ProcessKilled) fail(`${inst.name}: test process ${e.message}`);
    else fail(`${inst.name}: ${describeError(e)}`);
  }
  for (const f of t.failures) fail(f);
  for (const l of p.childLog) messages.push(l);
  for (const l of t.log) messages.push(l);
  try {
    p.exit(outcome === "fail" ? 6 : 0);
    releaseUnusedFiles(sys);
    // The harness's destructor restores vm.nr_hugepages.
    if (sys.savedNrHugepages !== null) sys.kernel.setHugetlbPages(sys.savedNrHugepages);
  } catch (e) {
    fail(`${inst.name}: process exit: ${describeError(e)}`);
  }
  if (opts.checks ?? true) {
    try {
      for (const m of postTestChecks(sys.kernel, sys.module)) fail(`${inst.name}: ${m}`);
    } catch (e) {
      fail(`${inst.name}: post-test checks: ${describeError(e)}`);
    }
  }
  if (outcome === "fail") reason = messages[0];
  // __run_test(): an XFAIL_ADD'ed instance reports KSFT_XFAIL when it failed, KSFT_XPASS when it passed.
  const xfail = HMM_XFAILS.find((x) => x.fixture === inst.fixture && x.variant === inst.variant && x.test === inst.test);
  if (xfail !== undefined && (outcome === "fail" || outcome === "pass")) {
    outcome = outcome === "fail" ? "xfail" : "xpass";
    reason = xfail.reason;
  }
  return { name: inst.name, fixture: inst.fixture, variant: inst.variant, test: inst.test, outcome, reason, messages };
}

/**
 * Run the hmm self-tests and return a kselftest TAP report: `TAP version 13`, `1..N`, `ok N name`,
 * `not ok N name`, `ok N name # SKIP reason`, and `# Totals: pass:X fail:Y xfail:0 xpass:0 skip:Z error:0`.
 */
export function runSelftests(opts: SelftestOptions = {}): SelftestReport {
  const insts = selftestInstances().filter((i) => matches(opts.filter, i.name));
  const results = insts.map((i) => runSelftest(i, opts));
  const fixtures = new Set(insts.map((i) => `${i.fixture}.${i.variant}`)).size;
  const { lines, totals } = formatTap(results, fixtures);
  return { lines, totals, results };
}

/** errnoName, re-exported for reports. */
export { errnoName };
