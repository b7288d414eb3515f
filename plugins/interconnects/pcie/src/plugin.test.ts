import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  type DependencyContainer,
  DeviceDrivers,
  DuplexLink,
  InterconnectFactory,
  MachineComponent,
  MachineSpec,
  PeerLink,
  isPeerInterconnect,
  type LinkSpec,
  type Machine,
  type MachinePlugin,
  type SpecIssue,
  SpecError,
  createMachine,
  defaultPlugins,
  validateMachineSpec,
} from "@hmmsim/machine";
import { pcieLinkSpecIssues } from "./link-spec.js";
import { PLUGIN_NAME, PciePlugin } from "./plugin.js";
import { PCIE_P2P_PRESET, PCIE_PRESETS } from "./spec.js";

const base = { cpus: { count: 1 }, ram: { size: "2MiB" } };

/** The SpecError issues of composing `links` with PciePlugin (and `more` plugins). */
function issues(links: object[], more: MachinePlugin[] = []): readonly SpecIssue[] {
  try {
    validateMachineSpec({ ...base, links }, [...defaultPlugins(), new PciePlugin(), ...more]);
  } catch (e) {
    if (e instanceof SpecError) return e.issues;
    throw e;
  }
  return [];
}

describe("PciePlugin: the plugin contract", () => {
  it("is an interconnect plugin providing the PCIe presets and custom, at its package's version", () => {
    const p = new PciePlugin();
    expect(p.name).toBe(PLUGIN_NAME);
    expect(p.kind).toBe("interconnect");
    expect(p.provides).toEqual(["pcie3x16", "pcie4x16", "pcie5x16", "pcie-p2p", "custom"]);
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    expect(p.version).toBe(pkg.version);
    expect(p.isCoherentLink({ name: "l", kind: "pcie5x16" })).toBe(false);
    expect(p.isCoherentLink({ name: "l", kind: "custom", h2dBandwidth: 1, d2hBandwidth: 1, alpha: 0 })).toBe(false);
  });

  it("builds a custom link with the spec's own figures", () => {
    const m = createMachine({
      spec: { ...base, links: [{ name: "x", kind: "custom", h2dBandwidth: "10GB/s", d2hBandwidth: "5GB/s", alpha: "2us", coherent: false }] },
      plugins: [...defaultPlugins(), new PciePlugin({ sharing: "fifo" })],
      createKernel: () => null,
    });
    const link = m.link("x");
    expect(link.kind).toBe("custom");
    expect(link.params).toEqual({ h2dBandwidth: 10e9, d2hBandwidth: 5e9, alpha: 2_000_000, sharing: "fifo" });
    expect(link.supportsCoherentAccess).toBe(false);
  });

  it("rejects a bad plugin spec, naming the field", () => {
    expect(() => new PciePlugin({ sharing: "lottery" as "ps" })).toThrowError('PciePlugin spec.sharing: must be "ps" or "fifo", got lottery');
    expect(() => new PciePlugin({ lanes: 8 } as object)).toThrowError("PciePlugin spec.lanes: unknown field");
  });
});

