// A machine spec's limits (spec-limits.ts), each reported with its path and reason; the spec text parsed in linear
// time; at most 100 problems in a SpecError's message; validation and composition linear in devices + links.
import { describe, expect, it } from "vitest";
import { createMachine, defaultPlugins, validateMachineSpec } from "./create-machine.js";
import type { Interconnect } from "./interconnect.js";
import { MapLinkRegistry } from "./link-registry.js";
import { SpecError, parseMachineSpec } from "./machine-spec.js";
import type { MachinePlugin } from "./plugin.js";
import { SPEC_LIMITS } from "./spec-limits.js";
import { parseSpecText } from "./spec-text.js";
import { testPlugins } from "./testing/test-link.js";

const BASE = { cpus: { count: 1 }, ram: { size: "64MiB" } };
const LINK = { name: "l0", kind: "custom", h2dBandwidth: "1GB/s", d2hBandwidth: "1GB/s", alpha: "1us" };

function issues(input: string | object): Record<string, string> {
  try {
    parseMachineSpec(input);
  } catch (e) {
    expect(e).toBeInstanceOf(SpecError);
    return Object.fromEntries((e as SpecError).issues.map((i) => [i.path, i.message]));
  }
  throw new Error("expected a SpecError");
}

describe("spec limits", () => {
  it("RAM: at most 8 TiB - 2 MiB (half the page store's 2^32 pfns)", () => {
    expect(parseMachineSpec({ ...BASE, ram: { size: SPEC_LIMITS.maxRamBytes } }).ram.size).toBe(8 * 2 ** 40 - 2 * 2 ** 20);
    expect(issues({ ...BASE, ram: { size: "8TiB" } })["ram.size"]).toMatch(/^must be at most 8TiB - 2MiB \(8796090925056 B\): RAM takes at most half of the 2\^32 page frames/);
    expect(issues({ ...BASE, ram: { size: "4PiB" } })["ram.size"]).toMatch(/got 4503599627370496$/);
  });

  it("device memory: RAM and every device's memory must fit the page store's pfns, reported at the first that does not", () => {
    const dev = (name: string, memory: string) => ({ kind: "gpu", name, memory, link: "l0" });
    expect(() => parseMachineSpec({ ...BASE, links: [LINK], devices: [dev("a", "8TiB"), dev("b", "7TiB")] })).not.toThrow();
    const got = issues({ ...BASE, links: [LINK], devices: [dev("a", "8TiB"), dev("b", "8TiB")] });
    expect(Object.keys(got)).toEqual(["devices[1].memory"]);
    expect(got["devices[1].memory"]).toMatch(/^does not fit: RAM \(64 MiB\) and the device memory up to this device need more than the 2\^32 page frames/);
    expect(issues({ ...BASE, links: [LINK], devices: [dev("a", "4PiB")] })["devices[0].memory"]).toMatch(/got 4 PiB|got 4096 TiB/);
  });

  it("CPU clock 1 MHz .. 100 GHz; link bandwidths 1 MB/s .. 1 PB/s; link latencies at most 1 s", () => {
    expect(issues({ ...BASE, cpus: { count: 1, frequency: 1e-300 } })["cpus.frequency"]).toBe('must be between 1MHz and 100GHz (a CPU clock, e.g. "3GHz"), got 1e-300 Hz');
    expect(issues({ ...BASE, cpus: { count: 1, frequency: "1THz" } })["cpus.frequency"]).toMatch(/expected a frequency/);
    expect(parseMachineSpec({ ...BASE, cpus: { count: 1, frequency: "1MHz" } }).cpus.frequency).toBe(1e6);
    const link = (f: object) => issues({ ...BASE, links: [{ ...LINK, ...f }] });
    expect(link({ h2dBandwidth: 1 })["links[0].h2dBandwidth"]).toMatch(/^must be at least 1MB\/s \(1000000 B\/s\): slower, the whole 2\^53 ps .* got 1 B\/s$/);
    expect(link({ d2hBandwidth: "2000TB/s" })["links[0].d2hBandwidth"]).toMatch(/^must be at most 1PB\/s/);
    expect(link({ cpuAccessBandwidth: "10KB/s" })["links[0].cpuAccessBandwidth"]).toMatch(/at least 1MB\/s/);
    expect(link({ alpha: "2s" })["links[0].alpha"]).toMatch(/^must be at most 1s .*got 2s$/);
    expect(link({ cpuAccessLatency: "1h" })["links[0].cpuAccessLatency"]).toMatch(/expected a duration/);
    expect(parseMachineSpec({ ...BASE, links: [{ ...LINK, h2dBandwidth: "1MB/s", alpha: "1s" }] }).links[0]).toMatchObject({ h2dBandwidth: 1e6, alpha: 1e12 });
  });

  it("at most 4096 devices and 4096 links", () => {
    const links = Array.from({ length: 4097 }, (_, i) => ({ ...LINK, name: `l${i}` }));
    expect(issues({ ...BASE, links })).toEqual({ links: "at most 4096 links (a real machine has a few dozen)" });
    const devices = Array.from({ length: 4097 }, (_, i) => ({ kind: "gpu", name: `g${i}`, memory: "2MiB", link: "l0" }));
    expect(issues({ ...BASE, links: [LINK], devices })).toEqual({ devices: "at most 4096 devices (a real machine has a few dozen)" });
  });

  it("a workload that writes more pages than RAM + device memory hold is refused up front; reads and unknown sets are not", () => {
    const spec = (params: object, on = "cpu") => ({ ...BASE, ram: { size: "2MiB" }, workload: { kind: "streaming", on, params } });
    expect(issues(spec({ bytes: "4MiB", writeFraction: 1 }))["workload.params.bytes"]).toMatch(
      /^writes every page of its working set \(4 MiB\), but RAM \(2 MiB\) and device memory \(0 B\) hold only 2 MiB/,
    );
    // A write in every page: 32 accesses of 128 B per page, every 4th a write.
    expect(Object.keys(issues(spec({ bytes: "4MiB", granularity: 128, writeFraction: 0.25 })))).toEqual(["workload.params.bytes"]);
    // Not known to write every page: reads (the zero page), one write in two 4 KiB accesses, a random pattern.
    for (const p of [{ bytes: "4MiB" }, { bytes: "4MiB", writeFraction: 0.5 }]) expect(() => parseMachineSpec(spec(p))).not.toThrow();
    expect(() => parseMachineSpec({ ...BASE, ram: { size: "2MiB" }, workload: { kind: "random", on: "cpu", params: { bytes: "4MiB", writeFraction: 1 } } })).not.toThrow();
    const phases = { kind: "phases", params: { phases: [{ on: "cpu", kind: "streaming", params: { bytes: "1MiB", writeFraction: 1 } }, { on: "cpu", kind: "strided", params: { bytes: "8MiB", stride: "64KiB", writeFraction: 1 } }] } };
    expect(Object.keys(issues({ ...BASE, ram: { size: "2MiB" }, workload: phases }))).toEqual(["workload.params.phases[1].params.bytes"]);
  });

  it("maxSimulatedTime: a duration > 0, kept only when given (a normalized spec parses to itself)", () => {
    const s = parseMachineSpec({ ...BASE, maxSimulatedTime: "10ms" });
    expect(s.maxSimulatedTime).toBe(10_000_000_000);
    expect(parseMachineSpec(s)).toEqual(s);
    expect("maxSimulatedTime" in parseMachineSpec(BASE)).toBe(false);
    expect(issues({ ...BASE, maxSimulatedTime: "0ms" })).toEqual({ maxSimulatedTime: "must be > 0" });
    expect(issues({ ...BASE, maxSimulatedTime: "soon" }).maxSimulatedTime).toMatch(/^expected a duration like "10ms"/);
  });

  it("a seed is a safe integer", () => {
    expect(issues({ ...BASE, seed: 2 ** 60 }).seed).toMatch(/non-negative integer seed/);
  });
});

