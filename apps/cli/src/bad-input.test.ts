// Issue 15's bad inputs, replayed through main(): each is a clear error naming the field or option (exit 1 for bad
// input, 2 for a bad command line) with no stack frame in the output, or — for what used to be accepted silently —
// the right result. A run that stops at a limit prints its partial summary.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readPresetText } from "@hmmsim/machines";
import type { RunSummary } from "@hmmsim/machine";
import { bufferIo } from "./cli-io.js";
import { main } from "./main.js";

function tmp(): string {
  return mkdtempSync(join(tmpdir(), "hmmsim-bad-"));
}

async function cli(argv: string[], cwd = tmp()) {
  const io = bufferIo({ cwd });
  const code = await main(argv, io);
  return { code, out: io.stdout.text, err: io.stderr.text };
}

/** No stack frame anywhere in what the command printed. */
function expectNoStack(r: { out: string; err: string }): void {
  expect(r.err).not.toMatch(/^\s+at /m);
  expect(r.out).not.toMatch(/^\s+at /m);
  expect(r.err).not.toMatch(/TypeError|RangeError|InvalidArgumentError/);
}

/** The a100-pcie4 preset with `edit` applied to its text and `workload` as its workload. */
function presetWith(edit: (text: string) => string, workload?: string): string {
  const text = edit(readPresetText("a100-pcie4"));
  return workload === undefined ? text : text.replace(/^workload:[\s\S]*$/m, `workload: ${workload}\n`);
}

async function runSpec(text: string, ...args: string[]) {
  const dir = tmp();
  writeFileSync(join(dir, "m.yaml"), text);
  return cli(["run", "m.yaml", ...args], dir);
}

/** Exit 1, no stack, one problem naming `path`, the message matching `rule`. */
async function expectSpecProblem(text: string, path: string, rule: RegExp) {
  const r = await runSpec(text);
  expect(r.code).toBe(1);
  expectNoStack(r);
  expect(r.out).toBe("");
  const line = r.err.split("\n").find((l) => l.startsWith(`  ${path}: `));
  expect(line, r.err).toBeDefined();
  expect(line).toMatch(rule);
}

const STREAM_GPU = "{ kind: streaming, on: gpu0, params: { bytes: 4MiB } }";

