/**
 * Injection tokens of a machine's child container: Symbols named like their interface (the VS Code idiom: the
 * type and the token share a name, so `@inject(CostModel) costs: CostModel` reads naturally). Every injected
 * constructor parameter carries `@inject(Token)`: decorator metadata is off in this repo.
 */
import type { InjectionToken } from "tsyringe";
import type { Engine as EngineClass } from "@hmmsim/engine";
import type * as C from "./cost-model.js";
import type * as L from "./cost-ledger.js";
import type * as I from "./interconnect.js";
import type * as K from "./kernel-wiring.js";
import type * as S from "./machine-spec.js";

/** The machine's validated spec (a value). */
export type MachineSpec = S.MachineSpec;
export const MachineSpec: InjectionToken<MachineSpec> = Symbol("MachineSpec");

/** The machine's engine (one per machine; `Engine` from @hmmsim/engine). */
export type Engine = EngineClass;
export const Engine: InjectionToken<EngineClass> = Symbol("Engine");

/** The machine's kernel (`Kernel` from @hmmsim/core, through kernel-wiring.ts). */
export type Kernel = K.MachineKernel;
export const Kernel: InjectionToken<Kernel> = Symbol("Kernel");

export type CostSpec = C.CostSpec;
export const CostSpec: InjectionToken<CostSpec> = Symbol("CostSpec");
export type CostModel = C.CostModel;
export const CostModel: InjectionToken<CostModel> = Symbol("CostModel");
export type CpuFaultCost = C.CpuFaultCost;
export const CpuFaultCost: InjectionToken<CpuFaultCost> = Symbol("CpuFaultCost");
export type PageZeroCost = C.PageZeroCost;
export const PageZeroCost: InjectionToken<PageZeroCost> = Symbol("PageZeroCost");
export type PageCopyCost = C.PageCopyCost;
export const PageCopyCost: InjectionToken<PageCopyCost> = Symbol("PageCopyCost");
export type PteUpdateCost = C.PteUpdateCost;
export const PteUpdateCost: InjectionToken<PteUpdateCost> = Symbol("PteUpdateCost");
export type TlbShootdownCost = C.TlbShootdownCost;
export const TlbShootdownCost: InjectionToken<TlbShootdownCost> = Symbol("TlbShootdownCost");
export type DeviceFaultCost = C.DeviceFaultCost;
export const DeviceFaultCost: InjectionToken<DeviceFaultCost> = Symbol("DeviceFaultCost");
export type DmaCost = C.DmaCost;
export const DmaCost: InjectionToken<DmaCost> = Symbol("DmaCost");

/** Pending (not yet slept) cost per task. */
export type CostLedger = L.CostLedger;
export const CostLedger: InjectionToken<CostLedger> = Symbol("CostLedger");

/** Every link of the machine (multi-registered: resolveAll gives them all). */
export type Interconnect = I.Interconnect;
export const Interconnect: InjectionToken<Interconnect> = Symbol("Interconnect");
/** Link builders provided by interconnect plugins (multi-registered). */
export type InterconnectFactory = I.InterconnectFactory;
export const InterconnectFactory: InjectionToken<InterconnectFactory> = Symbol("InterconnectFactory");
/** The machine's links by name and by device. */
export type LinkRegistry = I.LinkRegistry;
export const LinkRegistry: InjectionToken<LinkRegistry> = Symbol("LinkRegistry");

/**
 * The dev_pagemap owners of the machine's devices: one object per group of devices joined by peer links, one per
 * other device (pgmap-owners.ts: how a driver uses it, and the MMU_NOTIFY_MIGRATE trap).
 */
export type PgmapOwners = import("./pgmap-owners.js").PgmapOwners;
export const PgmapOwners: InjectionToken<PgmapOwners> = Symbol("PgmapOwners");

/** Stateful services plugins register for createMachine to build and attach (multi-registered). */
export type MachineComponent = import("./plugin.js").MachineComponent;
export const MachineComponent: InjectionToken<MachineComponent> = Symbol("MachineComponent");

/** The machine's device drivers by device name: driver components add theirs (DeviceDriverRegistry). */
export type DeviceDrivers = import("./device-driver.js").DeviceDriverRegistry;
export const DeviceDrivers: InjectionToken<DeviceDrivers> = Symbol("DeviceDrivers");

/** The machine's trace points (MachineTrace.getHooks(machine)), for components that fire or tap them. */
export type TraceHooks = import("./trace-points.js").MachineTraceHooks;
export const TraceHooks: InjectionToken<TraceHooks> = Symbol("TraceHooks");
