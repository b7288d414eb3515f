/**
 * Runs a machine spec's workload on a built machine: one process (an mm of the machine's kernel) with one
 * anonymous private mapping covering every phase's working set, then the phases one after another in an engine
 * task: a CPU phase touches each access's page as a CPU thread would (mm.touch: faults through the kernel's
 * handler, charged to the task and settled), a device phase runs the accesses as a kernel on the device's driver
 * (`machine.driver(name).runKernel`, DeviceDriver: whatever the driver plugin does with faults, TLBs and
 * migration).
 *
 * A CPU access that lands on a page in MEMORY_DEVICE_COHERENT memory (a GPU behind NVLink-C2C or CXL: the page
 * stays on the device and the CPU loads/stores it in place, no fault, no migration) costs the link's coherent
 * access time, `cpuAccessTime(CPU_ACCESS_BYTES)` = cpuAccessLatency + 64 B / cpuAccessBandwidth, charged to the
 * CPU task (ledger.chargePs) and counted per phase. An access to system RAM costs nothing beyond its fault (the
 * model has no DRAM latency; cpuAccessLatency is what a device access adds over a local DRAM access).
 *
 * Pattern addresses are offsets from the pattern's `base` (0 unless given): they are shifted by WORKLOAD_BASE
 * (16 TiB, 2 MiB aligned, inside the 47-bit user address space) unless they already lie in the user range [USER_MIN_ADDR, TASK_SIZE) (a trace of real
 * addresses is replayed as written).
 */
import { type AccessPattern, type Workload, isRangeAction } from "@hmmsim/workloads";
import type { AccessBuffer, AccessSource, DeviceDriver, DeviceDriverCounters, DeviceStreamResult } from "./device-driver.js";
import { type CoherentInterconnect, isCoherentInterconnect } from "./interconnect.js";
import type { Machine } from "./machine.js";
import { MachineError } from "./machine-error.js";

import {
  type DevPagemap,
  type Kernel,
  FaultWouldBlockError,
  MEMORY_DEVICE_COHERENT,
  ZONE_DEVICE,
  pagePgmap,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_NORESERVE,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
  TASK_SIZE,
} from "@hmmsim/core";
const PAGE = 4096;
const BLOCK = 2 * 1024 * 1024;

/**
 * Bytes one CPU access moves over a coherent link: one cache line (a CPU load or store to device memory is
 * served a line at a time). Assumption: no cited source gives a line size.
 */
export const CPU_ACCESS_BYTES = 64;

/**
 * The lowest user address a trace may name and be replayed as written: Linux's default vm.mmap_min_addr (64 KiB,
 * mm/util.c / security/min_addr.c). Below it, or for patterns whose addresses are offsets, the span is shifted
 * to WORKLOAD_BASE.
 */
export const USER_MIN_ADDR = 0x10000;

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
  /**
   * Device phases (named `gpu` for every driver, as in the first summaries): the device kernel's counts (faults,
   * remote accesses, device TLB: DeviceKernelResult) and what the driver did for it during the phase
   * (DeviceDriverCounters): fault batches serviced, distinct pages per batch (summed over batches), pages
   * migrated in with their data copied over the link, pages populated by zero-filling device memory (never
   * written by the CPU: nothing to copy).
   */
  gpu?: {
    faults: number;
    remoteAccesses: number;
    tlbHits: number;
    tlbMisses: number;
    batches: number;
    faultedPages: number;
    migratedPages: number;
    populatedPages: number;
    /** Of `faults`, entries the driver flushed unserviced (DeviceKernelResult.flushedFaults), when it reports them. */
    flushedFaults?: number;
    /** Per stream, when the driver reports streams (DeviceKernelResult.streams: an FPGA shell's stall time). */
    streams?: DeviceStreamResult[];
  };
  /**
   * CPU phases: accesses served in place from DEVICE_COHERENT device memory over a coherent link (no fault, no
   * migration back) and the time they cost the CPU thread, ps (cpuAccessTime of CPU_ACCESS_BYTES each).
   */
  cpu?: { coherentAccesses: number; coherentPs: number };
  /**
   * Present (true) only on the last phase of a run that stopped before its workload ended: the phase was cut at
   * the stop (endPs is the stop's time, the counts are those so far).
   */
  partial?: true;
}

