/**
 * createTestMachine: a Kernel (64 MiB RAM, bytes on by default), an Engine for tests that need tasks or locks,
 * a first process, and conveniences that throw instead of returning an errno, for tests across the repo.
 */
import { Engine } from "@hmmsim/engine";
import {
  InvalidArgumentError,
  MADV_HUGEPAGE,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
  createKernel,
  errnoName,
  type AddressSpace,
  type Kernel,
  type MemCgroup,
  type Mm,
  type ThpMode,
} from "@hmmsim/core";
import { checkInvariants, assertInvariants, type InvariantOptions, type Violation } from "./invariants.js";
import { TestDevice, type TestDeviceOptions } from "./test-device.js";

export interface TestMachineOptions {
  /** System RAM in bytes, a multiple of 2 MiB (default 64 MiB). */
  ramBytes?: number;
  /** Keep page bytes (default true). */
  bytes?: boolean;
  /** THP mode (default "madvise", the kernel's default). */
  thp?: ThpMode;
  /** Engine seed (default 0). */
  seed?: number;
}

export interface MmapOptions {
  /** The process (default the machine's first mm). */
  mm?: Mm;
  /** PROT_* (default PROT_READ | PROT_WRITE). */
  prot?: number;
  /** MAP_SHARED instead of MAP_PRIVATE. */
  shared?: boolean;
  /** madvise(MADV_HUGEPAGE) on the new mapping. */
  hugepage?: boolean;
  /** MAP_POPULATE. */
  populate?: boolean;
  /** MAP_FIXED at this address. */
  fixed?: number;
  /** File offset in bytes (file mappings). */
  offset?: number;
}

export interface TestMachine {
  readonly kernel: Kernel;
  readonly engine: Engine;
  /** The first process. */
  readonly mm: Mm;
  /** A new process (mm_alloc), in `memcg` if given. */
  newMm(opts?: { memcg?: MemCgroup }): Mm;
  /** mmap an anonymous region; returns its address, throws on an errno. */
  mmapAnon(length: number, opts?: MmapOptions): number;
  /** mmap a file; returns its address, throws on an errno. */
  mmapFile(file: AddressSpace, length: number, opts?: MmapOptions): number;
  /** An in-memory file (kernel.createFile). */
  createFile(size: number, opts?: { shmem?: boolean; name?: string }): AddressSpace;
  /** A TestDevice (memremapPages + free list + one-page moves). */
  addDevice(opts?: TestDeviceOptions): TestDevice;
  /** checkInvariants(kernel, opts). */
  check(opts?: InvariantOptions): Violation[];
  /** assertInvariants(kernel, opts). */
  assert(opts?: InvariantOptions): void;
  /** Exit every live mm. */
  exitAll(): void;
}

export function createTestMachine(opts: TestMachineOptions = {}): TestMachine {
  if (opts === null || typeof opts !== "object") throw new InvalidArgumentError("opts", "must be an object");
  const kernel = createKernel({ ramBytes: opts.ramBytes ?? 64 * 1024 * 1024, bytes: opts.bytes ?? true, thp: opts.thp ?? "madvise" });
  const engine = new Engine({ seed: opts.seed ?? 0 });
  const mm = kernel.createMm();

  const mmap = (length: number, flags: number, o: MmapOptions, file?: AddressSpace): number => {
    const target = o.mm ?? mm;
    const f = flags | (o.shared ? MAP_SHARED : MAP_PRIVATE) | (o.populate ? MAP_POPULATE : 0) | (o.fixed !== undefined ? MAP_FIXED : 0);
    const addr = target.mmap({ addr: o.fixed, length, prot: o.prot ?? PROT_READ | PROT_WRITE, flags: f, file, offset: o.offset });
    if (addr < 0) throw new Error(`mmap(${length}) failed: ${errnoName(addr)}`);
    if (o.hugepage) {
      const r = target.madvise(addr, length, MADV_HUGEPAGE);
      if (r !== 0) throw new Error(`madvise(MADV_HUGEPAGE) failed: ${errnoName(r)}`);
    }
    return addr;
  };

  return {
    kernel,
    engine,
    mm,
    newMm: (o) => kernel.createMm(o),
    mmapAnon: (length, o = {}) => mmap(length, MAP_ANONYMOUS, o),
    mmapFile: (file, length, o = {}) => mmap(length, 0, o, file),
    createFile: (size, o) => kernel.createFile(size, o),
    addDevice: (o) => new TestDevice(kernel, o),
    check: (o) => checkInvariants(kernel, o),
    assert: (o) => assertInvariants(kernel, o),
    exitAll: () => {
      for (const m of [...kernel.mms.values()]) m.exit();
    },
  };
}
