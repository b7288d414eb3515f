/**
 * Typed errors. The kernel-API layer returns negative errnos; these are for what the kernel would WARN_ON/BUG_ON
 * (KernelRuleError), for bad input to a public entry point (InvalidArgumentError), and for a CPU access that the
 * fault handler could not resolve (SegmentationFault: the signal a process would get).
 */

/** A kernel rule was broken: what the kernel would WARN_ON / BUG_ON / VM_BUG_ON. `rule` names it. */
export class KernelRuleError extends Error {
  readonly code = "KERNEL_RULE" as const;
  constructor(
    readonly rule: string,
    detail?: string,
  ) {
    super(detail === undefined ? `kernel rule broken: ${rule}` : `kernel rule broken: ${rule}: ${detail}`);
    this.name = "KernelRuleError";
  }
}

/** A public entry point got bad input. `field` is the argument, `rule` the rule it broke; state is unchanged. */
export class InvalidArgumentError extends Error {
  readonly code = "INVALID_ARGUMENT" as const;
  constructor(
    readonly field: string,
    readonly rule: string,
    readonly value?: unknown,
  ) {
    super(`invalid argument ${field}: ${rule}${value === undefined ? "" : ` (got ${String(value)})`}`);
    this.name = "InvalidArgumentError";
  }
}

/**
 * A system call that returns an object (fork's child mm) failed the way the kernel's would with `errno` (negative,
 * e.g. -ENOMEM). State is as the kernel leaves it: for fork, the half-built child has been torn down (mmput).
 */
export class SyscallError extends Error {
  readonly code = "SYSCALL_FAILED" as const;
  constructor(
    readonly syscall: string,
    readonly errno: number,
    readonly reason: string,
  ) {
    super(`${syscall}: ${reason} (${-errno})`);
    this.name = "SyscallError";
  }
}

/** The mmap lock is held and the synchronous functional plane cannot sleep on it. */
export class MmapLockHeldError extends Error {
  readonly code = "MMAP_LOCK_HELD" as const;
  constructor(
    readonly mmId: number,
    readonly operation: string,
  ) {
    super(`mm ${mmId}: ${operation}: mmap_lock is held (the functional plane cannot sleep on it)`);
    this.name = "MmapLockHeldError";
  }
}

/** A CPU access faulted and the fault could not be resolved (SIGSEGV / SIGBUS / OOM kill), naming the address. */
export class SegmentationFault extends Error {
  readonly code = "SEGMENTATION_FAULT" as const;
  constructor(
    readonly address: number,
    readonly write: boolean,
    /** The VM_FAULT_* bits handleMmFault returned (VM_FAULT_SIGSEGV, VM_FAULT_SIGBUS, VM_FAULT_OOM, ...). */
    readonly fault: number,
    readonly reason: string,
  ) {
    super(`${write ? "write" : "read"} at 0x${address.toString(16)}: ${reason}`);
    this.name = "SegmentationFault";
  }
}

/**
 * A CPU access would have to sleep: a migration entry is in place (migration_entry_wait) or the page is locked
 * (folio_lock_or_retry). The functional plane is synchronous, so the access is reported instead of waiting.
 */
export class FaultWouldBlockError extends Error {
  readonly code = "FAULT_WOULD_BLOCK" as const;
  constructor(
    readonly address: number,
    readonly reason: "migration-entry" | "page-locked" | "no-progress",
  ) {
    super(`access at 0x${address.toString(16)} would block: ${reason}`);
    this.name = "FaultWouldBlockError";
  }
}
