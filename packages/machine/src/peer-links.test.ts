// Peer links (links[i].peers): the spec rules, the LinkRegistry lookups (peer, peerDirection, peersOf, ends), the
// pgmap owner groups they imply (PgmapOwners, machine.pgmapOwner), the summary rows, and a small end-to-end run with
// a stand-in driver that pulls pages from its peer.
import { describe, expect, it } from "vitest";
import type { DependencyContainer } from "tsyringe";
import { createMachine, defaultPlugins, validateMachineSpec } from "./create-machine.js";
import type { AccessSource, DeviceDriver } from "./device-driver.js";
import { DuplexLink } from "./link-channel.js";
import { isPeerInterconnect } from "./interconnect.js";
import { Machine, MachineError } from "./machine.js";
import { SpecError, type SpecIssue, parseMachineSpec } from "./machine-spec.js";
import { MachineCompositionError } from "./plugin-registry.js";
import { PgmapOwner } from "./pgmap-owners.js";
import type { MachinePlugin } from "./plugin.js";
import { buildSummary, formatSummary } from "./run-summary.js";
import { simulate } from "./simulate.js";
import { getMachineStats } from "./stats-plugin.js";
import { testPlugins } from "./testing/test-link.js";
import { DeviceDrivers, InterconnectFactory, LinkRegistry, MachineComponent, PgmapOwners } from "./tokens.js";

const custom = (name: string, extra: object = {}) => ({ name, kind: "custom", h2dBandwidth: "25GB/s", d2hBandwidth: "25GB/s", alpha: "1us", ...extra });
const gpu = (name: string, link = "pcie0") => ({ kind: "gpu", name, memory: "16MiB", link });

/** Two GPUs behind pcie0 and pcie1, joined by nvl0 (300 GB/s gpu0 → gpu1, 200 GB/s back). */
const TWO_GPUS = {
  cpus: { count: 2 },
  ram: { size: "64MiB" },
  links: [custom("pcie0"), custom("pcie1"), custom("nvl0", { peers: ["gpu0", "gpu1"], h2dBandwidth: "300GB/s", d2hBandwidth: "200GB/s" })],
  devices: [gpu("gpu0", "pcie0"), gpu("gpu1", "pcie1")],
};

const plugins = () => [...defaultPlugins(), ...testPlugins()];
const noKernel = { createKernel: () => null };

/** A plugin whose component resolves `token` in the machine's container (what a driver gets injected). */
function probe<T>(token: import("tsyringe").InjectionToken<T>): { plugin: MachinePlugin; got: () => T } {
  let got: T | undefined;
  return {
    plugin: {
      name: "ProbePlugin",
      kind: "exporter",
      register: (c) => c.register(MachineComponent, { useFactory: (r) => ((got = r.resolve(token)), {}) }),
      apply() {},
    },
    got: () => got!,
  };
}

function issues(spec: object, ps: MachinePlugin[] = plugins()): readonly SpecIssue[] {
  try {
    validateMachineSpec(spec, ps);
  } catch (e) {
    if (e instanceof SpecError) return e.issues;
    throw e;
  }
  return [];
}

