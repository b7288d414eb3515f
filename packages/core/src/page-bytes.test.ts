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
  it("writing zeroes to a page without a buffer allocates none (it already reads as zeroes); the tag still changes", () => {
    const k = createKernel({ ramBytes: 4 << 20 });
    const p = allocPages(k, 0);
    const t0 = k.store.tag(p);
    k.pageBytes.write(p, 0, new Uint8Array(4096));
    expect(k.pageBytes.inUse).toBe(0);
    expect(k.store.tag(p)).not.toBe(t0);
    expect(k.pageBytes.snapshot(p).every((b) => b === 0)).toBe(true);
    // a page with a buffer gets the zeroes written into it
    k.pageBytes.write(p, 0, new Uint8Array([9, 9]));
    k.pageBytes.write(p, 0, new Uint8Array(2));
    expect(k.pageBytes.inUse).toBe(1);
    expect(k.pageBytes.snapshot(p)[1]).toBe(0);
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
  it("copy into a recycled buffer slot overwrites all of its stale bytes; a later partial write zero-fills", () => {
    const k = createKernel({ ramBytes: 8 << 20 });
    const a = allocPages(k, 0);
    const junk = new Uint8Array(4096).fill(0xee);
    k.pageBytes.write(a, 0, junk);
    putPage(k, a); // its slot (full of 0xee) goes back to the free list
    const src = allocPages(k, 0);
    const dst = allocPages(k, 0);
    const pat = new Uint8Array(4096);
    for (let i = 0; i < 4096; i++) pat[i] = (i * 7 + 3) & 0xff;
    k.pageBytes.write(src, 0, pat, 77); // takes the recycled slot: zero-filled, then written
    k.pageBytes.copy(dst, src); // dst gets a fresh slot, not cleared first
    expect(k.pageBytes.snapshot(dst)).toEqual(pat);
    expect(k.store.tag(dst)).toBe(77);
    putPage(k, src); // recycled again, still holding pat
    const w = allocPages(k, 0);
    k.pageBytes.write(w, 10, new Uint8Array([1]));
    const want = new Uint8Array(4096);
    want[10] = 1;
    expect(k.pageBytes.snapshot(w)).toEqual(want);
    // copying onto a page that already has a buffer, and from a page without one
    k.pageBytes.copy(w, dst);
    expect(k.pageBytes.snapshot(w)).toEqual(pat);
    const inUse = k.pageBytes.inUse;
    const z = allocPages(k, 0);
    k.pageBytes.copy(w, z);
    expect(k.pageBytes.inUse).toBe(inUse - 1);
    expect(k.pageBytes.snapshot(w)).toEqual(new Uint8Array(4096));
    expect(k.store.tag(w)).toBe(0);
    // reads of a sub-range
    const out = new Uint8Array(8).fill(9);
    k.pageBytes.read(dst, 4090, 6, out, 1);
    expect([...out]).toEqual([9, ...pat.subarray(4090, 4096), 9]);
  });
  it("copies across 1 MiB slabs (more than 256 buffers) keep every page's bytes", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const n = 600;
    const src: number[] = [];
    const dst: number[] = [];
    for (let i = 0; i < n; i++) {
      const p = allocPages(k, 0);
      k.pageBytes.write(p, 0, new Uint8Array([i & 0xff, i >> 8]));
      k.pageBytes.write(p, 4095, new Uint8Array([(i * 3) & 0xff]));
      src.push(p);
    }
    for (let i = 0; i < n; i++) dst.push(allocPages(k, 0));
    for (let i = 0; i < n; i++) k.pageBytes.copy(dst[n - 1 - i]!, src[i]!);
    for (let i = 0; i < n; i++) {
      const b = k.pageBytes.snapshot(dst[n - 1 - i]!);
      expect([b[0], b[1], b[4095], b[2000]]).toEqual([i & 0xff, i >> 8, (i * 3) & 0xff, 0]);
      expect(k.store.tag(dst[n - 1 - i]!)).toBe(k.store.tag(src[i]!));
    }
    // page 0 was written only zeroes: neither it nor its copy holds a buffer
    expect(k.pageBytes.inUse).toBe(2 * (n - 1));
  });
  it("bytes-off: a chain of copies carries the exact tag and allocates no buffer", () => {
    const k = createKernel({ ramBytes: 4 << 20, bytes: false });
    const p = [allocPages(k, 0), allocPages(k, 0), allocPages(k, 0)];
    k.pageBytes.setTag(p[0]!, 123456789);
    k.pageBytes.copy(p[1]!, p[0]!);
    k.pageBytes.copy(p[2]!, p[1]!);
    k.pageBytes.clear(p[0]!);
    expect(p.map((x) => k.store.tag(x))).toEqual([0, 123456789, 123456789]);
    expect(k.pageBytes.inUse).toBe(0);
  });
});

