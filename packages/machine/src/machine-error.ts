/** Misuse of a machine (run after dispose, unknown device/link/driver name, …). */
export class MachineError extends Error {
  override readonly name: string = "MachineError";
}
