// Worked examples of uvm_perf_thrashing.c [S3], with a fake clock (ps) and fake migration events: each test names
// the function whose decision it checks.
import { describe, expect, it } from "vitest";
import { THRASHING_HINT_PIN, THRASHING_HINT_THROTTLE } from "@hmmsim/policy";
import { CPU, ThrashingDetector, migrationCause } from "./thrashing-detector.js";
import { THRASHING_DEFAULTS, type ThrashingPolicySpec } from "./thrashing-spec.js";

const US = 1_000_000; // ps
const MS = 1000 * US;
const BLOCK = 2 * 1024 * 1024;
const A = 7 * BLOCK + 5 * 4096; // page 5 of the block at 14 MiB
const GPU = "gpu0";

const detector = (over: Partial<ThrashingPolicySpec> = {}) => new ThrashingDetector({ ...THRASHING_DEFAULTS, ...over });
/** One page migrated to `to` at `t` because of a fault. */
const move = (d: ThrashingDetector, mm: object, to: string, t: number, addr = A) => d.migration(mm, addr, addr + 4096, to, "fault", t);

/** A GPU↔CPU ping-pong on page A, one migration every `stepUs` from `t0`, `n` migrations (GPU first). Returns the time after. */
function pingPong(d: ThrashingDetector, mm: object, n: number, t0 = 0, stepUs = 100): number {
  let t = t0;
  for (let k = 0; k < n; k++, t += stepUs * US) move(d, mm, k % 2 === 0 ? GPU : CPU, t);
  return t;
}

/** Keeps the ping-pong going: a migration every 200 µs in (from, to], alternating CPU and GPU. */
function keep(d: ThrashingDetector, mm: object, from: number, to: number): void {
  for (let t = from + 200 * US, k = 0; t <= to; t += 200 * US, k++) move(d, mm, k % 2 === 0 ? CPU : GPU, t);
}

const hintOf = (d: ThrashingDetector, mm: object, t: number, preferred: string | null = null) => {
  const h = d.getHint(mm, A, GPU, t, preferred);
  return h === null ? null : { type: h.type === THRASHING_HINT_PIN ? "PIN" : "THROTTLE", untilPs: h.untilPs };
};

describe("thrashing_event_cb: detection", () => {
  it("per-page tracking starts when a second processor touches the block within a lapse; 3 thrashing events within 500 µs mark the page", () => {
    const d = detector();
    const mm = {};
    move(d, mm, GPU, 0);
    expect(d.blocks(mm)).toEqual({ blocks: 1, tracked: 0 }); // block_thrashing->pages not created: one processor so far
    move(d, mm, CPU, 100 * US); // another processor within the lapse: pages created, the page's first time stamp
    expect(d.pageState(mm, A)).toMatchObject({ events: 0, thrashing: false });
    move(d, mm, GPU, 200 * US); // each later event within lapse_usec of the page's last one is a thrashing event
    move(d, mm, CPU, 300 * US);
    expect(d.pageState(mm, A)).toMatchObject({ events: 2, thrashing: false });
    move(d, mm, GPU, 400 * US); // num_thrashing_events == threshold (3): thrashing_detected
    expect(d.pageState(mm, A)).toMatchObject({ events: 3, thrashing: true });
    const mask = new Uint8Array(512);
    d.thrashingPages(mm, 7 * BLOCK, mask); // uvm_perf_thrashing_get_thrashing_pages
    expect([...mask.keys()].filter((i) => mask[i])).toEqual([5]);
    expect(d.stats.thrashing).toBe(1);
  });

  it("events spaced more than a lapse apart are no thrashing: no tracking, no hint, no thrashing page", () => {
    const d = detector();
    const mm = {};
    pingPong(d, mm, 40, 0, 501);
    expect(d.blocks(mm)).toEqual({ blocks: 1, tracked: 0 });
    expect(d.getHint(mm, A, GPU, 40 * 501 * US)).toBeNull();
    const mask = new Uint8Array(512);
    d.thrashingPages(mm, 7 * BLOCK, mask);
    expect(mask.every((b) => b === 0)).toBe(true);
  });

  it("the count below the threshold does not decay with time (only a thrashing page is reset by a long gap)", () => {
    const d = detector();
    const mm = {};
    pingPong(d, mm, 3); // events 1 (the tracking starts at the 2nd migration)
    move(d, mm, GPU, 10 * MS); // long gap: nothing, the page is not thrashing yet
    move(d, mm, CPU, 10 * MS + 100 * US);
    expect(d.pageState(mm, A)).toMatchObject({ events: 2 });
    move(d, mm, GPU, 10 * MS + 200 * US);
    expect(d.pageState(mm, A)).toMatchObject({ events: 3, thrashing: true });
    move(d, mm, CPU, 20 * MS); // now a gap longer than the lapse resets the thrashing page (thrashing_reset_page)
    expect(d.pageState(mm, A)).toMatchObject({ events: 0, thrashing: false });
  });

  it("eviction migrations are skipped; other causes (advice, user commands) reset the pages; counts saturate at 7", () => {
    expect([migrationCause("fault"), migrationCause("cpu-fault"), migrationCause("prefetch"), migrationCause("access-counter"), migrationCause("eviction"), migrationCause("hint")]).toEqual(
      ["fault", "fault", "prefetch", "access-counter", "eviction", "other"],
    );
    const d = detector();
    const mm = {};
    const t = pingPong(d, mm, 12);
    expect(d.pageState(mm, A)).toMatchObject({ events: 7, thrashing: true }); // 3-bit saturating counter
    d.migration(mm, 7 * BLOCK, 8 * BLOCK, CPU, "eviction", t);
    expect(d.pageState(mm, A)).toMatchObject({ events: 7, thrashing: true });
    d.migration(mm, A, A + 4096, GPU, "other", t + US);
    expect(d.pageState(mm, A)).toMatchObject({ events: 0, thrashing: false });
  });

  it("munmap (MMU_NOTIFY_UNMAP / CLEAR) resets the range; a whole block unmapped is dropped; state is per mm", () => {
    const d = detector();
    const mm = {};
    const other = {};
    pingPong(d, mm, 6);
    pingPong(d, other, 6);
    d.munmap(mm, A, A + 4096, false);
    expect(d.pageState(mm, A)).toMatchObject({ events: 0, thrashing: false });
    expect(d.pageState(other, A)).toMatchObject({ thrashing: true });
    d.munmap(mm, 0, 2 ** 52, true); // exit_mmap's UNMAP of everything
    expect(d.blocks(mm)).toEqual({ blocks: 0, tracked: 0 });
    expect(d.blocks(other)).toEqual({ blocks: 1, tracked: 1 });
  });
});