/** A workload running on a machine (startWorkload): its phases so far and its progress. */
export interface WorkloadRun {
  /** The completed phases, in order (filled in as they complete). */
  readonly phases: PhaseSummary[];
  /** Accesses handed out so far. */
  readonly done: number;
  /** Accesses in all, or undefined when a phase cannot say in advance (BFS). */
  readonly total: number | undefined;
  /** Bytes the phases' working sets span together (the mapping's size before its 2 MiB rounding). */
  readonly workingSetBytes: number;
  /** The phases so far, the running one (if any) cut at the current virtual time and marked `partial`. */
  snapshot(): PhaseSummary[];
}

export interface WorkloadRunOptions {
  /** `done` of `total` accesses handed out (total undefined when a phase's length is not known in advance: BFS). */
  onProgress?: (done: number, total: number | undefined, nowPs: number) => void;
}

/** Counts the accesses a pattern hands out (the run's progress) and shifts them by `offset`. */
class PhaseSource implements AccessSource {
  handed = 0;
  get kind(): string {
    return this.pattern.kind;
  }
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
    if (!d) throw new MachineError(`the workload runs on "device" but ${machine.spec.name} has no device`);
    return d.name;
  }
  return machine.device(on).name;
}

/**
 * Spawns the workload's task on `machine` (call before machine.run()); returns the per-phase summaries, filled
 * in as the phases complete.
 */
export function spawnWorkload(machine: Machine, workload: Workload, opts: WorkloadRunOptions = {}): PhaseSummary[] {
  return startWorkload(machine, workload, opts).phases;
}

/**
 * spawnWorkload, returning the WorkloadRun: the phases as they complete, the progress (accesses handed out of the
 * total) and a snapshot of the phases with the running one cut at the current time (a stopped run's summary).
 */