describe("machine spec: peer links", () => {
  it("a link with peers joins two devices; the normalized spec keeps them and parses to itself", () => {
    const s = parseMachineSpec(TWO_GPUS);
    expect(s.links[2]).toEqual({ name: "nvl0", kind: "custom", h2dBandwidth: 300e9, d2hBandwidth: 200e9, alpha: 1_000_000, peers: ["gpu0", "gpu1"] });
    expect(parseMachineSpec(s)).toEqual(s);
    expect(s.links[0]).not.toHaveProperty("peers");
    expect(issues(TWO_GPUS)).toEqual([]);
  });

  it("peers must be a list of two device names", () => {
    const spec = (peers: unknown) => ({ ...TWO_GPUS, links: [custom("pcie0"), custom("pcie1"), custom("nvl0", { peers })] });
    const rule = "expected the two devices a peer link joins: [<device>, <device>]";
    expect(issues(spec("gpu1"))).toEqual([{ path: "links[2].peers", message: rule }]);
    expect(issues(spec(["gpu0"]))).toEqual([{ path: "links[2].peers", message: rule }]);
    expect(issues(spec(["gpu0", "gpu1", "gpu2"]))).toEqual([{ path: "links[2].peers", message: rule }]);
    expect(issues(spec(["gpu0", 1]))).toEqual([{ path: "links[2].peers[1]", message: "expected a device name (string)" }]);
  });

  it("the two ends are different declared devices", () => {
    const spec = (peers: unknown) => ({ ...TWO_GPUS, links: [custom("pcie0"), custom("pcie1"), custom("nvl0", { peers })] });
    expect(issues(spec(["gpu0", "gpu9"]))).toEqual([{ path: "links[2].peers[1]", message: 'no device named "gpu9" (devices: gpu0, gpu1)' }]);
    expect(issues(spec(["gpu0", "gpu0"]))).toEqual([{ path: "links[2].peers", message: 'a peer link joins two different devices, got "gpu0" twice' }]);
    expect(issues({ ...spec(["a", "b"]), devices: [] })).toEqual([
      { path: "links[2].peers[0]", message: 'no device named "a" (devices: none declared)' },
      { path: "links[2].peers[1]", message: 'no device named "b" (devices: none declared)' },
    ]);
  });

  it("a device's link is its host link: naming a peer link is an error", () => {
    expect(issues({ ...TWO_GPUS, devices: [gpu("gpu0", "nvl0"), gpu("gpu1", "pcie1")] })).toEqual([
      { path: "devices[0].link", message: '"nvl0" is a peer link (it joins "gpu0" and "gpu1"); a device\'s link is its host link, a link without peers' },
    ]);
  });

  it("a device naming a link whose peers are malformed is told it is a peer link, without its ends", () => {
    const links = [custom("pcie0"), custom("pcie1"), custom("nvl0", { peers: "gpu1" })];
    expect(issues({ ...TWO_GPUS, links, devices: [gpu("gpu0", "nvl0"), gpu("gpu1", "pcie1")] })).toEqual([
      { path: "links[2].peers", message: "expected the two devices a peer link joins: [<device>, <device>]" },
      { path: "devices[0].link", message: '"nvl0" is a peer link; a device\'s link is its host link, a link without peers' },
    ]);
  });

  it("at most one peer link per pair of devices (in either order), reported at the second", () => {
    const links = [...TWO_GPUS.links, custom("nvl1", { peers: ["gpu1", "gpu0"] })];
    expect(issues({ ...TWO_GPUS, links })).toEqual([
      { path: "links[3].peers", message: '"gpu1" and "gpu0" are already joined by peer link "nvl0" (links[2]); at most one peer link per pair of devices' },
    ]);
  });

  it("every problem at once, with the schema's and the plugins' (a peer link's plugin sees its peers)", () => {
    const seen: unknown[] = [];
    const strict: MachinePlugin = {
      name: "StrictPeerPlugin",
      kind: "interconnect",
      provides: ["strict-peer"],
      componentSpecIssues: (ref) => {
        seen.push((ref.spec as { peers?: unknown }).peers);
        return [{ path: "alpha", message: "the plugin looked" }];
      },
      apply() {},
    };
    const spec = {
      ...TWO_GPUS,
      links: [custom("pcie0"), custom("pcie1"), { name: "p", kind: "strict-peer", peers: ["gpu0", "gpu1"] }, custom("q", { peers: ["gpu1", "gpu1"] })],
      devices: [{ ...gpu("gpu0", "p"), memory: "1000" }, gpu("gpu1", "pcie1")],
    };
    expect(issues(spec, [...plugins(), strict])).toEqual([
      { path: "links[3].peers", message: 'a peer link joins two different devices, got "gpu1" twice' },
      { path: "devices[0].memory", message: "must be a multiple of 4KiB, got 1000" },
      { path: "devices[0].link", message: '"p" is a peer link (it joins "gpu0" and "gpu1"); a device\'s link is its host link, a link without peers' },
      { path: "links[2].alpha", message: "the plugin looked" },
    ]);
    expect(seen).toContainEqual(["gpu0", "gpu1"]);
  });

  it("specs without peers are as before: no peers key, every link a host link", () => {
    const s = parseMachineSpec({ ...TWO_GPUS, links: TWO_GPUS.links.slice(0, 2) });
    expect(s.links.every((l) => !("peers" in l))).toBe(true);
  });
});