describe("SpecError's message", () => {
  it("lists the first 100 problems and counts the rest; issues keeps them all", () => {
    const raw: Record<string, unknown> = { ...BASE };
    for (let i = 0; i < 250; i++) raw[`k${i}`] = i;
    let err: SpecError | undefined;
    try {
      parseMachineSpec(raw);
    } catch (e) {
      err = e as SpecError;
    }
    expect(err!.issues).toHaveLength(250);
    const lines = err!.message.split("\n");
    expect(lines[0]).toBe("invalid machine spec (250 problems):");
    expect(lines).toHaveLength(1 + 100 + 1);
    expect(lines[100]).toBe("  k99: unknown key");
    expect(lines[101]).toBe("  … and 150 more (the first 100 are listed)");
  });
});

describe("parseSpecText", () => {
  it("is YAML 1.2 (JSON too); a duplicate key is an error with its path and line", () => {
    expect(parseSpecText('{"a": 1, "b": [1, {"c": 2}]}')).toEqual({ a: 1, b: [1, { c: 2 }] });
    expect(() => parseSpecText("a: 1\nb:\n  c: 1\n  c: 2\n")).toThrowError(/b\.c: duplicate key "c" \(line 4\): a key may appear once in a mapping/);
    expect(() => parseSpecText("list:\n  - { x: 1, x: 2 }\n")).toThrowError(/list\[0\]\.x: duplicate key "x"/);
    expect(() => parseSpecText("a: [1, 2")).toThrowError(/\(spec\): not valid YAML\/JSON/);
  });

  it("refuses a text over 4 MiB before parsing it", () => {
    expect(() => parseSpecText("#".repeat(SPEC_LIMITS.maxSpecTextBytes + 1))).toThrowError(/a machine spec is at most 4 MiB/);
  });

  it("takes time linear in the keys of a mapping (88,000 keys: 30 s with yaml's own duplicate check)", () => {
    const big = (n: number) => JSON.stringify(Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i])));
    const time = (text: string) => {
      const t0 = performance.now();
      parseSpecText(text);
      return performance.now() - t0;
    };
    time(big(1000)); // warm up
    const small = Math.max(1, time(big(11_000)));
    const large = time(big(88_000));
    expect(large / small).toBeLessThan(8 * 4); // 8 times the keys: linear would be ~8×, quadratic 64×
  });
});

