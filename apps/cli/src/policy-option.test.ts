// `hmmsim run --policy <name|a,b,c> [--policy-spec <json>]`: replace every device's policy without writing a spec, so
// one preset can be compared under on-demand and under uvm-default (its default). Every figure compared is simulated.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import type { RunSummary } from "@hmmsim/machine";
import { readPresetText } from "@hmmsim/machines";
import { bufferIo } from "./cli-io.js";
import { main } from "./main.js";
import { runHelp } from "./help-text.js";

const REPO = resolve(import.meta.dirname, "../../..");

async function cli(argv: string[], cwd?: string) {
  const io = bufferIo(cwd !== undefined ? { cwd } : {});
  const code = await main(argv, io);
  return { code, out: io.stdout.text, err: io.stderr.text };
}

async function json(argv: string[], cwd?: string): Promise<RunSummary> {
  const r = await cli(["run", "--json", ...argv], cwd);
  expect(r.err).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.out) as RunSummary;
}

const gpuPs = (s: RunSummary) => s.phases[1]!.endPs - s.phases[1]!.startPs;

describe("hmmsim run --policy", () => {
  it("replaces the preset's policy: on-demand against the preset's uvm-default on the same 4 MiB round trip", async () => {
    const uvm = await json(["a100-pcie4", "--size", "4MiB"]);
    const same = await json(["a100-pcie4", "--size", "4MiB", "--policy", "uvm-default"]);
    expect(same).toEqual(uvm); // naming the preset's own policy changes nothing
    const od = await json(["a100-pcie4", "--size", "4MiB", "--policy", "on-demand"]);
    expect(uvm.machine.devices[0]!.policy).toBe("uvm-default");
    expect(od.machine.devices[0]!.policy).toBe("on-demand");
    // On-demand: every page faults, 8 distinct pages per batch of 256 entries: 128 batches and 128 migrations for the
    // 1,024 pages. uvm-default: the tree prefetcher moves each 2 MiB block in 6 nodes: 12 batches, 12 migrations.
    expect(od.faults).toMatchObject({ device: 32_768, deviceBatches: 128 });
    expect(od.migrated.h2d).toEqual({ count: 128, pages: 1024, bytes: 4 * 2 ** 20 });
    expect(uvm.faults).toMatchObject({ device: 3_072, deviceBatches: 12 });
    expect(uvm.migrated.h2d).toEqual({ count: 12, pages: 1024, bytes: 4 * 2 ** 20 });
    expect(gpuPs(od) / gpuPs(uvm)).toBeGreaterThan(5); // 6.67 ms against 805 µs (measured)
  });

  it("takes a comma-separated list (a bundle may be one of its names), shown joined in the summary", async () => {
    const s = await json(["a100-pcie4", "--size", "4MiB", "--policy", "on-demand, evict-tree"]);
    expect(s.machine.devices[0]!.policy).toBe("on-demand + evict-tree");
    const t = await cli(["run", "a100-pcie4", "--size", "2MiB", "--policy", "uvm-default,access-counters"]);
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/^ {2}device gpu0 .*, policy uvm-default \+ access-counters$/m);
  });

  it("applies to every device, and drops each device's policySpec (it belonged to the old policy)", async () => {
    // The example's two devices run `headroom` with policySpec { headroom: 3MiB }, which on-demand would reject.
    const spec = join(REPO, "examples/third-party-plugins/machine.yaml");
    const s = await json([spec, "--policy", "on-demand"]);
    expect(s.machine.devices.map((d) => [d.name, d.policy])).toEqual([
      ["eager0", "on-demand"],
      ["gpu0", "on-demand"],
    ]);
    expect(s.phases.every((p) => (p.gpu?.remoteAccesses ?? 0) === 0)).toBe(true); // headroom's remote mappings are gone
  });

  it("--policy-spec sets every device's policySpec: a policy's fields, or fields keyed by member for a bundle", async () => {
    const tree = await json(["a100-pcie4", "--size", "2MiB", "--policy", "tree-prefetch"]);
    const tbn = await json(["a100-pcie4", "--size", "2MiB", "--policy", "tree-prefetch", "--policy-spec", '{"variant":"sequential-local"}']);
    expect(tbn.migrated.h2d.pages).toBe(512);
    expect(tbn.migrated.h2d.count).toBeGreaterThan(tree.migrated.h2d.count); // 64 KiB at a time instead of growing nodes
    // Alone, it keeps the spec's policies.
    const t = await cli(["run", "a100-pcie4", "--size", "2MiB", "--policy-spec", '{"tree-prefetch":{"threshold":100}}', "--json"]);
    expect(t.code).toBe(0);
    expect((JSON.parse(t.out) as RunSummary).machine.devices[0]!.policy).toBe("uvm-default");
    // A field the policy rejects is a spec error with its path (exit 1), like one written in the spec.
    const bad = await cli(["run", "--policy", "tree-prefetch", "--policy-spec", '{"variant":"bogus"}']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/\(with command-line overrides\): invalid machine spec[\s\S]*devices\[0\]\.policySpec\.variant/);
    const keyed = await cli(["run", "--policy-spec", '{"threshold":60}']);
    expect(keyed.code).toBe(1);
    expect(keyed.err).toMatch(/devices\[0\]\.policySpec\.threshold: .*keyed by policy name \(advise, tree-prefetch, thrashing, evict-lru\)/);
  });

  it("a policy no plugin provides is a spec error listing the names that are (exit 1); --plugin adds names", async () => {
    const r = await cli(["run", "--policy", "nope"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/devices\[0\]\.policy: no plugin provides policy "nope" \(available: access-counters, advise, evict-lfu, .*uvm-default/);
    const headroom = join(REPO, "examples/third-party-plugins/headroom-policy.js");
    const dir = mkdtempSync(join(tmpdir(), "hmmsim-policy-"));
    writeFileSync(join(dir, "m.yaml"), readPresetText("a100-pcie4"));
    const s = await json(["m.yaml", "--size", "2MiB", "--plugin", headroom, "--policy", "headroom", "--policy-spec", '{"headroom":"39GiB"}'], dir);
    expect(s.machine.devices[0]!.policy).toBe("headroom");
  });

  it.each([
    [["--policy", ""], /--policy: expected a policy name or a comma-separated list/],
    [["--policy", "on-demand,,evict-lru"], /--policy: expected a policy name or a comma-separated list .*got "on-demand,,evict-lru"/],
    [["--policy", "evict-lru,evict-lru"], /--policy: "evict-lru" is listed twice/],
    [["--policy-spec", "threshold=60"], /--policy-spec: expected a JSON object/],
    [["--policy-spec", "[1]"], /--policy-spec: expected a JSON object/],
    [["--policy", "on-demand", "--policy", "uvm-default"], /--policy given 2 times with different values/],
  ])("bad command line %j: exit 2 with a hint to --help", async (args, message) => {
    const r = await cli(["run", ...args]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(r.err).toMatch(/run `hmmsim run --help` for usage/);
    expect(r.out).toBe("");
  });

  it("is in run's help", () => {
    expect(runHelp()).toMatch(/--policy <names>/);
    expect(runHelp()).toMatch(/--policy-spec <json>/);
    expect(runHelp()).toContain("hmmsim run a100-pcie4 --policy on-demand");
  });
});
