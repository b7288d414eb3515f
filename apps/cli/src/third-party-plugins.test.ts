/**
 * The third-party plugins of examples/third-party-plugins (outside the workspaces, JavaScript importing only the
 * published @hmmsim/<name> entry points): an interconnect with its own link kind and fields (optical), a driver
 * that services every fault alone (eager) and a policy (headroom), loaded by a machine spec through `plugins:` and
 * run by `hmmsim run`. Under vitest the examples import the packages' source; under node (`npx hmmsim run …`) their
 * dist.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import type { PhaseSummary, RunSummary } from "@hmmsim/machine";
import { bufferIo } from "./cli-io.js";
import { main } from "./main.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const EXAMPLES = join(ROOT, "examples", "third-party-plugins");
const SPEC = join(EXAMPLES, "machine.yaml");
const PLUGIN_FILES = ["optical-link.js", "eager-driver.js", "headroom-policy.js"];
const VERSION = (JSON.parse(readFileSync(join(EXAMPLES, "package.json"), "utf8")) as { version: string }).version;
const PAGE = 4096;
const MiB = 2 ** 20;

async function cli(argv: string[]) {
  const io = bufferIo({ cwd: ROOT });
  const code = await main(argv, io);
  return { code, out: io.stdout.text, err: io.stderr.text };
}

async function run(argv: string[]): Promise<RunSummary> {
  const r = await cli(["run", "--json", ...argv]);
  expect(r.err).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.out) as RunSummary;
}

type Raw = { plugins?: string[]; devices: { name: string; policy?: string; policySpec?: unknown; driverSpec?: unknown }[]; links: Record<string, unknown>[] };

/**
 * Runs machine.yaml changed by `edit`, from a temporary folder: the plugins are then given with --plugin (absolute
 * paths: a spec may name only paths inside its own folder).
 */
