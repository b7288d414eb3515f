import { AccessPattern, type AccessBatch, type Common, checkAccessCount, readCommon } from "./access-pattern.js";
import type { PatternDefinition } from "./pattern-definition.js";

export interface StencilParams {
  /** Size of one grid (required). The working set is two grids (double-buffered): 2·bytes. */
  bytes: number | string;
  /** Bytes per grid row (required; a multiple of elementBytes, ≤ bytes). */
  rowBytes: number | string;
  /** Bytes per grid element (default 8). */
  elementBytes?: number | string;
  /** Time steps; each swaps the input and output grid (default 1). */
  passes?: number;
  base?: number | string;
  computeNs?: number;
}

/**
 * 2-D 5-point Jacobi stencil over a row-major grid, double-buffered: for each cell in row-major order it reads
 * up, left, centre, right, down (those inside the grid) from the input grid, then writes the cell of the output
 * grid. Grid A is at base, grid B at base + bytes; step t reads A and writes B when t is even, the reverse when odd.
 */
export class StencilPattern extends AccessPattern {
  readonly kind = "stencil";
  readonly base: number;
  readonly workingSetBytes: number;
  readonly expectedLength: number;
  readonly rows: number;
  readonly cols: number;
  private cell = 0;
  private k = 0;
  private pass = 0;

  constructor(
    private readonly gridBytes: number,
    rowBytes: number,
    private readonly elementBytes: number,
    private readonly common: Common,
  ) {
    super();
    this.base = common.base;
    this.workingSetBytes = 2 * gridBytes;
    this.cols = rowBytes / elementBytes;
    this.rows = Math.floor(gridBytes / rowBytes);
    const R = this.rows;
    const C = this.cols;
    this.expectedLength = (6 * R * C - 2 * C - 2 * R) * common.passes;
  }

  fill(b: AccessBatch): number {
    const { base, computePs, passes } = this.common;
    const { rows, cols, elementBytes: e, gridBytes } = this;
    const cells = rows * cols;
    const cap = b.capacity;
    let n = 0;
    while (n < cap && this.pass < passes) {
      const cell = this.cell;
      const r = Math.floor(cell / cols);
      const c = cell - r * cols;
      const src = base + (this.pass & 1 ? gridBytes : 0);
      let addr = -1;
      let write = 0;
      switch (this.k) {
        case 0: if (r > 0) addr = src + (cell - cols) * e; break;
        case 1: if (c > 0) addr = src + (cell - 1) * e; break;
        case 2: addr = src + cell * e; break;
        case 3: if (c < cols - 1) addr = src + (cell + 1) * e; break;
        case 4: if (r < rows - 1) addr = src + (cell + cols) * e; break;
        default: addr = base + (this.pass & 1 ? 0 : gridBytes) + cell * e; write = 1;
      }
      if (addr >= 0) {
        b.addr[n] = addr;
        b.write[n] = write;
        b.computePs[n] = computePs;
        n++;
      }
      if (++this.k === 6) {
        this.k = 0;
        if (++this.cell === cells) {
          this.cell = 0;
          this.pass++;
        }
      }
    }
    return n;
  }

  reset(): void {
    this.cell = this.k = this.pass = 0;
  }
}

export const stencil: PatternDefinition = {
  kind: "stencil",
  read(r) {
    const bytes = r.size("bytes", { min: 1 });
    const rowBytes = r.size("rowBytes", { min: 1 });
    const elementBytes = r.size("elementBytes", { default: 8, min: 1 });
    if (rowBytes > 0 && elementBytes > 0 && rowBytes % elementBytes !== 0) {
      r.issue("rowBytes", `must be a multiple of elementBytes (${elementBytes}), got ${rowBytes}`);
    }
    if (rowBytes > bytes) r.issue("rowBytes", `must be <= bytes (${bytes}), got ${rowBytes}`);
    const common = readCommon(r, { writeFraction: false });
    const cols = rowBytes / elementBytes;
    const rows = Math.floor(bytes / rowBytes);
    checkAccessCount(r, 6 * rows * cols - 2 * cols - 2 * rows, common.passes, "bytes");
    return () => new StencilPattern(bytes, rowBytes, elementBytes, common);
  },
};
