// Benchmarks of @hmmsim/range-fault (`npm run bench -- range-fault`).
//
// hmmRangeFault pages/s over a populated 1 Mi-page (4 GiB) anonymous range, in snapshot mode (defaultFlags = 0,
// nothing faulted), on a bytes-off kernel with 6 GiB RAM:
//  1. THP off: the range is mapped by 2048 PTE tables (MAP_POPULATE write faults, 4 KiB pages).
//  2. THP on ("always"): the range is mapped by 2048 PMD leaves (order-9 THPs).
// Each is compared with a bare typed-array scan done here, in the same run, over the same entries producing the
// same output (hmm entry = (old & INOUT) + pfn * 2^11 + VALID[|WRITE][|order]): ratio = hmmRangeFault / bare,
// goal ≥ 1/3 (within 3×) and ≥ 20 M pages/s. `extra` has the rate with defaultFlags = REQ_FAULT on the same
// populated range (the fault decision runs for every page, no fault is needed).
import { performance } from "node:perf_hooks";
import { MAP_ANONYMOUS, MAP_POPULATE, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, createKernel, type Mm, type ThpMode } from "@hmmsim/core";
import { MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalReadBegin, mmuIntervalSetSeq } from "@hmmsim/mmu-notifier";
import { HMM_PFN_INOUT_FLAGS, HMM_PFN_REQ_FAULT, HMM_PFN_VALID } from "./hmm-pfn.js";
import { hmmRangeFault, type HmmRange } from "./hmm-range-fault.js";
import { asNotifierMm } from "./notifier-mm.js";

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

const NPAGES = 1 << 20;
const GOAL_RATE = 20e6;

/** Repeat fn (which processes `ops` items) until minMs elapsed after a warm-up; items per second. */
function rate(fn: () => void, ops: number, minMs = 400): number {
  const warm = performance.now();
  do fn();
  while (performance.now() - warm < minMs / 3);
  let n = 0;
  const t0 = performance.now();
  let t: number;
  do {
    fn();
    n += ops;
    t = performance.now();
  } while (t - t0 < minMs);
  return (n * 1000) / (t - t0);
}

function populated(thp: ThpMode): { mm: Mm; range: HmmRange } {
  const k = createKernel({ ramBytes: 6 * 1024 ** 3, bytes: false, thp });
  const mm = k.createMm();
  const addr = mm.mmap({ length: NPAGES * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE });
  if (addr < 0) throw new Error(`mmap failed: ${addr}`);
  const sub = new MmuIntervalNotifier();
  mmuIntervalNotifierInsert(sub, asNotifierMm(mm), addr, NPAGES * PAGE_SIZE, {
    invalidate: (s, _r, seq) => (mmuIntervalSetSeq(s, seq), true),
  });
  const range: HmmRange = {
    notifier: sub,
    notifierSeq: mmuIntervalReadBegin(sub),
    start: addr,
    end: addr + NPAGES * PAGE_SIZE,
    hmmPfns: new Float64Array(NPAGES),
    defaultFlags: 0,
    pfnFlagsMask: 0,
    devPrivateOwner: null,
  };
  return { mm, range };
}

/** The bare scan: the PTE tables (or PMD leaves) of the range in address order, converted entry by entry. */
function bareScan(mm: Mm, range: HmmRange, thp: boolean): () => void {
  const tables: Float64Array[] = [];
  const pmds: number[] = [];
  for (let a = range.start; a < range.end; a += 512 * PAGE_SIZE) {
    if (thp) pmds.push(mm.pgtable.pmdGet(a));
    else tables.push(mm.pgtable.pteTable(a, false)!);
  }
  const out = new Float64Array(NPAGES);
  if (!thp) {
    return () => {
      let k = 0;
      for (let t = 0; t < tables.length; t++) {
        const table = tables[t]!;
        for (let j = 0; j < 512; j++, k++) {
          const e = table[j]!;
          const low = e & 0xfff;
          out[k] = (out[k]! & HMM_PFN_INOUT_FLAGS) + (e - low) * 0.5 + ((low & 2) !== 0 ? 3 : 1);
        }
      }
    };
  }
  return () => {
    let k = 0;
    for (let t = 0; t < pmds.length; t++) {
      const e = pmds[t]!;
      const low = e & 0xfff;
      const flags = ((low & 2) !== 0 ? 3 : 1) | (9 << 6);
      let v = (e - low) * 0.5 + flags;
      for (let j = 0; j < 512; j++, k++, v += 2048) out[k] = (out[k]! & HMM_PFN_INOUT_FLAGS) + v;
    }
  };
}

function benchOne(thp: ThpMode): BenchEntry {
  const { mm, range } = populated(thp);
  const huge = thp === "always";
  if (!mm.mmapLock.tryDownRead()) throw new Error("mmap_lock busy");
  try {
    const snap = () => {
      const r = hmmRangeFault(range);
      if (r !== 0) throw new Error(`hmmRangeFault: ${r}`);
    };
    snap();
    const pfns = range.hmmPfns as Float64Array;
    if ((pfns[0]! & HMM_PFN_VALID) === 0 || (pfns[NPAGES - 1]! & HMM_PFN_VALID) === 0) throw new Error("range not populated");
    const hmm = rate(snap, NPAGES);
    const bare = rate(bareScan(mm, range, huge), NPAGES);
    range.defaultFlags = HMM_PFN_REQ_FAULT;
    const withReq = rate(snap, NPAGES);
    range.defaultFlags = 0;
    const ratio = hmm / bare;
    return {
      name: `hmmRangeFault snapshot, 1 Mi populated pages, THP ${huge ? "on (PMD leaves)" : "off (PTE tables)"}`,
      opsPerSec: hmm,
      unit: "pages/s",
      baseline: "bare typed-array scan of the same entries",
      ratio,
      goal: "ratio ≥ 0.33 (within 3×) and ≥ 20 M pages/s",
      pass: ratio >= 1 / 3 && hmm >= GOAL_RATE,
      extra: { barePagesPerSec: bare, reqFaultNoFaultPagesPerSec: withReq },
    };
  } finally {
    mm.mmapLock.upRead();
  }
}

export default async function (): Promise<BenchEntry[]> {
  return [benchOne("never"), benchOne("always")];
}
