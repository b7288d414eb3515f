// A small FIFO with O(1) push/shift (array + head index, compacted when half consumed). Waiter lists of locks.
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(x: T): void {
    this.items.push(x);
  }

  peek(): T | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const x = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head > 32 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return x;
  }

  /** Removes every element for which pred is true, keeping order; returns the removed ones in order. */
  removeWhere(pred: (x: T) => boolean): T[] {
    const keep: T[] = [];
    const out: T[] = [];
    for (let i = this.head; i < this.items.length; i++) {
      const x = this.items[i] as T;
      (pred(x) ? out : keep).push(x);
    }
    this.items = keep;
    this.head = 0;
    return out;
  }

  toArray(): T[] {
    return this.items.slice(this.head) as T[];
  }
}
