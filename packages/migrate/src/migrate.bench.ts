// Benchmarks of @hmmsim/migrate (`npm run bench -- migrate`).
//  1. migrate round trip, bytes on: 64 MiB of written anonymous memory moved RAM → device-private memory
//     (migrate_vma_setup(SELECT_SYSTEM) + driver copy + pages + finalize) and back (SELECT_DEVICE_PRIVATE), in
//     GB/s of page bytes moved (2 × 64 MiB per round trip). Baseline in the same run: Buffer.copy of the same
//     128 MiB (64 MiB there, 64 MiB back) between two buffers. ratio = migrate / Buffer.copy, goal ≥ 0.5.
//  2. the same with bytes off (content tags only): pages/s of the migration machinery alone.
// The three cases are sampled interleaved (measureInterleaved, median of 21 rounds). The device's copy is
// copy_highpage, which shares the source's buffer copy-on-write (core page-bytes.ts): the old page is freed at
// finalize, so the bytes move by reference and bytes on costs about what bytes off does.
import { MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, createKernel } from "@hmmsim/core";
import { measureInterleaved } from "@hmmsim/engine";
import { TestDevice } from "./test-driver.js";

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
function roundTripper(bytes: boolean): { roundTrip: () => number; check: () => void } {
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
      // the bytes made it
      for (const i of [0, NPAGES >> 1, NPAGES - 1]) {
        const got = mm.read(a + i * PAGE_SIZE, PAGE_SIZE);
        if (bytes && (got[0] !== (i & 0xff) || got[PAGE_SIZE - 1] !== ((i >> 8) & 0xff))) throw new Error(`migrate bench: bytes of page ${i} lost`);
      }
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
      extra: { baselineGBps: baseGbps, pagesPerSec: mOn!.opsPerSec, roundTripMs: (2 * NPAGES * 1000) / mOn!.opsPerSec },
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
