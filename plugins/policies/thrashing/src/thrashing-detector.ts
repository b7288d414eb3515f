/**
 * NVIDIA UVM's thrashing detection and mitigation, uvm_perf_thrashing.c [S3], for one device's view of the machine's
 * address spaces. One `ThrashingDetector` holds the state UVM keeps per VA space (`va_space_thrashing_info_t`: the
 * parameters, the adaptive lapse), per 2 MiB VA block (`block_thrashing_info_t`) and per page of a block that may be
 * thrashing (`page_thrashing_info_t`), keyed by (mm, block start, page index), and answers as UVM's functions do:
 *
 *  - `migration` = `thrashing_event_cb` for UVM_PERF_EVENT_MIGRATION: migrations caused by faults, prefetch and
 *    access counters are thrashing events of the destination processor; eviction migrations are skipped; any other
 *    migration (user commands, advice) resets the pages' tracking (`thrashing_reset_pages_in_region`). Per-page
 *    tracking of a block is created only once two different processors touched the block within a lapse; then each
 *    event within a lapse of the page's previous one counts (`num_thrashing_events`, a 3-bit saturating counter), and
 *    at `threshold` the page is thrashing (`thrashing_detected`). An event after a longer gap resets a thrashing page
 *    that is not pinned.
 *  - `munmap` = `thrashing_block_munmap_cb` (HMM: `hmm_invalidate` → `uvm_va_block_munmap_region` on
 *    MMU_NOTIFY_UNMAP / MMU_NOTIFY_CLEAR): resets the pages of the region; a whole block unmapped is dropped
 *    (`uvm_perf_thrashing_info_destroy`), which keeps the state bounded by the blocks in use.
 *  - `getHint` = `uvm_perf_thrashing_get_hint`: the epoch reset of a block (at most `max_resets` times, never once a
 *    page of the block was pinned: `pinned_pages.count` only grows), the throttling period
 *    (`thrashing_throttle_update`: the first processor of a period is not throttled, the next ones nap until
 *    `throttling_end_time_stamp` = now + nap; the exempt processor alternates between periods), the adaptive lapse
 *    (`adjust_thrashing_lapse`) and `get_hint_for_migration_thrashing`, then `thrashing_pin_page` (deadline now + pin)
 *    or `thrashing_throttle_processor` (a throttle of an unpinned page counts towards `pin_threshold`).
 *  - `thrashingPages` = `uvm_perf_thrashing_get_thrashing_pages`: the block's thrashing mask.
 *  - Pins expire as `thrashing_unpin_pages` does (deadline ≤ now + TIMER_GRANULARITY_NS = 20 µs), checked when the
 *    block is next touched instead of by a timer: the page's tracking is reset (`thrashing_reset_page`).
 *
 * Processors are "cpu" and device names. Under HMM a device-private page cannot be mapped by the CPU, so a PIN here
 * always keeps the page in system memory, mapped remotely by the device (`pinResidency` = "cpu"): where UVM would pin
 * to the faulting GPU (`hint.pin.residency = requester`), hmmsim pins in system memory instead. Not modelled: the
 * fast-link path (`thrashing_processors_have_fast_access_to`: NVLink + native atomics), revocation events (UVM raises
 * them for read duplication and system-wide atomics, not for HMM invalidations), the 64 ns time-stamp resolution and
 * the emulation-only parameter overrides.
 */
import { BLOCK_PAGES, BLOCK_SIZE, HOST_LOCATION, THRASHING_HINT_PIN, THRASHING_HINT_THROTTLE, type ThrashingHint, type ThrashingHintType } from "@hmmsim/policy";
import { LAPSE_USEC_MAX, LAPSE_USEC_MIN, THRASHING_DEFAULTS, type ThrashingPolicySpec } from "./thrashing-spec.js";

const PAGE = 4096;
const PS_PER_NS = 1000;
/** `num_thrashing_events` is PAGE_THRASHING_NUM_EVENTS_BITS = 3 bits wide; `throttling_count` 8 bits. */
const EVENTS_MAX = 7;
const THROTTLES_MAX = 255;
/** thrashing_unpin_pages unpins the pages whose deadline is within TIMER_GRANULARITY_NS (20 µs) of now. */
const TIMER_GRANULARITY_PS = 20_000 * PS_PER_NS;
const NONE = -1;

