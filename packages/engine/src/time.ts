// Virtual time: integer picoseconds in a JS number.
//
// A number holds integers exactly up to Number.MAX_SAFE_INTEGER = 2^53 - 1 ≈ 9.007e15 ps ≈ 9007 s of simulated
// time. Every time and duration the engine accepts is checked to be a non-negative safe integer; a time that would
// exceed 2^53 - 1 throws a VirtualTimeOverflowError (a VirtualTimeError) instead of silently losing precision.
import { VirtualTimeError, VirtualTimeOverflowError } from "./errors.js";

export const PS_PER_NS = 1_000;
export const PS_PER_US = 1_000_000;
export const PS_PER_MS = 1_000_000_000;
export const PS_PER_S = 1_000_000_000_000;

/** Largest representable virtual time, in ps (≈ 9007 s). */
export const MAX_TIME_PS = Number.MAX_SAFE_INTEGER;

/** Throws VirtualTimeError unless `dt` is a non-negative safe integer (ps). */
export function checkDuration(field: string, dt: number, now = 0): void {
  if (!Number.isSafeInteger(dt)) {
    if (dt > MAX_TIME_PS) throw new VirtualTimeOverflowError(field, dt, "a duration must be an integer number of picoseconds ≤ 2^53-1", now);
    throw new VirtualTimeError(field, dt, "a duration must be an integer number of picoseconds ≤ 2^53-1");
  }
  if (dt < 0) throw new VirtualTimeError(field, dt, "a duration must not be negative");
}

/** Throws VirtualTimeError unless `at` is a safe integer time ≥ `now`. */
export function checkTime(field: string, at: number, now: number): void {
  if (!Number.isSafeInteger(at)) {
    if (at > MAX_TIME_PS) throw new VirtualTimeOverflowError(field, at, "virtual time exceeds Number.MAX_SAFE_INTEGER ps (≈ 9007 s of simulated time)", now);
    throw new VirtualTimeError(field, at, "a virtual time must be an integer number of picoseconds");
  }
  if (at < now) throw new VirtualTimeError(field, at, `a virtual time must not lie in the past (now = ${now} ps)`);
}

/** now + dt, checked: throws VirtualTimeError if dt is invalid or the sum exceeds 2^53 - 1. */
export function addTime(field: string, now: number, dt: number): number {
  checkDuration(field, dt, now);
  const at = now + dt;
  if (at > MAX_TIME_PS) {
    throw new VirtualTimeOverflowError(field, dt, `now (${now} ps) + ${field} exceeds Number.MAX_SAFE_INTEGER ps (≈ 9007 s)`, now);
  }
  return at;
}