export function startWorkload(machine: Machine, workload: Workload, opts: WorkloadRunOptions = {}): WorkloadRun {
  const kernel = machine.kernel;
  if (!kernel) throw new MachineError(`${machine.spec.name}: the machine has no kernel to run a workload in`);
  // The span every phase touches, and the shift that places it in the user address space.
  let lo = Infinity;
  let hi = -Infinity;
  for (const p of workload.phases) {
    lo = Math.min(lo, p.pattern.base);
    hi = Math.max(hi, p.pattern.base + p.pattern.workingSetBytes);
  }
  if (!(hi > lo)) return { phases: [], done: 0, total: 0, workingSetBytes: 0, snapshot: () => [] };
  const offset = lo >= USER_MIN_ADDR && hi <= TASK_SIZE ? 0 : WORKLOAD_BASE;
  const start = Math.floor((lo + offset) / BLOCK) * BLOCK;
  const end = Math.ceil((hi + offset) / BLOCK) * BLOCK;
  if (end > TASK_SIZE) {
    throw new MachineError(
      `the workload's addresses [0x${lo.toString(16)}, 0x${hi.toString(16)}) do not fit in the 47-bit user address space: addresses from 64 KiB ` +
        `(vm.mmap_min_addr) up to 2^47 are replayed as written, a span starting lower is moved up by 16 TiB, and this one would then pass 2^47`,
    );
  }

  const drivers = new Map<string, DeviceDriver>();
  const phases = workload.phases.map((p, i) => {
    const device = deviceOf(machine, p.on);
    if (device !== null && !drivers.has(device)) drivers.set(device, machine.driver(device));
    // An advise / prefetch phase needs its driver's API: refused before anything runs, not when the phase comes.
    if (device !== null && isRangeAction(p.pattern)) {
      const driver = drivers.get(device)!;
      const api = p.pattern.kind === "advise" ? "advise" : "migrateRange";
      if (typeof driver[api] !== "function") {
        throw new MachineError(`workload phase ${i + 1} (${p.pattern.kind} on ${device}): the ${driver.driverName} driver has no ${api} API, so it cannot take ${p.pattern.kind === "advise" ? "memory-advise hints" : "an explicit prefetch"}`);
      }
    }
    return { device, pattern: p.pattern };
  });
  // Unknown when a phase cannot say its length in advance (BFS): progress is then a count.
  const total = workload.phases.every((p) => p.pattern.expectedLength !== undefined) ? workload.phases.reduce((s, p) => s + p.pattern.expectedLength!, 0) : undefined;
  const out: PhaseSummary[] = [];
  // The phase running now (for snapshot()): its source, start, device and counters before it.
  let current: RunningPhase | null = null;
  const run = {
    phases: out,
    done: 0,
    total,
    workingSetBytes: hi - lo,
    snapshot(): PhaseSummary[] {
      const phases = [...out];
      if (current !== null) phases.push(partialPhase(machine, drivers, current));
      return phases;
    },
  };
  const progress = (n: number) => {
    run.done += n;
    opts.onProgress?.(run.done, total, machine.engine.now);
  };

  const mm = kernel.createMm();
  const addr = mm.mmap({ addr: start, length: end - start, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE });
  if (addr !== start) throw new MachineError(`mmap of the workload's ${end - start} bytes at 0x${start.toString(16)} failed (${addr})`);

  const coherent = coherentPagemaps(machine);
  machine.spawn("workload", async () => {
    for (const { device, pattern } of phases) {
      const src = new PhaseSource(pattern, offset, progress);
      const startPs = machine.engine.now;
      if (device === null) {
        const stats = { coherentAccesses: 0, coherentPs: 0 };
        const executed = { n: 0 };
        current = { device, src, startPs, before: null, cpu: stats, executed };
        const cpu = await runCpuPhase(machine, kernel, mm, src, coherent, stats, executed);
        current = null;
        out.push({ on: "cpu", kind: pattern.kind, accesses: src.handed, startPs, endPs: machine.engine.now, cpu });
      } else if (isRangeAction(pattern)) {
        // advise / prefetch: one driver call over the range, no access (cudaMemAdvise / cudaMemPrefetchAsync).
        const driver = drivers.get(device)!;
        const before = driver.counters();
        const rs = pattern.base + offset;
        const re = rs + pattern.workingSetBytes;
        let ret: number;
        if (pattern.kind === "advise") {
          if (!driver.advise) throw new MachineError(`an advise phase runs on ${device}, whose driver (${driver.driverName}) has no advise API`);
          ret = driver.advise(mm, rs, re, pattern.advice);
        } else {
          if (!driver.migrateRange) throw new MachineError(`a prefetch phase runs on ${device}, whose driver (${driver.driverName}) has no migrateRange API`);
          ret = await driver.migrateRange(mm, rs, re);
        }
        if (ret < 0) throw new MachineError(`the ${pattern.kind} phase on ${device} over [0x${rs.toString(16)}, 0x${re.toString(16)}) failed: ${ret}`);
        const st = driver.counters();
        out.push({
          on: device,
          kind: pattern.kind,
          accesses: 0,
          startPs,
          endPs: machine.engine.now,
          gpu: {
            faults: 0,
            remoteAccesses: 0,
            tlbHits: 0,
            tlbMisses: 0,
            batches: st.batches - before.batches,
            faultedPages: st.faultedPages - before.faultedPages,
            migratedPages: st.migratedPages - before.migratedPages,
            populatedPages: st.populatedPages - before.populatedPages,
          },
        });
      } else {
        const driver = drivers.get(device)!;
        const before = driver.counters();
        current = { device, src, startPs, before, cpu: { coherentAccesses: 0, coherentPs: 0 }, executed: { n: 0 } };
        const r = await driver.runKernel(mm, src);
        current = null;
        const st = driver.counters();
        out.push({
          on: device,
          kind: pattern.kind,
          accesses: r.accesses,
          startPs,
          endPs: machine.engine.now,
          gpu: {
            faults: r.faults,
            remoteAccesses: r.remoteAccesses,
            tlbHits: r.tlbHits,
            tlbMisses: r.tlbMisses,
            batches: st.batches - before.batches,
            faultedPages: st.faultedPages - before.faultedPages,
            migratedPages: st.migratedPages - before.migratedPages,
            populatedPages: st.populatedPages - before.populatedPages,
            ...(r.flushedFaults !== undefined ? { flushedFaults: r.flushedFaults } : {}),
            ...(r.streams ? { streams: r.streams.map((x) => ({ accesses: x.accesses, faults: x.faults, stallPs: x.stallPs })) } : {}),
          },
        });
      }
    }
  });
  return run;
}

/** What startWorkload knows of the phase running now. */
interface RunningPhase {
  device: string | null;
  src: PhaseSource;
  startPs: number;
  /** The device driver's counters when the phase started (device phases). */
  before: DeviceDriverCounters | null;
  cpu: { coherentAccesses: number; coherentPs: number };
  /** Accesses a CPU phase has completed (its source hands them out 4,096 at a time). */
  executed: { n: number };
}