/** The processor id of the CPU (all CPU threads count as one processor, as in UVM). */
export const CPU = "cpu";

/** Why pages migrated: UVM's `uvm_make_resident_cause_t` as far as thrashing_event_cb tells them apart. */
export type MigrationCause = "fault" | "prefetch" | "access-counter" | "eviction" | "other";

/** The migrate trace event's free-text `reason` as a cause: fault, cpu-fault → fault; eviction; anything unknown → other. */
export function migrationCause(reason: string): MigrationCause {
  switch (reason) {
    case "fault":
    case "cpu-fault":
      return "fault";
    case "prefetch":
      return "prefetch";
    case "access-counter":
      return "access-counter";
    case "eviction":
      return "eviction";
    default:
      return "other";
  }
}

/** page_thrashing_info_t for the 512 pages of one block, as typed arrays. */
class PageThrashing {
  readonly lastTs = new Float64Array(BLOCK_PAGES).fill(NONE);
  readonly events = new Uint8Array(BLOCK_PAGES);
  readonly hasMigration = new Uint8Array(BLOCK_PAGES);
  readonly pinned = new Uint8Array(BLOCK_PAGES);
  readonly throttleEnd = new Float64Array(BLOCK_PAGES).fill(NONE);
  readonly throttleCount = new Uint8Array(BLOCK_PAGES);
  /** Bit masks of processor ids (`processors`, `throttled_processors`). */
  readonly processors = new Uint32Array(BLOCK_PAGES);
  readonly throttled = new Uint32Array(BLOCK_PAGES);
  readonly pinnedResidency = new Int8Array(BLOCK_PAGES).fill(NONE);
  readonly doNotThrottle = new Int8Array(BLOCK_PAGES).fill(NONE);
  /** pinned_page_t.deadline (NONE: pinned for good, or not pinned). */
  readonly pinDeadline = new Float64Array(BLOCK_PAGES).fill(NONE);
}

/** block_thrashing_info_t. */
class BlockThrashing {
  pages: PageThrashing | null = null;
  numThrashingPages = 0;
  resetCount = 0;
  lastProcessor = NONE;
  lastTs = NONE;
  lastThrashingTs = NONE;
  throttlingCount = 0;
  readonly thrashingMask = new Uint8Array(BLOCK_PAGES);
  /** pinned_pages.count: incremented on every pin, never decremented (as in UVM). */
  pinnedCount = 0;
  /** Pages pinned now (with a deadline), for the lazy unpin. */
  pinnedNow = 0;
}

/** va_space_thrashing_info_t: the adaptive lapse and the blocks. */
class VaSpaceThrashing {
  lapseNs: number;
  lapseStat = 0;
  readonly blocks = new Map<number, BlockThrashing>();
  constructor(lapseNs: number) {
    this.lapseNs = lapseNs;
  }
}

/** The hint of `getHint`, or null for UVM_PERF_THRASHING_HINT_TYPE_NONE. A reused object: copy what you keep. */
export interface DetectorHint extends ThrashingHint {
  /** PIN: where the page stays ("cpu": system memory). */
  readonly pinResidency: string;
}

export class ThrashingDetector {
  readonly spec: Readonly<ThrashingPolicySpec>;
  readonly #spaces = new WeakMap<object, VaSpaceThrashing>();
  readonly #ids = new Map<string, number>([[CPU, 0]]);
  readonly #names: string[] = [CPU];
  readonly #napPs: number;
  readonly #epochPs: number;
  readonly #pinPs: number;
  readonly #adaptiveLapse: boolean;
  readonly #hint: { type: ThrashingHintType; untilPs: number; pinResidency: string } = { type: THRASHING_HINT_THROTTLE, untilPs: 0, pinResidency: CPU };
  /** Counters (UVM's procfs thrashing_stats): pages detected thrashing, throttles, pins, epoch resets. */
  readonly stats = { thrashing: 0, throttle: 0, pin: 0, resets: 0 };

  constructor(spec: Readonly<ThrashingPolicySpec>) {
    this.spec = spec;
    // va_space_thrashing_info_init_params: nap, epoch and pin are multiples of the lapse, fixed at init.
    const lapsePs = spec.lapseUs * 1000 * PS_PER_NS;
    this.#napPs = lapsePs * spec.nap;
    this.#epochPs = lapsePs * spec.epoch;
    this.#pinPs = lapsePs * spec.pin;
    // adjust_thrashing_lapse: "If lapse is non-default, i.e. provided by user explicitly, don't adjust it".
    this.#adaptiveLapse = spec.lapseUs === THRASHING_DEFAULTS.lapseUs;
  }

