/** Test double (not exported from index.ts): a FaultQuery over explicit page masks of one 2 MiB block. */
import { BLOCK_PAGES, BLOCK_SIZE, type FaultQuery } from "@hmmsim/policy";

export interface BlockQueryOptions {
  /** Faulted page index (0..511). */
  page: number;
  /** Resident page indices (or [first, outer) ranges). */
  resident?: Iterable<number>;
  /** Other pages faulted in the same batch. */
  faulted?: Iterable<number>;
  thrashing?: Iterable<number>;
  /** VMA bounds as page indices of the block (may reach outside it). */
  vma?: [number, number];
  blockStart?: number;
  batch?: number;
  timePs?: number;
  deviceFreePages?: number;
  device?: string;
  mm?: object;
  preferredLocation?: string | null;
}

/** Page indices first..outer-1. */
export const pages = (first: number, outer: number): number[] => Array.from({ length: Math.max(0, outer - first) }, (_, i) => first + i);

const MM = {};

export function blockQuery(o: BlockQueryOptions): FaultQuery {
  const resident = new Uint8Array(BLOCK_PAGES);
  const faulted = new Uint8Array(BLOCK_PAGES);
  const thrashing = new Uint8Array(BLOCK_PAGES);
  for (const i of o.resident ?? []) resident[i] = 1;
  for (const i of o.faulted ?? []) faulted[i] = 1;
  for (const i of o.thrashing ?? []) thrashing[i] = 1;
  faulted[o.page] = 1;
  const blockStart = o.blockStart ?? 8 * BLOCK_SIZE;
  const [vs, ve] = o.vma ?? [-BLOCK_PAGES, 2 * BLOCK_PAGES];
  let blockFaulted = 0;
  for (const f of faulted) blockFaulted += f;
  let blockResident = 0;
  for (const r of resident) blockResident += r;
  return {
    device: o.device ?? "gpu0",
    mm: o.mm ?? MM,
    address: blockStart + o.page * 4096,
    access: 0,
    write: false,
    duplicates: 1,
    batch: o.batch ?? 0,
    batchPages: blockFaulted,
    timePs: o.timePs ?? 0,
    blockStart,
    pageIndex: o.page,
    blockResident,
    blockMapped: blockResident,
    blockFaulted,
    vmaStart: blockStart + vs * 4096,
    vmaEnd: blockStart + ve * 4096,
    deviceFreePages: o.deviceFreePages ?? 1 << 20,
    devicePages: 1 << 20,
    isResident: (i) => resident[i] === 1,
    isFaulted: (i) => faulted[i] === 1,
    isMapped: (i) => resident[i] === 1,
    isThrashing: (i) => thrashing[i] === 1,
    preferredLocation: o.preferredLocation ?? null,
    accessedBy: false,
    readMostly: false,
  };
}
