import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readPresetText } from "@hmmsim/machines";
import { bufferIo } from "./cli-io.js";
import { joinNegativeValues, main } from "./main.js";

function tmp(): string {
  return mkdtempSync(join(tmpdir(), "hmmsim-cli-"));
}

async function cli(argv: string[], cwd = tmp()) {
  const io = bufferIo({ cwd });
  const code = await main(argv, io);
  return { code, out: io.stdout.text, err: io.stderr.text };
}

describe("joinNegativeValues", () => {
  it("joins a negative number to the value option before it, and nothing else", () => {
    expect(joinNegativeValues(["run", "--seed", "-1", "--size", "-.5", "--json"])).toEqual(["run", "--seed=-1", "--size=-.5", "--json"]);
    expect(joinNegativeValues(["run", "--seed", "--json"])).toEqual(["run", "--seed", "--json"]);
    expect(joinNegativeValues(["run", "--json", "-1"])).toEqual(["run", "--json", "-1"]);
  });
});

describe("hmmsim help and usage", () => {
  it("--help explains the commands, the presets and the exit codes, on stdout, exit 0", async () => {
    const r = await cli(["--help"]);
    expect(r.code).toBe(0);
    expect(r.err).toBe("");
    expect(r.out).toMatch(/run \[spec\]/);
    expect(r.out).toMatch(/selftest/);
    expect(r.out).toContain("a100-pcie4, h100-pcie5, gh200-c2c");
    expect(r.out).toMatch(/Exit codes:[\s\S]*2 {2}bad command line/);
  });

  it("run --help lists every option and the output fields", async () => {
    const r = await cli(["run", "--help"]);
    expect(r.code).toBe(0);
    for (const o of ["--json", "--seed <n>", "--workload <kind>", "--size <size>", "--trace <file>", "--max-simulated-time <duration>", "--no-progress"]) expect(r.out).toContain(o);
    for (const f of ["simulated time", "CPU faults", "device faults", "migrated to device", "evictions", "utilisation", "thrash", "warning", "stopped"]) expect(r.out).toContain(f);
  });

  it("selftest --help says what is tested and that the report is TAP", async () => {
    const r = await cli(["selftest", "--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("hmm-tests.c");
    expect(r.out).toContain("TAP version 13");
  });

  it("--version prints the version", async () => {
    const r = await cli(["--version"]);
    expect(r).toEqual({ code: 0, out: "hmmsim 0.1.0\n", err: "" });
  });

  it("no command: the help on stderr, exit 2", async () => {
    const r = await cli([]);
    expect(r.code).toBe(2);
    expect(r.out).toBe("");
    expect(r.err).toContain("Usage:");
  });

  it.each([
    [["frobnicate"], /unknown command "frobnicate"/],
    [["run", "--bogus"], /Unknown option --bogus/],
    [["run", "--seed"], /--seed <n> value is missing/],
    [["run", "--seed=-3"], /--seed: expected a non-negative integer/],
    [["run", "--seed", "1.5"], /--seed: expected a non-negative integer/],
    [["run", "--seed", "-1"], /--seed: expected a non-negative integer \(0, 1, 2, …, like the spec's seed\), got -1/],
    [["run", "--seed", "-0.5"], /--seed: expected a non-negative integer[^\n]*got -0\.5/],
    [["selftest", "--seed", "-2"], /--seed: expected a non-negative integer, got -2/],
    [["run", "--size", "12 bananas"], /--size: expected a positive size/],
    [["run", "--workload", "bfs", "--size", "1MiB"], /--workload: expected one of streaming, strided, random, got "bfs" \(write bfs workloads in a spec file/],
    [["run", "--trace", "x.trace", "--size", "1MiB"], /do not combine it with --workload or --size/],
    [["run", "a", "b"], /Unused args: a, b|Unused args/],
  ])("usage error %j → exit 2 with a hint to --help", async (argv, msg) => {
    const r = await cli(argv as string[]);
    expect(r.code).toBe(2);
    expect(r.out).toBe("");
    expect(r.err).toMatch(msg);
    expect(r.err).toMatch(/--help/);
  });
});

describe("hmmsim run: bad input", () => {
  it("a spec path that does not exist: names the file and the presets, exit 1", async () => {
    const dir = tmp();
    const r = await cli(["run", "nope.yaml"], dir);
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err).toContain(`spec file not found: ${join(dir, "nope.yaml")}`);
    expect(r.err).toContain("a100-pcie4, h100-pcie5, gh200-c2c");
  });

  it("a bad spec file lists every error with its path, exit 1", async () => {
    const dir = tmp();
    writeFileSync(
      join(dir, "bad.yaml"),
      [
        "name: broken",
        "cpus: { count: 0 }",
        "ram: { size: 3MiB }",
        "links:",
        "  - { name: pcie0, kind: pcie9x16 }",
        "devices:",
        "  - { kind: gpu, name: gpu0, memory: 40 gigs, link: pcie1, colour: red }",
        "workload: { kind: streaming, on: gpu7, params: { bytes: 64MiB, stride: 3 } }",
      ].join("\n"),
    );
    const r = await cli(["run", "bad.yaml"], dir);
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err).toContain(`${join(dir, "bad.yaml")}: invalid machine spec`);
    for (const path of ["cpus.count", "ram.size", "links[0].kind", "devices[0].memory", "devices[0].link", "devices[0].colour", "workload.on", "workload.params.stride"]) {
      expect(r.err).toMatch(new RegExp(`^  ${path.replace(/[[\].]/g, "\\$&")}: `, "m"));
    }
    expect(r.err).toContain('devices[0].memory: expected a size like "16GiB", got "40 gigs"');
  });

  it("a file that is not YAML at all is a spec error, exit 1", async () => {
    const dir = tmp();
    writeFileSync(join(dir, "x.json"), "{ name: [unclosed");
    const r = await cli(["run", "x.json"], dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/invalid machine spec[\s\S]*not valid YAML\/JSON/);
  });

  it("a trace of real user addresses, one below 4 GiB and one near 2^47, is replayed as written", async () => {
    const dir = tmp();
    const top = 2 ** 47 - 4096;
    writeFileSync(join(dir, "far.trace"), `W 0x100000\nR 0x100000\nW 0x${top.toString(16)}\nR 0x${top.toString(16)}\n`);
    const r = await cli(["run", "--json", "--trace", "far.trace"], dir);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out) as { phases: { accesses: number }[]; faults: { device: number } };
    expect(s.phases[0]!.accesses).toBe(4);
    expect(s.faults.device).toBeGreaterThan(0);
  });

  it("an empty trace is an error naming the file, exit 1", async () => {
    const dir = tmp();
    writeFileSync(join(dir, "empty.trace"), "# nothing\n");
    const r = await cli(["run", "--trace", "empty.trace"], dir);
    expect(r.code).toBe(1);
    expect(r.err).toContain(join(dir, "empty.trace"));
    expect(r.err).toMatch(/empty trace/);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it("a trace with a bad line names the file and the line, exit 1 (--trace)", async () => {
    const dir = tmp();
    writeFileSync(join(dir, "a.trace"), "# two good lines, then a bad one\nR 0x1000\nW 0x2000 3.5\nX 0x3000\n");
    const r = await cli(["run", "--trace", "a.trace"], dir);
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err).toContain(`bad trace: ${join(dir, "a.trace")}:line 4: expected R or W, got "X"`);
  });

  it("a trace named (relatively) in a spec file is read next to the spec, and its bad line is named", async () => {
    const dir = tmp();
    const sub = join(dir, "specs");
    await import("node:fs").then((fs) => fs.mkdirSync(sub));
    writeFileSync(join(sub, "t.trace"), "R 0x1000\nR 0x2000 -1\n");
    const spec = readPresetText("a100-pcie4").replace(/^workload:[\s\S]*$/m, "workload: { kind: trace, on: gpu0, params: { file: t.trace } }\n");
    writeFileSync(join(sub, "m.yaml"), spec);
    const r = await cli(["run", "specs/m.yaml"], dir);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${join(sub, "t.trace")}:line 2: expected a non-negative compute time in ns, got "-1"`);
  });

  it("a trace file that does not exist: names --trace and the path, no stack, exit 1", async () => {
    const dir = tmp();
    const r = await cli(["run", "--trace", "missing.trace"], dir);
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err).toBe(`hmmsim run: --trace: trace file not found: ${join(dir, "missing.trace")}\n`);
    const abs = await cli(["run", "--trace", "/nonexist/x.json"], dir);
    expect(abs).toEqual({ code: 1, out: "", err: "hmmsim run: --trace: trace file not found: /nonexist/x.json\n" });
    expect((await cli(["run", "--trace", dir], dir)).err).toBe(`hmmsim run: --trace: ${dir} is a directory, not a trace file\n`);
  });

  it("schema errors, unknown drivers and policies, bad GPU driverSpec fields and missing trace files are one list, each with its path, exit 1", async () => {
    const dir = tmp();
    writeFileSync(
      join(dir, "bad.yaml"),
      [
        "name: broken",
        "cpus: { count: 0 }",
        "ram: { size: 64MiB }",
        "links:",
        "  - { name: pcie0, kind: pcie4x16 }",
        "devices:",
        "  - { kind: gpu, name: gpu0, memory: 16MiB, link: pcie0, driver: amdgpu, policy: [uvm-default, lru-k] }",
        "  - { kind: gpu, name: gpu1, memory: 16MiB, link: pcie0, driverSpec: { batchSize: 0, colour: 3 } }",
        "  - { kind: xilinx, name: f0, memory: 16MiB, link: pcie0 }",
        "workload: { kind: trace, on: gpu1, params: { file: nope.trace } }",
      ].join("\n"),
    );
    const r = await cli(["run", "bad.yaml"], dir);
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err.split("\n")).toEqual([
      `hmmsim run: ${join(dir, "bad.yaml")}: invalid machine spec (7 problems):`,
      "  cpus.count: must be >= 1",
      '  devices[0].driver: no plugin provides driver "amdgpu" (available: dmirror, fpga, gpu; load one with plugins: in the spec or --plugin)',
      '  devices[0].policy[1]: no plugin provides policy "lru-k" (available: access-counters, advise, evict-lfu, evict-lru, evict-lru-access, evict-random, evict-tree, on-demand, thrashing, tree-prefetch, uvm-default; load one with plugins: in the spec or --plugin)',
      "  devices[1].driverSpec.batchSize: must be a positive integer, got 0",
      expect.stringMatching(/^ {2}devices\[1\]\.driverSpec\.colour: unknown field \(known: batchSize, /),
      '  devices[2].driver: no plugin provides driver "xilinx" (the default driver of kind "xilinx"; available: dmirror, fpga, gpu; load one with plugins: in the spec or --plugin)',
      `  workload.params.file: trace file not found: ${join(dir, "nope.trace")}`,
      "",
    ]);
  });

  it("a preset copy with a bad driverSpec is reported with its path before anything runs; a good one runs", async () => {
    const dir = tmp();
    const text = readPresetText("a100-pcie4").replace(/^ {4}driverSpec:\n {6}deviceMemoryBandwidth: \d+.*$/m, "    driverSpec: { deviceMemoryBandwidth: -5, batchSize: 4096 }");
    expect(text).toContain("driverSpec: { deviceMemoryBandwidth: -5, batchSize: 4096 }");
    writeFileSync(join(dir, "m.yaml"), text);
    const r = await cli(["run", "m.yaml", "--size", "1MiB"], dir);
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      `hmmsim run: ${join(dir, "m.yaml")}: invalid machine spec (2 problems):\n` +
        "  devices[0].driverSpec.batchSize: must be at most 2048 (the batch sort key packs it with the VA-space id; UVM's default is 256 [S1]), got 4096\n" +
        "  devices[0].driverSpec.deviceMemoryBandwidth: must be a positive integer, got -5\n",
    );
    writeFileSync(join(dir, "big.yaml"), text.replace("deviceMemoryBandwidth: -5, ", ""));
    expect((await cli(["run", "big.yaml"], dir)).err).toMatch(/^ {2}devices\[0\]\.driverSpec\.batchSize: must be at most 2048 .*, got 4096$/m);
    writeFileSync(join(dir, "ok.yaml"), text.replace("deviceMemoryBandwidth: -5, batchSize: 4096", "batchSize: 128"));
    // Under on-demand (the preset runs uvm-default, whose prefetcher needs only 5 batches for this 1 MiB), every page
    // faults: 8,192 fault entries in full batches of 128.
    const ok = await cli(["run", "ok.yaml", "--size", "1MiB", "--json", "--policy", "on-demand"], dir);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out).faults.deviceBatches).toBe((1024 * 1024) / 128 / 128); // 8,192 fault entries in batches of 128
  });

  it("an override that makes the spec invalid names the path and the overrides", async () => {
    const r = await cli(["run", "--workload", "strided", "--size", "16KiB"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/with command-line overrides\): invalid machine spec[\s\S]*workload\.params\.stride/);
  });
});

describe("hmmsim run: a spec file", () => {
  it("runs a spec file without a workload (nothing to simulate) with a note on stderr, and takes --workload/--size", async () => {
    const dir = tmp();
    writeFileSync(join(dir, "m.json"), JSON.stringify({ name: "mine", cpus: { count: 2 }, ram: { size: "64MiB" }, links: [{ name: "l", kind: "pcie3x16" }], devices: [{ kind: "gpu", name: "g", memory: "16MiB", link: "l" }] }));
    const r = await cli(["run", "m.json", "--json"], dir);
    expect(r.code).toBe(0);
    expect(r.err).toContain("has no workload");
    const s = JSON.parse(r.out);
    expect(s).toMatchObject({ simulatedPs: 0, phases: [], machine: { name: "mine", preset: null, specFile: join(dir, "m.json") } });
    const w = await cli(["run", "m.json", "--json", "--workload", "random", "--size", "1MiB", "--seed", "3"], dir);
    expect(w.code).toBe(0);
    const t = JSON.parse(w.out);
    expect(t.workload).toEqual({ kind: "random", on: "g", params: { bytes: 1048576 } });
    expect(t.phases[0]).toMatchObject({ on: "g", kind: "random", accesses: 256 });
    expect(t.faults.device).toBeGreaterThan(0);
  });
});
