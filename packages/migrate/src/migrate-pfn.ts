/**
 * include/linux/migrate.h: the migrate_pfn words (MIGRATE_PFN_*), migrate_pfn() / migrate_pfn_to_page(),
 * MIGRATE_VMA_SELECT_* and struct migrate_vma.
 *
 * An mpfn is a JS number: `pfn * 2^6 + flags` (MIGRATE_PFN_SHIFT = 6, as the kernel). pfns stay below 2^32, so an
 * mpfn stays below 2^38 and is exact in a double (Float64Array or number[]). The flag bits are the low 6 bits:
 * `m & 63` is exact for any integer below 2^53, but `m | FLAG` is NOT (it truncates to 32 bits): use
 * mpfnSet / mpfnClear, which add and subtract.
 */
import { InvalidArgumentError, type VmAreaStruct } from "@hmmsim/core";

export const MIGRATE_PFN_VALID = 1 << 0;
export const MIGRATE_PFN_MIGRATE = 1 << 1;
export const MIGRATE_PFN_WRITE = 1 << 3;
export const MIGRATE_PFN_COMPOUND = 1 << 4;
export const MIGRATE_PFN_SHIFT = 6;
const PFN_MUL = 64;
const FLAGS_MASK = PFN_MUL - 1;

/** enum migrate_vma_direction. */
export const MIGRATE_VMA_SELECT_SYSTEM = 1 << 0;
export const MIGRATE_VMA_SELECT_DEVICE_PRIVATE = 1 << 1;
export const MIGRATE_VMA_SELECT_DEVICE_COHERENT = 1 << 2;
export const MIGRATE_VMA_SELECT_COMPOUND = 1 << 3;
export const MIGRATE_VMA_SELECT_ALL =
  MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_DEVICE_PRIVATE | MIGRATE_VMA_SELECT_DEVICE_COHERENT | MIGRATE_VMA_SELECT_COMPOUND;

/** migrate_pfn(pfn): `pfn << MIGRATE_PFN_SHIFT | MIGRATE_PFN_VALID`. */
export function migratePfn(pfn: number): number {
  return pfn * PFN_MUL + MIGRATE_PFN_VALID;
}
/** migrate_pfn_to_page(mpfn) as a pfn: -1 (NULL) unless MIGRATE_PFN_VALID. */
export function migratePfnToPage(mpfn: number): number {
  if ((mpfn & MIGRATE_PFN_VALID) === 0) return -1;
  return (mpfn - (mpfn & FLAGS_MASK)) / PFN_MUL;
}
/** The low flag bits of an mpfn. */
export function mpfnFlags(mpfn: number): number {
  return mpfn & FLAGS_MASK;
}
/** mpfn | flag, exact above 2^31. */
export function mpfnSet(mpfn: number, flag: number): number {
  return mpfn - (mpfn & FLAGS_MASK) + ((mpfn & FLAGS_MASK) | flag);
}
/** mpfn & ~flag, exact above 2^31. */
export function mpfnClear(mpfn: number, flag: number): number {
  return mpfn - (mpfn & flag);
}

/** The src/dst arrays: one unsigned long per page in the kernel; any mutable numeric array here. */
export type MpfnArray = Float64Array | number[];

/**
 * struct migrate_vma. `start`/`end` are virtual addresses (end exclusive) inside `vma`; `src`/`dst` hold
 * (end - start) / PAGE_SIZE entries. `npages`/`cpages` are outputs of migrateVmaSetup. `faultPage` is the
 * device-private pfn of a migrate_to_ram fault (vmf.page), or null / -1 when none.
 */
export interface MigrateVma {
  vma: VmAreaStruct | null;
  src: MpfnArray | null;
  dst: MpfnArray | null;
  start: number;
  end: number;
  /** Out: entries collected (the size of src/dst actually used). */
  npages: number;
  /** Out: entries still migrating (MIGRATE_PFN_MIGRATE), holes included. */
  cpages: number;
  /** Compared by identity with pgmap.owner. */
  pgmapOwner: unknown;
  /** MIGRATE_VMA_SELECT_* bits. */
  flags: number;
  faultPage?: number | null;
}

/** A MigrateVma with defaults (npages = cpages = 0, no fault page). */
export function migrateVmaInit(args: {
  vma: VmAreaStruct | null;
  start: number;
  end: number;
  src: MpfnArray | null;
  dst: MpfnArray | null;
  pgmapOwner: unknown;
  flags: number;
  faultPage?: number | null;
}): MigrateVma {
  if (args === null || typeof args !== "object") throw new InvalidArgumentError("args", "must be an object");
  return {
    vma: args.vma,
    src: args.src,
    dst: args.dst,
    start: args.start,
    end: args.end,
    npages: 0,
    cpages: 0,
    pgmapOwner: args.pgmapOwner,
    flags: args.flags,
    faultPage: args.faultPage ?? null,
  };
}
