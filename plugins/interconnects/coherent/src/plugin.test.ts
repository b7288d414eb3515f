import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type MachinePlugin, type SpecIssue, SpecError, createMachine, defaultPlugins, validateMachineSpec } from "@hmmsim/machine";
import { PciePlugin } from "@hmmsim/interconnect-pcie";
import { coherentLinkSpecIssues } from "./link-spec.js";
import { CoherentPlugin, PLUGIN_NAME } from "./plugin.js";

const base = { cpus: { count: 1 }, ram: { size: "2MiB" } };

/** Provides the device's driver and policy names (validation only: never composed into a machine). */
const names = (kind: "driver" | "policy", provides: string[]): MachinePlugin => ({ name: `Test${kind}`, kind, provides, apply() {} });
const deviceNames = [names("driver", ["gpu"]), names("policy", ["on-demand"])];

/** The SpecError issues of validating `links` (and `devices`) with CoherentPlugin. */
function issues(links: object[], devices: object[] = []): readonly SpecIssue[] {
  try {
    validateMachineSpec({ ...base, links, devices }, [...defaultPlugins(), new CoherentPlugin(), ...deviceNames]);
  } catch (e) {
    if (e instanceof SpecError) return e.issues;
    throw e;
  }
  return [];
}

describe("CoherentPlugin: the plugin contract", () => {
  it("is an interconnect plugin providing nvlink-c2c, cxl and custom-coherent, at its package's version", () => {
    const p = new CoherentPlugin();
    expect(p.name).toBe(PLUGIN_NAME);
    expect(p.kind).toBe("interconnect");
    expect(p.provides).toEqual(["nvlink-c2c", "cxl", "custom-coherent"]);
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    expect(p.version).toBe(pkg.version);
    expect(p.isCoherentLink({ name: "c", kind: "cxl" })).toBe(true);
  });

  it("rejects a bad plugin spec, naming the field", () => {
    expect(() => new CoherentPlugin({ sharing: "lottery" as "ps" })).toThrowError('CoherentPlugin spec.sharing: must be "ps" or "fifo", got lottery');
    expect(() => new CoherentPlugin({ latency: 1 } as object)).toThrowError("CoherentPlugin spec.latency: unknown field");
  });
});

describe("CoherentPlugin: link spec rules (the machine schema's former cross-field checks)", () => {
  it("accepts presets with overrides, coherent: true, and DEVICE_COHERENT memory behind them", () => {
    expect(
      issues(
        [
          { name: "c2c", kind: "nvlink-c2c", cpuAccessLatency: "150ns", coherent: true },
          { name: "x", kind: "custom-coherent", h2dBandwidth: "1GB/s", d2hBandwidth: "1GB/s", alpha: "1us" },
        ],
        [
          { kind: "gpu", name: "gh200", memory: "96GiB", link: "c2c", memoryType: "coherent" },
          { kind: "gpu", name: "g1", memory: "1GiB", link: "x", memoryType: "coherent" },
        ],
      ),
    ).toEqual([]);
  });

  it("only PCIe links have lanes; other unknown fields are unknown keys", () => {
    expect(issues([{ name: "c", kind: "cxl", lanes: 8, width: 2 }])).toEqual([
      { path: "links[0].lanes", message: 'only PCIe links (pcie3x16, pcie4x16, pcie5x16) have lanes; "c" is cxl' },
      { path: "links[0].width", message: "unknown key" },
    ]);
  });

  it("coherent: false is refused, pointing at kind custom for a non-coherent link", () => {
    expect(issues([{ name: "x", kind: "custom-coherent", h2dBandwidth: "1GB/s", d2hBandwidth: "1GB/s", alpha: "1us", coherent: false }])).toEqual([
      { path: "links[0].coherent", message: "a custom-coherent link is coherent; for a non-coherent link with your own figures write kind: custom" },
    ]);
    expect(issues([{ name: "c2c", kind: "nvlink-c2c", coherent: false }])).toEqual([
      { path: "links[0].coherent", message: 'nvlink-c2c is a coherent link (the CPU loads and stores device memory); "c2c" is nvlink-c2c (for a non-coherent link use a PCIe kind or custom)' },
    ]);
  });

  it("a custom-coherent link must give h2dBandwidth, d2hBandwidth and alpha", () => {
    expect(issues([{ name: "x", kind: "custom-coherent", d2hBandwidth: "1GB/s", cpuAccessLatency: "100ns" }])).toEqual([
      { path: "links[0].h2dBandwidth", message: "required: a custom-coherent link gives h2dBandwidth, d2hBandwidth and alpha" },
      { path: "links[0].alpha", message: "required: a custom-coherent link gives h2dBandwidth, d2hBandwidth and alpha" },
    ]);
  });

  it("coherentLinkSpecIssues gives paths relative to the link", () => {
    expect(coherentLinkSpecIssues({ name: "c", kind: "cxl", lanes: 16 })).toEqual([{ path: "lanes", message: 'only PCIe links (pcie3x16, pcie4x16, pcie5x16) have lanes; "c" is cxl' }]);
  });
});

describe("CoherentPlugin next to PciePlugin", () => {
  it("compose: custom is PCIe's, custom-coherent is CoherentPlugin's, nothing is claimed twice", () => {
    const m = createMachine({
      spec: {
        ...base,
        links: [
          { name: "p", kind: "custom", h2dBandwidth: "10GB/s", d2hBandwidth: "10GB/s", alpha: "1us" },
          { name: "c", kind: "custom-coherent", h2dBandwidth: "100GB/s", d2hBandwidth: "100GB/s", alpha: "1us" },
          { name: "n", kind: "nvlink-c2c" },
          { name: "g5", kind: "pcie5x16", lanes: 8 },
        ],
      },
      plugins: [...defaultPlugins(), new PciePlugin(), new CoherentPlugin()],
      createKernel: () => null,
    });
    expect(m.links.all().map((l) => [l.name, l.kind, l.supportsCoherentAccess])).toEqual([
      ["p", "custom", false],
      ["c", "custom-coherent", true],
      ["n", "nvlink-c2c", true],
      ["g5", "pcie5x16", false],
    ]);
    expect(m.plugins.provider("interconnect", "custom")?.name).toBe("PciePlugin");
    expect(m.plugins.provider("interconnect", "custom-coherent")?.name).toBe(PLUGIN_NAME);
  });

  it("the old `kind: custom, coherent: true` is told to write custom-coherent", () => {
    expect(() =>
      validateMachineSpec(
        { ...base, links: [{ name: "x", kind: "custom", h2dBandwidth: "1GB/s", d2hBandwidth: "1GB/s", alpha: "1us", coherent: true, cpuAccessLatency: "200ns" }] },
        [...defaultPlugins(), new PciePlugin(), new CoherentPlugin()],
      ),
    ).toThrowError(/links\[0\]\.coherent: .*write kind: custom-coherent[\s\S]*links\[0\]\.cpuAccessLatency: only coherent links/);
  });
});
