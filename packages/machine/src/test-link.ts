/**
 * Test helper (not exported from index.ts): a `custom` link plugin for the machine package's own tests, so they
 * need no interconnect package.
 */
import type { DependencyContainer } from "tsyringe";
import type { Interconnect, InterconnectFactory as Factory, LinkContext, LinkDirection } from "./interconnect.js";
import { LinkChannel } from "./link-channel.js";
import type { LinkSpec } from "./machine-spec.js";
import type { MachinePlugin } from "./plugin.js";
import { InterconnectFactory } from "./tokens.js";

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
  register(c: DependencyContainer) {
    const f: Factory = { name: this.name, accepts: (l) => l.kind === "custom", create: (l, ctx) => new TestLink(l.name, l, ctx) };
    c.register(InterconnectFactory, { useValue: f });
  }
  apply() {}
}
