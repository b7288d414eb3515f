import { describe, expect, it } from "vitest";
import { createKernel } from "./kernel.js";
import { allocPages, putPage } from "./page-ref.js";

describe("page bytes (highmem.h copy/clear) and content tags", () => {
  it("pages read as zeroes until written; buffers are allocated on write only", () => {
    const k = createKernel({ ramBytes: 4 << 20 });
    const p = allocPages(k, 0);
    expect(k.pageBytes.snapshot(p).every((b) => b === 0)).toBe(true);
    expect(k.pageBytes.inUse).toBe(0);
    k.pageBytes.write(p, 100, new Uint8Array([7, 8]));
    expect(k.pageBytes.inUse).toBe(1);
    expect(k.pageBytes.snapshot(p)[101]).toBe(8);
    expect(k.store.tag(p)).not.toBe(0);
  });
  it("copy copies bytes and tag; clear resets both", () => {
    const k = createKernel({ ramBytes: 4 << 20 });
    const a = allocPages(k, 0);
    const b = allocPages(k, 0);
    k.pageBytes.write(a, 0, new Uint8Array([1, 2, 3]), 42);
    k.pageBytes.copy(b, a);
    expect(k.store.tag(b)).toBe(42);
    expect([...k.pageBytes.snapshot(b).subarray(0, 3)]).toEqual([1, 2, 3]);
    k.pageBytes.clear(b);
    expect(k.store.tag(b)).toBe(0);
    expect(k.pageBytes.snapshot(b)[0]).toBe(0);
    expect(k.pageBytes.inUse).toBe(1);
  });
  it("freeing a page returns its buffer and resets its tag", () => {
    const k = createKernel({ ramBytes: 4 << 20 });
    const a = allocPages(k, 0);
    k.pageBytes.write(a, 0, new Uint8Array([5]));
    putPage(k, a);
    expect(k.pageBytes.inUse).toBe(0);
    expect(k.store.tag(a)).toBe(0);
  });
  it("bytes-off mode keeps tags but no bytes", () => {
    const k = createKernel({ ramBytes: 4 << 20, bytes: false });
    expect(k.bytes).toBe(false);
    const a = allocPages(k, 0);
    const b = allocPages(k, 0);
    k.pageBytes.write(a, 0, new Uint8Array([9]), 5);
    expect(k.pageBytes.inUse).toBe(0);
    expect(k.pageBytes.snapshot(a)[0]).toBe(0);
    k.pageBytes.copy(b, a);
    expect(k.store.tag(b)).toBe(5);
  });
  it("out-of-page accesses are kernel bugs", () => {
    const k = createKernel({ ramBytes: 4 << 20 });
    const a = allocPages(k, 0);
    expect(() => k.pageBytes.write(a, 4095, new Uint8Array(2))).toThrow(/page_access_out_of_bounds/);
  });
});
