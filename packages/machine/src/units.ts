/**
 * Units of a machine spec. Every quantity accepts a plain number in the base unit or a string with a unit:
 *  - size (bytes): "4KiB", "40GiB", "2GB" (see parseSize of @hmmsim/workloads)
 *  - duration (integer ps): "1.5us", "45µs", "70ns", "2ms", "1s", "800ps"; must come out a whole number of ps
 *  - bandwidth (bytes/s, rounded to an integer): "25GB/s" (10^9), "12GiB/s" (2^30), "500MB/s"
 *  - frequency (Hz): "3GHz", "1481MHz"
 */
export { parseSize, formatSize } from "@hmmsim/workloads";

const NUM = String.raw`(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)`;
const DURATION_RE = new RegExp(String.raw`^\s*${NUM}\s*(ps|ns|us|µs|ms|s)\s*$`);
const BANDWIDTH_RE = new RegExp(String.raw`^\s*${NUM}\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)/s\s*$`);
const FREQUENCY_RE = new RegExp(String.raw`^\s*${NUM}\s*(Hz|kHz|KHz|MHz|GHz)\s*$`);

const PS: Record<string, number> = { ps: 1, ns: 1e3, us: 1e6, "µs": 1e6, ms: 1e9, s: 1e12 };
const BW: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 2 ** 10,
  MiB: 2 ** 20,
  GiB: 2 ** 30,
  TiB: 2 ** 40,
};
const HZ: Record<string, number> = { Hz: 1, kHz: 1e3, KHz: 1e3, MHz: 1e6, GHz: 1e9 };

/** A duration in integer picoseconds, or undefined. Numbers are ps. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== "string") return undefined;
  const m = DURATION_RE.exec(value);
  if (!m) return undefined;
  // scale in integer steps to avoid 1.5 * 1e6 style float error: round to the nearest ps, then require a
  // value that is a whole number of ps to within 1e-6 ps
  const exact = Number(m[1]) * PS[m[2]!]!;
  const ps = Math.round(exact);
  return Number.isSafeInteger(ps) && Math.abs(exact - ps) < 1e-6 ? ps : undefined;
}

/** A bandwidth in bytes per second (rounded to an integer, > 0), or undefined. Numbers are B/s. */
export function parseBandwidth(value: unknown): number | undefined {
  let bps: number;
  if (typeof value === "number") bps = value;
  else if (typeof value === "string") {
    const m = BANDWIDTH_RE.exec(value);
    if (!m) return undefined;
    bps = Number(m[1]) * BW[m[2]!]!;
  } else return undefined;
  if (!Number.isFinite(bps) || bps <= 0) return undefined;
  const r = Math.round(bps);
  return Number.isSafeInteger(r) && r > 0 ? r : undefined;
}

/** A frequency in Hz (> 0), or undefined. Numbers are Hz. */
export function parseFrequency(value: unknown): number | undefined {
  let hz: number;
  if (typeof value === "number") hz = value;
  else if (typeof value === "string") {
    const m = FREQUENCY_RE.exec(value);
    if (!m) return undefined;
    hz = Number(m[1]) * HZ[m[2]!]!;
  } else return undefined;
  return Number.isFinite(hz) && hz > 0 ? hz : undefined;
}

/** Formats ps with the largest unit that keeps it short ("1.5us", "45us", "800ps"). */
export function formatDuration(ps: number): string {
  if (ps >= 1e12) return `${ps / 1e12}s`;
  if (ps >= 1e9) return `${ps / 1e9}ms`;
  if (ps >= 1e6) return `${ps / 1e6}us`;
  if (ps >= 1e3) return `${ps / 1e3}ns`;
  return `${ps}ps`;
}
