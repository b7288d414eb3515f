import { AccessPattern, type AccessBatch, type Common, type CommonParams, checkAccessCount, checkWholePages, isWriteAt, readCommon } from "./access-pattern.js";
import type { PatternDefinition } from "./pattern-definition.js";

export interface StreamingParams extends CommonParams {
  /** Working-set size (required). */
  bytes: number | string;
  /** Distance between consecutive accesses (default 4KiB: one access per page). */
  granularity?: number | string;
}

/** Sequential sweep: base, base+g, base+2g, … over `bytes`, `passes` times. */
export class StreamingPattern extends AccessPattern {
  readonly kind = "streaming";
  readonly base: number;
  readonly workingSetBytes: number;
  readonly expectedLength: number;
  private readonly count: number;
  private i = 0;
  private pass = 0;
  private seq = 0;

  constructor(
    bytes: number,
    private readonly granularity: number,
    private readonly common: Common,
  ) {
    super();
    this.base = common.base;
    this.workingSetBytes = bytes;
    this.count = Math.ceil(bytes / granularity);
    this.expectedLength = this.count * common.passes;
  }

  fill(b: AccessBatch): number {
    const { base, computePs, writeFraction: f, passes } = this.common;
    const g = this.granularity;
    const cap = b.capacity;
    let n = 0;
    while (n < cap && this.pass < passes) {
      b.addr[n] = base + this.i * g;
      b.write[n] = isWriteAt(this.seq++, f) ? 1 : 0;
      b.computePs[n] = computePs;
      n++;
      if (++this.i === this.count) {
        this.i = 0;
        this.pass++;
      }
    }
    return n;
  }

  reset(): void {
    this.i = this.pass = this.seq = 0;
  }
}

export const streaming: PatternDefinition = {
  kind: "streaming",
  read(r) {
    const bytes = r.size("bytes", { min: 1 });
    checkWholePages(r, bytes);
    const granularity = r.size("granularity", { default: 4096, min: 1 });
    const common = readCommon(r);
    checkAccessCount(r, Math.ceil(bytes / granularity), common.passes, "bytes");
    return () => new StreamingPattern(bytes, granularity, common);
  },
};
