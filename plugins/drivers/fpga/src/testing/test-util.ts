/**
 * Test helpers (not exported from index.ts): a tiny interconnect plugin for `custom` links built on the machine's
 * DuplexLink (so the tests need no interconnect package), a policy plugin providing "on-demand" that taps nothing
 * (the driver then takes @hmmsim/policy's defaults: migrate the faulted page, LRU eviction), a machine factory and
 * mapping helpers.
 */
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, type Mm } from "@hmmsim/core";
import { DuplexLink, InterconnectFactory, createMachine, defaultPlugins, type DependencyContainer, type LinkSpec, type Machine, type MachinePlugin } from "@hmmsim/machine";
import { FpgaDriver } from "../fpga-driver.js";
import type { FpgaDriverSpec } from "../fpga-spec.js";
import { FpgaDriverPlugin } from "../plugin.js";

export class TestLinkPlugin implements MachinePlugin {
  readonly name = "TestLinkPlugin";
  readonly kind = "interconnect";
  readonly provides = ["custom"];
  isCoherentLink(l: LinkSpec): boolean {
    return l.coherent === true;
  }
  register(c: DependencyContainer): void {
    c.register(InterconnectFactory, {
      useValue: {
        name: this.name,
        create: (l, ctx) =>
          new DuplexLink(l.name, l.kind, { h2dBandwidth: l.h2dBandwidth!, d2hBandwidth: l.d2hBandwidth!, alpha: l.alpha!, sharing: "fifo" }, l.coherent === true, ctx),
      },
    });
  }
  apply(): void {}
}

/** Provides policy "on-demand" (the spec's default) and taps nothing: the driver takes @hmmsim/policy's defaults. */
export class TestPolicyPlugin implements MachinePlugin {
  readonly name = "TestPolicyPlugin";
  readonly kind = "policy";
  readonly provides = ["on-demand"];
  apply(): void {}
}

export const testPlugins = (): MachinePlugin[] => [new TestLinkPlugin(), new TestPolicyPlugin()];

export interface TestMachineOptions {
  deviceMemory?: string;
  ram?: string;
  coherent?: boolean;
  fpga?: Partial<FpgaDriverSpec>;
  plugins?: MachinePlugin[];
  seed?: number;
  bytes?: boolean;
  /** Two FPGA devices on one link (each its own dev_pagemap). */
  twoDevices?: boolean;
}

/** 16 GB/s each way, α = 1 µs: 4 KiB = 1 µs + 256 ns. */
export function testMachine(o: TestMachineOptions = {}): { machine: Machine; fpga: FpgaDriver } {
  const dev = (name: string) => ({ kind: "fpga", name, memory: o.deviceMemory ?? "8MiB", link: "l0", memoryType: o.coherent ? "coherent" : "private" });
  const machine = createMachine({
    spec: {
      seed: o.seed ?? 1,
      bytes: o.bytes ?? true,
      cpus: { count: 4 },
      ram: { size: o.ram ?? "64MiB" },
      links: [{ name: "l0", kind: "custom", h2dBandwidth: "16GB/s", d2hBandwidth: "16GB/s", alpha: "1us", coherent: o.coherent ?? false }],
      devices: o.twoDevices ? [dev("fpga0"), dev("fpga1")] : [dev("fpga0")],
    },
    plugins: [...defaultPlugins(), ...testPlugins(), new FpgaDriverPlugin(o.fpga), ...(o.plugins ?? [])],
  });
  return { machine, fpga: FpgaDriver.of(machine, "fpga0") };
}

/** An anonymous private read-write mapping of `bytes`, 2 MiB aligned (so a block is whole). */
export function anonMap(mm: Mm, bytes: number): number {
  const raw = mm.mmap({ length: bytes + 2 * 1024 * 1024, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  if (raw < 0) throw new Error(`mmap failed: ${raw}`);
  return Math.ceil(raw / (2 * 1024 * 1024)) * 2 * 1024 * 1024;
}

/** Fills page i of [addr, addr + pages·4 KiB) with the byte (seed + i) & 0xff. */
export function fillPages(mm: Mm, addr: number, pages: number, seed = 1): void {
  for (let i = 0; i < pages; i++) mm.write(addr + i * 4096, new Uint8Array(4096).fill((seed + i) & 0xff));
}

/** Stream beats over [addr, addr + pages·4 KiB): `perPage` beats of 64 B per page, every `writeEvery`-th a write (0: none). */
export function beats(addr: number, pages: number, perPage = 4, writeEvery = 0): { addr: number; write: boolean }[] {
  const out: { addr: number; write: boolean }[] = [];
  for (let p = 0; p < pages; p++) for (let b = 0; b < perPage; b++) out.push({ addr: addr + p * 4096 + b * 64, write: writeEvery > 0 && out.length % writeEvery === 0 });
  return out;
}