describe("PciePlugin: link spec rules (the machine schema's former cross-field checks)", () => {
  it("accepts the presets with overrides and lanes, and coherent: false", () => {
    expect(issues([{ name: "a", kind: "pcie4x16", lanes: 8, alpha: "2us", h2dBandwidth: "20GB/s", coherent: false }])).toEqual([]);
    expect(issues([{ name: "c", kind: "custom", h2dBandwidth: "1GB/s", d2hBandwidth: "1GB/s", alpha: "1us" }])).toEqual([]);
  });

  it("only coherent links have CPU access figures", () => {
    expect(issues([{ name: "p", kind: "pcie4x16", cpuAccessLatency: "100ns", cpuAccessBandwidth: "10GB/s" }])).toEqual([
      { path: "links[0].cpuAccessLatency", message: 'only coherent links (nvlink-c2c, cxl, custom-coherent) have CPU access to device memory; "p" is pcie4x16' },
      { path: "links[0].cpuAccessBandwidth", message: 'only coherent links (nvlink-c2c, cxl, custom-coherent) have CPU access to device memory; "p" is pcie4x16' },
    ]);
  });

  it("a custom link with coherent: true is told to be kind custom-coherent", () => {
    const i = issues([{ name: "x", kind: "custom", h2dBandwidth: "1GB/s", d2hBandwidth: "1GB/s", alpha: "1us", coherent: true }]);
    expect(i).toEqual([{ path: "links[0].coherent", message: expect.stringContaining("write kind: custom-coherent") }]);
    expect(issues([{ name: "p", kind: "pcie3x16", coherent: true }])).toEqual([
      { path: "links[0].coherent", message: 'PCIe has no coherent CPU access to device memory; "p" is pcie3x16 (for a coherent link use kind nvlink-c2c, cxl or custom-coherent)' },
    ]);
  });

  it("a custom link must give h2dBandwidth, d2hBandwidth and alpha, and takes no lanes; every problem at once", () => {
    expect(issues([{ name: "x", kind: "custom", lanes: 4 }, { name: "y", kind: "pcie5x16", latency: "1us" }])).toEqual([
      { path: "links[0].h2dBandwidth", message: "required: a custom link gives h2dBandwidth, d2hBandwidth and alpha" },
      { path: "links[0].d2hBandwidth", message: "required: a custom link gives h2dBandwidth, d2hBandwidth and alpha" },
      { path: "links[0].alpha", message: "required: a custom link gives h2dBandwidth, d2hBandwidth and alpha" },
      { path: "links[0].lanes", message: "lanes scale a PCIe preset's bandwidth; a custom link gives its own h2dBandwidth and d2hBandwidth" },
      { path: "links[1].latency", message: "unknown key" },
    ]);
  });

  it("reports its issues with the schema's in one SpecError", () => {
    expect(() =>
      createMachine({ spec: { ...base, seed: -1, links: [{ name: "x", kind: "custom", alpha: "1us" }] }, plugins: [...defaultPlugins(), new PciePlugin()], createKernel: () => null }),
    ).toThrowError(/seed: must be >= 0[\s\S]*links\[0\]\.h2dBandwidth: required: a custom link gives/);
  });

  it("DEVICE_COHERENT memory behind a PCIe link is refused (isCoherentLink)", () => {
    const spec = { ...base, links: [{ name: "pcie0", kind: "pcie4x16" }], devices: [{ kind: "gpu", name: "g", memory: "1GiB", link: "pcie0", memoryType: "coherent" }] };
    expect(() => validateMachineSpec(spec, [...defaultPlugins(), new PciePlugin()])).toThrowError(
      'devices[0].memoryType: DEVICE_COHERENT memory needs a coherent link; link "pcie0" (kind pcie4x16, plugin PciePlugin) is not coherent',
    );
  });

  it("pcieLinkSpecIssues gives paths relative to the link", () => {
    expect(pcieLinkSpecIssues({ name: "l", kind: "custom", h2dBandwidth: 1, d2hBandwidth: 1 })).toEqual([
      { path: "alpha", message: "required: a custom link gives h2dBandwidth, d2hBandwidth and alpha" },
    ]);
  });
});

/**
 * A third-party interconnect with a field of its own (`hops`, `hopLatency`): nothing beyond componentSpecIssues
 * (the machine schema passes unknown link fields through) and reading `link.hops` in create.
 */
class OpticalPlugin implements MachinePlugin {
  readonly name = "OpticalPlugin";
  readonly kind = "interconnect";
  readonly provides = ["optical"];
  componentSpecIssues(ref: { kind: string; spec: unknown }): SpecIssue[] {
    const link = ref.spec as LinkSpec;
    const out: SpecIssue[] = [];
    for (const k of Object.keys(link)) if (!["name", "kind", "h2dBandwidth", "d2hBandwidth", "hops", "hopLatency"].includes(k)) out.push({ path: k, message: "unknown key" });
    if (!Number.isInteger(link.hops) || (link.hops as number) < 1) out.push({ path: "hops", message: `expected a whole number of hops >= 1, got ${String(link.hops)}` });
    return out;
  }
  isCoherentLink(): boolean {
    return false;
  }
  register(c: DependencyContainer): void {
    c.register(InterconnectFactory, {
      useValue: {
        name: this.name,
        create: (link, ctx) => {
          const hops = link.hops as number;
          const hopLatency = (link.hopLatency as number | undefined) ?? 100_000;
          const bw = link.h2dBandwidth ?? 100e9;
          return new DuplexLink(link.name, link.kind, { h2dBandwidth: bw, d2hBandwidth: link.d2hBandwidth ?? bw, alpha: hops * hopLatency, sharing: "ps" }, false, ctx);
        },
      },
    });
  }
  apply(_m: Machine): void {}
}

