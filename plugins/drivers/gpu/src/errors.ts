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

/**
 * The device could not make progress (a warp's fault cannot be serviced: SIGBUS/-EFAULT for the device access).
 * With errno -ENOMEM (-12) the machine ran out of memory (RAM for an eviction or a fault): `runLimit` is then
 * "memory", which @hmmsim/machine's simulate() reports as a stopped run (the input is too big for the machine,
 * not a bug), without a stack.
 */
export class GpuFaultError extends Error {
  override readonly name: string = "GpuFaultError";
  readonly runLimit: "memory" | undefined;
  constructor(
    readonly device: string,
    readonly address: number,
    readonly errno: number,
    why: string,
  ) {
    super(`${device}: device fault at 0x${address.toString(16)} cannot be serviced (${errno}): ${why}`);
    this.runLimit = errno === -12 ? "memory" : undefined;
  }
}

/**
 * A warp's access faulted more than `maxFaultsPerAccess` times (the driver spec's forward-progress bound) without
 * completing: its page was taken away before each replay (evicted to make room for another block's pages, or
 * invalidated). `runLimit` "forward-progress": simulate() reports it as a stopped run naming the device.
 */
export class GpuForwardProgressError extends Error {
  override readonly name = "GpuForwardProgressError";
  readonly runLimit = "forward-progress" as const;
  constructor(
    readonly device: string,
    readonly warp: number,
    readonly address: number,
    readonly faults: number,
    readonly bound: number,
    why: string,
  ) {
    super(`${device}: warp ${warp}'s access at 0x${address.toString(16)} faulted ${faults} times without completing (the bound is driverSpec.maxFaultsPerAccess = ${bound}): ${why}`);
  }
}
