/**
 * One of the shell's TLBs: Coyote's vFPGA has two, a 4 KiB one and a 2 MiB one, each set-associative
 * (TLBS_S / TLBS_A and TLBL_S / TLBL_A in cmake/FindCoyoteHW.cmake [S62]), filled by the driver only — the card has
 * no page-table walker: a miss in both raises a page-fault interrupt (Coyote `vfpga_isr` IRQ_PFAULT [S61]; TaPaSCo's
 * on-FPGA IOMMU, `iommu_page_fault_handler` [S60]). The driver writes entries (TaPaSCo `add_tlb_entry`, Coyote
 * `tlb_map_hmm`) and removes them on invalidation (`invalidate_tlb_entry`, `tlb_unmap_hmm`).
 *
 * A timing model only: the driver's mapping table is the truth, and the driver removes a tag whenever the mapping
 * behind it is cleared, so a hit always stands for a valid mapping. Typed arrays, LRU within a set, no allocation
 * per lookup. A full set replaces its least recently used way (Coyote's default, EN_NRU = 0 [S62]).
 */

/** Tag of the 4 KiB page `vpn` (VA >> 12) of VA space `space` (space < 2^17). */
export function tlbTag4k(space: number, vpn: number): number {
  return space * 2 ** 35 + vpn;
}

/** Tag of the 2 MiB page number `bpn` (VA >> 21) of VA space `space`. */
export function tlbTag2m(space: number, bpn: number): number {
  return space * 2 ** 26 + bpn;
}

export class FpgaTlb {
  readonly sets: number;
  /** tag + 1 per way (0 = empty). */
  private readonly tags: Float64Array;
  private readonly stamps: Float64Array;
  private clock = 0;
  hits = 0;
  misses = 0;
  /** Entries written by the driver, and entries that pushed out a valid one (capacity or conflict). */
  fills = 0;
  replacements = 0;

  constructor(
    readonly name: string,
    readonly entries: number,
    readonly ways: number,
  ) {
    if (!Number.isInteger(entries) || !Number.isInteger(ways) || ways < 1 || entries < ways || entries % ways !== 0) {
      throw new RangeError(`${name}: ways (${ways}) must divide entries (${entries})`);
    }
    this.sets = entries / ways;
    this.tags = new Float64Array(entries);
    this.stamps = new Float64Array(entries);
  }

  private base(tag: number): number {
    return (tag % this.sets) * this.ways;
  }

  /** Looks `tag` up; a hit refreshes its LRU stamp. Counts hits and misses. */
  lookup(tag: number): boolean {
    const b = this.base(tag);
    const t = tag + 1;
    for (let i = b, e = b + this.ways; i < e; i++) {
      if (this.tags[i] === t) {
        this.stamps[i] = ++this.clock;
        this.hits++;
        return true;
      }
    }
    this.misses++;
    return false;
  }

  /** Is `tag` cached (no LRU update, no counting)? */
  contains(tag: number): boolean {
    const b = this.base(tag);
    const t = tag + 1;
    for (let i = b, e = b + this.ways; i < e; i++) if (this.tags[i] === t) return true;
    return false;
  }

  /** The driver writes `tag` (replacing the set's least recently used way when the set is full). */
  insert(tag: number): void {
    const b = this.base(tag);
    const t = tag + 1;
    let victim = -1;
    for (let i = b, e = b + this.ways; i < e; i++) {
      if (this.tags[i] === t || this.tags[i] === 0) {
        victim = i;
        break;
      }
      if (victim < 0 || this.stamps[i]! < this.stamps[victim]!) victim = i;
    }
    if (this.tags[victim] !== 0 && this.tags[victim] !== t) this.replacements++;
    this.tags[victim] = t;
    this.stamps[victim] = ++this.clock;
    this.fills++;
  }

  /** Drops `tag` if cached; returns whether it was. */
  invalidate(tag: number): boolean {
    const b = this.base(tag);
    const t = tag + 1;
    for (let i = b, e = b + this.ways; i < e; i++) {
      if (this.tags[i] === t) {
        this.tags[i] = 0;
        return true;
      }
    }
    return false;
  }

  /** Valid entries now. */
  get valid(): number {
    let n = 0;
    for (let i = 0; i < this.tags.length; i++) if (this.tags[i] !== 0) n++;
    return n;
  }

  /** Drops every entry (TaPaSCo MMU_INVALIDATE_ALL). */
  flushAll(): void {
    this.tags.fill(0);
  }
}
