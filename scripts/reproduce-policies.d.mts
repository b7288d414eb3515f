// Types of scripts/reproduce-policies.mjs, for apps/machines/src/reproduce-policies.test.ts (which imports it).
import type { MachinePlugin } from "@hmmsim/machine";

export interface RunFigures {
  /** The GPU phase's simulated time, ps. */
  gpuPs: number;
  batches: number;
  faultedPages: number;
  /** h2d migrations and the pages they moved. */
  migrations: number;
  migratedPages: number;
  evictedPages: number;
  /** Why the run stopped early (its simulated-time bound), or null. */
  stopped: string | null;
  wallMs: number;
}
export interface Matrix {
  [workload: string]: { bytes: number; memory?: Record<string, number> | number; runs: Record<string, RunFigures> };
}
export interface Workload {
  bytes: number;
  gpu: { kind: string; params: Record<string, unknown> };
}

export const PREFETCHERS: Readonly<Record<string, { policy: string; policySpec?: Record<string, unknown> }>>;
export const EVICTIONS: readonly string[];
export const PREFETCH_SETTINGS: Readonly<Record<string, string>>;
export const DELAYED: Readonly<Record<string, { policy: string | string[] }>>;
export function plugins(): MachinePlugin[];
export function workloads(scale?: number): Record<string, Workload>;
export function oversubWorkloads(scale?: number): Record<string, Workload>;
export function deviceMemoryFor(workingSetBytes: number, ratio: number): number;
export function runOne(args: {
  name: string;
  workload: Workload;
  memory: number;
  policy: string | string[];
  policySpec?: Record<string, unknown>;
  driverSpec?: Record<string, unknown>;
  maxSimulatedPs?: number;
}): Promise<RunFigures>;
export function prefetchMatrix(opts?: { scale?: number; only?: { workloads: string[]; prefetchers: string[] } }): Promise<Matrix>;
export function onePageRoundMatrix(opts?: { scale?: number }): Promise<Matrix>;
export function evictionMatrix(opts?: { scale?: number; ratios?: number[]; only?: { workloads: string[]; evictions: string[] } }): Promise<Matrix>;
export function delayedMatrix(opts?: { scale?: number; ratio?: number }): Promise<Matrix>;
export function prefetchTable(m: Matrix): string;
export function onePageRoundTable(m: Matrix): string;
export function evictionTable(m: Matrix): string;
export function delayedTable(m: Matrix, eviction?: Matrix, ratio?: number): string;
