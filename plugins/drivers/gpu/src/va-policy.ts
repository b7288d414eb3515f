/**
 * Memory-advise hints per VA range (cudaMemAdvise; NVIDIA uvm_policy.c `uvm_api_set_preferred_location` /
 * `uvm_api_set_accessed_by` / `uvm_api_enable_read_duplication`, kept for HMM ranges as uvm_va_policy_node_t in
 * uvm_hmm.c `uvm_hmm_set_preferred_location` / `uvm_hmm_set_accessed_by` → `hmm_set_policy` /
 * uvm_va_policy.c `uvm_va_policy_node_split` [S6]): per mm a sorted list of non-overlapping ranges, each with its
 * preferred location, accessed-by flag (for this device) and read-mostly flag. `set` splits the ranges at the
 * advised boundaries, changes only the fields the advice names, and merges neighbours that end up equal
 * (uvm_va_policy_node_try_merge). The driver reports the hints in every FaultQuery; it does not act on them (the
 * defaults of @hmmsim/policy do not read them — an advise policy does).
 *
 * Read-mostly is stored and reported only: UVM's own HMM mode does not implement read duplication
 * (uvm_hmm.h `uvm_hmm_set_read_duplication`: "TODO: Bug 3660922: need to implement HMM read duplication support";
 * it returns NV_OK after validating the range).
 */
import { HOST_LOCATION, type MemAdvice } from "@hmmsim/policy";
import type { PageAdvice } from "./policy-queries.js";

/** One advised range [start, end) of an mm. */
export interface VaPolicyRange extends PageAdvice {
  start: number;
  end: number;
}

const KEYS = new Set(["preferredLocation", "accessedBy", "readMostly"]);

/** The advice's problems (field, rule), empty when valid; `devices` are the machine's device names. */
export function memAdviceIssues(advice: unknown, devices: readonly string[]): { field: string; rule: string }[] {
  if (advice === null || typeof advice !== "object" || Array.isArray(advice)) {
    return [{ field: "advice", rule: "must be an object { preferredLocation?, accessedBy?, readMostly? }" }];
  }
  const out: { field: string; rule: string }[] = [];
  const a = advice as Record<string, unknown>;
  for (const k of Object.keys(a)) if (!KEYS.has(k)) out.push({ field: `advice.${k}`, rule: `unknown field (known: ${[...KEYS].join(", ")})` });
  const p = a.preferredLocation;
  if (p !== undefined && p !== null && (typeof p !== "string" || (p !== HOST_LOCATION && !devices.includes(p)))) {
    out.push({ field: "advice.preferredLocation", rule: `must be "${HOST_LOCATION}", a device of the machine (${devices.join(", ")}) or null, got ${JSON.stringify(p) ?? String(p)}` });
  }
  for (const k of ["accessedBy", "readMostly"] as const) {
    if (a[k] !== undefined && typeof a[k] !== "boolean") out.push({ field: `advice.${k}`, rule: `must be a boolean, got ${JSON.stringify(a[k]) ?? String(a[k])}` });
  }
  return out;
}

export class VaPolicies {
  private readonly byMm = new Map<object, VaPolicyRange[]>();
  /** Ranges stored, over every mm (0: the fault path skips the lookup). */
  size = 0;

  /** The ranges of `mm`, sorted (a copy). */
  ranges(mm: object): VaPolicyRange[] {
    return (this.byMm.get(mm) ?? []).map((r) => ({ ...r }));
  }

  /** The advice of the range holding `addr` of `mm`, or null (binary search). */
  lookup(mm: object, addr: number): VaPolicyRange | null {
    const list = this.byMm.get(mm);
    if (list === undefined) return null;
    let lo = 0;
    let hi = list.length - 1;
    while (lo <= hi) {
      const m = (lo + hi) >> 1;
      const r = list[m]!;
      if (addr < r.start) hi = m - 1;
      else if (addr >= r.end) lo = m + 1;
      else return r;
    }
    return null;
  }

  /** Applies a validated `advice` to [start, end) of `mm`. */
  set(mm: object, start: number, end: number, advice: MemAdvice): void {
    const old = this.byMm.get(mm) ?? [];
    const out: VaPolicyRange[] = [];
    const apply = (r: VaPolicyRange): VaPolicyRange => ({
      start: r.start,
      end: r.end,
      preferredLocation: advice.preferredLocation !== undefined ? advice.preferredLocation : r.preferredLocation,
      accessedBy: advice.accessedBy ?? r.accessedBy,
      readMostly: advice.readMostly ?? r.readMostly,
    });
    let cur = start;
    for (const r of old) {
      if (r.end <= start || r.start >= end) {
        if (r.start >= end && cur < end) {
          out.push(apply({ start: cur, end, preferredLocation: null, accessedBy: false, readMostly: false }));
          cur = end;
        }
        out.push(r);
        continue;
      }
      // r overlaps [start, end): keep its parts outside, advise its part inside, fill the gap before it.
      if (r.start < start) out.push({ ...r, end: start });
      if (cur < r.start) out.push(apply({ start: cur, end: r.start, preferredLocation: null, accessedBy: false, readMostly: false }));
      out.push(apply({ ...r, start: Math.max(r.start, start), end: Math.min(r.end, end) }));
      cur = Math.min(r.end, end);
      if (r.end > end) out.push({ ...r, start: end });
    }
    if (cur < end) out.push(apply({ start: cur, end, preferredLocation: null, accessedBy: false, readMostly: false }));
    // Drop ranges with no hint at all and merge equal neighbours (uvm_va_policy_node_try_merge).
    const merged: VaPolicyRange[] = [];
    for (const r of out) {
      if (r.preferredLocation === null && !r.accessedBy && !r.readMostly) continue;
      const p = merged[merged.length - 1];
      if (p && p.end === r.start && p.preferredLocation === r.preferredLocation && p.accessedBy === r.accessedBy && p.readMostly === r.readMostly) p.end = r.end;
      else merged.push({ ...r });
    }
    this.size += merged.length - old.length;
    if (merged.length === 0) this.byMm.delete(mm);
    else this.byMm.set(mm, merged);
  }
}
