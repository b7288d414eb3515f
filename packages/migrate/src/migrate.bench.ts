// Benchmarks of @hmmsim/migrate (`npm run bench -- migrate`).
//  1. migrate round trip, bytes on: 64 MiB of written anonymous memory moved RAM → device-private memory
//     (migrate_vma_setup(SELECT_SYSTEM) + driver copy + pages + finalize) and back (SELECT_DEVICE_PRIVATE), in
//     GB/s of page bytes moved (2 × 64 MiB per round trip). Baseline in the same run: Buffer.copy of the same
//     128 MiB (64 MiB there, 64 MiB back) between two buffers. ratio = migrate / Buffer.copy, goal ≥ 0.5.
//  2. the same with bytes off (content tags only): pages/s of the migration machinery alone.
// Then 11 more bytes-on round trips time each step (setup, the driver's copy, migrate_vma_pages, finalize): ns per
// page per direction, in `extra`.
// The three cases are sampled interleaved (measureInterleaved, median of 21 rounds). The device's copy is
// copy_highpage, which shares the source's buffer copy-on-write (core page-bytes.ts): the old page is freed at
// finalize, so the bytes move by reference and bytes on costs about what bytes off does.
import { MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, createKernel } from "@hmmsim/core";
import { measureInterleaved } from "@hmmsim/engine";
import { TestDevice, type MigratePhase } from "./testing/test-driver.js";

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

const BYTES = 64 << 20;
const NPAGES = BYTES / PAGE_SIZE;

/** A kernel with NPAGES written pages and a TestDevice; roundTrip() moves them RAM → device → RAM once. */
function roundTripper(bytes: boolean): { roundTrip: () => number; check: () => void; phaseNs: (rounds: number) => Record<string, number> } {
  const k = createKernel({ ramBytes: 256 << 20, bytes, thp: "never" });
  const mm = k.createMm();
  const a = mm.mmap({ length: BYTES, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  const page = new Uint8Array(PAGE_SIZE);
  for (let i = 0; i < NPAGES; i++) {
    page[0] = i & 0xff;
    page[PAGE_SIZE - 1] = (i >> 8) & 0xff;
    if (bytes) mm.write(a + i * PAGE_SIZE, page);
    else mm.touch(a + i * PAGE_SIZE, true);
  }
  const dev = new TestDevice(k, NPAGES);
  dev.recordFreed = false;
  return {
    roundTrip: () => {
      const to = dev.migrateToDevice(mm, a, a + BYTES);
      const back = dev.migrateToSystem(mm, a, a + BYTES);
      if (to.args.cpages !== NPAGES || back.args.cpages !== NPAGES) throw new Error("migrate bench: not every page migrated");
      return 2 * NPAGES;
    },
    check: () => {
      // every page's bytes made it through every round trip (and each is back in RAM)
      for (let i = 0; i < NPAGES; i++) {
        const got = mm.read(a + i * PAGE_SIZE, PAGE_SIZE);
        if (bytes && (got[0] !== (i & 0xff) || got[PAGE_SIZE - 1] !== ((i >> 8) & 0xff))) throw new Error(`migrate bench: bytes of page ${i} lost`);
      }
      if (dev.free.length !== NPAGES) throw new Error(`migrate bench: ${NPAGES - dev.free.length} device pages still in use`);
    },
    // Where a round trip's time goes: ns per page per direction for each step (median of `rounds` round trips).
    phaseNs: (rounds) => {
      const times: Record<MigratePhase, number[]> = { setup: [], copy: [], pages: [], finalize: [] };
      let t = 0;
      let dir: Partial<Record<MigratePhase, number>> = {};
      dev.phaseDone = (p) => {
        const now = performance.now();
        dir[p] = (dir[p] ?? 0) + (now - t);
        t = now;
      };
      for (let r = 0; r < rounds; r++) {
        dir = {};
        t = performance.now();
        dev.migrateToDevice(mm, a, a + BYTES);
        t = performance.now();
        dev.migrateToSystem(mm, a, a + BYTES);
        for (const p of Object.keys(times) as MigratePhase[]) times[p].push(((dir[p] ?? 0) * 1e6) / (2 * NPAGES));
      }
      dev.phaseDone = null;
      const med = (v: number[]): number => [...v].sort((x, y) => x - y)[v.length >> 1]!;
      return {
        collectUnmapNsPerPage: med(times.setup),
        driverCopyNsPerPage: med(times.copy),
        migratePagesNsPerPage: med(times.pages),
        finalizeNsPerPage: med(times.finalize),
      };
    },
  };
}

export default async function bench(): Promise<BenchEntry[]> {
  const on = roundTripper(true);
  const off = roundTripper(false);
  const src = Buffer.alloc(BYTES, 1);
  const dst = Buffer.alloc(BYTES);
  // Interleaved samples at the median (engine's measureInterleaved): outside load hits every case alike.
  const [mOn, mOff, mCopy] = measureInterleaved(
    [
      { name: "bytes on", fn: on.roundTrip },
      { name: "bytes off", fn: off.roundTrip },
      { name: "Buffer.copy", fn: () => (src.copy(dst), dst.copy(src), 2 * NPAGES) },
    ],
    { rounds: 21, warmupRounds: 3 },
  );
  const phases = on.phaseNs(11);
  on.check();
  off.check();
  const gbps = (mOn!.opsPerSec * PAGE_SIZE) / 1e9;
  const baseGbps = (mCopy!.opsPerSec * PAGE_SIZE) / 1e9;
  const ratio = gbps / baseGbps;
  return [
    {
      name: "migrate RAM→device→RAM, 64 MiB, bytes on",
      opsPerSec: gbps,
      unit: "GB/s",
      baseline: "Buffer.copy of the same 2 × 64 MiB",
      ratio,
      goal: "ratio ≥ 0.5",
      pass: ratio >= 0.5,
      extra: { baselineGBps: baseGbps, pagesPerSec: mOn!.opsPerSec, roundTripMs: (2 * NPAGES * 1000) / mOn!.opsPerSec, ...phases },
    },
    {
      name: "migrate RAM→device→RAM, 64 MiB, bytes off",
      opsPerSec: mOff!.opsPerSec,
      unit: "pages/s",
      baseline: "bytes on",
      ratio: mOff!.opsPerSec / mOn!.opsPerSec,
      extra: { roundTripMs: (2 * NPAGES * 1000) / mOff!.opsPerSec },
    },
  ];
}