async function runEdited(edit: (raw: Raw) => void, json = true) {
  const raw = parseYaml(readFileSync(SPEC, "utf8")) as Raw;
  delete raw.plugins;
  edit(raw);
  const dir = mkdtempSync(join(tmpdir(), "hmmsim-third-party-"));
  try {
    const file = join(dir, "machine.json");
    writeFileSync(file, JSON.stringify(raw));
    return await cli(["run", ...(json ? ["--json"] : []), ...PLUGIN_FILES.flatMap((f) => ["--plugin", join(EXAMPLES, f)]), file]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const phase = (s: RunSummary, on: string): PhaseSummary => s.phases.find((p) => p.on === on)!;

describe("examples/third-party-plugins", () => {
  it("type-check (JSDoc + checkJs) against the published type declarations of the @hmmsim packages", async () => {
    const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
    const r = await promisify(execFile)(process.execPath, [tsc, "-p", join(EXAMPLES, "tsconfig.json")], { cwd: ROOT }).catch((e: { stdout: string; code: number }) => e);
    expect(r.stdout).toBe("");
    expect("code" in r ? r.code : 0).toBe(0);
  });

  it("machine.yaml loads the three plugins through plugins: and runs them: the optical link, the eager device, the headroom policy", async () => {
    const s = await run([SPEC]);
    // Loaded from the spec's folder, listed with their versions after the built-ins.
    expect(s.plugins.slice(-3)).toEqual([
      { name: "OpticalLinkPlugin", kind: "interconnect", version: VERSION },
      { name: "EagerDriverPlugin", kind: "driver", version: VERSION },
      { name: "HeadroomPolicyPlugin", kind: "policy", version: VERSION },
    ]);
    // The optical link, built by the plugin's factory from its own fields: 4 fibers × 10 GB/s each way.
    expect(s.machine.links[0]).toEqual({ name: "fiber0", kind: "optical", h2dBandwidth: 40e9, d2hBandwidth: 40e9, alphaPs: 800_000, coherent: false });
    expect(s.machine.devices.map((d) => [d.name, d.driver, d.policy, d.link])).toEqual([
      ["eager0", "eager", "headroom", "fiber0"],
      ["gpu0", "gpu", "headroom", "pcie0"],
    ]);

    // The eager device streams 2 MiB (512 pages, 4 accesses each, every 4th a store): one fault per distinct page,
    // each serviced alone (batches = faults). Its 4 MiB with 3 MiB of headroom take 256 pages; the policy has the
    // other 256 mapped remotely, so their 1,024 accesses cross the link.
    const pages = (2 * MiB) / PAGE;
    const eager = phase(s, "eager0");
    expect(eager.accesses).toBe(4 * pages);
    expect(eager.gpu).toEqual({ faults: pages, remoteAccesses: 4 * (pages - 256), tlbHits: 0, tlbMisses: 0, batches: pages, faultedPages: pages, migratedPages: 256, populatedPages: 0 });
    // fiber0 carried the 256 page copies and the remote reads (3 of each page's 4 accesses, 64 B each) host → device,
    // the remote stores and the read-back migrations of the 256 device pages device → host.
    expect(s.links.fiber0!.h2d).toMatchObject({ bytes: 256 * PAGE + 3 * 256 * 64, transfers: 256 + 3 * 256 });
    expect(s.links.fiber0!.d2h).toMatchObject({ bytes: 256 * 64 + 256 * PAGE, transfers: 256 + 256 });

    // The GPU, through the same policy: it asks for a whole batch before it migrates, so it stops after the batch
    // that crosses the headroom, and maps the rest remotely.
    const gpu = phase(s, "gpu0").gpu!;
    expect(gpu.faultedPages).toBeGreaterThanOrEqual(pages);
    expect(gpu.migratedPages).toBeGreaterThanOrEqual(256);
    expect(gpu.migratedPages).toBeLessThan(pages);
    expect(gpu.remoteAccesses).toBeGreaterThan(0);
    expect(gpu.batches).toBeLessThan(gpu.faultedPages); // batching: many pages per service round
    // The read back brings every device page home: the eager device's 256 through its migrateToRam.
    expect(s.migrated.d2h.pages).toBe(256 + gpu.migratedPages);
    // The summary's device faults are the serviced entries: the GPU phase's count also holds the entries UVM's default
    // replay policy (BATCH_FLUSH [S1]) flushed unserviced after a batch and the replayed warps raised again
    // (measured: 16,896 entries serviced, 512 of the eager device and 16,384 of the GPU, of 64,512 raised); the eager device flushes nothing.
    expect(gpu.flushedFaults).toBeGreaterThan(0);
    expect(eager.gpu!.flushedFaults ?? 0).toBe(0);
    expect(s.faults.device).toBe(eager.gpu!.faults + gpu.faults - gpu.flushedFaults!);
    expect(s.unsettledPs).toBe(0);
  });

  it("on the same seed, the headroom policy migrates fewer pages than the built-in on-demand policy and serves the rest over the link", async () => {
    const headroom = await run([SPEC]);
    const r = await runEdited((raw) => {
      for (const d of raw.devices) {
        d.policy = "on-demand";
        delete d.policySpec;
      }
    });
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const onDemand = JSON.parse(r.out) as RunSummary;
    expect(onDemand.machine.seed).toBe(headroom.machine.seed);
    expect(onDemand.machine.devices.map((d) => d.policy)).toEqual(["on-demand", "on-demand"]);
    const pages = (2 * MiB) / PAGE;
    for (const device of ["eager0", "gpu0"]) {
      const h = phase(headroom, device).gpu!;
      const o = phase(onDemand, device).gpu!;
      // On-demand migrates every page the device touches and accesses nothing remotely …
      expect(o.migratedPages).toBe(pages);
      expect(o.remoteAccesses).toBe(0);
      // … headroom stops short of the device's last 3 MiB and maps the rest remotely.
      expect(h.migratedPages).toBeLessThan(o.migratedPages);
      expect(h.remoteAccesses).toBeGreaterThan(0);
    }
    // The eager device faults once per page either way; under on-demand fiber0 carries only page copies.
    expect(phase(onDemand, "eager0").gpu).toMatchObject({ faults: pages, batches: pages, migratedPages: pages });
    expect(onDemand.links.fiber0!.h2d).toMatchObject({ bytes: pages * PAGE, transfers: pages });
    expect(onDemand.migrated.h2d.pages).toBeGreaterThan(headroom.migrated.h2d.pages);
  });

  it("each plugin validates its part of the spec: every bad or unknown field is reported with its path, at once", async () => {
    const r = await runEdited((raw) => {
      raw.links[0] = { name: "fiber0", kind: "optical", fibers: 0, fiberBandwidth: "fast", h2dBandwidth: "1GB/s" };
      raw.devices[0]!.policySpec = { headroom: "6KiB", reserve: 1 };
      raw.devices[0]!.driverSpec = { batchSize: 8 };
      raw.devices[1]!.policySpec = { headroom: "4MiB" };
    }, false);
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    for (const line of [
      /links\[0\]\.fibers: expected an integer in \[1, 64\], got 0/,
      /links\[0\]\.fiberBandwidth: expected a bandwidth like "10GB\/s", got "fast"/,
      /links\[0\]\.h2dBandwidth: unknown field of an optical link .*fibers × fiberBandwidth/,
      /devices\[0\]\.driverSpec\.batchSize: unknown field \(the eager driver has no driverSpec fields\)/,
      /devices\[0\]\.policySpec\.headroom: must be a multiple of 4KiB, got 6144/,
      /devices\[0\]\.policySpec\.reserve: unknown field \(known: headroom\)/,
      /devices\[1\]\.policySpec\.headroom: must be less than the device's memory \(4194304 bytes\), got 4194304/,
    ]) {
      expect(r.err).toMatch(line);
    }
  });
});