describe("copy-on-write page buffers (copy_highpage by reference)", () => {
  it("a copy shares the source's buffer; writing either duplicates it, and each page reads its own bytes", () => {
    const k = createKernel({ ramBytes: 4 << 20 });
    const [a, b, c] = [allocPages(k, 0), allocPages(k, 0), allocPages(k, 0)];
    k.pageBytes.write(a, 0, new Uint8Array([1, 2, 3]));
    k.pageBytes.copy(b, a);
    k.pageBytes.copy(c, b);
    expect([k.pageBytes.inUse, k.pageBytes.buffersInUse]).toEqual([3, 1]);
    k.pageBytes.write(b, 1, new Uint8Array([9]));
    expect([k.pageBytes.inUse, k.pageBytes.buffersInUse]).toEqual([3, 2]);
    expect([...k.pageBytes.snapshot(a).subarray(0, 3)]).toEqual([1, 2, 3]);
    expect([...k.pageBytes.snapshot(b).subarray(0, 3)]).toEqual([1, 9, 3]);
    expect([...k.pageBytes.snapshot(c).subarray(0, 3)]).toEqual([1, 2, 3]);
    // the source written after the copy: the copies keep the old bytes
    k.pageBytes.write(a, 0, new Uint8Array([7]));
    expect(k.pageBytes.snapshot(c)[0]).toBe(1);
    expect(k.pageBytes.snapshot(a)[0]).toBe(7);
    expect(k.pageBytes.buffersInUse).toBe(3);
  });

  it("copy then free of the source (a migration) moves the buffer: no duplicate, nothing leaked", () => {
    const k = createKernel({ ramBytes: 4 << 20 });
    const a = allocPages(k, 0);
    k.pageBytes.write(a, 4000, new Uint8Array([5, 6]));
    const b = allocPages(k, 0);
    k.pageBytes.copy(b, a);
    putPage(k, a);
    expect([k.pageBytes.inUse, k.pageBytes.buffersInUse]).toEqual([1, 1]);
    expect([...k.pageBytes.snapshot(b).subarray(4000, 4002)]).toEqual([5, 6]);
    k.pageBytes.write(b, 4000, new Uint8Array([8])); // sole holder: written in place
    expect(k.pageBytes.buffersInUse).toBe(1);
    putPage(k, b);
    expect([k.pageBytes.inUse, k.pageBytes.buffersInUse]).toEqual([0, 0]);
    // the freed buffer is recycled cleared for the next page's first write
    const c = allocPages(k, 0);
    k.pageBytes.write(c, 0, new Uint8Array([1]));
    expect(k.pageBytes.snapshot(c)[4000]).toBe(0);
  });

  it("copying over a page that has its own buffer releases it; copying a shared buffer onto a sharer is a no-op", () => {
    const k = createKernel({ ramBytes: 4 << 20 });
    const [a, b] = [allocPages(k, 0), allocPages(k, 0)];
    k.pageBytes.write(a, 0, new Uint8Array([1]));
    k.pageBytes.write(b, 0, new Uint8Array([2]));
    k.pageBytes.copy(b, a);
    expect([k.pageBytes.inUse, k.pageBytes.buffersInUse]).toEqual([2, 1]);
    k.pageBytes.copy(b, a);
    expect([k.pageBytes.inUse, k.pageBytes.buffersInUse]).toEqual([2, 1]);
    k.pageBytes.clear(a);
    expect(k.pageBytes.snapshot(b)[0]).toBe(1);
    expect(k.pageBytes.snapshot(a)[0]).toBe(0);
    expect([k.pageBytes.inUse, k.pageBytes.buffersInUse]).toEqual([1, 1]);
  });
});
