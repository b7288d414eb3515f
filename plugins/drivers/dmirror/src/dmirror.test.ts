// struct dmirror semantics a kernel developer checks directly, beyond the self-tests: the ioctl prologue, the
// invalidate callback's owner filter and its inclusive-end quirk, FLAGS being one-shot, counters, and that close
// evicts the device's pages.
import { describe, expect, it } from "vitest";
import {
  EFAULT,
  EINVAL,
  ENOENT,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MMU_NOTIFY_CLEAR,
  MMU_NOTIFY_MIGRATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  isDevicePrivateEntry,
  ptePresent,
} from "@hmmsim/core";
import type { MmuNotifierRange, NotifierMm } from "@hmmsim/mmu-notifier";
import { DPT_XA_TAG_WRITE, xaPointerTag } from "./dmirror.js";
import { createSelftestSystem } from "./run-selftests.js";
import {
  HMM_DMIRROR_FLAGS,
  HMM_DMIRROR_FLAG_FAIL_ALLOC,
  HMM_DMIRROR_MIGRATE_TO_DEV,
  HMM_DMIRROR_READ,
  HMM_DMIRROR_WRITE,
  type HmmDmirrorCmd,
} from "./test-hmm-uapi.js";
import { DmirrorFile } from "./test-hmm.js";

function setup(pages = 8, minor = 0) {
  const sys = createSelftestSystem({ ramBytes: 64 << 20 }, "unit");
  const mm = sys.kernel.createMm();
  const f = sys.module.open(minor, mm);
  if (!(f instanceof DmirrorFile)) throw new Error(`open failed: ${String(f)}`);
  const addr = mm.mmap({ length: pages * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  for (let i = 0; i < pages; i++) mm.writeU32(addr + i * PAGE_SIZE, 100 + i);
  const cmd = (npages: number, a = addr): HmmDmirrorCmd => ({ addr: a, ptr: new Uint8Array(npages * PAGE_SIZE), npages, cpages: 0, faults: 0 });
  return { sys, mm, f, d: f.dmirror, addr, cmd };
}

function range(mm: unknown, event: number, start: number, end: number, owner: unknown): MmuNotifierRange<NotifierMm> {
  return { mm: mm as NotifierMm, event: event as MmuNotifierRange["event"], start, end, flags: 1, owner };
}

describe("dmirror ioctl prologue (dmirror_fops_unlocked_ioctl)", () => {
  it("rejects an unaligned address, npages 0 and an unknown command with -EINVAL, leaving the user cmd untouched", () => {
    const { f, addr, cmd } = setup();
    const c = cmd(1, addr + 8);
    c.cpages = 77;
    expect(f.ioctl(HMM_DMIRROR_READ, c)).toBe(-EINVAL);
    expect(c.cpages).toBe(77);
    expect(f.ioctl(HMM_DMIRROR_READ, cmd(0))).toBe(-EINVAL);
    expect(f.ioctl(0xdead, cmd(1))).toBe(-EINVAL);
    expect(f.ioctl(HMM_DMIRROR_READ, null)).toBe(-EFAULT);
  });

  it("copies cpages/faults back only on success", () => {
    const { f, cmd, addr } = setup();
    const ok = cmd(4);
    expect(f.ioctl(HMM_DMIRROR_READ, ok)).toBe(0);
    expect([ok.cpages, ok.faults]).toEqual([4, 1]);
    // A second READ finds every page in the device page table: no fault round.
    expect(f.ioctl(HMM_DMIRROR_READ, ok)).toBe(0);
    expect([ok.cpages, ok.faults]).toEqual([4, 0]);
    const bad = cmd(16, addr); // runs past the 8-page VMA
    bad.cpages = 5;
    expect(f.ioctl(HMM_DMIRROR_READ, bad)).toBe(-EFAULT);
    expect(bad.cpages).toBe(5);
  });
});

describe("dmirror_interval_invalidate", () => {
  it("ignores MMU_NOTIFY_MIGRATE from its own device, clears on anyone else's, with the inclusive end", () => {
    const { sys, d, mm, cmd, addr } = setup();
    expect(d.ioctl(HMM_DMIRROR_WRITE, cmd(8))).toBe(0);
    expect(d.pt.size).toBe(8);
    expect(xaPointerTag(d.pt.get(addr / PAGE_SIZE))).toBe(DPT_XA_TAG_WRITE);
    const seq = d.notifier.invalidateSeq;
    expect(d.intervalInvalidate(d.notifier, range(mm, MMU_NOTIFY_MIGRATE, addr, addr + PAGE_SIZE, d.mdevice), 99)).toBe(true);
    expect(d.pt.size).toBe(8);
    expect(d.notifier.invalidateSeq).toBe(seq);
    // Another device's migration is an invalidation like any other.
    expect(d.intervalInvalidate(d.notifier, range(mm, MMU_NOTIFY_MIGRATE, addr, addr + PAGE_SIZE, sys.module.devices[1]), 99)).toBe(true);
    expect(d.notifier.invalidateSeq).toBe(99);
    // [addr, addr + PAGE) clears index addr>>PAGE_SHIFT AND the next one (xa_for_each_range's inclusive last).
    expect(d.pt.has(addr / PAGE_SIZE)).toBe(false);
    expect(d.pt.has(addr / PAGE_SIZE + 1)).toBe(false);
    expect(d.pt.size).toBe(6);
    d.intervalInvalidate(d.notifier, range(mm, MMU_NOTIFY_CLEAR, addr + 4 * PAGE_SIZE, addr + 5 * PAGE_SIZE, null), 101);
    expect(d.pt.size).toBe(4);
  });

  it("a CPU write to a page the device mirrors (COW of the zero page) clears that entry through the real notifier", () => {
    const { mm, d, cmd, addr } = setup(4);
    const a2 = mm.mmap({ length: 4 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    expect(d.ioctl(HMM_DMIRROR_READ, cmd(4, a2))).toBe(0); // maps the zero page 4 times
    expect(d.pt.has(a2 / PAGE_SIZE + 2)).toBe(true);
    mm.writeU32(a2 + 2 * PAGE_SIZE, 7); // wp_page_copy: MMU_NOTIFY_CLEAR over the page
    expect(d.pt.has(a2 / PAGE_SIZE + 2)).toBe(false);
    expect(d.pt.has(a2 / PAGE_SIZE + 1)).toBe(true);
    void addr;
  });
});

describe("HMM_DMIRROR_FLAGS / FAIL_ALLOC", () => {
  it("is one-shot: the next allocation fails (that 4 KiB page is skipped, -ENOENT), the one after succeeds", () => {
    const { f, cmd } = setup(4);
    expect(f.ioctl(HMM_DMIRROR_FLAGS, { ...cmd(HMM_DMIRROR_FLAG_FAIL_ALLOC), ptr: null })).toBe(0);
    expect(f.dmirror.flags).toBe(HMM_DMIRROR_FLAG_FAIL_ALLOC);
    const c = cmd(4);
    expect(f.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, c)).toBe(-ENOENT);
    expect(f.dmirror.flags).toBe(0);
    expect(f.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, c)).toBe(0);
    expect(c.cpages).toBe(4);
  });
});

describe("migration to the device and close", () => {
  it("private: device-private entries, backing pages holding the data, calloc counted; close evicts every page", () => {
    const { sys, mm, f, cmd, addr } = setup(8);
    const dev = f.device;
    const c = cmd(8);
    expect(f.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, c)).toBe(0);
    expect(c.cpages).toBe(8);
    expect(new DataView(c.ptr!.buffer).getUint32(3 * PAGE_SIZE, true)).toBe(103);
    for (let i = 0; i < 8; i++) expect(isDevicePrivateEntry(mm.pgtable.pteGet(addr + i * PAGE_SIZE))).toBe(true);
    expect(dev.calloc).toBe(8);
    expect(dev.pagesInUse()).toBe(8);
    expect(sys.module.driverRefs().size).toBe(8);
    expect(sys.module.close(f)).toBe(0);
    // dmirror_fops_release → dmirror_device_evict_chunk: the data is back in system RAM, pages freed via pageFree.
    expect(dev.pagesInUse()).toBe(0);
    expect(dev.cfree).toBe(8);
    for (let i = 0; i < 8; i++) {
      expect(ptePresent(mm.pgtable.pteGet(addr + i * PAGE_SIZE))).toBe(true);
      expect(mm.readU32(addr + i * PAGE_SIZE)).toBe(100 + i);
    }
  });

  it("coherent: pages stay CPU-mapped (present PTEs to device pfns) and the CPU reads them without faulting back", () => {
    const { mm, f, cmd, addr, sys } = setup(4, 2);
    expect(f.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, cmd(4))).toBe(0);
    const pte = mm.pgtable.pteGet(addr);
    expect(ptePresent(pte)).toBe(true);
    expect(f.device.chunkOf(Math.floor(pte / 4096))).toBeDefined();
    expect(mm.readU32(addr + PAGE_SIZE)).toBe(101);
    expect(mm.pgtable.pteGet(addr)).toBe(pte);
    expect(sys.module.close(f)).toBe(0);
    expect(f.device.pagesInUse()).toBe(0);
  });
});

