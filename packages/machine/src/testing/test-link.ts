/**
 * Test helpers (not exported from index.ts): a `custom` link plugin, a driver plugin for `gpu` devices and a
 * policy plugin for `on-demand`, for the machine package's own tests, so they need no plugin package.
 */
import type { DependencyContainer } from "tsyringe";
import type { Interconnect, InterconnectFactory as Factory, LinkContext, LinkDirection } from "../interconnect.js";
import { LinkChannel, PeerLink } from "../link-channel.js";
import type { LinkSpec } from "../machine-spec.js";
import type { DeviceDriver } from "../device-driver.js";
import { Machine } from "../machine.js";
import type { MachinePlugin } from "../plugin.js";
import { DeviceDrivers, InterconnectFactory, MachineComponent } from "../tokens.js";

/** A minimal link (what an interconnect plugin provides), built on LinkChannel. */
export class TestLink implements Interconnect {
  readonly kind = "custom" as const;
  readonly supportsCoherentAccess = false;
  readonly params;
  private readonly ch: Record<LinkDirection, LinkChannel>;
  constructor(readonly name: string, spec: LinkSpec, ctx: LinkContext) {
    this.params = { h2dBandwidth: spec.h2dBandwidth!, d2hBandwidth: spec.d2hBandwidth!, alpha: spec.alpha!, sharing: "ps" as const };
    const mk = (dir: LinkDirection, bw: number) =>
      new LinkChannel(ctx.engine, `${name}.${dir}`, bw, spec.alpha!, "ps", (bytes, startPs, endPs) => ctx.onTransfer?.({ link: name, dir, bytes, startPs, endPs }));
    this.ch = { h2d: mk("h2d", spec.h2dBandwidth!), d2h: mk("d2h", spec.d2hBandwidth!) };
  }
  transfer(dir: LinkDirection, bytes: number) { return this.ch[dir].transfer(bytes); }
  transferTime(dir: LinkDirection, bytes: number) { return this.ch[dir].transferTime(bytes); }
  busyTime(dir: LinkDirection) { return this.ch[dir].busyTime(); }
  bytesMoved(dir: LinkDirection) { return this.ch[dir].bytesMoved(); }
  stats(dir: LinkDirection) { return { busyPs: this.busyTime(dir), bytes: this.bytesMoved(dir), transfers: this.ch[dir].transfers() }; }
}

export class TestLinkPlugin implements MachinePlugin {
  readonly name = "TestLinkPlugin";
  readonly kind = "interconnect";
  readonly provides = ["custom"];
  register(c: DependencyContainer) {
    // A link with `peers` is a peer link: a PeerLink with the spec's figures (h2d: peers[0] → peers[1]).
    const f: Factory = {
      name: this.name,
      create: (l, ctx) =>
        l.peers
          ? new PeerLink(l.name, l.kind, { h2dBandwidth: l.h2dBandwidth!, d2hBandwidth: l.d2hBandwidth!, alpha: l.alpha!, sharing: "ps" }, l.peers, false, ctx)
          : new TestLink(l.name, l, ctx),
    };
    c.register(InterconnectFactory, { useValue: f });
  }
  apply() {}
}

/** A device driver that does nothing: every access of a kernel completes at once. */
export class NullDriver implements DeviceDriver {
  readonly driverName = "gpu";
  readonly pgmap = null;
  kernels = 0;
  constructor(readonly device: string) {}
  async runKernel(_mm: unknown, accesses: import("../device-driver.js").AccessSource) {
    this.kernels++;
    const b = { capacity: 1024, addr: new Float64Array(1024), write: new Uint8Array(1024), computePs: new Float64Array(1024) };
    let n = 0;
    for (let k = accesses.fill(b); k > 0; k = accesses.fill(b)) n += k;
    return { accesses: n, faults: 0, remoteAccesses: 0, tlbHits: n, tlbMisses: 0 };
  }
  counters() {
    return { batches: 0, faultedPages: 0, migratedPages: 0, populatedPages: 0 };
  }
}

/** Provides driver `gpu` with NullDrivers (a factory registration: no decorators). */
export class TestDriverPlugin implements MachinePlugin {
  readonly name = "TestDriverPlugin";
  readonly kind = "driver";
  readonly provides = ["gpu"];
  register(c: DependencyContainer) {
    c.register(MachineComponent, {
      useFactory: (r) => {
        const drivers = r.resolve(DeviceDrivers);
        for (const d of r.resolve(Machine).spec.devices) if (d.driver === "gpu") drivers.add(new NullDriver(d.name));
        return {};
      },
    });
  }
  apply() {}
}

/** Provides policy `on-demand` and taps nothing (the machine package has no policy hooks). */
export class TestPolicyPlugin implements MachinePlugin {
  readonly name = "TestPolicyPlugin";
  readonly kind = "policy";
  readonly provides = ["on-demand"];
  apply(_m: Machine) {}
}

/** The plugins a machine of the tests' specs needs besides defaultPlugins(). */
export const testPlugins = (): MachinePlugin[] => [new TestLinkPlugin(), new TestDriverPlugin(), new TestPolicyPlugin()];