/** The running phase cut at the current time (a stopped run). */
function partialPhase(
  machine: Machine,
  drivers: ReadonlyMap<string, DeviceDriver>,
  c: RunningPhase,
): PhaseSummary {
  const base = { on: c.device ?? "cpu", kind: c.src.kind, accesses: c.src.handed, startPs: c.startPs, endPs: machine.engine.now };
  if (c.device === null) return { ...base, accesses: c.executed.n, cpu: { ...c.cpu }, partial: true };
  const driver = drivers.get(c.device)!;
  const st = driver.counters();
  const before = c.before ?? st;
  const k = driver.kernelProgress?.() ?? null;
  return {
    ...base,
    accesses: k?.accesses ?? c.src.handed,
    gpu: {
      faults: k?.faults ?? 0,
      remoteAccesses: k?.remoteAccesses ?? 0,
      tlbHits: k?.tlbHits ?? 0,
      tlbMisses: k?.tlbMisses ?? 0,
      batches: st.batches - before.batches,
      faultedPages: st.faultedPages - before.faultedPages,
      migratedPages: st.migratedPages - before.migratedPages,
      populatedPages: st.populatedPages - before.populatedPages,
      ...(k?.flushedFaults !== undefined ? { flushedFaults: k.flushedFaults } : {}),
      ...(k?.streams ? { streams: k.streams.map((x) => ({ accesses: x.accesses, faults: x.faults, stallPs: x.stallPs })) } : {}),
    },
    partial: true,
  };
}

type TouchMm = { touch(addr: number, write: boolean): number };

/**
 * The DEVICE_COHERENT pgmaps of the machine's devices, each with its device's coherent link (page_pgmap(page)
 * tells a CPU access which device memory it reached, the device's link what that costs).
 */
function coherentPagemaps(machine: Machine): Map<DevPagemap, CoherentInterconnect> {
  const out = new Map<DevPagemap, CoherentInterconnect>();
  for (const d of machine.spec.devices) {
    if (d.memoryType !== "coherent") continue;
    const link = machine.links.ofDevice(d.name);
    const pgmap = machine.driver(d.name).pgmap as DevPagemap | null;
    if (pgmap !== null && isCoherentInterconnect(link) && pgmap.type === MEMORY_DEVICE_COHERENT) out.set(pgmap, link);
  }
  return out;
}

/**
 * One CPU thread running the accesses in order: compute time (sleep), then the access (mm.touch: a fault when
 * the page is not mapped as needed, its cost charged to this task and settled before anything else). An access
 * that would block (a migration entry, a locked page: the kernel would sleep on it) waits 1 µs and retries.
 * An access whose page (the pfn touch returns) is in one of `coherent`'s pgmaps is a load/store over that
 * coherent link: its cpuAccessTime is charged to this task and counted.
 */
async function runCpuPhase(
  machine: Machine,
  kernel: Kernel,
  mm: TouchMm,
  src: AccessSource,
  coherent: ReadonlyMap<DevPagemap, CoherentInterconnect>,
  stats: { coherentAccesses: number; coherentPs: number },
  executed: { n: number },
): Promise<{ coherentAccesses: number; coherentPs: number }> {
  const buf: AccessBuffer = { capacity: 4096, addr: new Float64Array(4096), write: new Uint8Array(4096), computePs: new Float64Array(4096) };
  const ledger = machine.ledger;
  const store = kernel.store;
  for (let n = src.fill(buf); n > 0; n = src.fill(buf)) {
    for (let i = 0; i < n; i++) {
      const c = buf.computePs[i]!;
      if (c > 0) await machine.engine.sleep(c);
      const a = buf.addr[i]!;
      const w = buf.write[i] === 1;
      const addr = a - (a % PAGE);
      let pfn: number;
      try {
        pfn = mm.touch(addr, w);
      } catch (e) {
        if (!(e instanceof FaultWouldBlockError)) throw e;
        pfn = await retryTouch(machine, mm, addr, w);
      }
      if (coherent.size > 0 && store.zone(pfn) === ZONE_DEVICE) {
        const pgmap = pagePgmap(kernel, pfn);
        const link = pgmap === null ? undefined : coherent.get(pgmap);
        if (link !== undefined) {
          const ps = link.cpuAccessTime(CPU_ACCESS_BYTES);
          ledger.chargePs(ps);
          stats.coherentAccesses++;
          stats.coherentPs += ps;
        }
      }
      if (ledger.hasPending) await machine.settle();
      executed.n++;
    }
  }
  return stats;
}

/** mm.touch after it would have blocked: retried every 1 µs (up to 1,000 times); resolves to the pfn accessed. */
async function retryTouch(machine: Machine, mm: TouchMm, addr: number, write: boolean): Promise<number> {
  for (let tries = 1; ; tries++) {
    if (machine.ledger.hasPending) await machine.settle();
    await machine.engine.sleep(1_000_000);
    try {
      return mm.touch(addr, write);
    } catch (e) {
      if (!(e instanceof FaultWouldBlockError) || tries >= 1000) throw e;
    }
  }
}