describe("LinkRegistry: host and peer links", () => {
  const three = {
    ...TWO_GPUS,
    links: [...TWO_GPUS.links, custom("pcie2"), custom("p12", { peers: ["gpu2", "gpu1"] })],
    devices: [...TWO_GPUS.devices, gpu("gpu2", "pcie2")],
  };

  it("peer(a, b) in either order; null when no peer link joins them; ofDevice stays the host link", () => {
    const m = createMachine({ spec: three, plugins: plugins(), ...noKernel });
    const nvl0 = m.link("nvl0");
    expect(m.links.peer("gpu0", "gpu1")).toBe(nvl0);
    expect(m.links.peer("gpu1", "gpu0")).toBe(nvl0);
    expect(m.links.peer("gpu1", "gpu2")).toBe(m.link("p12"));
    expect(m.links.peer("gpu0", "gpu2")).toBeNull();
    expect(m.links.peer("gpu0", "gpu0")).toBeNull();
    expect(m.links.ofDevice("gpu0").name).toBe("pcie0");
    expect(m.links.ofDevice("gpu1").name).toBe("pcie1");
    expect(m.links.all().map((l) => l.name)).toEqual(["pcie0", "pcie1", "nvl0", "pcie2", "p12"]);
    expect(isPeerInterconnect(nvl0) && nvl0.peers).toEqual(["gpu0", "gpu1"]);
    expect(nvl0.supportsCoherentAccess).toBe(false);
  });

  it("is the LinkRegistry a driver gets injected", () => {
    const p = probe(LinkRegistry);
    const m = createMachine({ spec: three, plugins: [...plugins(), p.plugin], ...noKernel });
    expect(p.got()).toBe(m.links);
    expect(p.got().peer("gpu0", "gpu1")).toBe(m.link("nvl0"));
  });

  it("peerDirection(from, to): h2d from peers[0], d2h from peers[1]; an error without a peer link", () => {
    const m = createMachine({ spec: three, plugins: plugins(), ...noKernel });
    expect(m.links.peerDirection("gpu0", "gpu1")).toBe("h2d");
    expect(m.links.peerDirection("gpu1", "gpu0")).toBe("d2h");
    expect(m.links.peerDirection("gpu2", "gpu1")).toBe("h2d");
    expect(m.links.peerDirection("gpu1", "gpu2")).toBe("d2h");
    // the direction carries the link's figures for it: 300 GB/s gpu0 → gpu1, 200 GB/s back
    expect(m.links.peer("gpu0", "gpu1")!.transferTime(m.links.peerDirection("gpu0", "gpu1"), 300_000)).toBe(1_000_000 + 1_000_000);
    expect(m.links.peer("gpu0", "gpu1")!.transferTime(m.links.peerDirection("gpu1", "gpu0"), 200_000)).toBe(1_000_000 + 1_000_000);
    expect(() => m.links.peerDirection("gpu0", "gpu2")).toThrowError(MachineError);
    expect(() => m.links.peerDirection("gpu0", "gpu2")).toThrowError('no peer link joins "gpu0" and "gpu2" (ask links.peer(a, b) first; without one, data moves through the host links)');
    expect(() => m.links.peerDirection("gpu0", "gpu0")).toThrowError("a device has no peer link to itself");
  });

  it("peersOf and ends; unknown names are errors that list what exists", () => {
    const m = createMachine({ spec: three, plugins: plugins(), ...noKernel });
    expect(m.links.peersOf("gpu1")).toEqual(["gpu0", "gpu2"]);
    expect(m.links.peersOf("gpu0")).toEqual(["gpu1"]);
    expect(m.links.ends("nvl0")).toEqual(["gpu0", "gpu1"]);
    expect(m.links.ends("pcie0")).toBeNull();
    expect(() => m.links.peer("gpu0", "tpu")).toThrowError('no device named "tpu" (devices: gpu0, gpu1, gpu2)');
    expect(() => m.links.peersOf("tpu")).toThrowError('no device named "tpu"');
    expect(() => m.links.ends("nope")).toThrowError('no link named "nope" (links: pcie0, pcie1, nvl0, pcie2, p12)');
  });

  it("a plugin that builds a peer link of the spec as a plain link is a composition error", () => {
    const plain: MachinePlugin = {
      name: "PlainPlugin",
      kind: "interconnect",
      provides: ["plain"],
      register: (c: DependencyContainer) =>
        c.register(InterconnectFactory, {
          useValue: { name: "PlainPlugin", create: (l, ctx) => new DuplexLink(l.name, l.kind, { h2dBandwidth: 1e9, d2hBandwidth: 1e9, alpha: 0, sharing: "ps" }, false, ctx) },
        }),
      apply() {},
    };
    const spec = { ...TWO_GPUS, links: [custom("pcie0"), custom("pcie1"), { name: "x", kind: "plain", peers: ["gpu0", "gpu1"] }] };
    expect(() => createMachine({ spec, plugins: [...plugins(), plain], ...noKernel })).toThrowError(MachineCompositionError);
    expect(() => createMachine({ spec, plugins: [...plugins(), plain], ...noKernel })).toThrowError(
      'links[2] ("x", kind plain): the spec makes it a peer link of ["gpu0","gpu1"], but plugin PlainPlugin built a link that is no PeerInterconnect',
    );
  });
});

