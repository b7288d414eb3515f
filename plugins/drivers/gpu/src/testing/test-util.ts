/**
 * Test helpers (not exported from index.ts): a tiny interconnect plugin for `custom` links built on the machine's
 * DuplexLink (so the tests need no interconnect package), a policy plugin providing "on-demand" that taps nothing
 * (so the tests need no policy package: the driver then takes @hmmsim/policy's defaults, which is what the
 * on-demand policy answers), a machine factory and an anonymous mapping helper.
 */
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, type Mm } from "@hmmsim/core";
import {
  DuplexLink,
  InterconnectFactory,
  PeerLink,
  createMachine,
  defaultPlugins,
  type DependencyContainer,
  type LinkSpec,
  type Machine,
  type MachinePlugin,
} from "@hmmsim/machine";
import { GpuDriver } from "../gpu-driver.js";
import type { GpuDriverSpec } from "../gpu-spec.js";
import { GpuDriverPlugin } from "../plugin.js";

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
        create: (l, ctx) => {
          const params = { h2dBandwidth: l.h2dBandwidth!, d2hBandwidth: l.d2hBandwidth!, alpha: l.alpha!, sharing: "fifo" as const };
          // A spec link with `peers` is a peer link between two devices (no host link).
          return l.peers ? new PeerLink(l.name, l.kind, params, l.peers, false, ctx) : new DuplexLink(l.name, l.kind, params, l.coherent === true, ctx);
        },
      },
    });
  }
  apply(): void {}
}

/**
 * Provides policy "on-demand" (the spec's default) and taps nothing: with no answer the GPU driver takes
 * @hmmsim/policy's defaults (migrate, the faulted page, lruVictim), i.e. on-demand. Tests tap Policy.getHooks.
 */
export class TestPolicyPlugin implements MachinePlugin {
  readonly name = "TestPolicyPlugin";
  readonly kind = "policy";
  readonly provides = ["on-demand"];
  apply(): void {}
}

/** The plugins of the tests' machines besides defaultPlugins() and the GPU driver. */
export const testPlugins = (): MachinePlugin[] => [new TestLinkPlugin(), new TestPolicyPlugin()];

export interface TestMachineOptions {
  deviceMemory?: string;
  ram?: string;
  coherent?: boolean;
  gpu?: Partial<GpuDriverSpec>;
  plugins?: MachinePlugin[];
  seed?: number;
  bytes?: boolean;
}

/** 16 GB/s each way, α = 1 µs: 4 KiB = 1 µs + 256 ns. */
export function testMachine(o: TestMachineOptions = {}): { machine: Machine; gpu: GpuDriver } {
  const machine = createMachine({
    spec: {
      seed: o.seed ?? 1,
      bytes: o.bytes ?? true,
      cpus: { count: 4 },
      ram: { size: o.ram ?? "64MiB" },
      links: [{ name: "l0", kind: "custom", h2dBandwidth: "16GB/s", d2hBandwidth: "16GB/s", alpha: "1us", coherent: o.coherent ?? false }],
      devices: [{ kind: "gpu", name: "gpu0", memory: o.deviceMemory ?? "8MiB", link: "l0", memoryType: o.coherent ? "coherent" : "private" }],
    },
    plugins: [...defaultPlugins(), ...testPlugins(), new GpuDriverPlugin(o.gpu), ...(o.plugins ?? [])],
  });
  return { machine, gpu: GpuDriver.of(machine, "gpu0") };
}

/** An anonymous private read-write mapping of `bytes`. */
export function anonMap(mm: Mm, bytes: number): number {
  const addr = mm.mmap({ length: bytes, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  if (addr < 0) throw new Error(`mmap failed: ${addr}`);
  return addr;
}

/** Fills page i of [addr, addr + pages·4 KiB) with the byte (seed + i) & 0xff. */
export function fillPages(mm: Mm, addr: number, pages: number, seed = 1): void {
  for (let i = 0; i < pages; i++) mm.write(addr + i * 4096, new Uint8Array(4096).fill((seed + i) & 0xff));
}
