import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ACCESS_ATOMIC, ACCESS_READ, ACCESS_WRITE, type AccessType, type FaultQuery } from "@hmmsim/policy";
import { AdvisePolicyPlugin, PLUGIN_NAME, POLICY_NAME, adviseShouldMigrate } from "./advise.js";

/** A fault of gpu0 with the given hints (the fields the rules read). */
function fault(access: AccessType, hints: { preferredLocation?: string | null; accessedBy?: boolean; readMostly?: boolean }): FaultQuery {
  return { device: "gpu0", access, write: access !== ACCESS_READ, preferredLocation: null, accessedBy: false, readMostly: false, ...hints } as FaultQuery;
}

describe("adviseShouldMigrate (uvm_va_block.c block_select_processor_residency, page in system memory)", () => {
  it("no hint: no answer (the composed policy decides)", () => {
    for (const a of [ACCESS_READ, ACCESS_WRITE, ACCESS_ATOMIC] as const) expect(adviseShouldMigrate(fault(a, {}))).toBeUndefined();
  });

  it("read-mostly: a read maps the shared system page; a write or an atomic collapses the page to the writer", () => {
    expect(adviseShouldMigrate(fault(ACCESS_READ, { readMostly: true }))).toBe(false);
    expect(adviseShouldMigrate(fault(ACCESS_WRITE, { readMostly: true }))).toBe(true);
    expect(adviseShouldMigrate(fault(ACCESS_ATOMIC, { readMostly: true }))).toBe(true);
    // read duplication comes first: it wins over a preferred location elsewhere and over accessed-by
    expect(adviseShouldMigrate(fault(ACCESS_WRITE, { readMostly: true, preferredLocation: "host", accessedBy: true }))).toBe(true);
    expect(adviseShouldMigrate(fault(ACCESS_READ, { readMostly: true, preferredLocation: "gpu0" }))).toBe(false);
  });

  it("the faulting device as preferred location migrates, even when it is also in accessed-by", () => {
    expect(adviseShouldMigrate(fault(ACCESS_READ, { preferredLocation: "gpu0" }))).toBe(true);
    expect(adviseShouldMigrate(fault(ACCESS_WRITE, { preferredLocation: "gpu0", accessedBy: true }))).toBe(true);
  });

  it("accessed-by keeps the page where it is and maps it remotely", () => {
    expect(adviseShouldMigrate(fault(ACCESS_READ, { accessedBy: true }))).toBe(false);
    expect(adviseShouldMigrate(fault(ACCESS_WRITE, { accessedBy: true, preferredLocation: "gpu1" }))).toBe(false);
  });

  it("preferred location host maps remotely; another device as preferred location is not this policy's to decide", () => {
    expect(adviseShouldMigrate(fault(ACCESS_WRITE, { preferredLocation: "host" }))).toBe(false);
    expect(adviseShouldMigrate(fault(ACCESS_READ, { preferredLocation: "gpu1" }))).toBeUndefined();
  });
});

describe("AdvisePolicyPlugin", () => {
  it("is a policy plugin providing advise, with its package's version, and no policySpec fields", () => {
    const p = new AdvisePolicyPlugin();
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    expect(p).toMatchObject({ name: PLUGIN_NAME, kind: "policy", provides: [POLICY_NAME], version: pkg.version });
    const device = { kind: "gpu", name: "g", memory: 2 << 20, memoryType: "private", driver: "gpu", policy: POLICY_NAME, link: "l0" } as const;
    expect(p.componentSpecIssues({ kind: "policy", name: POLICY_NAME, spec: undefined, device })).toEqual([]);
    expect(p.componentSpecIssues({ kind: "policy", name: POLICY_NAME, spec: { ranges: [] }, device })).toEqual([
      { path: "ranges", message: "unknown field (advise has no policySpec fields)" },
    ]);
  });
});
