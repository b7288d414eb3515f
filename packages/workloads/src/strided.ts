import { AccessPattern, type AccessBatch, type Common, type CommonParams, checkAccessCount, checkWholePages, isWriteAt, readCommon } from "./access-pattern.js";
import type { PatternDefinition } from "./pattern-definition.js";

export interface StridedParams extends CommonParams {
  /** Working-set size (required). */
  bytes: number | string;
  /** Distance between consecutive accesses of one lane (required; a multiple of granularity, ≤ bytes). */
  stride: number | string;
  /** Access size (default 4KiB). */
  granularity?: number | string;
}

/**
 * Strided sweep that still covers the working set once per pass, like a column-major walk of a row-major
 * matrix: lane j = 0 … stride/granularity − 1 visits j·g, j·g + stride, j·g + 2·stride, … < bytes.
 */
export class StridedPattern extends AccessPattern {
  readonly kind = "strided";
  readonly base: number;
  readonly workingSetBytes: number;
  readonly expectedLength: number;
  private readonly lanes: number;
  private lane = 0;
  private off = 0;
  private pass = 0;
  private seq = 0;

  constructor(
    bytes: number,
    private readonly stride: number,
    private readonly granularity: number,
    private readonly common: Common,
  ) {
    super();
    this.base = common.base;
    this.workingSetBytes = bytes;
    this.lanes = stride / granularity;
    this.expectedLength = Math.ceil(bytes / granularity) * common.passes;
  }

  fill(b: AccessBatch): number {
    const { base, computePs, writeFraction: f, passes } = this.common;
    const bytes = this.workingSetBytes;
    const cap = b.capacity;
    let n = 0;
    while (n < cap && this.pass < passes) {
      b.addr[n] = base + this.off;
      b.write[n] = isWriteAt(this.seq++, f) ? 1 : 0;
      b.computePs[n] = computePs;
      n++;
      this.off += this.stride;
      if (this.off >= bytes) {
        if (++this.lane === this.lanes) {
          this.lane = 0;
          this.pass++;
        }
        this.off = this.lane * this.granularity; // < stride <= bytes: every lane is non-empty
      }
    }
    return n;
  }

  reset(): void {
    this.lane = this.off = this.pass = this.seq = 0;
  }
}

export const strided: PatternDefinition = {
  kind: "strided",
  read(r) {
    const bytes = r.size("bytes", { min: 1 });
    const granularity = r.size("granularity", { default: 4096, min: 1 });
    const stride = r.size("stride", { min: 1 });
    if (stride > 0 && granularity > 0 && stride % granularity !== 0) {
      r.issue("stride", `must be a multiple of granularity (${granularity}), got ${stride}`);
    }
    if (bytes > 0 && stride > bytes) r.issue("stride", `must be <= bytes (${bytes}), got ${stride}`);
    if (bytes > 0 && granularity > 0 && bytes % granularity !== 0) {
      r.issue("bytes", `must be a multiple of granularity (${granularity}) for a strided pattern, got ${bytes}`);
    } else {
      checkWholePages(r, bytes);
    }
    const common = readCommon(r);
    checkAccessCount(r, Math.ceil(bytes / granularity), common.passes, "bytes");
    return () => new StridedPattern(bytes, stride, granularity, common);
  },
};
