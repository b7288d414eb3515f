/**
 * Runs a machine spec's workload on a built machine: one process (an mm of the machine's kernel) with one
 * anonymous private mapping covering every phase's working set, then the phases one after another in an engine
 * task: a CPU phase touches each access's page as a CPU thread would (mm.touch: faults through the kernel's
 * handler, charged to the task and settled), a device phase runs the accesses as a GPU kernel
 * (GpuDriver.runKernel: warps, TLB, replayable faults, batches, migration over the link).
 *
 * Pattern addresses are offsets from the pattern's `base` (0 unless given): they are shifted by WORKLOAD_BASE
 * (16 TiB, 2 MiB aligned, inside the 47-bit user address space) unless they already lie in the user range above
 * mmap's minimum address (a trace of real addresses is replayed as written).
 */
import type { Machine } from "@hmmsim/machine";
import { GpuDriver, type AccessBuffer, type AccessSource, type GpuKernelResult } from "@hmmsim/driver-gpu";
import type { AccessPattern, Workload } from "@hmmsim/workloads";
import { CliError } from "./cli-error.js";

import {
  FaultWouldBlockError,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MMAP_MIN_ADDR,
  PROT_READ,
  PROT_WRITE,
  TASK_SIZE,
} from "@hmmsim/core";
const PAGE = 4096;
const BLOCK = 2 * 1024 * 1024;

/** Where generated working sets are mapped: 16 TiB (2 MiB aligned). */
export const WORKLOAD_BASE = 2 ** 44;

/** What one phase did. */
export interface PhaseSummary {
  /** "cpu" or the device's name. */
  on: string;
  kind: string;
  accesses: number;
  startPs: number;
  endPs: number;
  /** Device phases: the GPU kernel's counts (fault-buffer entries, remote accesses, device TLB). */
  gpu?: { faults: number; remoteAccesses: number; tlbHits: number; tlbMisses: number };
}

export interface WorkloadRunOptions {
  onProgress?: (done: number, total: number, nowPs: number) => void;
}

/** Counts the accesses a pattern hands out (the run's progress) and shifts them by `offset`. */
class PhaseSource implements AccessSource {
  handed = 0;
  constructor(
    private readonly pattern: AccessPattern,
    private readonly offset: number,
    private readonly progress: (n: number) => void,
  ) {}
  fill(b: AccessBuffer): number {
    const n = this.pattern.fill(b);
    if (this.offset !== 0) for (let i = 0; i < n; i++) b.addr[i]! += this.offset;
    this.handed += n;
    if (n > 0) this.progress(n);
    return n;
  }
}

/** The device (by name) a phase's `on` names: "device" = the machine's first device. */
function deviceOf(machine: Machine, on: string): string | null {
  if (on === "cpu") return null;
  if (on === "device") {
    const d = machine.spec.devices[0];
    if (!d) throw new CliError(`the workload runs on "device" but ${machine.spec.name} has no device`);
    return d.name;
  }
  return machine.device(on).name;
}

/**
 * Spawns the workload's task on `machine` (call before machine.run()); returns the per-phase summaries, filled
 * in as the phases complete.
 */
export function spawnWorkload(machine: Machine, workload: Workload, opts: WorkloadRunOptions = {}): PhaseSummary[] {
  const kernel = machine.kernel;
  if (!kernel) throw new CliError(`${machine.spec.name}: the machine has no kernel to run a workload in`);
  // The span every phase touches, and the shift that places it in the user address space.
  let lo = Infinity;
  let hi = -Infinity;
  for (const p of workload.phases) {
    lo = Math.min(lo, p.pattern.base);
    hi = Math.max(hi, p.pattern.base + p.pattern.workingSetBytes);
  }
  if (!(hi > lo)) return [];
  const offset = lo >= MMAP_MIN_ADDR && hi <= TASK_SIZE ? 0 : WORKLOAD_BASE;
  const start = Math.floor((lo + offset) / BLOCK) * BLOCK;
  const end = Math.ceil((hi + offset) / BLOCK) * BLOCK;
  if (end > TASK_SIZE) throw new CliError(`the workload's addresses [0x${lo.toString(16)}, 0x${hi.toString(16)}) do not fit in the 47-bit user address space`);

  const drivers = new Map<string, GpuDriver>();
  const phases = workload.phases.map((p) => {
    const device = deviceOf(machine, p.on);
    if (device !== null && !drivers.has(device)) {
      const spec = machine.device(device);
      if (spec.driver !== "gpu") throw new CliError(`workload phase on ${device}: the CLI runs device phases on GPU-driver devices only (${device} has driver ${spec.driver})`);
      drivers.set(device, GpuDriver.of(machine, device));
    }
    return { device, pattern: p.pattern };
  });
  const total = workload.phases.every((p) => p.pattern.expectedLength !== undefined) ? workload.phases.reduce((s, p) => s + p.pattern.expectedLength!, 0) : 0;
  let done = 0;
  const progress = (n: number) => {
    done += n;
    if (total > 0) opts.onProgress?.(done, total, machine.engine.now);
  };

  const mm = kernel.createMm();
  const addr = mm.mmap({ addr: start, length: end - start, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE });
  if (addr !== start) throw new CliError(`mmap of the workload's ${end - start} bytes at 0x${start.toString(16)} failed (${addr})`);

  const out: PhaseSummary[] = [];
  machine.spawn("workload", async () => {
    for (const { device, pattern } of phases) {
      const src = new PhaseSource(pattern, offset, progress);
      const startPs = machine.engine.now;
      if (device === null) {
        await runCpuPhase(machine, mm, src);
        out.push({ on: "cpu", kind: pattern.kind, accesses: src.handed, startPs, endPs: machine.engine.now });
      } else {
        const r: GpuKernelResult = await drivers.get(device)!.runKernel(mm, src);
        out.push({
          on: device,
          kind: pattern.kind,
          accesses: r.accesses,
          startPs,
          endPs: machine.engine.now,
          gpu: { faults: r.faults, remoteAccesses: r.remoteAccesses, tlbHits: r.tlbHits, tlbMisses: r.tlbMisses },
        });
      }
    }
  });
  return out;
}

type TouchMm = { touch(addr: number, write: boolean): number };

/**
 * One CPU thread running the accesses in order: compute time (sleep), then the access (mm.touch: a fault when
 * the page is not mapped as needed, its cost charged to this task and settled before anything else). An access
 * that would block (a migration entry, a locked page: the kernel would sleep on it) waits 1 µs and retries.
 */
async function runCpuPhase(machine: Machine, mm: TouchMm, src: AccessSource): Promise<void> {
  const buf: AccessBuffer = { capacity: 4096, addr: new Float64Array(4096), write: new Uint8Array(4096), computePs: new Float64Array(4096) };
  const ledger = machine.ledger;
  for (let n = src.fill(buf); n > 0; n = src.fill(buf)) {
    for (let i = 0; i < n; i++) {
      const c = buf.computePs[i]!;
      if (c > 0) await machine.engine.sleep(c);
      const a = buf.addr[i]!;
      const w = buf.write[i] === 1;
      for (let tries = 0; ; tries++) {
        try {
          mm.touch(a - (a % PAGE), w);
          break;
        } catch (e) {
          if (!(e instanceof FaultWouldBlockError) || tries >= 1000) throw e;
          if (ledger.hasPending) await machine.settle();
          await machine.engine.sleep(1_000_000);
        }
      }
      if (ledger.hasPending) await machine.settle();
    }
  }
}
