/**
 * The device TLB: a timing model only (the device page table is the truth). Set-associative, LRU within a set,
 * typed arrays, no allocation per lookup. A tag names a 4 KiB page or a 2 MiB block of one GPU VA space
 * (`tlbTag4k` / `tlbTag2m`). The driver removes a tag whenever the page-table entry behind it is cleared or
 * changed, so a hit always stands for a valid entry.
 *
 * UVMSmart models a fully associative TLB of 4096 entries per SM with a 1-cycle hit and a 100 / 66 cycle walk
 * (4 KiB / 2 MiB) [S14]; here one device-wide TLB with `ways` ways (ways = entries gives full associativity).
 */

import { modInt } from "./fast-math.js";
const SPACE_MUL = 2 ** 35; // VPNs of a 47-bit VA space
const PRIME = 1_048_573;

/** Tag of 4 KiB page `vpn` (VA >> 12) in VA space `space`. */
export function tlbTag4k(space: number, vpn: number): number {
  return (space * SPACE_MUL + vpn) * 2;
}

/** Tag of the 2 MiB block starting at VPN `blockVpn` (a multiple of 512) in VA space `space`. */
export function tlbTag2m(space: number, blockVpn: number): number {
  return (space * SPACE_MUL + blockVpn) * 2 + 1;
}

export class DeviceTlb {
  readonly sets: number;
  /** tag + 1 per way (0 = empty). */
  private readonly tags: Float64Array;
  private readonly stamps: Float64Array;
  private clock = 0;
  hits = 0;
  misses = 0;
  flushes = 0;

  constructor(
    readonly entries: number,
    readonly ways: number,
  ) {
    this.sets = (entries / ways) | 0; // small integers: set indices and loop bounds stay int32
    this.tags = new Float64Array(entries);
    this.stamps = new Float64Array(entries);
  }

  private setBase(tag: number): number {
    return (((modInt(Math.floor(tag / 2), PRIME) | 0) % this.sets) * this.ways) | 0;
  }

  /** Looks `tag` up; a hit refreshes its LRU stamp. Counts hits and misses. */
  lookup(tag: number): boolean {
    const base = this.setBase(tag);
    const t = tag + 1;
    const tags = this.tags;
    for (let i = base, e = base + this.ways; i < e; i++) {
      if (tags[i] === t) {
        this.stamps[i] = ++this.clock;
        this.hits++;
        return true;
      }
    }
    this.misses++;
    return false;
  }

  /** Caches `tag`, replacing the set's least recently used way. */
  insert(tag: number): void {
    const base = this.setBase(tag);
    const t = tag + 1;
    const tags = this.tags;
    const stamps = this.stamps;
    let victim = base;
    for (let i = base, e = base + this.ways; i < e; i++) {
      if (tags[i] === t || tags[i] === 0) {
        victim = i;
        break;
      }
      if (stamps[i]! < stamps[victim]!) victim = i;
    }
    tags[victim] = t;
    stamps[victim] = ++this.clock;
  }

  /** Drops `tag` if cached. */
  invalidate(tag: number): void {
    const base = this.setBase(tag);
    const t = tag + 1;
    const tags = this.tags;
    for (let i = base, e = base + this.ways; i < e; i++) {
      if (tags[i] === t) {
        tags[i] = 0;
        return;
      }
    }
  }

  /** Is `tag` cached (no LRU update, no counting)? */
  contains(tag: number): boolean {
    const base = this.setBase(tag);
    const t = tag + 1;
    for (let i = base, e = base + this.ways; i < e; i++) if (this.tags[i] === t) return true;
    return false;
  }

  /** Drops every entry. */
  flushAll(): void {
    this.tags.fill(0);
    this.flushes++;
  }
}