describe("uvm_perf_thrashing_get_hint: throttle, then pin", () => {
  /**
   * The ping-pong goes on (a migration every 200 µs) while the GPU faults on the page every 600 µs, so every fault
   * starts a new throttling period (nap = 1 lapse = 500 µs).
   */
  function run(d: ThrashingDetector, mm: object, faults: number) {
    const hints: ({ type: string; untilPs: number } | null)[] = [];
    let t = pingPong(d, mm, 5); // thrashing from 400 µs
    for (let k = 0; k < faults; k++) {
      const tf = t + 600 * US;
      for (; t < tf; t += 200 * US) move(d, mm, (t / (200 * US)) % 2 === 0 ? GPU : CPU, t);
      hints.push(hintOf(d, mm, tf));
    }
    return { hints, t };
  }

  it("thrashing_throttle_update: the first processor of a period is exempt, the next period throttles it for nap × lapse", () => {
    const d = detector();
    const mm = {};
    const t = pingPong(d, mm, 5);
    expect(hintOf(d, mm, t)).toBeNull(); // do_not_throttle_processor = gpu0 for this period
    expect(hintOf(d, mm, t + 100 * US)).toBeNull(); // same period, still exempt
    keep(d, mm, t, t + 600 * US);
    expect(hintOf(d, mm, t + 600 * US)).toEqual({ type: "THROTTLE", untilPs: t + 600 * US + 500 * US }); // new period: 1 × lapse
    expect(d.pageState(mm, A)).toMatchObject({ throttleCount: 1 });
    // Throttled and asking again before the end: THROTTLE again, not counted twice.
    expect(hintOf(d, mm, t + 700 * US)).toEqual({ type: "THROTTLE", untilPs: t + 1100 * US });
    expect(d.pageState(mm, A)).toMatchObject({ throttleCount: 1 });
  });

  it("nap scales the throttle: nap 4 holds the processor off for 4 lapses", () => {
    const d = detector({ nap: 4 });
    const mm = {};
    const t = pingPong(d, mm, 5);
    expect(hintOf(d, mm, t)).toBeNull();
    keep(d, mm, t, t + 2100 * US);
    expect(hintOf(d, mm, t + 2100 * US)).toEqual({ type: "THROTTLE", untilPs: t + 2100 * US + 2000 * US });
  });

  it("after pin_threshold (10) throttles the page is pinned (PIN: mapped remotely, no migration) for pin × lapse = 150 ms", () => {
    const d = detector();
    const mm = {};
    const { hints, t } = run(d, mm, 21);
    const kinds = hints.map((h) => h?.type ?? "none");
    // Exempt and throttled periods alternate; the 10th throttle is the 20th fault, the 21st pins.
    expect(kinds.slice(0, 20)).toEqual(Array.from({ length: 20 }, (_, k) => (k % 2 === 0 ? "none" : "THROTTLE")));
    expect(kinds[20]).toBe("PIN");
    expect(d.pageState(mm, A)).toMatchObject({ pinned: true, throttleCount: 0, thrashing: true });
    // Pinned: every fault of the page is answered PIN until the deadline (thrashing_unpin_pages, 20 µs timer granularity).
    expect(hintOf(d, mm, t + 100 * MS)).toEqual({ type: "PIN", untilPs: 0 });
    expect(hintOf(d, mm, t + 150 * MS - 30 * US)).toEqual({ type: "PIN", untilPs: 0 });
    expect(hintOf(d, mm, t + 150 * MS - 10 * US)).toBeNull(); // unpinned and reset: thrashing_reset_page
    expect(d.pageState(mm, A)).toMatchObject({ pinned: false, events: 0, thrashing: false });
    expect(d.stats).toMatchObject({ throttle: 10, pin: 3 });
  });

  it("pin = 0 pins for good; pinThreshold 1 pins after the first throttle", () => {
    const d = detector({ pin: 0, pinThreshold: 1 });
    const mm = {};
    const { hints, t } = run(d, mm, 3);
    expect(hints.map((h) => h?.type ?? "none")).toEqual(["none", "THROTTLE", "PIN"]);
    expect(hintOf(d, mm, t + 1000 * MS)).toEqual({ type: "PIN", untilPs: 0 });
  });

  it("a range preferring system memory (preferred location host) is pinned at once", () => {
    const d = detector();
    const mm = {};
    const t = pingPong(d, mm, 5);
    expect(hintOf(d, mm, t, "host")).toEqual({ type: "PIN", untilPs: 0 });
  });

  it("no hint before the threshold, and none once the page has been quiet for more than a lapse", () => {
    const d = detector();
    const mm = {};
    const t = pingPong(d, mm, 4); // 2 events
    expect(hintOf(d, mm, t)).toBeNull();
    move(d, mm, GPU, t);
    expect(hintOf(d, mm, t + 501 * US)).toBeNull(); // "we are no longer thrashing"
  });

  it("epoch: a block with no thrashing event for epoch × lapse (1 s) is reset, at most max_resets (4) times", () => {
    const d = detector();
    const mm = {};
    let t = 0;
    for (let r = 0; r < 5; r++) {
      t = pingPong(d, mm, 5, t);
      expect(d.pageState(mm, A)).toMatchObject({ thrashing: true });
      t += 1001 * MS;
      expect(hintOf(d, mm, t)).toBeNull();
      expect(d.blocks(mm).tracked).toBe(r < 4 ? 0 : 1); // the 5th epoch no longer resets
      t += 10 * MS;
    }
    expect(d.stats.resets).toBe(4);
  });

  it("epoch: a block that ever pinned a page is never reset (pinned_pages.count only grows)", () => {
    const d = detector({ pin: 1 }); // pinned for 1 lapse
    const mm = {};
    const { t } = run(d, mm, 21);
    expect(d.pageState(mm, A)).toMatchObject({ pinned: true });
    expect(hintOf(d, mm, t + 2000 * MS)).toBeNull(); // the pin expired; the epoch passed, but no reset
    expect(d.blocks(mm).tracked).toBe(1);
    expect(d.stats.resets).toBe(0);
  });

  it("adjust_thrashing_lapse: with the default lapse, 32 votes of gaps ≥ lapse grow it by 1/8; a lapse set by the user stays", () => {
    for (const [lapseUs, expected] of [[500, 562.5], [400, 400]] as const) {
      const d = detector({ lapseUs });
      const mm = {};
      const t = pingPong(d, mm, 5, 0, lapseUs / 5);
      for (let k = 1; k <= 32; k++) d.getHint(mm, A, GPU, t + k * lapseUs * 2 * US);
      expect(d.lapsePs(mm) / US).toBe(expected);
    }
  });

  it("disabled (enable: false): no events, no hints", () => {
    const d = detector({ enable: false });
    const mm = {};
    const t = pingPong(d, mm, 12);
    expect(d.blocks(mm).blocks).toBe(0);
    expect(d.getHint(mm, A, GPU, t)).toBeNull();
  });

  it("THROTTLE and PIN are the policy hook's hint types", () => {
    const d = detector();
    const mm = {};
    const t = pingPong(d, mm, 5);
    d.getHint(mm, A, GPU, t);
    keep(d, mm, t, t + 600 * US);
    expect(d.getHint(mm, A, GPU, t + 600 * US)?.type).toBe(THRASHING_HINT_THROTTLE);
  });
});
