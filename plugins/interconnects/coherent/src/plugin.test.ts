import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  DeviceDrivers,
  type MachinePlugin,
  MachineComponent,
  MachineSpec,
  PeerLink,
  type SpecIssue,
  SpecError,
  createMachine,
  defaultPlugins,
  isPeerInterconnect,
  validateMachineSpec,
} from "@hmmsim/machine";
import { PciePlugin } from "@hmmsim/interconnect-pcie";
import { coherentLinkSpecIssues } from "./link-spec.js";
import { CoherentPlugin, PLUGIN_NAME } from "./plugin.js";
import { NVLINK_PEER_PRESETS } from "./spec.js";

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
    expect(p.provides).toEqual(["nvlink-c2c", "cxl", "nvlink3", "nvlink4", "custom-coherent"]);
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

describe("CoherentPlugin: NVLink peer links (nvlink3, nvlink4)", () => {
  const twoGpus = (peer: object, host = "pcie4x16") => ({
    ...base,
    ram: { size: "64MiB" },
    links: [{ name: "pcie0", kind: host }, { name: "pcie1", kind: host }, { name: "nvl", ...peer }],
    devices: [
      { kind: "gpu", name: "gpu0", memory: "16MiB", link: "pcie0" },
      { kind: "gpu", name: "gpu1", memory: "16MiB", link: "pcie1" },
    ],
  });
  /** Drivers for `gpu` devices that do nothing (the machine needs one per device). */
  const stubDriver: MachinePlugin = {
    name: "StubDriver",
    kind: "driver",
    provides: ["gpu"],
    register: (c) =>
      c.register(MachineComponent, {
        useFactory: (r) => {
          for (const d of r.resolve(MachineSpec).devices) {
            r.resolve(DeviceDrivers).add({
              device: d.name,
              driverName: "gpu",
              pgmap: null,
              runKernel: () => Promise.resolve({ accesses: 0, faults: 0, remoteAccesses: 0, tlbHits: 0, tlbMisses: 0 }),
              counters: () => ({ batches: 0, faultedPages: 0, migratedPages: 0, populatedPages: 0 }),
            });
          }
          return {};
        },
      }),
    apply() {},
  };
  const machine = (peer: object) =>
    createMachine({ spec: twoGpus(peer), plugins: [...defaultPlugins(), new PciePlugin(), new CoherentPlugin(), stubDriver, names("policy", ["on-demand"])], createKernel: () => null });
  const peerIssues = (peer: object, host?: string): readonly SpecIssue[] => {
    try {
      validateMachineSpec(twoGpus(peer, host), [...defaultPlugins(), new PciePlugin(), new CoherentPlugin(), ...deviceNames]);
    } catch (e) {
      if (e instanceof SpecError) return e.issues;
      throw e;
    }
    return [];
  };

  it("nvlink3: A100's 300 GB/s per direction nominal, 270 GB/s effective, α 1 µs, atomics across it", () => {
    const link = machine({ kind: "nvlink3", peers: ["gpu0", "gpu1"] }).link("nvl") as PeerLink;
    expect(isPeerInterconnect(link)).toBe(true);
    expect(link.params).toEqual({ h2dBandwidth: 270e9, d2hBandwidth: 270e9, alpha: 1_000_000, sharing: "ps" });
    expect(link.peers).toEqual(["gpu0", "gpu1"]);
    expect(link.peerAtomics).toBe(true);
    expect(link.supportsCoherentAccess).toBe(false);
    expect(NVLINK_PEER_PRESETS.nvlink3).toEqual({ links: 12, peakBandwidth: 300e9, bandwidth: 270e9, alpha: 1_000_000 });
    // 2 MiB gpu0 → gpu1: α + 2^21 B / 270 GB/s, rounded up to a whole ps
    expect(link.transferTime("h2d", 2 ** 21)).toBe(1_000_000 + Math.ceil((2 ** 21 * 1e12) / 270e9));
  });

  it("nvlink4: H100's 450 GB/s per direction nominal, 405 GB/s effective; spec fields override per direction", () => {
    expect(machine({ kind: "nvlink4", peers: ["gpu0", "gpu1"] }).link("nvl").params).toEqual({ h2dBandwidth: 405e9, d2hBandwidth: 405e9, alpha: 1_000_000, sharing: "ps" });
    expect(NVLINK_PEER_PRESETS.nvlink4.peakBandwidth).toBe(450e9);
    const m = machine({ kind: "nvlink4", peers: ["gpu1", "gpu0"], h2dBandwidth: "100GB/s", alpha: "2us" });
    expect(m.link("nvl").params).toEqual({ h2dBandwidth: 100e9, d2hBandwidth: 405e9, alpha: 2_000_000, sharing: "ps" });
    expect(m.links.peerDirection("gpu1", "gpu0")).toBe("h2d"); // peers[0] is gpu1: h2d carries gpu1 → gpu0
    expect(m.links.peer("gpu0", "gpu1")!.transferTime(m.links.peerDirection("gpu1", "gpu0"), 100_000)).toBe(2_000_000 + 1_000_000);
    expect(m.pgmapOwner("gpu0")).toBe(m.pgmapOwner("gpu1"));
  });

  it("is never coherent for the CPU: isCoherentLink is false, and a DEVICE_COHERENT device cannot name it", () => {
    const p = new CoherentPlugin();
    expect(p.isCoherentLink({ name: "n", kind: "nvlink3", peers: ["a", "b"] })).toBe(false);
    expect(p.isCoherentLink({ name: "n", kind: "nvlink-c2c" })).toBe(true);
    const spec = twoGpus({ kind: "nvlink3", peers: ["gpu0", "gpu1"] });
    spec.devices[0] = { ...spec.devices[0]!, link: "nvl", memoryType: "coherent" } as (typeof spec.devices)[0];
    expect(() => validateMachineSpec(spec, [...defaultPlugins(), new PciePlugin(), new CoherentPlugin(), ...deviceNames])).toThrowError(/devices\[0\]\.link: "nvl" is a peer link/);
  });

  it("needs peers; takes no CPU-access figures, no coherent: true, no lanes; the host kinds refuse peers", () => {
    expect(peerIssues({ kind: "nvlink3" })).toEqual([
      { path: "links[2].peers", message: "required: an nvlink3 link joins two GPUs: peers: [<device>, <device>] (a device's host link is a PCIe kind, nvlink-c2c or cxl)" },
    ]);
    expect(peerIssues({ kind: "nvlink4", peers: ["gpu0", "gpu1"], cpuAccessLatency: "100ns", coherent: true, lanes: 8 })).toEqual([
      { path: "links[2].lanes", message: 'only PCIe links (pcie3x16, pcie4x16, pcie5x16) have lanes; "nvl" is nvlink4' },
      { path: "links[2].cpuAccessLatency", message: 'a peer link gives the CPU no access to device memory; "nvl" is nvlink4, a link between two GPUs' },
      { path: "links[2].coherent", message: 'coherent: true means the CPU loads and stores device memory over the link; "nvl" is nvlink4, a link between two GPUs (leave coherent out)' },
    ]);
    expect(peerIssues({ kind: "nvlink3", peers: ["gpu0", "gpu1"], coherent: false })).toEqual([]);
    expect(peerIssues({ kind: "nvlink-c2c", peers: ["gpu0", "gpu1"] })).toEqual([
      {
        path: "links[2].peers",
        message: "nvlink-c2c is a host link (it joins the CPU and a device); for a link between two GPUs write kind nvlink3 or nvlink4, or custom with peers (@hmmsim/interconnect-pcie) for your own figures",
      },
    ]);
  });
});
