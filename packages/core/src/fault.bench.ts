// Benchmarks of the CPU anonymous fault path (`npm run bench -- fault`). mm/memory.c do_anonymous_page reached
// through the CPU access API (Mm.touch / Mm.write → handle_mm_fault), as a workload's first touch would.
//
//  1. first-touch write faults/s, bytes off (timing-only mode): Mm.touch(addr, true) on N fresh pages of a
//     private anonymous mapping (no THP: 4 KiB faults). Goal ≥ 1 M simulated faults/s (the project's
//     performance goal for the kernel model).
//  2. the same with bytes on, through Mm.write(addr, 8 bytes): each fault also gets a 4 KiB buffer. Reported as a
//     ratio to entry 1 (same run); no goal.
//  3. host memory per touched page at 1 M touched pages, bytes off — the goal: ≤ 16 B/page above the empty
//     machine (same RAM size, same VMA, nothing touched). Gated on what the host really commits: the growth of the
//     process's resident set (RSS) across the touches, in a fresh child process (`node --expose-gc`), so that no
//     earlier allocation is reused. The kernel is created with memmap "boot": as in Linux, the empty machine holds
//     its RAM's struct pages (mem_map, written at boot by memmap_init_range, so resident), and a touch adds what
//     the kernel adds: its page-table entry (8 B) and the PTE page holding it.
//  4. the same with memmap "lazy", hmmsim's default: the struct pages of RAM are allocated per 128 MiB chunk on
//     first write, so the empty machine is nearly free and a touch pays its struct page (28 B) besides its PTE.
//     Reported beside 3, no goal: it moves the mem_map's cost from boot to first use (so a 480 GiB machine that
//     touches 64 MiB costs megabytes).
//  5. what that boot-time empty machine allocates per RAM page (its struct pages, allocator bitmaps), no goal.
//
// Heap and typed-array figures: process.memoryUsage() heapUsed + arrayBuffers after a full GC, before and after.
import { spawnSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import vm from "node:vm";
import { createKernel, type Kernel } from "./kernel.js";
import type { Mm } from "./mm.js";
import { PAGE_SIZE } from "./page-flags.js";
import { PAGE_STORE_BYTES_PER_PAGE } from "./page-store.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "./vma.js";

interface BenchEntry {
  name: string;
  opsPerSec: number;
  unit?: string;
  baseline?: string;
  ratio?: number;
  goal?: string;
  pass?: boolean;
  extra?: Record<string, number>;
}

const FAULT_PAGES = 65_536; // 256 MiB per round
const MIN_MS = 400;
const MEM_PAGES = 1 << 20; // 1 M pages = 4 GiB

function machine(nrPages: number, bytes: boolean, memmap: "boot" | "lazy" = "lazy"): { k: Kernel; mm: Mm; addr: number } {
  const k = createKernel({ ramBytes: nrPages * PAGE_SIZE + 2 * 1024 * 1024, bytes, thp: "never", memmap });
  const mm = k.createMm();
  const addr = mm.mmap({ length: nrPages * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  if (addr < 0) throw new Error(`mmap failed: ${addr}`);
  return { k, mm, addr };
}

/** Faults/s of `touch` on FAULT_PAGES fresh pages, timing only the touch loop, rounds until MIN_MS of it. */
function faultRate(bytes: boolean, touch: (mm: Mm, addr: number) => void): number {
  let pages = 0;
  let ms = 0;
  let round = 0;
  while (ms < MIN_MS || round < 2) {
    const { mm, addr } = machine(FAULT_PAGES, bytes);
    const t0 = performance.now();
    for (let i = 0; i < FAULT_PAGES; i++) touch(mm, addr + i * PAGE_SIZE);
    const dt = performance.now() - t0;
    if (round > 0) {
      // round 0 is the warm-up
      pages += FAULT_PAGES;
      ms += dt;
    }
    round++;
  }
  return (pages * 1000) / ms;
}

function findGc(): { gc: (() => void) | null; method: number } {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === "function") return { gc: g, method: 1 };
  try {
    v8.setFlagsFromString("--expose-gc");
    const f = vm.runInNewContext("gc") as unknown;
    if (typeof f === "function") return { gc: f as () => void, method: 2 };
  } catch {
    // fall through
  }
  return { gc: null, method: 0 };
}

function usage(gc: (() => void) | null): { heap: number; ab: number; rss: number } {
  if (gc !== null) {
    gc();
    gc();
  }
  const m = process.memoryUsage();
  return { heap: m.heapUsed, ab: m.arrayBuffers, rss: m.rss };
}

/** Touch MEM_PAGES pages of a fresh machine; memory of the empty machine and of the touches. */
function memoryRun(gc: (() => void) | null, memmap: "boot" | "lazy") {
  const empty0 = usage(gc);
  const m = machine(MEM_PAGES, false, memmap);
  const before = usage(gc);
  const t0 = performance.now();
  for (let i = 0; i < MEM_PAGES; i++) m.mm.touch(m.addr + i * PAGE_SIZE, true);
  const dt = performance.now() - t0;
  const after = usage(gc);
  if (m.k.allocator.nrFree !== m.k.nrRamPages - MEM_PAGES) throw new Error("bench: not every page was faulted in");
  const r = {
    nrRamPages: m.k.nrRamPages,
    emptyPerRamPage: (before.heap - empty0.heap + before.ab - empty0.ab) / m.k.nrRamPages,
    emptyRssPerRamPage: (before.rss - empty0.rss) / m.k.nrRamPages,
    storePerRamPage: m.k.store.hostBytes / m.k.nrRamPages,
    perPage: (after.heap - before.heap + after.ab - before.ab) / MEM_PAGES,
    abPerPage: (after.ab - before.ab) / MEM_PAGES,
    heapPerPage: (after.heap - before.heap) / MEM_PAGES,
    rssPerPage: (after.rss - before.rss) / MEM_PAGES,
    chunks: m.k.store.allocatedChunks,
    pteTables: m.mm.pgtable.nrPteTables,
    faultsPerSec: (MEM_PAGES * 1000) / dt,
  };
  return r; // m is unreachable after this: the next run's baseline does not hold it
}

type MemoryResult = ReturnType<typeof memoryRun>;

/** memoryRun in a fresh `node --expose-gc` child: nothing this process allocated before is reused. */
function memoryRunInChild(memmap: "boot" | "lazy"): MemoryResult {
  const r = spawnSync(process.execPath, ["--expose-gc", fileURLToPath(import.meta.url), "memory", memmap], { encoding: "utf8", maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`bench child (memory ${memmap}) failed: ${r.stderr || r.error?.message}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as MemoryResult;
}

export default async (): Promise<BenchEntry[]> => {
  const out: BenchEntry[] = [];
  const write8 = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  const off = faultRate(false, (mm, a) => {
    mm.touch(a, true);
  });
  const on = faultRate(true, (mm, a) => mm.write(a, write8));
  out.push({
    name: "core: CPU anon first-touch write faults (bytes off, Mm.touch)",
    opsPerSec: off,
    unit: "faults/s",
    goal: "≥ 1 M faults/s",
    pass: off >= 1e6,
  });
  out.push({
    name: "core: CPU anon first-touch write faults (bytes on, Mm.write 8 B)",
    opsPerSec: on,
    unit: "faults/s",
    baseline: "bytes off",
    ratio: on / off,
  });

  // Memory per touched page at 1 M pages, bytes off: each mode in a fresh child process.
  const boot = memoryRunInChild("boot");
  out.push({
    name: "core: host memory (RSS) per touched page at 1 M pages (bytes off, memmap boot: mem_map in the empty machine)",
    opsPerSec: boot.rssPerPage,
    unit: "B/page",
    goal: "≤ 16 B/page above the empty machine",
    pass: boot.rssPerPage <= 16,
    extra: {
      allocatedBytesPerPage: boot.perPage,
      typedArrayBytesPerPage: boot.abPerPage,
      heapBytesPerPage: boot.heapPerPage,
      pteBytesPerPage: 8,
      emptyRssBytesPerRamPage: boot.emptyRssPerRamPage,
      pageStoreChunks: boot.chunks,
      pteTables: boot.pteTables,
      faultsPerSecAt1M: boot.faultsPerSec,
    },
  });
  const lazy = memoryRunInChild("lazy");
  out.push({
    name: "core: host memory (RSS) per touched page at 1 M pages (bytes off, memmap lazy, the default: struct page paid on first touch)",
    opsPerSec: lazy.rssPerPage,
    unit: "B/page",
    baseline: "memmap boot",
    ratio: lazy.rssPerPage / boot.rssPerPage,
    extra: {
      allocatedBytesPerPage: lazy.perPage,
      typedArrayBytesPerPage: lazy.abPerPage,
      heapBytesPerPage: lazy.heapPerPage,
      pageStoreBytesPerPage: PAGE_STORE_BYTES_PER_PAGE,
      pteBytesPerPage: 8,
      emptyRssBytesPerRamPage: lazy.emptyRssPerRamPage,
      pageStoreChunks: lazy.chunks,
      faultsPerSecAt1M: lazy.faultsPerSec,
    },
  });
  out.push({
    name: "core: host memory allocated per RAM page by the empty machine (bytes off, memmap boot)",
    opsPerSec: boot.emptyPerRamPage,
    unit: "B/page",
    extra: {
      nrRamPages: boot.nrRamPages,
      pageStoreBytesPerRamPage: boot.storePerRamPage,
      rssBytesPerRamPage: boot.emptyRssPerRamPage,
    },
  });
  return out;
};

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === "memory") {
  const { gc } = findGc();
  process.stdout.write(JSON.stringify(memoryRun(gc, process.argv[3] === "lazy" ? "lazy" : "boot")) + "\n");
}
