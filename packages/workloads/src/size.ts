/**
 * Sizes in bytes: a non-negative safe integer, or a string such as "4KiB", "40GiB", "1.5MiB", "2GB", "512".
 * Binary suffixes (KiB, MiB, GiB, TiB) are powers of 1024; decimal ones (KB, MB, GB, TB) powers of 1000.
 * The result must be a whole number of bytes.
 */
const SIZE_RE = /^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB|PiB|KB|MB|GB|TB|PB|K|M|G|T)?\s*$/;

const SIZE_UNITS: Record<string, number> = {
  B: 1,
  KiB: 2 ** 10,
  MiB: 2 ** 20,
  GiB: 2 ** 30,
  TiB: 2 ** 40,
  PiB: 2 ** 50,
  K: 2 ** 10,
  M: 2 ** 20,
  G: 2 ** 30,
  T: 2 ** 40,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  PB: 1e15,
};

/** Parses a size; returns undefined if `value` is not a size (see the module comment for the accepted forms). */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== "string") return undefined;
  const m = SIZE_RE.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]) * SIZE_UNITS[m[2] ?? "B"]!;
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** Formats a byte count with the largest binary unit that divides it ("4KiB", "40GiB", "1000B"). */
export function formatSize(bytes: number): string {
  for (const [unit, mul] of [
    ["TiB", 2 ** 40],
    ["GiB", 2 ** 30],
    ["MiB", 2 ** 20],
    ["KiB", 2 ** 10],
  ] as const) {
    if (bytes >= mul && bytes % mul === 0) return `${bytes / mul}${unit}`;
  }
  return `${bytes}B`;
}