describe("a third-party link kind next to PciePlugin", () => {
  it("adds its own link fields: validated by its plugin, read by its factory", () => {
    const m = createMachine({
      spec: { ...base, links: [{ name: "o", kind: "optical", hops: 3, hopLatency: 50_000 }, { name: "p", kind: "pcie4x16" }] },
      plugins: [...defaultPlugins(), new PciePlugin(), new OpticalPlugin()],
      createKernel: () => null,
    });
    expect(m.link("o").params.alpha).toBe(150_000);
    expect(m.link("p").params.alpha).toBe(1_500_000);
  });

  it("each plugin reports the fields it does not know, with the link's path", () => {
    expect(issues([{ name: "o", kind: "optical", hops: 0, lanes: 4 }, { name: "p", kind: "pcie4x16", hops: 2 }], [new OpticalPlugin()])).toEqual([
      { path: "links[0].lanes", message: "unknown key" },
      { path: "links[0].hops", message: "expected a whole number of hops >= 1, got 0" },
      { path: "links[1].hops", message: "unknown key" },
    ]);
  });
});

describe("PciePlugin: peer links (pcie-p2p, custom with peers)", () => {
  const twoGpus = (peer: object) => ({
    ...base,
    ram: { size: "64MiB" },
    links: [{ name: "pcie0", kind: "pcie4x16" }, { name: "pcie1", kind: "pcie4x16" }, { name: "p2p", ...peer }],
    devices: [
      { kind: "gpu", name: "gpu0", memory: "16MiB", link: "pcie0" },
      { kind: "gpu", name: "gpu1", memory: "16MiB", link: "pcie1" },
    ],
  });
  const names: MachinePlugin[] = [
    { name: "TestDriver", kind: "driver", provides: ["gpu"], apply() {} },
    { name: "TestPolicy", kind: "policy", provides: ["on-demand"], apply() {} },
  ];
  const specIssues = (spec: object): readonly SpecIssue[] => {
    try {
      validateMachineSpec(spec, [...defaultPlugins(), new PciePlugin(), ...names]);
    } catch (e) {
      if (e instanceof SpecError) return e.issues;
      throw e;
    }
    return [];
  };
  const links = (peer: object) => createMachine({ spec: twoGpus(peer), plugins: [...defaultPlugins(), new PciePlugin(), ...stubDrivers()], createKernel: () => null });

  it("pcie-p2p: a PCIe 4.0 x16 link's figures (25 GB/s each way, α 1.5 µs) between the two devices, no atomics", () => {
    const spec = twoGpus({ kind: "pcie-p2p", peers: ["gpu0", "gpu1"] });
    expect(specIssues(spec)).toEqual([]);
    const link = links({ kind: "pcie-p2p", peers: ["gpu0", "gpu1"] }).link("p2p");
    expect(isPeerInterconnect(link)).toBe(true);
    expect(link).toBeInstanceOf(PeerLink);
    expect(link.params).toEqual({ h2dBandwidth: 25e9, d2hBandwidth: 25e9, alpha: 1_500_000, sharing: "ps" });
    expect(PCIE_P2P_PRESET).toEqual(PCIE_PRESETS.pcie4x16);
    const peer = link as PeerLink;
    expect(peer.peers).toEqual(["gpu0", "gpu1"]);
    expect(peer.peerAtomics).toBe(false);
    expect(peer.supportsCoherentAccess).toBe(false);
    expect(new PciePlugin().isCoherentLink({ name: "p2p", kind: "pcie-p2p", peers: ["a", "b"] })).toBe(false);
  });

  it("pcie-p2p takes lanes and overrides like the presets; custom with peers takes its own figures", () => {
    expect(links({ kind: "pcie-p2p", peers: ["gpu0", "gpu1"], lanes: 8, alpha: "2us" }).link("p2p").params).toEqual({ h2dBandwidth: 12.5e9, d2hBandwidth: 12.5e9, alpha: 2_000_000, sharing: "ps" });
    const c = links({ kind: "custom", peers: ["gpu1", "gpu0"], h2dBandwidth: "10GB/s", d2hBandwidth: "5GB/s", alpha: "3us" }).link("p2p") as PeerLink;
    expect(c.peers).toEqual(["gpu1", "gpu0"]);
    expect(c.params).toEqual({ h2dBandwidth: 10e9, d2hBandwidth: 5e9, alpha: 3_000_000, sharing: "ps" });
  });

  it("a whole two-GPU machine: each GPU's host link, the peer link between them", () => {
    const m = createMachine({ spec: twoGpus({ kind: "pcie-p2p", peers: ["gpu0", "gpu1"] }), plugins: [...defaultPlugins(), new PciePlugin(), ...stubDrivers()], createKernel: () => null });
    expect(m.links.ofDevice("gpu0").name).toBe("pcie0");
    expect(m.links.peer("gpu1", "gpu0")?.name).toBe("p2p");
    expect(m.links.peerDirection("gpu1", "gpu0")).toBe("d2h");
    expect(m.pgmapOwner("gpu0")).toBe(m.pgmapOwner("gpu1"));
  });

  it("pcie-p2p needs peers; the host presets refuse them; a custom peer link names its directions", () => {
    expect(specIssues(twoGpus({ kind: "pcie-p2p" }))).toEqual([
      { path: "links[2].peers", message: "required: a pcie-p2p link joins two devices through a PCIe switch: peers: [<device>, <device>] (a device's host link is pcie3x16, pcie4x16 or pcie5x16)" },
    ]);
    expect(specIssues(twoGpus({ kind: "pcie4x16", peers: ["gpu0", "gpu1"] }))).toEqual([
      {
        path: "links[2].peers",
        message: "pcie4x16 is a host link (it joins the host and a device); for peer-to-peer between two devices through a PCIe switch write kind: pcie-p2p (its lanes, alpha and bandwidths as here), or custom with your own figures",
      },
    ]);
    expect(specIssues(twoGpus({ kind: "custom", peers: ["gpu0", "gpu1"], h2dBandwidth: "1GB/s" }))).toEqual([
      { path: "links[2].d2hBandwidth", message: "required: a custom link gives h2dBandwidth, d2hBandwidth and alpha (a peer link: h2dBandwidth gpu0 → gpu1, d2hBandwidth gpu1 → gpu0)" },
      { path: "links[2].alpha", message: "required: a custom link gives h2dBandwidth, d2hBandwidth and alpha (a peer link: h2dBandwidth gpu0 → gpu1, d2hBandwidth gpu1 → gpu0)" },
    ]);
    expect(specIssues(twoGpus({ kind: "pcie-p2p", peers: ["gpu0", "gpu1"], coherent: true, cpuAccessLatency: "1us" }))).toEqual([
      { path: "links[2].coherent", message: 'PCIe has no coherent CPU access to device memory; "p2p" is pcie-p2p (for a coherent link use kind nvlink-c2c, cxl or custom-coherent)' },
      { path: "links[2].cpuAccessLatency", message: 'only coherent links (nvlink-c2c, cxl, custom-coherent) have CPU access to device memory; "p2p" is pcie-p2p' },
    ]);
  });
});

/** Drivers for `gpu` devices that do nothing (the machine needs one per device). */
function stubDrivers(): MachinePlugin[] {
  return [
    {
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
    },
    { name: "StubPolicy", kind: "policy", provides: ["on-demand"], apply() {} },
  ];
}