describe("raw crashes that are now clear errors", () => {
  it("phases: [null] names the phase (was a TypeError from resolveTraceFiles)", async () => {
    await expectSpecProblem(presetWith((t) => t, "{ kind: phases, params: { phases: [null] } }"), "workload.params.phases[0]", /got null/);
  });

  it("ram.size: 4PiB is bounded by what the page store addresses", async () => {
    await expectSpecProblem(presetWith((t) => t.replace("size: 64GiB", "size: 4PiB"), STREAM_GPU), "ram.size", /at most 8TiB - 2MiB .*2\^32 page frames/);
  });

  it("device memory: 4PiB does not fit the page store's pfns", async () => {
    await expectSpecProblem(presetWith((t) => t.replace(/memory: 40GiB/, "memory: 4PiB"), STREAM_GPU), "devices[0].memory", /does not fit: .*2\^32 page frames/);
  });

  it("device memory: 1MiB and 3MiB are not whole 2 MiB root chunks of the GPU driver (3MiB was shown as 3 and run as 2)", async () => {
    await expectSpecProblem(presetWith((t) => t.replace(/memory: 40GiB/, "memory: 1MiB"), STREAM_GPU), "devices[0].memory", /2 MiB root chunks: .*got 1048576 B/);
    await expectSpecProblem(presetWith((t) => t.replace(/memory: 40GiB/, "memory: 3MiB"), STREAM_GPU), "devices[0].memory", /got 3145728 B \(2 MiB or 4 MiB would do\)/);
  });

  it("driverSpec.warps: 1e7 and 1e9 are bounded, with the reason (was a false LivelockError / out of host memory)", async () => {
    for (const warps of ["10000000", "1000000000"]) {
      const text = presetWith((t) => t.replace(/deviceMemoryBandwidth: 1555000000000.*$/m, `warps: ${warps}`), STREAM_GPU);
      await expectSpecProblem(text, "devices[0].driverSpec.warps", /must be at most 65536 \(warps resident at once on a real GPU: A100 108 SMs × 64/);
    }
  });

  it("h2dBandwidth: 1 is below the bandwidth the virtual-time horizon allows (was a VirtualTimeError with a stack)", async () => {
    await expectSpecProblem(presetWith((t) => t.replace(/h2dBandwidth: 25GB\/s/, "h2dBandwidth: 1")), "links[0].h2dBandwidth", /at least 1MB\/s .*2\^53 ps/);
  });

  it("a run whose virtual time would pass 2^53 ps stops with an error saying so and how much was simulated, and its partial summary", async () => {
    const r = await runSpec(presetWith((t) => t, "{ kind: streaming, on: cpu, params: { bytes: 64KiB, computeNs: 1000000000000 } }"), "--json");
    expect(r.code).toBe(1);
    expectNoStack(r);
    expect(r.err).toMatch(/^hmmsim run: the run's virtual time would pass 2\^53 - 1 ps \(≈ 9007 s of simulated time\)/);
    expect(r.err).toMatch(/\(stopped at 9000 s of simulated time, after 9 of 16 accesses\)\n$/);
    const s = JSON.parse(r.out) as RunSummary;
    expect(s.stopped).toMatchObject({ reason: "virtual-time-limit", atPs: 9_000_000_009_090_000, accessesDone: 9, accessesTotal: 16 });
    expect(s.simulatedPs).toBe(9_000_000_009_090_000);
    expect(s.phases).toEqual([expect.objectContaining({ on: "cpu", partial: true })]);
  });

  it("an 8 GiB workload on 1 GiB RAM + 1 GiB device: up front when every page is written, else a clear out-of-memory stop", async () => {
    const small = (t: string) => t.replace("size: 64GiB", "size: 1GiB").replace(/memory: 40GiB/, "memory: 1GiB");
    await expectSpecProblem(
      presetWith(small, "{ kind: streaming, on: gpu0, params: { bytes: 8GiB, writeFraction: 1 } }"),
      "workload.params.bytes",
      /writes every page of its working set \(8 GiB\), but RAM \(1 GiB\) and device memory \(1 GiB\) hold only 2 GiB/,
    );
    // Reads: the device populates its memory and evicts to RAM until RAM runs out (was GpuFaultError with a stack).
    const r = await runSpec(presetWith(small, "{ kind: streaming, on: gpu0, params: { bytes: 8GiB } }"), "--json");
    expect(r.code).toBe(1);
    expectNoStack(r);
    expect(r.err).toMatch(/^hmmsim run: the run ran out of memory: gpu0: .*system RAM exhausted while evicting device memory/);
    expect(r.err).toMatch(/RAM \(1 GiB\) and device memory \(1 GiB\) hold 2 GiB; the workload's working set is 8 GiB \(stopped at \S+ \S+ of simulated time, after [\d,]+ of 2,097,152 accesses\)/);
    const s = JSON.parse(r.out) as RunSummary;
    expect(s.stopped?.reason).toBe("out-of-memory");
    expect(s.evictions.pages).toBe(262_144); // RAM's 1 GiB filled by evicted pages
    expect(s.phases[0]).toMatchObject({ on: "gpu0", partial: true });
  });

  it("a spec that is not a mapping, YAML that does not parse, and a duplicate key name the problem", async () => {
    expect((await runSpec("[1, 2]")).err).toMatch(/\(spec\): expected an object/);
    expect((await runSpec("cpus: { count: 1 }\ncpus: { count: 2 }\nram: { size: 2MiB }\n")).err).toMatch(/ {2}cpus: duplicate key "cpus" \(line 2\)/);
    const r = await runSpec("cpus: [1, 2");
    expect(r.code).toBe(1);
    expectNoStack(r);
    expect(r.err).toMatch(/not valid YAML\/JSON/);
  });
});

describe("what was accepted silently", () => {
  it("--json --json prints JSON (a repeated flag counts once)", async () => {
    const r = await cli(["run", "--json", "--json", "--size", "1MiB"]);
    expect(r.code).toBe(0);
    expect(() => JSON.parse(r.out)).not.toThrow();
  });

  it("a value option given twice with different values is a usage error naming it; the same value twice is fine", async () => {
    const r = await cli(["run", "--seed", "1", "--seed", "2"]);
    expect(r.code).toBe(2);
    expectNoStack(r);
    expect(r.err).toMatch(/--seed given 2 times with different values \("1", "2"\): give it once/);
    const same = await cli(["run", "--seed", "3", "--seed", "3", "--json", "--size", "1MiB"]);
    expect(same.code).toBe(0);
    expect((JSON.parse(same.out) as RunSummary).machine.seed).toBe(3);
    const sel = await cli(["selftest", "--filter", "a", "--filter", "b"]);
    expect(sel.code).toBe(2);
    expect(sel.err).toMatch(/--filter given 2 times/);
  });

  it("cpus.frequency: 1e-300 (shown as 0 GHz) is bounded: 1 MHz to 100 GHz", async () => {
    await expectSpecProblem(presetWith((t) => t.replace("frequency: 3GHz", "frequency: 1e-300")), "cpus.frequency", /between 1MHz and 100GHz/);
  });

  it("passes: 1e15 is refused by the workload's access bound, shown cleanly", async () => {
    await expectSpecProblem(presetWith((t) => t, "{ kind: streaming, on: gpu0, params: { bytes: 4MiB, passes: 1e15 } }"), "workload.params.passes", /at most 2\^40/);
  });

  it("--max-simulated-time needs a duration with its unit", async () => {
    for (const bad of ["10", "0ms", "soon", "-1ms"]) {
      const r = await cli(["run", "--max-simulated-time", bad]);
      expect(r.code).toBe(2);
      expectNoStack(r);
      expect(r.err).toMatch(/^hmmsim run: --max-simulated-time: expected a duration > 0 with its unit/);
    }
  });
});

describe("large specs", () => {
  it("28,600 links: refused by the schema's bound, with the reason", async () => {
    const links = Array.from({ length: 28_600 }, (_, i) => ({ name: `l${i}`, kind: "pcie4x16" }));
    const spec = { cpus: { count: 1 }, ram: { size: "1GiB" }, links, devices: [{ kind: "gpu", name: "g", memory: "64MiB", link: "l0" }] };
    const t0 = performance.now();
    const r = await runSpec(JSON.stringify(spec));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/ {2}links: at most 4096 links \(a real machine has a few dozen\)/);
    expect(r.err.split("\n").length).toBeLessThan(10);
    expect(performance.now() - t0).toBeLessThan(30_000); // 6.7 s before, most of it in MapLinkRegistry.add; now about 1.5 s
  });

  it("88,000 unknown keys: the message lists 100 and counts the rest, in linear time", async () => {
    const raw: Record<string, unknown> = { cpus: { count: 1 }, ram: { size: "1GiB" } };
    for (let i = 0; i < 88_000; i++) raw[`k${i}`] = i;
    const r = await runSpec(JSON.stringify(raw));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/invalid machine spec \(88,000 problems\):\n {2}k0: unknown key\n/);
    expect(r.err).toMatch(/\n {2}k99: unknown key\n {2}… and 87,900 more \(the first 100 are listed\)\n$/);
    expect(r.err.length).toBeLessThan(4_000); // 2.3 MB before
  });

  it("a spec text over 4 MiB is refused before parsing", async () => {
    const r = await runSpec(`# ${"x".repeat(5 * 2 ** 20)}\ncpus: { count: 1 }\nram: { size: 2MiB }\n`);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/the file is 5\.0 MiB; a machine spec is at most 4 MiB/);
  });
});
