import { describe, expect, it } from "vitest";
import { SpecError, parseMachineSpec } from "./machine-spec.js";

const good = `
name: a100-pcie4
seed: 7
bytes: off
cpus: { count: 16, frequency: 3GHz }
ram: { size: 64GiB }
links:
  - { name: pcie0, kind: pcie4x16 }
devices:
  - { kind: gpu, name: gpu0, memory: 40GiB, link: pcie0 }
workload: { kind: random, on: gpu0, params: { bytes: 8GiB, count: 1000 } }
`;

function issuesOf(input: string | object) {
  try {
    parseMachineSpec(input);
  } catch (e) {
    expect(e).toBeInstanceOf(SpecError);
    return (e as SpecError).issues;
  }
  throw new Error("expected a SpecError");
}

describe("parseMachineSpec", () => {
  it("parses YAML and normalizes units and defaults", () => {
    const s = parseMachineSpec(good);
    expect(s).toEqual({
      name: "a100-pcie4",
      seed: 7,
      bytes: false,
      cpus: { count: 16, frequency: 3e9, activeCores: 1 },
      ram: { size: 64 * 2 ** 30 },
      links: [{ name: "pcie0", kind: "pcie4x16" }],
      devices: [{ kind: "gpu", name: "gpu0", memory: 40 * 2 ** 30, memoryType: "private", driver: "gpu", policy: "on-demand", link: "pcie0" }],
      workload: { kind: "random", on: "gpu0", params: { bytes: "8GiB", count: 1000 } },
      plugins: [],
    });
    expect(parseMachineSpec(s)).toEqual(s); // a normalized spec parses to itself
    expect(parseMachineSpec(JSON.stringify(s))).toEqual(s);
  });

  it("lists every error at once, each with its path", () => {
    const issues = issuesOf({
      cpus: { count: 0 },
      ram: { size: "lots" },
      links: [
        { name: "pcie0", kind: "pcie9x16" },
        { name: "c", kind: "custom", h2dBandwidth: "25GB/s", alpha: "1.5us", coherent: false },
        { name: "p", kind: "pcie4x16", cpuAccessLatency: "80ns" },
      ],
      devices: [
        { kind: "gpu", name: "gpu0", memory: "40 gigs", link: "pcie1", colour: "green" },
        { kind: "tpu", name: "gpu0", memory: 0, link: "c", memoryType: "coherent" },
      ],
      workload: { kind: "random", on: "gpu7", params: { bytes: "1GiB", stride: 4 } },
      extra: 1,
    });
    const byPath = Object.fromEntries(issues.map((i) => [i.path, i.message]));
    expect(byPath["devices[0].memory"]).toBe('expected a size like "16GiB", got "40 gigs"');
    expect(byPath["devices[0].colour"]).toBe("unknown key");
    expect(byPath["devices[0].link"]).toBe('no link named "pcie1" (declared: pcie0, c, p)');
    expect(byPath["devices[1].name"]).toBe('duplicate device name "gpu0"');
    expect(byPath["devices[1].memory"]).toBe("must be > 0");
    expect(byPath["cpus.count"]).toBe("must be >= 1");
    expect(byPath["ram.size"]).toBe('expected a size like "16GiB", got "lots"');
    expect(byPath["workload.on"]).toMatch(/got "gpu7"/);
    expect(byPath["workload.params.stride"]).toBe("unknown field");
    expect(byPath["extra"]).toBe("unknown key");
    expect(issues.length).toBe(Object.keys(byPath).length);
    expect(issues.length).toBe(10);
  });

  it("device kinds, drivers, policies and link kinds are names (resolved by plugins in createMachine); a link keeps its plugin's fields", () => {
    const s = parseMachineSpec({
      cpus: { count: 1 },
      ram: { size: "2MiB" },
      links: [{ name: "w", kind: "warp-drive", alpha: "1us", warpFactor: 9, field: { nested: true } }],
      devices: [{ kind: "tpu", name: "t", memory: "2MiB", link: "w", policy: "mine", policySpec: { n: 2 } }],
      plugins: ["./my-policy.js", "hmmsim-plugin-x"],
    });
    expect(s.links[0]).toEqual({ name: "w", kind: "warp-drive", alpha: 1_000_000, warpFactor: 9, field: { nested: true } });
    expect(s.devices[0]).toMatchObject({ kind: "tpu", driver: "tpu", policy: "mine", policySpec: { n: 2 } });
    expect(s.plugins).toEqual(["./my-policy.js", "hmmsim-plugin-x"]);
    const byPath = Object.fromEntries(
      issuesOf({ cpus: { count: 1 }, ram: { size: "2MiB" }, links: [{ name: "w", kind: "a b" }], devices: [{ kind: "t", name: "t", memory: "2MiB", link: "w", policy: "", policySpec: 3 }], plugins: [""] }).map((i) => [i.path, i.message]),
    );
    expect(byPath).toEqual({
      "links[0].kind": "expected a name of letters, digits, '_', '.', '-'",
      "devices[0].policy": "expected a name of letters, digits, '_', '.', '-'",
      "devices[0].policySpec": "expected a mapping of the policy's spec fields",
      "plugins[0]": "expected a plugin module: an installed package name or a relative path",
    });
  });

  it("cpus.activeCores (the mm's cpumask: CPUs a TLB shootdown IPIs) is a whole number within cpus.count", () => {
    expect(parseMachineSpec({ cpus: { count: 8, activeCores: 8 }, ram: { size: "2MiB" } }).cpus.activeCores).toBe(8);
    const byPath = (raw: object) => Object.fromEntries(issuesOf(raw).map((i) => [i.path, i.message]));
    expect(byPath({ cpus: { count: 8, activeCores: 9 }, ram: { size: "2MiB" } })).toEqual({ "cpus.activeCores": "must be <= cpus.count (8), got 9" });
    expect(byPath({ cpus: { count: 8, activeCores: 0 }, ram: { size: "2MiB" } })).toEqual({ "cpus.activeCores": "must be >= 1" });
    expect(byPath({ cpus: { count: 8, activeCores: 1.5 }, ram: { size: "2MiB" } })).toEqual({ "cpus.activeCores": "expected a whole number of CPUs" });
  });

  it("devices[].driverSpec is kept as plain JSON for the driver plugin; a non-mapping is an error with its path", () => {
    const base = { cpus: { count: 1 }, ram: { size: "2MiB" }, links: [{ name: "p", kind: "pcie4x16" }] };
    const s = parseMachineSpec({ ...base, devices: [{ kind: "gpu", name: "g", memory: "2MiB", link: "p", driverSpec: { batchSize: 64 } }] });
    expect(s.devices[0]!.driverSpec).toEqual({ batchSize: 64 });
    expect("driverSpec" in parseMachineSpec({ ...base, devices: [{ kind: "gpu", name: "g", memory: "2MiB", link: "p" }] }).devices[0]!).toBe(false);
    const byPath = Object.fromEntries(
      issuesOf({ ...base, devices: [{ kind: "gpu", name: "g", memory: "2MiB", link: "p", driverSpec: [1, 2] }] }).map((i) => [i.path, i.message]),
    );
    expect(byPath).toEqual({ "devices[0].driverSpec": "expected a mapping of the driver's spec fields" });
  });

  it("SpecError's message lists the issues", () => {
    expect(() => parseMachineSpec({ cpus: { count: 1 }, ram: { size: "3MiB" } })).toThrowError(
      "invalid machine spec (1 problem):\n  ram.size: must be a positive multiple of 2MiB, got 3145728",
    );
  });

  it("reports YAML syntax errors and non-objects", () => {
    expect(issuesOf("cpus: [1, 2")[0]!.message).toMatch(/^not valid YAML\/JSON/);
    expect(issuesOf("42")).toEqual([{ path: "", message: "expected an object (a mapping), got 42" }]);
  });

  it("normalizes the common link fields' units whatever the kind", () => {
    const s = parseMachineSpec({
      cpus: { count: 4 },
      ram: { size: "8GiB" },
      links: [
        { name: "c2c", kind: "nvlink-c2c" },
        { name: "x", kind: "custom", h2dBandwidth: "10GiB/s", d2hBandwidth: 1e9, alpha: "2us", coherent: true, cpuAccessLatency: "100ns" },
      ],
      devices: [{ kind: "gpu", name: "g", memory: "1GiB", link: "x", memoryType: "coherent" }],
    });
    expect(s.links[1]).toEqual({ name: "x", kind: "custom", h2dBandwidth: 10 * 2 ** 30, d2hBandwidth: 1e9, alpha: 2_000_000, coherent: true, cpuAccessLatency: 100_000 });
    expect(s.bytes).toBe(true);
    expect(s.workload).toBeNull();
  });
});
