/**
 * What a spec needs to *run* in this build, beyond @hmmsim/machine's schema: every device's driver and policy must
 * be a plugin the CLI provides, a GPU device's `driverSpec` must be a valid GPU driver spec laid over the driver's
 * defaults (gpuDriverSpecIssues), and every trace file the workload names must exist. Checked on the raw spec
 * (guarded like the schema's own cross-field checks), so that spec-source.ts reports these problems together with
 * the schema's, every one with its path, in one SpecError.
 */
import type { SpecIssue } from "@hmmsim/machine";
import { defaultSpec as gpuDefaultSpec, gpuDriverSpecIssues } from "@hmmsim/driver-gpu";
import { POLICY_NAME as ON_DEMAND } from "@hmmsim/policy-on-demand";
import { existsSync, statSync } from "node:fs";

/** Device drivers and policies this build can run (by the spec's `driver` / `policy` names). */
export const DRIVERS: readonly string[] = Object.freeze(["gpu"]);
export const POLICIES: readonly string[] = Object.freeze([ON_DEMAND]);

type Raw = Record<string, unknown>;
const isObj = (v: unknown): v is Raw => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The problems that keep `raw` (a machine spec object, raw or normalized) from running in this build, each with
 * its spec path. Fields the schema rejects (a driver that is not a string, a driverSpec that is not a mapping) are
 * left to the schema's own messages.
 */
export function runSpecIssues(raw: unknown): SpecIssue[] {
  const out: SpecIssue[] = [];
  if (!isObj(raw)) return out;
  const devices = Array.isArray(raw.devices) ? raw.devices : [];
  devices.forEach((d, i) => {
    if (!isObj(d)) return;
    // The schema's defaults: driver = the device's kind, policy = on-demand.
    const driver = typeof d.driver === "string" ? d.driver : typeof d.kind === "string" ? d.kind : undefined;
    if (driver !== undefined && driver !== "" && !DRIVERS.includes(driver)) {
      const what = typeof d.driver === "string" ? `driver ${JSON.stringify(driver)}` : `driver ${JSON.stringify(driver)} (the default for kind ${driver})`;
      out.push({ path: `devices[${i}].driver`, message: `${what} is not in this build (drivers: ${DRIVERS.join(", ")})` });
    }
    const policy = typeof d.policy === "string" ? d.policy : ON_DEMAND;
    if (policy !== "" && !POLICIES.includes(policy)) {
      out.push({ path: `devices[${i}].policy`, message: `policy ${JSON.stringify(policy)} is not in this build (policies: ${POLICIES.join(", ")})` });
    }
    if (driver === "gpu" && isObj(d.driverSpec)) {
      for (const p of gpuDriverSpecIssues(d.driverSpec, gpuDefaultSpec)) {
        out.push({ path: `devices[${i}].driverSpec${p.field === "spec" ? "" : `.${p.field}`}`, message: p.rule });
      }
    }
  });
  out.push(...traceFileIssues(raw.workload));
  return out;
}

/** A trace `file` (already absolute: spec-source resolves it against the spec's directory) that cannot be read. */
function traceFileIssues(w: unknown): SpecIssue[] {
  if (!isObj(w)) return [];
  const check = (kind: unknown, params: unknown, path: string): SpecIssue[] => {
    if (kind !== "trace" || !isObj(params) || typeof params.file !== "string" || params.file === "") return [];
    const f = params.file;
    if (!existsSync(f)) return [{ path: `${path}.params.file`, message: `trace file not found: ${f}` }];
    if (statSync(f).isDirectory()) return [{ path: `${path}.params.file`, message: `is a directory, not a trace file: ${f}` }];
    return [];
  };
  if (w.kind === "phases" && isObj(w.params) && Array.isArray(w.params.phases)) {
    return w.params.phases.flatMap((p, i) => (isObj(p) ? check(p.kind, p.params, `workload.params.phases[${i}]`) : []));
  }
  return check(w.kind, w.params, "workload");
}
