import { readFileSync } from "node:fs";
import type { AccessPattern } from "./access-pattern.js";
import { bfs } from "./bfs.js";
import { ParamReader, describe } from "./param-reader.js";
import type { PatternContext, PatternDefinition } from "./pattern-definition.js";
import { random } from "./random.js";
import { advise, prefetch } from "./range-action.js";
import { stencil } from "./stencil.js";
import { strided } from "./strided.js";
import { streaming } from "./streaming.js";
import { trace } from "./trace.js";
import { type ParamIssue, WorkloadParamError } from "./workload-param-error.js";

/** Every generator kind, by name. */
export const PATTERNS: Readonly<Record<string, PatternDefinition>> = Object.freeze({
  streaming,
  strided,
  random,
  stencil,
  bfs,
  trace,
  advise,
  prefetch,
});
export type PatternKind = "streaming" | "strided" | "random" | "stencil" | "bfs" | "trace" | "advise" | "prefetch";
export const PATTERN_KINDS: readonly PatternKind[] = Object.freeze(["streaming", "strided", "random", "stencil", "bfs", "trace", "advise", "prefetch"]);
export const WORKLOAD_KINDS: readonly (PatternKind | "phases")[] = Object.freeze([...PATTERN_KINDS, "phases"]);

/**
 * Who runs a phase: "cpu", "device" (the machine's first device), or a device name from the machine spec.
 * Default "device".
 */
export type PhaseTarget = string;

/**
 * A workload as written in a machine spec: one pattern (`kind` + `params`, run on `on`), or
 * `{ kind: "phases", params: { phases: [{ on, kind, params }, …] } }`: phases run one after another.
 */
export interface WorkloadSpec {
  kind: string;
  params?: unknown;
  on?: PhaseTarget;
}

export interface WorkloadPhase {
  readonly on: PhaseTarget;
  readonly pattern: AccessPattern;
}

export interface Workload {
  readonly kind: string;
  readonly phases: readonly WorkloadPhase[];
}

const defaultContext: PatternContext = { readText: (file) => readFileSync(file, "utf8") };

function checkPattern(kind: unknown, params: unknown, ctx: PatternContext, prefix: string, kindPath: string): { issues: ParamIssue[]; make?: () => AccessPattern } {
  const def = typeof kind === "string" ? PATTERNS[kind] : undefined;
  if (!def) {
    return { issues: [{ path: kindPath, message: `expected one of ${PATTERN_KINDS.join(", ")}, got ${describe(kind)}` }] };
  }
  const r = new ParamReader(params, prefix);
  const make = def.read(r, ctx);
  const issues = r.finish();
  return issues.length ? { issues } : { issues, make };
}

/** Validates one pattern's params; returns every issue (paths are field names, e.g. "stride"). */
export function validatePattern(kind: string, params: unknown, ctx: PatternContext = {}): ParamIssue[] {
  return checkPattern(kind, params, { ...defaultContext, ...ctx, seed: ctx.seed ?? 0 }, "", "kind").issues;
}

/** Builds a pattern; throws WorkloadParamError listing every bad field. */
export function createPattern(kind: PatternKind, params: unknown, ctx: PatternContext = {}): AccessPattern {
  const { issues, make } = checkPattern(kind, params, { ...defaultContext, ...ctx }, "", "kind");
  if (!make) throw new WorkloadParamError(kind, issues);
  return make();
}

function checkWorkload(spec: unknown, ctx: PatternContext): { issues: ParamIssue[]; make?: () => Workload } {
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
    return { issues: [{ path: "", message: `expected { kind, params }, got ${describe(spec)}` }] };
  }
  const s = spec as Record<string, unknown>;
  const issues: ParamIssue[] = [];
  for (const key of Object.keys(s)) {
    if (key !== "kind" && key !== "params" && key !== "on") issues.push({ path: key, message: "unknown field" });
  }
  const onOf = (v: unknown, path: string): string => {
    if (v === undefined) return "device";
    if (typeof v !== "string" || v.length === 0) issues.push({ path, message: `expected "cpu", "device" or a device name, got ${describe(v)}` });
    return String(v);
  };
  if (s.kind === "phases") {
    if (s.on !== undefined) issues.push({ path: "on", message: 'not allowed on "phases" (give "on" per phase)' });
    const p = s.params as Record<string, unknown> | undefined;
    if (typeof p !== "object" || p === null || !Array.isArray(p.phases) || p.phases.length === 0) {
      issues.push({ path: "params.phases", message: "expected a non-empty list of { on, kind, params }" });
      return { issues };
    }
    for (const key of Object.keys(p)) if (key !== "phases") issues.push({ path: `params.${key}`, message: "unknown field" });
    const makers: { on: string; make?: () => AccessPattern }[] = [];
    p.phases.forEach((ph: unknown, i: number) => {
      const at = `params.phases[${i}]`;
      if (typeof ph !== "object" || ph === null || Array.isArray(ph)) {
        issues.push({ path: at, message: `expected { on, kind, params }, got ${describe(ph)}` });
        return;
      }
      const q = ph as Record<string, unknown>;
      for (const key of Object.keys(q)) {
        if (key !== "kind" && key !== "params" && key !== "on") issues.push({ path: `${at}.${key}`, message: "unknown field" });
      }
      const on = onOf(q.on, `${at}.on`);
      if (on === "cpu" && (q.kind === "advise" || q.kind === "prefetch")) issues.push({ path: `${at}.on`, message: `a ${q.kind} phase runs on a device (its driver's API), not on the cpu` });
      const r = checkPattern(q.kind, q.params, ctx, `${at}.params`, `${at}.kind`);
      issues.push(...r.issues);
      makers.push({ on, make: r.make });
    });
    if (issues.length) return { issues };
    return { issues, make: () => ({ kind: "phases", phases: makers.map((m) => ({ on: m.on, pattern: m.make!() })) }) };
  }
  const on = onOf(s.on, "on");
  if (on === "cpu" && (s.kind === "advise" || s.kind === "prefetch")) issues.push({ path: "on", message: `a ${s.kind} phase runs on a device (its driver's API), not on the cpu` });
  const r = checkPattern(s.kind, s.params, ctx, "params", "kind");
  issues.push(...r.issues);
  if (issues.length) return { issues };
  return { issues, make: () => ({ kind: String(s.kind), phases: [{ on, pattern: r.make!() }] }) };
}

/**
 * Validates a workload spec without building it (no trace file is read). Paths are relative to the spec:
 * "kind", "params.bytes", "params.phases[1].params.stride".
 */
export function validateWorkload(spec: unknown, ctx: PatternContext = {}): ParamIssue[] {
  return checkWorkload(spec, { ...defaultContext, ...ctx, seed: ctx.seed ?? 0 }).issues;
}

/** Builds a workload; throws WorkloadParamError (kind "workload") listing every bad field. */
export function createWorkload(spec: WorkloadSpec, ctx: PatternContext = {}): Workload {
  const { issues, make } = checkWorkload(spec, { ...defaultContext, ...ctx });
  if (!make) throw new WorkloadParamError("workload", issues);
  return make();
}
