/**
 * Memory cgroups (mm/memcontrol.c), reduced to a page counter with a limit: mem_cgroup_charge /
 * mem_cgroup_uncharge / mem_cgroup_migrate. Usage and limit are in pages. A charge that would exceed the limit
 * fails with -ENOMEM (the fault path turns it into VM_FAULT_OOM); hmmsim does no reclaim.
 * Device pages are charged like regular pages (hmm.rst "Memory cgroup (memcg) and rss accounting").
 */
import { ENOMEM } from "./errno.js";
import { InvalidArgumentError, KernelRuleError } from "./errors.js";
import { PAGE_SLOT_MASK, type PageChunk, type PageStore } from "./page-store.js";

export class MemCgroup {
  /** Pages charged. */
  usage = 0;
  /** Charges refused because of the limit (memory.events max/failcnt). */
  failcnt = 0;
  constructor(
    /** Stored in each charged folio's memcgId (1..65535). */
    readonly id: number,
    readonly name: string,
    /** Limit in pages (Infinity: unlimited, as the root memcg). */
    public limit: number,
  ) {}
}

export class MemcgRegistry {
  private readonly list: (MemCgroup | undefined)[] = [undefined];
  readonly root: MemCgroup;
  constructor() {
    this.root = this.create("root", Infinity);
  }
  create(name: string, limitPages: number): MemCgroup {
    if (!(limitPages >= 0)) throw new InvalidArgumentError("limit", "must be >= 0 pages", limitPages);
    const id = this.list.length;
    if (id > 0xffff) throw new InvalidArgumentError("memcg", "too many memcgs (65535)");
    const m = new MemCgroup(id, name, limitPages);
    this.list.push(m);
    return m;
  }
  byId(id: number): MemCgroup | undefined {
    return this.list[id];
  }
  all(): MemCgroup[] {
    return this.list.filter((m): m is MemCgroup => m !== undefined);
  }
}

/** mem_cgroup_charge(folio, mm, gfp): 0 or -ENOMEM. Charges folio_nr_pages to memcg. */
export function memcgCharge(store: PageStore, pfn: number, memcg: MemCgroup): number {
  const head = store.folioHead(pfn);
  if (store.memcgId(head) !== 0) throw new KernelRuleError("mem_cgroup_charge_already_charged", `pfn ${head}`);
  const nr = store.folioNr(head);
  if (memcg.usage + nr > memcg.limit) {
    memcg.failcnt++;
    return -ENOMEM;
  }
  memcg.usage += nr;
  store.setMemcgId(head, memcg.id);
  return 0;
}

/** mem_cgroup_uncharge(folio): no-op for an uncharged folio. */
export function memcgUncharge(store: PageStore, memcgs: MemcgRegistry, pfn: number): void {
  const head = store.folioHead(pfn);
  const c = store.pagesIfAny(head);
  if (c !== undefined) memcgUnchargeAt(memcgs, c, head & PAGE_SLOT_MASK);
}

/** mem_cgroup_uncharge() of the folio whose head is slot `i` of chunk `c` (for callers holding the chunk). */
export function memcgUnchargeAt(memcgs: MemcgRegistry, c: PageChunk, i: number): void {
  const id = c.memcgId[i]!;
  if (id === 0) return;
  const m = memcgs.byId(id);
  if (m !== undefined) m.usage -= 1 << c.order[i]!;
  c.memcgId[i] = 0;
}

/**
 * mem_cgroup_migrate(old, new): the charge moves from the old folio to the new one (usage unchanged), so
 * migration never fails on the memcg limit.
 */
export function memcgMigrate(store: PageStore, memcgs: MemcgRegistry, oldPfn: number, newPfn: number): void {
  const oldHead = store.folioHead(oldPfn);
  const oc = store.pagesIfAny(oldHead);
  const oi = oldHead & PAGE_SLOT_MASK;
  if (oc === undefined) return;
  const id = oc.memcgId[oi]!;
  if (id === 0) return;
  const newHead = store.folioHead(newPfn);
  const nc = store.pagesOf(newHead);
  const ni = newHead & PAGE_SLOT_MASK;
  if (nc.memcgId[ni] !== 0) return;
  const m = memcgs.byId(id);
  if (m !== undefined) m.usage += (1 << nc.order[ni]!) - (1 << oc.order[oi]!);
  nc.memcgId[ni] = id;
  oc.memcgId[oi] = 0;
}
