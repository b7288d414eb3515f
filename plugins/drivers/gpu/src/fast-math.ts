/**
 * Remainders of the driver's hot paths. Addresses and keys here are integers up to 2^53, beyond int32, so `%`
 * compiles to a floating-point fmod call (tens of ns); these give the same results with a division, a floor and a
 * multiply (exact: every operand is an integer below 2^53, and a power-of-two divisor divides exactly).
 */

/** x mod m for an integer x ≥ 0 (below 2^53) and a power of two m. */
export function modPow2(x: number, m: number): number {
  return x - Math.floor(x / m) * m;
}

/** x mod m for integers 0 ≤ x < 2^53 and 0 < m < 2^31: x − ⌊x/m⌋·m, the quotient corrected by one if rounding moved it. */
export function modInt(x: number, m: number): number {
  const r = x - Math.floor(x / m) * m;
  return r < 0 ? r + m : r >= m ? r - m : r;
}
