/**
 * Injection tokens of the FPGA driver, registered in the machine's child container by FpgaDriverPlugin.register:
 * Symbols named like their interface (the type and the token share the name, as @hmmsim/machine's tokens.ts).
 */
import type { InjectionToken } from "tsyringe";
import type * as S from "./fpga-spec.js";

/** The plugin's resolved spec (a value): the base every device's `driverSpec` is laid over. */
export type FpgaDriverSpec = S.FpgaDriverSpec;
export const FpgaDriverSpec: InjectionToken<Readonly<FpgaDriverSpec>> = Symbol("FpgaDriverSpec");
