import { AccessPattern, type AccessBatch, checkWholePages } from "./access-pattern.js";
import type { PatternDefinition } from "./pattern-definition.js";

/**
 * A phase that makes no access but tells a device's driver something about a range of the workload's buffer:
 *
 *  - `advise`: memory-advise hints for [base, base + bytes) — cudaMemAdvise / UVM's UVM_SET_PREFERRED_LOCATION,
 *    UVM_SET_ACCESSED_BY, UVM_ENABLE_READ_DUPLICATION (kernel-open/nvidia-uvm/uvm_policy.c) — handed to the driver
 *    of the phase's device (`DeviceDriver.advise`);
 *  - `prefetch`: an explicit migration of the range to the phase's device — cudaMemPrefetchAsync / UVM_MIGRATE
 *    (uvm_migrate.c) — through the driver's `migrateRange`.
 *
 * Both run on a device (`on` names it); the range must be whole 4 KiB pages.
 */
export interface RangeAdvice {
  /** "host", a device name, or null (unset); absent: left as it is. */
  preferredLocation?: string | null;
  accessedBy?: boolean;
  readMostly?: boolean;
}

export interface AdviseParams {
  /** Bytes of the range (required), from `base`. */
  bytes: number | string;
  /** First byte of the range, an offset in the workload's buffer like every pattern's `base` (default 0). */
  base?: number | string;
  /** "host", a device name, or "none" to unset. */
  preferredLocation?: string;
  accessedBy?: boolean;
  readMostly?: boolean;
}

export interface PrefetchParams {
  bytes: number | string;
  base?: number | string;
}

/** A phase without accesses acting on [base, base + workingSetBytes): see `advise` and `prefetch`. */
export class RangeActionPattern extends AccessPattern {
  readonly expectedLength = 0;

  constructor(
    readonly kind: "advise" | "prefetch",
    readonly base: number,
    readonly workingSetBytes: number,
    /** The hints an advise phase sets (empty for prefetch). */
    readonly advice: Readonly<RangeAdvice>,
  ) {
    super();
  }

  fill(_b: AccessBatch): number {
    return 0;
  }

  reset(): void {}
}

/** Is `p` a range-action phase (advise / prefetch) rather than a stream of accesses? */
export function isRangeAction(p: AccessPattern): p is RangeActionPattern {
  return p instanceof RangeActionPattern;
}

function boolParam(r: Parameters<PatternDefinition["read"]>[0], name: string): boolean | undefined {
  const v = r.raw(name);
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") {
    r.issue(name, `expected true or false, got ${typeof v === "string" ? JSON.stringify(v) : String(v)}`);
    return undefined;
  }
  return v;
}

function readRange(r: Parameters<PatternDefinition["read"]>[0]): { base: number; bytes: number } {
  const bytes = r.size("bytes", { min: 4096 });
  const base = r.size("base", { default: 0 });
  checkWholePages(r, bytes);
  if (base % 4096 !== 0) r.issue("base", `must be 4KiB-aligned (a multiple of 4096), got ${base}`);
  return { base, bytes };
}

export const advise: PatternDefinition = {
  kind: "advise",
  read(r) {
    const { base, bytes } = readRange(r);
    const advice: RangeAdvice = {};
    if (r.has("preferredLocation")) {
      const loc = r.string("preferredLocation");
      if (loc !== "") advice.preferredLocation = loc === "none" ? null : loc;
    } else r.raw("preferredLocation");
    const accessedBy = boolParam(r, "accessedBy");
    if (accessedBy !== undefined) advice.accessedBy = accessedBy;
    const readMostly = boolParam(r, "readMostly");
    if (readMostly !== undefined) advice.readMostly = readMostly;
    if (!r.has("preferredLocation") && !r.has("accessedBy") && !r.has("readMostly")) {
      r.issue("preferredLocation", "an advise phase sets at least one of preferredLocation, accessedBy, readMostly");
    }
    return () => new RangeActionPattern("advise", base, bytes, Object.freeze(advice));
  },
};

export const prefetch: PatternDefinition = {
  kind: "prefetch",
  read(r) {
    const { base, bytes } = readRange(r);
    return () => new RangeActionPattern("prefetch", base, bytes, Object.freeze({}));
  },
};