describe("linear validation and composition", () => {
  it("MapLinkRegistry.add is O(1): 100,000 links in well under a second; all() is a frozen snapshot", () => {
    const reg = new MapLinkRegistry({ devices: [{ name: "d", link: "x0" }] } as never);
    const t0 = performance.now();
    for (let i = 0; i < 100_000; i++) reg.add({ name: `x${i}` } as Interconnect);
    expect(performance.now() - t0).toBeLessThan(1_000);
    const all = reg.all();
    expect(all).toHaveLength(100_000);
    expect(Object.isFrozen(all)).toBe(true);
    expect(reg.all()).toBe(all);
    reg.add({ name: "late" } as Interconnect);
    expect(all).toHaveLength(100_000); // a snapshot: later adds do not change it
    expect(reg.all()).toHaveLength(100_001);
    expect(reg.ofDevice("d").name).toBe("x0");
  });

  it("4096 devices and 4096 links validate and compose in linear time", () => {
    const n = SPEC_LIMITS.maxDevices;
    const links = Array.from({ length: n }, (_, i) => ({ ...LINK, name: `l${i}` }));
    const devices = Array.from({ length: n }, (_, i) => ({ kind: "gpu", name: `g${i}`, memory: "2MiB", link: `l${i}` }));
    const plugins = [...defaultPlugins(), ...testPlugins()];
    const t0 = performance.now();
    const m = createMachine({ spec: { ...BASE, ram: { size: "1GiB" }, links, devices }, plugins, createKernel: () => null });
    expect(m.links.all()).toHaveLength(n);
    expect(m.links.ofDevice(`g${n - 1}`).name).toBe(`l${n - 1}`);
    // Every device naming a missing link, and every link of an unknown kind: 8192 problems, found in one pass.
    const bad = { ...BASE, links: links.map((l) => ({ ...l, kind: "nope" })), devices: devices.map((d) => ({ ...d, link: "missing", memory: "bad" })) };
    let err: SpecError | undefined;
    try {
      validateMachineSpec(bad, plugins);
    } catch (e) {
      err = e as SpecError;
    }
    expect(err!.issues.length).toBeGreaterThanOrEqual(3 * n);
    expect(err!.message.length).toBeLessThan(40_000);
    expect(performance.now() - t0).toBeLessThan(20_000);
    void m.dispose();
  });
});

describe("componentSpecIssues paths", () => {
  it('a path starting with "^" is relative to the device (or link) the part belongs to', () => {
    const probe: MachinePlugin = {
      name: "Probe",
      kind: "driver",
      provides: ["probe"],
      componentSpecIssues: (ref) => (ref.kind === "driver" ? [{ path: "^memory", message: "too small for the probe" }, { path: "^", message: "the device" }, { path: "knob", message: "bad knob" }] : []),
      apply() {},
    };
    const plugins = [...defaultPlugins(), ...testPlugins(), probe];
    let err: SpecError | undefined;
    try {
      validateMachineSpec({ ...BASE, links: [LINK], devices: [{ kind: "probe", name: "p", memory: "2MiB", link: "l0", driverSpec: { knob: 1 } }] }, plugins);
    } catch (e) {
      err = e as SpecError;
    }
    expect(err!.issues).toEqual([
      { path: "devices[0].memory", message: "too small for the probe" },
      { path: "devices[0]", message: "the device" },
      { path: "devices[0].driverSpec.knob", message: "bad knob" },
    ]);
  });
});