  /** The current lapse of `mm`'s address space, ps (it moves only when adaptive: lapseUs at its default). */
  lapsePs(mm: object): number {
    return (this.#spaces.get(mm)?.lapseNs ?? this.spec.lapseUs * 1000) * PS_PER_NS;
  }

  /** thrashing_event_cb, UVM_PERF_EVENT_MIGRATION: [start, end) of `mm` migrated to `dst` ("cpu" or a device). */
  migration(mm: object, start: number, end: number, dst: string, cause: MigrationCause, timePs: number): void {
    if (!this.spec.enable || end <= start) return;
    // "Skip the thrashing detection logic on eviction as we cannot take the VA space lock".
    if (cause === "eviction") return;
    const va = this.#space(mm);
    if (cause === "other") {
      // Migrations by user commands or advice take precedence over the heuristics: clear the tracking state.
      this.#forBlocks(va, start, end, false, (b, lo, hi) => this.#resetPagesInRegion(b, lo, hi));
      return;
    }
    const proc = this.#id(dst);
    for (let bs = Math.floor(start / BLOCK_SIZE) * BLOCK_SIZE; bs < end; bs += BLOCK_SIZE) {
      const lo = Math.max(0, Math.floor((start - bs) / PAGE));
      const hi = Math.min(BLOCK_PAGES, Math.ceil((end - bs) / PAGE));
      let b = va.blocks.get(bs);
      if (b === undefined) va.blocks.set(bs, (b = new BlockThrashing())); // thrashing_info_get_create
      this.#expirePins(b, timePs);
      // is_migration_pinned_pages_update: a migration of pinned pages to their pinned residency is not an event.
      if (cause !== "prefetch" && b.pages !== null && this.#allPinned(b, lo, hi)) continue;
      this.#blockEvent(va, b, lo, hi, proc, timePs);
    }
  }

  /** thrashing_block_munmap_cb (hmm_invalidate on MMU_NOTIFY_UNMAP / CLEAR); `destroy`: drop whole blocks (block destroy). */
  munmap(mm: object, start: number, end: number, destroy: boolean): void {
    const va = this.#spaces.get(mm);
    if (va === undefined) return;
    this.#forBlocks(va, start, end, destroy, (b, lo, hi) => this.#resetPagesInRegion(b, lo, hi));
  }

  /**
   * uvm_perf_thrashing_get_hint for the page at `address` faulted by `requester` at `timePs`: THROTTLE (until
   * `untilPs`), PIN, or null (no hint). `preferredLocation` is the range's advice ("host", a device name, or null).
   */
  getHint(mm: object, address: number, requester: string, timePs: number, preferredLocation: string | null = null): DetectorHint | null {
    if (!this.spec.enable) return null;
    const va = this.#spaces.get(mm);
    const blockStart = Math.floor(address / BLOCK_SIZE) * BLOCK_SIZE;
    const b = va?.blocks.get(blockStart);
    // No block or no per-page tracking yet: no thrashing.
    if (va === undefined || b === undefined) return null;
    this.#expirePins(b, timePs);
    if (b.pages === null) return null;
    if (b.lastThrashingTs !== NONE && timePs - b.lastThrashingTs > this.#epochPs && b.pinnedCount === 0 && b.resetCount < this.spec.maxResets) {
      // The epoch passed without thrashing: reset the block's per-page tracking.
      b.resetCount++;
      this.stats.resets++;
      b.pages = null;
      b.numThrashingPages = 0;
      b.lastProcessor = NONE;
      b.lastTs = NONE;
      b.lastThrashingTs = NONE;
      b.thrashingMask.fill(0);
      return null;
    }
    const p = b.pages;
    const i = Math.floor((address - blockStart) / PAGE);
    // Not enough thrashing events yet.
    if (p.events[i]! < this.spec.threshold) return null;
    const req = this.#id(requester);
    const bit = 1 << req;
    let type: ThrashingHintType | 0 = 0;
    if ((p.throttled[i]! & bit) !== 0) {
      if (timePs < p.throttleEnd[i]! && req !== p.doNotThrottle[i]) type = THRASHING_HINT_THROTTLE;
      else this.#throttleEnd(p, i, bit); // thrashing_throttle_end_processor
    }
    if (type === 0) {
      const last = p.lastTs[i]!;
      this.#adjustLapse(va, timePs - last);
      // "If the lapse since the last thrashing event is longer than a thrashing lapse we are no longer thrashing".
      if (timePs - last > va.lapseNs * PS_PER_NS && p.pinned[i] === 0) return null;
      p.processors[i] = p.processors[i]! | bit;
      this.#throttleUpdate(p, i, req, timePs);
      type = this.#migrationHint(p, i, req, requester, preferredLocation);
    }
    const h = this.#hint;
    if (type === THRASHING_HINT_PIN) {
      this.#pinPage(b, p, i, timePs);
      this.stats.pin++;
      h.type = THRASHING_HINT_PIN;
      h.untilPs = 0;
      h.pinResidency = CPU;
      return h;
    }
    if (type === THRASHING_HINT_THROTTLE) {
      // thrashing_throttle_processor
      if ((p.throttled[i]! & bit) === 0) {
        p.throttled[i] = p.throttled[i]! | bit;
        if (p.pinned[i] === 0) p.throttleCount[i] = Math.min(THROTTLES_MAX, p.throttleCount[i]! + 1);
        b.throttlingCount++;
      }
      this.stats.throttle++;
      h.type = THRASHING_HINT_THROTTLE;
      h.untilPs = p.throttleEnd[i]!;
      h.pinResidency = CPU;
      return h;
    }
    return null;
  }

  /** uvm_perf_thrashing_get_thrashing_pages: sets mask[i] = 1 for the thrashing pages of the block at `blockStart`. */
  thrashingPages(mm: object, blockStart: number, mask: Uint8Array): void {
    if (!this.spec.enable) return;
    const b = this.#spaces.get(mm)?.blocks.get(blockStart);
    if (b === undefined || b.numThrashingPages === 0) return;
    const m = b.thrashingMask;
    for (let i = 0; i < BLOCK_PAGES; i++) if (m[i] !== 0) mask[i] = 1;
  }

  /** The tracking of one page, for tests and reports (undefined when the block has no per-page tracking). */
  pageState(mm: object, address: number): { events: number; thrashing: boolean; pinned: boolean; throttleCount: number; throttleEndPs: number } | undefined {
    const blockStart = Math.floor(address / BLOCK_SIZE) * BLOCK_SIZE;
    const b = this.#spaces.get(mm)?.blocks.get(blockStart);
    const p = b?.pages;
    if (!b || !p) return undefined;
    const i = Math.floor((address - blockStart) / PAGE);
    return { events: p.events[i]!, thrashing: b.thrashingMask[i] === 1, pinned: p.pinned[i] === 1, throttleCount: p.throttleCount[i]!, throttleEndPs: p.throttleEnd[i]! };
  }

  /** Blocks tracked in `mm` and those with per-page tracking (the state's size). */
  blocks(mm: object): { blocks: number; tracked: number } {
    const va = this.#spaces.get(mm);
    let tracked = 0;
    for (const b of va?.blocks.values() ?? []) if (b.pages !== null) tracked++;
    return { blocks: va?.blocks.size ?? 0, tracked };
  }

  #space(mm: object): VaSpaceThrashing {
    let va = this.#spaces.get(mm);
    if (va === undefined) this.#spaces.set(mm, (va = new VaSpaceThrashing(this.spec.lapseUs * 1000)));
    return va;
  }

  /** A processor's id, 0 (cpu) … 31; a machine with more processors shares the last id among the rest. */
  #id(name: string): number {
    let id = this.#ids.get(name);
    if (id === undefined) {
      id = Math.min(this.#names.length, 31);
      this.#ids.set(name, id);
      if (this.#names.length <= 31) this.#names.push(name);
    }
    return id;
  }

  #forBlocks(va: VaSpaceThrashing, start: number, end: number, destroy: boolean, f: (b: BlockThrashing, lo: number, hi: number) => void): void {
    const visit = (bs: number, b: BlockThrashing): void => {
      const lo = Math.max(0, Math.floor((start - bs) / PAGE));
      const hi = Math.min(BLOCK_PAGES, Math.ceil((end - bs) / PAGE));
      if (destroy && lo === 0 && hi === BLOCK_PAGES) va.blocks.delete(bs);
      else f(b, lo, hi);
    };
    // A range wider than the blocks tracked (an exit's UNMAP of [0, ULONG_MAX)) walks the blocks, not the range.
    if ((end - start) / BLOCK_SIZE > va.blocks.size) {
      for (const [bs, b] of [...va.blocks]) if (bs < end && bs + BLOCK_SIZE > start) visit(bs, b);
      return;
    }
    for (let bs = Math.floor(start / BLOCK_SIZE) * BLOCK_SIZE; bs < end; bs += BLOCK_SIZE) {
      const b = va.blocks.get(bs);
      if (b !== undefined) visit(bs, b);
    }
  }

  /** The per-block part of thrashing_event_cb for pages [lo, hi) of block `b`. */
  #blockEvent(va: VaSpaceThrashing, b: BlockThrashing, lo: number, hi: number, proc: number, t: number): void {
    const lapsePs = va.lapseNs * PS_PER_NS;
    if (b.pages === null) {
      // "Don't create the per-page tracking structure unless there is some potential thrashing within the block".
      if (b.lastTs === NONE || b.lastProcessor === proc || t - b.lastTs > lapsePs) {
        b.lastTs = t;
        b.lastProcessor = proc;
        return;
      }
      b.pages = new PageThrashing();
    }
    const p = b.pages;
    const bit = 1 << proc;
    for (let i = lo; i < hi; i++) {
      const last = p.lastTs[i]!;
      p.processors[i] = p.processors[i]! | bit;
      p.lastTs[i] = t;
      if (last === NONE) continue;
      if (t - last <= lapsePs) {
        const n = Math.min(EVENTS_MAX, p.events[i]! + 1);
        p.events[i] = n;
        if (n === this.spec.threshold && b.thrashingMask[i] === 0) {
          // thrashing_detected
          b.thrashingMask[i] = 1;
          b.numThrashingPages++;
          this.stats.thrashing++;
        }
        if (n >= this.spec.threshold) b.lastThrashingTs = t;
        p.hasMigration[i] = 1;
      } else if (p.events[i]! >= this.spec.threshold && p.pinned[i] === 0) {
        this.#resetPage(b, p, i);
      }
    }
    b.lastTs = t;
    b.lastProcessor = proc;
  }

