/**
 * Statistics as a plugin on the trace points (the core never formats output): a `StatsCollector` component
 * counts CPU and device faults, fault batches, invalidations, pages/bytes migrated each way, evictions and DMA,
 * and reads link busy time per direction and charged cost per kind when a snapshot is taken.
 */
import { type DependencyContainer, Lifecycle, inject, injectable } from "tsyringe";
import type { Engine as EngineClass } from "@hmmsim/engine";
import { COST_KINDS, type CostKind } from "./cost-model.js";
import { type LinkDirection, type LinkDirectionStats } from "./interconnect.js";
import { type Machine, MachineError } from "./machine.js";
import type { MachineComponent, MachinePlugin } from "./plugin.js";
import { MachineComponent as MachineComponentToken } from "./tokens.js";
import { CostLedger, Engine, LinkRegistry } from "./tokens.js";
import { MachineTrace, type MachineTraceHooks } from "./trace-points.js";
import { MACHINE_VERSION } from "./version.js";

export const STATS_PLUGIN_NAME = "StatsPlugin";

export interface PageTotals {
  /** Events (migrations, evictions). */
  count: number;
  pages: number;
  bytes: number;
}

export interface MachineStats {
  /** engine.now at the snapshot, ps. */
  simulatedPs: number;
  cpuFaults: number;
  /** pageFault events with source "device". */
  deviceFaults: number;
  deviceFaultBatches: number;
  /** Sum of the batches' fault counts. */
  batchedFaults: number;
  invalidations: number;
  /** Completed migrations (migrateEnd) towards devices (h2d) and towards system memory (d2h). */
  migrated: Record<LinkDirection, PageTotals>;
  evictions: PageTotals;
  /** dmaTransfer events per direction, on host links (a peer link's transfers are in `links` only). */
  dma: Record<LinkDirection, { transfers: number; bytes: number }>;
  /** Per link, per direction: busy time (data phase), bytes, transfers. */
  links: Record<string, Record<LinkDirection, LinkDirectionStats>>;
  /** Charged cost per kind, ps, and the counts charged. */
  costPs: Record<CostKind, number>;
  costCount: Record<CostKind, number>;
}

const totals = (): PageTotals => ({ count: 0, pages: 0, bytes: 0 });

@injectable()
export class StatsCollector implements MachineComponent {
  cpuFaults = 0;
  deviceFaults = 0;
  deviceFaultBatches = 0;
  batchedFaults = 0;
  invalidations = 0;
  readonly migrated: Record<LinkDirection, PageTotals> = { h2d: totals(), d2h: totals() };
  readonly evictions = totals();
  readonly dma: Record<LinkDirection, { transfers: number; bytes: number }> = {
    h2d: { transfers: 0, bytes: 0 },
    d2h: { transfers: 0, bytes: 0 },
  };

  /** The machine's peer links (by name), whose transfers are not host DMA; filled by tap(). */
  private readonly peerLinks = new Set<string>();

  constructor(
    @inject(LinkRegistry) private readonly links: LinkRegistry,
    @inject(CostLedger) private readonly ledger: CostLedger,
    @inject(Engine) private readonly engine: EngineClass,
  ) {}

  /** Counts the events of the trace points `h` (StatsPlugin.apply taps the machine's). */
  tap(h: MachineTraceHooks): void {
    const N = STATS_PLUGIN_NAME;
    for (const l of this.links.all()) if (this.links.ends(l.name) !== null) this.peerLinks.add(l.name);
    h.pageFault.tap(N, (e) => {
      if (e.source === "cpu") this.cpuFaults++;
      else this.deviceFaults++;
    });
    h.invalidate.tap(N, () => {
      this.invalidations++;
    });
    h.migrateEnd.tap(N, (e) => {
      const t = this.migrated[e.dir];
      t.count++;
      t.pages += e.npages;
      t.bytes += e.bytes;
    });
    h.eviction.tap(N, (e) => {
      this.evictions.count++;
      this.evictions.pages += e.npages;
      this.evictions.bytes += e.bytes;
    });
    h.dmaTransfer.tap(N, (e) => {
      if (this.peerLinks.has(e.link)) return; // device → device: not host DMA (the link's own stats count it)
      this.dma[e.dir].transfers++;
      this.dma[e.dir].bytes += e.bytes;
    });
    h.deviceFaultBatch.tap(N, (e) => {
      this.deviceFaultBatches++;
      this.batchedFaults += e.faults;
    });
  }

  snapshot(): MachineStats {
    const links: MachineStats["links"] = {};
    for (const l of this.links.all()) {
      links[l.name] = { h2d: l.stats("h2d"), d2h: l.stats("d2h") };
    }
    const copy = (r: Readonly<Record<CostKind, number>>) => Object.fromEntries(COST_KINDS.map((k) => [k, r[k]])) as Record<CostKind, number>;
    return {
      simulatedPs: this.engine.now,
      cpuFaults: this.cpuFaults,
      deviceFaults: this.deviceFaults,
      deviceFaultBatches: this.deviceFaultBatches,
      batchedFaults: this.batchedFaults,
      invalidations: this.invalidations,
      migrated: { h2d: { ...this.migrated.h2d }, d2h: { ...this.migrated.d2h } },
      evictions: { ...this.evictions },
      dma: { h2d: { ...this.dma.h2d }, d2h: { ...this.dma.d2h } },
      links,
      costPs: copy(this.ledger.chargedPs),
      costCount: copy(this.ledger.chargedCount),
    };
  }
}

export class StatsPlugin implements MachinePlugin {
  static readonly defaultSpec = Object.freeze({});
  readonly name = STATS_PLUGIN_NAME;
  readonly kind = "stats";
  readonly version = MACHINE_VERSION;
  readonly spec = StatsPlugin.defaultSpec;

  /** The collector, built by the machine's container. */
  register(c: DependencyContainer): void {
    c.register(MachineComponentToken, { useClass: StatsCollector }, { lifecycle: Lifecycle.ContainerScoped });
  }

  /** Taps the machine's trace points with the collector. */
  apply(machine: Machine): void {
    machine.component(StatsCollector)!.tap(MachineTrace.getHooks(machine));
  }
}

/** The stats of `machine` now; throws MachineError if the StatsPlugin is not in the machine's plugins. */
export function getMachineStats(machine: Machine): MachineStats {
  const c = machine.component(StatsCollector);
  if (!c) throw new MachineError(`getMachineStats: the machine has no ${STATS_PLUGIN_NAME} (add new StatsPlugin() to its plugins)`);
  return c.snapshot();
}


