// Benchmarks of @hmmsim/migrate (`npm run bench -- migrate`).
//  1. migrate round trip, bytes on: 64 MiB of written anonymous memory moved RAM → device-private memory
//     (migrate_vma_setup(SELECT_SYSTEM) + driver copy + pages + finalize) and back (SELECT_DEVICE_PRIVATE), in
//     GB/s of page bytes moved (2 × 64 MiB per round trip). Baseline in the same run: Buffer.copy of the same
//     128 MiB (64 MiB there, 64 MiB back) between two buffers. ratio = migrate / Buffer.copy, goal ≥ 0.5.
//  2. the same with bytes off (content tags only): pages/s of the migration machinery alone.
import { MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, createKernel } from "@hmmsim/core";
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
const ROUNDS = 5;

function now(): number {
  return performance.now();
}

function migrateRoundTrips(bytes: boolean): { seconds: number; pages: number } {
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
  // warm-up round trip (JIT, page-bytes slabs for the device pages)
  dev.migrateToDevice(mm, a, a + BYTES);
  dev.migrateToSystem(mm, a, a + BYTES);
  let best = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = now();
    const to = dev.migrateToDevice(mm, a, a + BYTES);
    const back = dev.migrateToSystem(mm, a, a + BYTES);
    const t = (now() - t0) / 1000;
    if (to.args.cpages !== NPAGES || back.args.cpages !== NPAGES) throw new Error("migrate bench: not every page migrated");
    best = Math.min(best, t);
  }
  // the bytes made it
  const last = mm.read(a + (NPAGES - 1) * PAGE_SIZE, PAGE_SIZE);
  if (bytes && (last[0] !== ((NPAGES - 1) & 0xff) || last[PAGE_SIZE - 1] !== (((NPAGES - 1) >> 8) & 0xff)))
    throw new Error("migrate bench: bytes lost");
  return { seconds: best, pages: 2 * NPAGES };
}

function bufferCopy(): number {
  const a = Buffer.alloc(BYTES, 1);
  const b = Buffer.alloc(BYTES);
  a.copy(b);
  b.copy(a);
  let best = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = now();
    a.copy(b);
    b.copy(a);
    best = Math.min(best, (now() - t0) / 1000);
  }
  return best;
}

export default async function bench(): Promise<BenchEntry[]> {
  const base = bufferCopy();
  const on = migrateRoundTrips(true);
  const off = migrateRoundTrips(false);
  const gbps = (2 * BYTES) / on.seconds / 1e9;
  const baseGbps = (2 * BYTES) / base / 1e9;
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
      extra: { baselineGBps: baseGbps, pagesPerSec: on.pages / on.seconds, roundTripMs: on.seconds * 1000 },
    },
    {
      name: "migrate RAM→device→RAM, 64 MiB, bytes off",
      opsPerSec: off.pages / off.seconds,
      unit: "pages/s",
      extra: { roundTripMs: off.seconds * 1000 },
    },
  ];
}
