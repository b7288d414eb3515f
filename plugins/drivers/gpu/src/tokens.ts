/**
 * Injection tokens of the GPU driver, registered in the machine's child container by GpuDriverPlugin.register:
 * Symbols named like their interface (the type and the token share the name, as @hmmsim/machine's tokens.ts).
 */
import type { InjectionToken } from "tsyringe";
import type * as S from "./gpu-spec.js";

/** The plugin's resolved spec (a value): the base every device's `driverSpec` is laid over. */
export type GpuDriverSpec = S.GpuDriverSpec;
export const GpuDriverSpec: InjectionToken<Readonly<GpuDriverSpec>> = Symbol("GpuDriverSpec");
