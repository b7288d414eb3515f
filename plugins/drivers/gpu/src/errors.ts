/** Typed errors of the GPU driver: bad input names the field and the rule; misuse names the rule broken. */

/** A bad GpuDriverPlugin spec: every problem at once. */
export class GpuSpecError extends Error {
  override readonly name = "GpuSpecError";
  constructor(readonly issues: readonly { field: string; rule: string }[]) {
    super(`invalid GPU driver spec: ${issues.map((i) => `${i.field}: ${i.rule}`).join("; ")}`);
  }
}

/** Bad input to a driver entry point (runKernel, attachMm, …). */
export class GpuInputError extends Error {
  override readonly name = "GpuInputError";
  constructor(
    readonly field: string,
    readonly rule: string,
    readonly value?: unknown,
  ) {
    super(`${field}: ${rule}${value === undefined ? "" : ` (got ${String(value)})`}`);
  }
}

/** A policy tap answered something the driver cannot act on (names the hook and the rule). */
export class GpuPolicyError extends Error {
  override readonly name = "GpuPolicyError";
  constructor(
    readonly hook: string,
    readonly rule: string,
  ) {
    super(`${hook}: ${rule}`);
  }
}

/** The device could not make progress (a warp's fault cannot be serviced: SIGBUS/-EFAULT for the device access). */
export class GpuFaultError extends Error {
  override readonly name = "GpuFaultError";
  constructor(
    readonly device: string,
    readonly address: number,
    readonly errno: number,
    why: string,
  ) {
    super(`${device}: device fault at 0x${address.toString(16)} cannot be serviced (${errno}): ${why}`);
  }
}
