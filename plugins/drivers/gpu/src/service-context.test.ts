import { describe, expect, it } from "vitest";
import { HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE } from "@hmmsim/range-fault";
import type { MmuIntervalNotifier } from "@hmmsim/mmu-notifier";
import { CHUNK_PAGES } from "./root-chunks.js";
import { PAGE_REQ_READ, PAGE_REQ_SNAPSHOT, PAGE_REQ_WRITE, ServiceBlockContext, type VaSpace } from "./service-context.js";

const P = 4096;
const B = 2 * 1024 * 1024;
const space = { id: 0, mm: {}, sub: {} } as unknown as VaSpace;
const allZero = (a: Uint8Array) => a.every((x) => x === 0);

describe("ServiceBlockContext (uvm_service_block_context_t)", () => {
  it("begin starts an empty span; request and migrate grow it; a migrated page with no request is a snapshot", () => {
    const ctx = new ServiceBlockContext(null, () => 0);
    ctx.begin(space, 3, 7 * B);
    expect([ctx.lo, ctx.hi, ctx.anyMig, ctx.chunk, ctx.moved]).toEqual([CHUNK_PAGES, -1, false, -1, 0]);
    ctx.request(10, PAGE_REQ_READ);
    ctx.request(4, PAGE_REQ_WRITE);
    ctx.migrate(10); // requested already: stays a read
    ctx.migrate(20); // prefetched: a snapshot
    expect([ctx.lo, ctx.hi, ctx.anyMig]).toEqual([4, 20, true]);
    expect([ctx.req[4], ctx.req[10], ctx.req[20], ctx.req[15]]).toEqual([PAGE_REQ_WRITE, PAGE_REQ_READ, PAGE_REQ_SNAPSHOT, 0]);
    expect([ctx.mig[4], ctx.mig[10], ctx.mig[20]]).toEqual([0, 1, 1]);
  });

  it("prepareMirror fills the hmmRangeFault request over [lo, hi]: REQ_FAULT (| REQ_WRITE), 0 for snapshots", () => {
    let seen: ServiceBlockContext | null = null;
    const ctx = new ServiceBlockContext("owner", (c) => ((seen = c), 0));
    ctx.begin(space, 0, 7 * B);
    ctx.request(2, PAGE_REQ_READ);
    ctx.request(4, PAGE_REQ_WRITE);
    ctx.migrate(5);
    const notifier = {} as MmuIntervalNotifier;
    const r = ctx.prepareMirror(notifier);
    expect(r.notifier).toBe(notifier);
    expect([r.start, r.end]).toEqual([7 * B + 2 * P, 7 * B + 6 * P]);
    expect([...r.hmmPfns]).toEqual([HMM_PFN_REQ_FAULT, 0, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE, 0]);
    expect(r.devPrivateOwner).toBe("owner");
    expect(ctx.update(r)).toBe(0);
    expect(seen).toBe(ctx); // the update callback is bound to its own context
  });

  it("end clears the span (the arrays are all-zero between blocks); dropMigrations keeps the requests", () => {
    const ctx = new ServiceBlockContext(null, () => 0);
    ctx.begin(space, 0, 0);
    ctx.request(0, PAGE_REQ_READ);
    ctx.migrate(511);
    ctx.dropMigrations();
    expect(allZero(ctx.mig)).toBe(true);
    expect(ctx.req[511]).toBe(PAGE_REQ_SNAPSHOT);
    ctx.end();
    expect(allZero(ctx.req) && allZero(ctx.mig)).toBe(true);
    ctx.begin(space, 1, B);
    ctx.end(); // an empty span clears nothing and throws nothing
    expect([ctx.lo, ctx.hi]).toEqual([CHUNK_PAGES, -1]);
  });
});
