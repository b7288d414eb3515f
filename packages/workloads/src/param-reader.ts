import { parseSize } from "./size.js";
import type { ParamIssue } from "./workload-param-error.js";

export interface NumberRule {
  /** Used when the field is absent; a field without a default is required. */
  default?: number;
  min?: number;
  max?: number;
}

/**
 * Reads a generator's plain-JSON parameters field by field, collecting every problem instead of stopping at the
 * first one. Fields never read are reported as unknown by `finish()`. Module-private helper of the generators.
 */
export class ParamReader {
  readonly issues: ParamIssue[] = [];
  private readonly seen = new Set<string>();
  private readonly obj: Record<string, unknown>;

  constructor(params: unknown, private readonly prefix = "") {
    if (params === undefined || params === null) {
      this.obj = {};
    } else if (typeof params !== "object" || Array.isArray(params)) {
      this.obj = {};
      this.issues.push({ path: prefix, message: `expected an object of parameters, got ${describe(params)}` });
    } else {
      this.obj = params as Record<string, unknown>;
    }
  }

  has(name: string): boolean {
    return this.obj[name] !== undefined;
  }

  raw(name: string): unknown {
    this.seen.add(name);
    return this.obj[name];
  }

  issue(name: string, message: string): void {
    this.issues.push({ path: this.path(name), message });
  }

  /** A size in bytes (number or "4KiB"-style string). Returns the default (or NaN when invalid/missing). */
  size(name: string, rule: NumberRule = {}): number {
    const v = this.raw(name);
    if (v === undefined) return this.missing(name, rule);
    const n = parseSize(v);
    if (n === undefined) {
      this.issue(name, `expected a size like "16GiB" or a whole number of bytes, got ${describe(v)}`);
      return NaN;
    }
    return this.range(name, n, rule, " bytes");
  }

  int(name: string, rule: NumberRule = {}): number {
    const v = this.raw(name);
    if (v === undefined) return this.missing(name, rule);
    if (typeof v !== "number" || !Number.isSafeInteger(v)) {
      this.issue(name, `expected an integer, got ${describe(v)}`);
      return NaN;
    }
    return this.range(name, v, rule, "");
  }

  number(name: string, rule: NumberRule = {}): number {
    const v = this.raw(name);
    if (v === undefined) return this.missing(name, rule);
    if (typeof v !== "number" || !Number.isFinite(v)) {
      this.issue(name, `expected a finite number, got ${describe(v)}`);
      return NaN;
    }
    return this.range(name, v, rule, "");
  }

  string(name: string, rule: { default?: string; oneOf?: readonly string[] } = {}): string {
    const v = this.raw(name);
    if (v === undefined) {
      if (rule.default !== undefined) return rule.default;
      this.issue(name, "required");
      return "";
    }
    if (typeof v !== "string" || v.length === 0) {
      this.issue(name, `expected a non-empty string, got ${describe(v)}`);
      return "";
    }
    if (rule.oneOf && !rule.oneOf.includes(v)) {
      this.issue(name, `expected one of ${rule.oneOf.map((s) => JSON.stringify(s)).join(", ")}, got ${JSON.stringify(v)}`);
      return "";
    }
    return v;
  }

  /** Reports every field that was present but never read. Returns all issues collected. */
  finish(): ParamIssue[] {
    for (const key of Object.keys(this.obj)) {
      if (!this.seen.has(key)) this.issue(key, "unknown field");
    }
    return this.issues;
  }

  private path(name: string): string {
    return this.prefix ? `${this.prefix}.${name}` : name;
  }

  private missing(name: string, rule: NumberRule): number {
    if (rule.default !== undefined) return rule.default;
    this.issue(name, "required");
    return NaN;
  }

  private range(name: string, n: number, rule: NumberRule, unit: string): number {
    if (rule.min !== undefined && n < rule.min) {
      this.issue(name, `must be >= ${rule.min}${unit}, got ${n}`);
      return NaN;
    }
    if (rule.max !== undefined && n > rule.max) {
      this.issue(name, `must be <= ${rule.max}${unit}, got ${n}`);
      return NaN;
    }
    return n;
  }
}

export function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return "an array";
  if (v === null) return "null";
  if (typeof v === "object") return "an object";
  return String(v);
}
