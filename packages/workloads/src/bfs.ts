import { AccessPattern, type AccessBatch, type Common, checkAccessCount, readCommon } from "./access-pattern.js";
import { type PatternDefinition, readSeed } from "./pattern-definition.js";

export interface BfsParams {
  /** Number of vertices (required, 1 … 2^31 − 1). */
  vertices: number;
  /** Out-degree of every vertex (required). */
  degree: number;
  /** Start vertex (default 0). */
  source?: number;
  /** Graph seed (default: the caller's seed or rng). */
  seed?: number;
  base?: number | string;
  computeNs?: number;
}

/** Bytes per CSR offset and per edge entry (64-bit indices) and per level entry (32-bit). */
export const BFS_OFFSET_BYTES = 8;
export const BFS_EDGE_BYTES = 8;
export const BFS_LEVEL_BYTES = 4;

/**
 * Top-down BFS over a synthetic random graph in CSR layout, emitting the accesses a real BFS makes:
 * for each dequeued vertex v, read offsets[v] and offsets[v+1]; for each edge k, read edges[v·d + k] = u and
 * level[u]; if u is unvisited, write level[u] and enqueue u. Layout from base: offsets (V+1 × 8 B), edges
 * (V·d × 8 B), level (V × 4 B). The neighbours are a hash of (seed, v, k), so the graph costs no memory;
 * the traversal keeps a visited bitmap (1 B/vertex) and a queue (4 B/vertex).
 */
export class BfsPattern extends AccessPattern {
  readonly kind = "bfs";
  readonly base: number;
  readonly workingSetBytes: number;
  readonly expectedLength = undefined;
  private readonly edgesAt: number;
  private readonly levelAt: number;
  private visited: Uint8Array;
  private queue: Int32Array;
  private head = 0;
  private tail = 0;
  private v = -1;
  /** -2: read offsets[v]; -1: read offsets[v+1]; 0…d−1: edge k, step 0 read edge / 1 read level / 2 write level. */
  private k = -2;
  private step = 0;
  private u = 0;

  constructor(
    readonly vertices: number,
    readonly degree: number,
    readonly source: number,
    readonly seed: number,
    private readonly common: Common,
  ) {
    super();
    this.base = common.base;
    this.edgesAt = (vertices + 1) * BFS_OFFSET_BYTES;
    this.levelAt = this.edgesAt + vertices * degree * BFS_EDGE_BYTES;
    this.workingSetBytes = this.levelAt + vertices * BFS_LEVEL_BYTES;
    this.visited = new Uint8Array(vertices);
    this.queue = new Int32Array(vertices);
    this.reset();
  }

  /** The k-th neighbour of v: a deterministic hash of (seed, v, k) onto [0, V). */
  neighbor(v: number, k: number): number {
    let h = Math.imul(v ^ Math.imul(this.seed | 0, 0x9e3779b1), 0x85ebca6b) ^ Math.imul(k + 1, 0xc2b2ae35);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 12;
    h = Math.imul(h, 0x297a2d39);
    h ^= h >>> 15;
    return Math.floor(((h >>> 0) / 0x1_0000_0000) * this.vertices);
  }

  fill(b: AccessBatch): number {
    const { base, computePs } = this.common;
    const d = this.degree;
    const cap = b.capacity;
    let n = 0;
    while (n < cap) {
      if (this.v < 0) {
        if (this.head === this.tail) break; // traversal finished
        this.v = this.queue[this.head++]!;
        this.k = -2;
        this.step = 0;
      }
      const v = this.v;
      let addr: number;
      let write = 0;
      if (this.k < 0) {
        addr = base + (v + this.k + 2) * BFS_OFFSET_BYTES;
        this.k++;
      } else if (this.step === 0) {
        addr = base + this.edgesAt + (v * d + this.k) * BFS_EDGE_BYTES;
        this.u = this.neighbor(v, this.k);
        this.step = 1;
      } else if (this.step === 1) {
        addr = base + this.levelAt + this.u * BFS_LEVEL_BYTES;
        if (this.visited[this.u] === 0) {
          this.step = 2;
        } else {
          this.step = 0;
          this.k++;
        }
      } else {
        addr = base + this.levelAt + this.u * BFS_LEVEL_BYTES;
        write = 1;
        this.visited[this.u] = 1;
        this.queue[this.tail++] = this.u;
        this.step = 0;
        this.k++;
      }
      if (this.k === d && this.step === 0) this.v = -1;
      b.addr[n] = addr;
      b.write[n] = write;
      b.computePs[n] = computePs;
      n++;
    }
    return n;
  }

  reset(): void {
    this.visited.fill(0);
    this.head = this.tail = 0;
    this.v = -1;
    this.visited[this.source] = 1;
    this.queue[this.tail++] = this.source;
  }

  /** Vertices reached so far (all reached ones once the pattern is exhausted). */
  get reached(): number {
    return this.tail;
  }
}

export const bfs: PatternDefinition = {
  kind: "bfs",
  read(r, ctx) {
    const vertices = r.int("vertices", { min: 1, max: 2 ** 31 - 1 });
    const degree = r.int("degree", { min: 1 });
    const source = r.int("source", { default: 0, min: 0 });
    if (source >= vertices) r.issue("source", `must be < vertices (${vertices}), got ${source}`);
    const seed = readSeed(r, ctx);
    const common = readCommon(r, { writeFraction: false });
    if (r.has("passes")) r.issue("passes", "not supported by bfs (one traversal)");
    // At most: per vertex reached, 2 offset reads; per edge, a read of the edge and of the level, and one write.
    checkAccessCount(r, vertices * (2 + 3 * degree), 1, "degree");
    return () => new BfsPattern(vertices, degree, source, seed, common);
  },
};