describe("pgmap owners: one per group of devices joined by peer links", () => {
  const spec = (peerPairs: [string, string][], n = 4) => ({
    cpus: { count: 1 },
    ram: { size: "64MiB" },
    links: [custom("pcie0"), ...peerPairs.map((p, i) => custom(`p${i}`, { peers: p }))],
    devices: Array.from({ length: n }, (_, i) => gpu(`g${i}`)),
  });

  it("without peer links every device has its own owner", () => {
    const m = createMachine({ spec: spec([]), plugins: plugins(), ...noKernel });
    const owners = ["g0", "g1", "g2", "g3"].map((d) => m.pgmapOwner(d));
    expect(new Set(owners).size).toBe(4);
    expect(owners.map((o) => o.devices)).toEqual([["g0"], ["g1"], ["g2"], ["g3"]]);
    expect(m.owners.all()).toEqual(owners);
  });

  it("devices joined by peer links share one owner, transitively; the others keep their own", () => {
    // g0 — g2 — g3 (a chain: g0 and g3 share an owner without a link between them), g1 alone
    const m = createMachine({ spec: spec([["g2", "g3"], ["g0", "g2"]]), plugins: plugins(), ...noKernel });
    const o = (d: string) => m.pgmapOwner(d);
    expect(o("g0")).toBe(o("g2"));
    expect(o("g0")).toBe(o("g3"));
    expect(o("g1")).not.toBe(o("g0"));
    expect(o("g0").devices).toEqual(["g0", "g2", "g3"]);
    expect(o("g0").has("g3")).toBe(true);
    expect(o("g0").has("g1")).toBe(false);
    expect(m.owners.all().map((x) => x.devices)).toEqual([["g0", "g2", "g3"], ["g1"]]);
    expect(String(o("g0"))).toBe("PgmapOwner(g0, g2, g3)");
    expect(Object.isFrozen(o("g0"))).toBe(true);
    expect(o("g0")).toBeInstanceOf(PgmapOwner);
  });

  it("is a service of the machine's container (PgmapOwners), one per machine", () => {
    const p = probe(PgmapOwners);
    const a = createMachine({ spec: spec([["g0", "g1"]]), plugins: [...plugins(), p.plugin], ...noKernel });
    const b = createMachine({ spec: spec([["g0", "g1"]]), plugins: plugins(), ...noKernel });
    const owners = p.got();
    expect(owners).toBe(a.owners);
    expect(owners.ownerOf("g1")).toBe(a.pgmapOwner("g0"));
    expect(a.pgmapOwner("g0")).not.toBe(b.pgmapOwner("g0")); // two machines share nothing
    expect(() => a.pgmapOwner("tpu")).toThrowError('no device named "tpu" (devices: g0, g1, g2, g3)');
  });
});

/**
 * A stand-in driver: each device kernel pulls its pages from the device named in its driverSpec `from`, over the peer
 * link when one joins them, else through the host (d2h on the source's host link, h2d on its own).
 */
class PullDriver implements DeviceDriver {
  readonly driverName = "pull";
  readonly pgmap = null;
  constructor(
    readonly device: string,
    private readonly from: string,
    private readonly m: Machine,
  ) {}
  async runKernel(_mm: unknown, accesses: AccessSource) {
    const b = { capacity: 256, addr: new Float64Array(256), write: new Uint8Array(256), computePs: new Float64Array(256) };
    const links = this.m.links;
    let n = 0;
    for (let k = accesses.fill(b); k > 0; k = accesses.fill(b)) {
      n += k;
      const bytes = k * 4096;
      const peer = links.peer(this.from, this.device);
      if (peer) await peer.transfer(links.peerDirection(this.from, this.device), bytes);
      else {
        await links.ofDevice(this.from).transfer("d2h", bytes);
        await links.ofDevice(this.device).transfer("h2d", bytes);
      }
    }
    return { accesses: n, faults: 0, remoteAccesses: 0, tlbHits: n, tlbMisses: 0 };
  }
  counters() {
    return { batches: 0, faultedPages: 0, migratedPages: 0, populatedPages: 0 };
  }
}

const pullPlugin: MachinePlugin = {
  name: "PullDriverPlugin",
  kind: "driver",
  provides: ["pull"],
  componentSpecIssues: () => [],
  register(c) {
    c.register(MachineComponent, {
      useFactory: (r) => {
        const m = r.resolve(Machine);
        for (const d of m.spec.devices) if (d.driver === "pull") r.resolve(DeviceDrivers).add(new PullDriver(d.name, String(d.driverSpec?.from ?? d.name), m));
        return {};
      },
    });
  },
  apply() {},
};