  #allPinned(b: BlockThrashing, lo: number, hi: number): boolean {
    const p = b.pages!;
    for (let i = lo; i < hi; i++) if (p.pinned[i] === 0) return false;
    return hi > lo;
  }

  /** thrashing_reset_pages_in_region: reset the thrashing pages of [lo, hi). */
  #resetPagesInRegion(b: BlockThrashing, lo: number, hi: number): void {
    const p = b.pages;
    if (p === null) return;
    for (let i = lo; i < hi; i++) if (b.thrashingMask[i] !== 0) this.#resetPage(b, p, i);
  }

  /** thrashing_reset_page: throttling state cleared, unpinned, events and processors cleared, out of the mask. */
  #resetPage(b: BlockThrashing, p: PageThrashing, i: number): void {
    p.throttled[i] = 0;
    p.throttleEnd[i] = NONE;
    if (p.pinned[i] !== 0) {
      // thrashing_unpin_page
      p.pinned[i] = 0;
      p.pinnedResidency[i] = NONE;
      if (p.pinDeadline[i] !== NONE) b.pinnedNow--;
      p.pinDeadline[i] = NONE;
    }
    p.lastTs[i] = NONE;
    p.hasMigration[i] = 0;
    p.events[i] = 0;
    p.processors[i] = 0;
    if (b.thrashingMask[i] !== 0) {
      b.thrashingMask[i] = 0;
      b.numThrashingPages--;
    }
  }

  /** thrashing_unpin_pages, lazily: the pins of `b` whose deadline is within the timer granularity of `t` expire. */
  #expirePins(b: BlockThrashing, t: number): void {
    const p = b.pages;
    if (p === null || b.pinnedNow === 0) return;
    for (let i = 0; i < BLOCK_PAGES; i++) {
      const d = p.pinDeadline[i]!;
      if (d !== NONE && d <= t + TIMER_GRANULARITY_PS) this.#resetPage(b, p, i);
    }
  }

  #throttleEnd(p: PageThrashing, i: number, bit: number): void {
    p.throttled[i] = p.throttled[i]! & ~bit;
    if (p.throttled[i] === 0) p.throttleEnd[i] = NONE;
  }

  /** thrashing_throttle_update: a new throttling period starts after the previous one ended; its exempt processor alternates. */
  #throttleUpdate(p: PageThrashing, i: number, req: number, t: number): void {
    if (t > p.throttleEnd[i]!) {
      p.throttleEnd[i] = t + this.#napPs;
      p.doNotThrottle[i] = p.doNotThrottle[i] === req ? NONE : req;
    } else if (p.doNotThrottle[i] === NONE) {
      p.doNotThrottle[i] = req;
    }
  }

  /** get_hint_for_migration_thrashing, for HMM memory behind a link without native atomics (see the file comment). */
  #migrationHint(p: PageThrashing, i: number, req: number, requester: string, preferred: string | null): ThrashingHintType | 0 {
    const dnt = p.doNotThrottle[i]!;
    // thrashing_processors_can_access(preferred_location): every processor can map system memory.
    if (preferred === HOST_LOCATION) return THRASHING_HINT_PIN;
    if (preferred === requester) {
      // The faulting processor is the preferred location: pin there, or throttle when pinned elsewhere.
      if (p.pinned[i] !== 0) return p.pinnedResidency[i] === req || dnt === req ? THRASHING_HINT_PIN : THRASHING_HINT_THROTTLE;
      if (dnt !== req) return THRASHING_HINT_THROTTLE;
      return p.throttleCount[i]! >= this.spec.pinThreshold ? THRASHING_HINT_PIN : 0;
    }
    if (p.pinned[i] !== 0) {
      // The exempt processor pins (at the common location, system memory); the others map the pinned residency,
      // which every processor can access when it is system memory.
      return THRASHING_HINT_PIN;
    }
    if (dnt !== req) return THRASHING_HINT_THROTTLE;
    return p.throttleCount[i]! >= this.spec.pinThreshold ? THRASHING_HINT_PIN : 0;
  }

  /** thrashing_pin_page at system memory; the deadline is now + pin (none when pin = 0: pinned for good). */
  #pinPage(b: BlockThrashing, p: PageThrashing, i: number, t: number): void {
    const cpu = 0;
    if (p.pinned[i] === 0 || p.pinnedResidency[i] !== cpu) {
      p.throttled[i] = 0; // thrashing_throttling_reset_page
      p.throttleEnd[i] = NONE;
    }
    if (p.pinned[i] === 0) {
      if (this.#pinPs > 0) {
        p.pinDeadline[i] = t + this.#pinPs;
        b.pinnedNow++;
      }
      p.throttleCount[i] = 0;
      p.pinned[i] = 1;
      b.pinnedCount++;
    }
    p.pinnedResidency[i] = cpu;
  }

  /**
   * adjust_thrashing_lapse, as written: a vote per hint (+1 when the gap is at least the lapse, −1 otherwise, in an
   * 8-bit signed counter); at `lapseVoteThreshold` votes the lapse grows by 1/8 (at most 50 ms a step, up to
   * UVM_PERF_THRASHING_LAPSE_USEC_MAX), or, at the maximum, shrinks by 1/8 (at least 5 µs); then the votes halve.
   * Only when the lapse is the default.
   */
  #adjustLapse(va: VaSpaceThrashing, gapPs: number): void {
    if (!this.#adaptiveLapse) return;
    const v = va.lapseStat + (gapPs < va.lapseNs * PS_PER_NS ? -1 : 1);
    va.lapseStat = ((v + 128) & 255) - 128; // NvS8
    const vote = this.spec.lapseVoteThreshold;
    if (va.lapseStat >= vote && va.lapseNs < LAPSE_USEC_MAX * 1000) va.lapseNs += Math.min(Math.floor(va.lapseNs / 8), (LAPSE_USEC_MAX / 10) * 1000);
    else if (-va.lapseStat <= -vote && va.lapseNs > LAPSE_USEC_MIN * 1000) va.lapseNs -= Math.max(Math.floor(va.lapseNs / 8), LAPSE_USEC_MIN * 1000);
    else return;
    va.lapseStat = Math.trunc(va.lapseStat / 2);
  }
}
