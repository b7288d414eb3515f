/** Typed errors of the FPGA driver: bad input names the field and the rule; a fault that cannot be serviced names the device. */

/** A bad FpgaDriverPlugin spec: every problem at once. */
export class FpgaSpecError extends Error {
  override readonly name = "FpgaSpecError";
  constructor(readonly issues: readonly { field: string; rule: string }[]) {
    super(`invalid FPGA driver spec: ${issues.map((i) => `${i.field}: ${i.rule}`).join("; ")}`);
  }
}

/** Bad input to a driver entry point (runJob, migrateToCard, attachMm, …). */
export class FpgaInputError extends Error {
  override readonly name = "FpgaInputError";
  constructor(
    readonly field: string,
    readonly rule: string,
    readonly value?: unknown,
  ) {
    super(`${field}: ${rule}${value === undefined ? "" : ` (got ${String(value)})`}`);
  }
}

/** A policy tap answered something the driver cannot act on (names the hook and the rule). */
export class FpgaPolicyError extends Error {
  override readonly name = "FpgaPolicyError";
  constructor(
    readonly hook: string,
    readonly rule: string,
  ) {
    super(`${hook}: ${rule}`);
  }
}

/**
 * A stream's fault could not be serviced: the driver dropped it (Coyote `drop_irq_pfault`, TaPaSCo
 * `drop_page_fault`) and the job stops. With errno -ENOMEM (-12) the machine ran out of memory: `runLimit` is then
 * "memory", which @hmmsim/machine's simulate() reports as a stopped run, not a bug.
 */
export class FpgaFaultError extends Error {
  override readonly name: string = "FpgaFaultError";
  readonly runLimit: "memory" | undefined;
  constructor(
    readonly device: string,
    readonly address: number,
    readonly errno: number,
    why: string,
  ) {
    super(`${device}: stream fault at 0x${address.toString(16)} cannot be serviced (${errno}): ${why}`);
    this.runLimit = errno === -12 ? "memory" : undefined;
  }
}

/**
 * A stream's access faulted more than `maxFaultsPerAccess` times without completing (its page was taken away
 * before each restart: evicted or invalidated). `runLimit` "forward-progress": simulate() reports a stopped run.
 */
export class FpgaForwardProgressError extends Error {
  override readonly name = "FpgaForwardProgressError";
  readonly runLimit = "forward-progress" as const;
  constructor(
    readonly device: string,
    readonly stream: number,
    readonly address: number,
    readonly faults: number,
    readonly bound: number,
  ) {
    super(
      `${device}: stream ${stream}'s access at 0x${address.toString(16)} faulted ${faults} times without completing (the bound is driverSpec.maxFaultsPerAccess = ${bound}): ` +
        `its page was taken away before each restart — give the card more memory or shrink the working set`,
    );
  }
}
