// The engine's pending-event set: a 4-ary min-heap on typed arrays.
//
// Each entry has a time (ps, Float64Array), an order key (Float64Array; FIFO sequence number, or a seeded
// tie-break / PCT priority key chosen by the engine) and a payload slot (Int32Array) into a payload array with a
// free list. Only the typed arrays move while sifting; payloads stay put. Entries compare by (time, ord).
// A 4-ary heap halves the depth of a binary heap and keeps the four children of a node in one cache line.
// It starts small (64 entries, 1.5 KiB: an Engine is cheap to create, the explorer makes one per run) and
// doubles when full.

export class EventQueue<T> {
  private times: Float64Array;
  private ords: Float64Array;
  private slots: Int32Array;
  private payloads: (T | undefined)[];
  private freeSlots: Int32Array;
  private freeTop = 0;
  private nextSlot = 0;
  /** Number of pending entries. */
  size = 0;
  /** Time and order key of the entry returned by the last pop(). */
  lastTime = 0;
  lastOrd = 0;

  constructor(initialCapacity = 64) {
    const cap = Math.max(4, initialCapacity | 0);
    this.times = new Float64Array(cap);
    this.ords = new Float64Array(cap);
    this.slots = new Int32Array(cap);
    this.freeSlots = new Int32Array(cap);
    this.payloads = [];
  }

  private grow(): void {
    const cap = this.times.length * 2;
    const t = new Float64Array(cap);
    t.set(this.times);
    this.times = t;
    const o = new Float64Array(cap);
    o.set(this.ords);
    this.ords = o;
    const s = new Int32Array(cap);
    s.set(this.slots);
    this.slots = s;
    const f = new Int32Array(cap);
    f.set(this.freeSlots);
    this.freeSlots = f;
  }

  /** Inserts an entry. */
  push(time: number, ord: number, payload: T): void {
    if (this.size === this.times.length) this.grow();
    let slot: number;
    if (this.freeTop > 0) slot = this.freeSlots[--this.freeTop]!;
    else slot = this.nextSlot++;
    this.payloads[slot] = payload;
    const times = this.times;
    const ords = this.ords;
    const slots = this.slots;
    // Sift up with a hole.
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 2;
      const pt = times[p]!;
      if (pt < time || (pt === time && ords[p]! <= ord)) break;
      times[i] = pt;
      ords[i] = ords[p]!;
      slots[i] = slots[p]!;
      i = p;
    }
    times[i] = time;
    ords[i] = ord;
    slots[i] = slot;
  }

  /** Time of the earliest entry (Infinity when empty). */
  peekTime(): number {
    return this.size === 0 ? Infinity : this.times[0]!;
  }

  /** Removes and returns the earliest entry's payload; its time/order land in lastTime/lastOrd. Size must be > 0. */
  pop(): T {
    const times = this.times;
    const ords = this.ords;
    const slots = this.slots;
    const slot = slots[0]!;
    this.lastTime = times[0]!;
    this.lastOrd = ords[0]!;
    const payload = this.payloads[slot]!;
    this.payloads[slot] = undefined;
    this.freeSlots[this.freeTop++] = slot;
    const n = --this.size;
    if (n > 0) {
      const time = times[n]!;
      const ord = ords[n]!;
      const s = slots[n]!;
      // Sift down with a hole from the root.
      let i = 0;
      for (;;) {
        const c = (i << 2) + 1;
        if (c >= n) break;
        let m = c;
        let mt = times[c]!;
        let mo = ords[c]!;
        const end = c + 4 < n ? c + 4 : n;
        for (let k = c + 1; k < end; k++) {
          const kt = times[k]!;
          if (kt < mt || (kt === mt && ords[k]! < mo)) {
            m = k;
            mt = kt;
            mo = ords[k]!;
          }
        }
        if (mt > time || (mt === time && mo >= ord)) break;
        times[i] = mt;
        ords[i] = mo;
        slots[i] = slots[m]!;
        i = m;
      }
      times[i] = time;
      ords[i] = ord;
      slots[i] = s;
    }
    return payload;
  }

  /** Payloads of all pending entries, in no particular order. */
  *pending(): IterableIterator<T> {
    for (let i = 0; i < this.size; i++) yield this.payloads[this.slots[i]!]!;
  }
}