describe("a peer link in a run and its summary", () => {
  const pullSpec = (peer: boolean) => ({
    ...TWO_GPUS,
    links: peer ? TWO_GPUS.links : TWO_GPUS.links.slice(0, 2),
    devices: [
      { ...gpu("gpu0", "pcie0"), driver: "pull" },
      { ...gpu("gpu1", "pcie1"), driver: "pull", driverSpec: { from: "gpu0" } },
    ],
    workload: { kind: "streaming", on: "gpu1", params: { bytes: "1MiB" } },
  });

  it("device → device over the peer link: its bytes are in its own rows, named by its ends", async () => {
    const s = await simulate({ spec: pullSpec(true), plugins: [...plugins(), pullPlugin] });
    expect(s.links.nvl0!.h2d).toMatchObject({ bytes: 2 ** 20, from: "gpu0", to: "gpu1" });
    expect(s.links.nvl0!.d2h).toMatchObject({ bytes: 0, from: "gpu1", to: "gpu0" });
    expect(s.links.pcie0!.d2h.bytes).toBe(0);
    expect(s.links.pcie1!.h2d.bytes).toBe(0);
    expect(s.links.pcie0!.h2d).not.toHaveProperty("from");
    expect(s.machine.links).toEqual([
      { name: "pcie0", kind: "custom", h2dBandwidth: 25e9, d2hBandwidth: 25e9, alphaPs: 1_000_000, coherent: false },
      { name: "pcie1", kind: "custom", h2dBandwidth: 25e9, d2hBandwidth: 25e9, alphaPs: 1_000_000, coherent: false },
      { name: "nvl0", kind: "custom", h2dBandwidth: 300e9, d2hBandwidth: 200e9, alphaPs: 1_000_000, coherent: false, peers: ["gpu0", "gpu1"] },
    ]);
    const text = formatSummary(s);
    expect(text).toMatch(/ device gpu0 +gpu, 16 MiB DEVICE_PRIVATE, link pcie0, peers gpu1 \(nvl0\), driver pull, policy on-demand\n/);
    expect(text).toMatch(/ device gpu1 +gpu, 16 MiB DEVICE_PRIVATE, link pcie1, peers gpu0 \(nvl0\), driver pull, policy on-demand\n/);
    expect(text).toMatch(/ link nvl0 +custom, peer link gpu0 ↔ gpu1, 300 GB\/s gpu0→gpu1 \/ 200 GB\/s gpu1→gpu0, α 1 µs\n/);
    expect(text).toMatch(/ link nvl0 gpu0→gpu1 +\S+ % busy \(3\.5 µs moving data\), 1 MiB in 1 transfers \(\+ 1 µs setup each, not in busy\)\n/);
    expect(text).toMatch(/ link nvl0 gpu1→gpu0 +0\.0 % busy \(0 ps moving data\), 0 B in 0 transfers\n/);
    expect(text).toMatch(/ link pcie0 h2d /);
    expect(text).not.toMatch(/note \(h2d\)/); // peer bytes are not migration bytes that missed the host links
  });

  it("without a peer link the same pages go through the host; the summary has no peer fields", async () => {
    const s = await simulate({ spec: pullSpec(false), plugins: [...plugins(), pullPlugin] });
    expect(s.links.pcie0!.d2h.bytes).toBe(2 ** 20);
    expect(s.links.pcie1!.h2d.bytes).toBe(2 ** 20);
    expect(JSON.stringify(s)).not.toMatch(/"peers"|"from"|"to"/);
    expect(formatSummary(s)).not.toMatch(/peer/);
  });

  it("host DMA statistics leave a peer link's transfers out; the link's own statistics have them", async () => {
    const m = createMachine({ spec: TWO_GPUS, plugins: plugins(), ...noKernel });
    m.spawn("copy", async () => {
      await m.links.peer("gpu1", "gpu0")!.transfer(m.links.peerDirection("gpu1", "gpu0"), 4096);
      await m.links.ofDevice("gpu0").transfer("h2d", 8192);
    });
    const r = await m.run();
    const stats = getMachineStats(m);
    expect(stats.dma).toEqual({ h2d: { transfers: 1, bytes: 8192 }, d2h: { transfers: 0, bytes: 0 } });
    expect(stats.links.nvl0!.d2h).toMatchObject({ bytes: 4096, transfers: 1 });
    const s = buildSummary(m, stats, r, { preset: null, file: "spec.yaml" });
    expect(s.links.nvl0!.d2h).toMatchObject({ bytes: 4096, from: "gpu1", to: "gpu0" });
  });
});