describe("the anon_teardown race (a thread munmaps while READ faults)", () => {
  it("the unmap lands before, between 32-page fault chunks, or after the READ depending on the seed", async () => {
    const { TestProcess } = await import("./test-process.js");
    const { hmmDmirrorCmd } = await import("./hmm-tests.js");
    const outcomes = new Set<string>();
    for (let seed = 1; seed <= 24; seed++) {
      const sys = createSelftestSystem({ ramBytes: 64 << 20, seed }, "race");
      const p = new TestProcess(sys, sys.kernel.createMm(), 1);
      const fd = p.open("/dev/hmm_dmirror0");
      const size = 256 * PAGE_SIZE;
      const buffer = { ptr: p.mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), mirror: new Uint8Array(size), size, fd: -1, cpages: 0, faults: 0 };
      p.fillI32(buffer.ptr, size / 4, (i) => i);
      const th = p.pthreadCreate(() => {
        p.munmap(buffer.ptr + size / 2, size / 2);
        buffer.ptr = 0;
      }, 8);
      const rc = hmmDmirrorCmd(p, fd, HMM_DMIRROR_READ, buffer, 256);
      outcomes.add(rc === 0 ? "ok" : rc === -EFAULT ? "efault" : `other ${rc}`);
      p.pthreadJoin(th);
      p.exit(0);
    }
    expect([...outcomes].sort()).toEqual(["efault", "ok"]);
  });
});
