/**
 * What a spec needs to *run* beyond @hmmsim/machine's schema and its plugins' checks: every trace file the
 * workload names must exist. Checked on the raw spec (guarded like the schema's own cross-field checks), so that
 * spec-source.ts reports these problems together with the schema's and the plugins', every one with its path, in
 * one SpecError.
 */
import type { SpecIssue } from "@hmmsim/machine";
import { existsSync, statSync } from "node:fs";

type Raw = Record<string, unknown>;
const isObj = (v: unknown): v is Raw => typeof v === "object" && v !== null && !Array.isArray(v);

/** A trace `file` (already absolute: spec-source resolves it against the spec's directory) that cannot be read. */
export function traceFileIssues(w: unknown): SpecIssue[] {
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
