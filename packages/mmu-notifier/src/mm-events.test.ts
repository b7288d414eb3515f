// Which mm operation sends which notifier event (the mmu_notifier_invalidate_range_start call sites of mm/), observed through a real interval notifier
// on a real Mm: the contract a mirroring driver relies on.
import { describe, expect, it } from "vitest";
import { EINVAL } from "@hmmsim/core";
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  createKernel,
  type Mm,
} from "@hmmsim/core";
import {
  MMU_NOTIFIER_RANGE_MAX,
  MMU_NOTIFY_EVENT_NAMES,
  MmuIntervalNotifier,
  mmuIntervalNotifierInsert,
  mmuIntervalReadBegin,
  mmuIntervalReadRetry,
  mmuIntervalSetSeq,
} from "./index.js";

const RW = PROT_READ | PROT_WRITE;

function setup(pages = 16, flags = MAP_PRIVATE | MAP_ANONYMOUS) {
  const kernel = createKernel({ ramBytes: 16 << 20 });
  const mm = kernel.createMm();
  const addr = mm.mmap({ length: pages * PAGE_SIZE, prot: RW, flags });
  const events: string[] = [];
  const sub = new MmuIntervalNotifier();
  const ret = mmuIntervalNotifierInsert(sub, mm, addr, pages * PAGE_SIZE, {
    invalidate(s, range, curSeq) {
      const name = MMU_NOTIFY_EVENT_NAMES[range.event];
      const span = range.end === MMU_NOTIFIER_RANGE_MAX ? "all" : `${(range.start - addr) / PAGE_SIZE}..${(range.end - addr) / PAGE_SIZE}`;
      events.push(`${name} ${span}`);
      mmuIntervalSetSeq(s, curSeq);
      return true;
    },
  });
  expect(ret).toBe(0);
  return { kernel, mm, addr, events, sub };
}

function fill(mm: Mm, addr: number, pages: number) {
  for (let i = 0; i < pages; i++) mm.writeU32(addr + i * PAGE_SIZE, i + 1);
}

describe("notifier events sent by mm operations", () => {
  it("filling pte_none (first-touch read or write faults) sends nothing", () => {
    const { mm, addr, events } = setup();
    mm.readU32(addr); // maps the zero page
    fill(mm, addr + PAGE_SIZE, 15);
    expect(events).toEqual([]);
  });

  it("writing a zero-page PTE is a COW (wp_page_copy): MMU_NOTIFY_CLEAR for that page", () => {
    const { mm, addr, events } = setup();
    expect(mm.readU32(addr + 3 * PAGE_SIZE)).toBe(0);
    mm.writeU32(addr + 3 * PAGE_SIZE, 7);
    expect(events).toEqual(["MMU_NOTIFY_CLEAR 3..4"]);
    expect(mm.readU32(addr + 3 * PAGE_SIZE)).toBe(7);
  });

  it("munmap sends MMU_NOTIFY_UNMAP for the unmapped range and bumps the sequence", () => {
    const { mm, addr, events, sub } = setup();
    fill(mm, addr, 16);
    const seq = mmuIntervalReadBegin(sub);
    expect(mm.munmap(addr + 4 * PAGE_SIZE, 4 * PAGE_SIZE)).toBe(0);
    expect(events).toEqual(["MMU_NOTIFY_UNMAP 4..8"]);
    expect(mmuIntervalReadRetry(sub, seq)).toBe(true);
  });

  it("madvise(MADV_DONTNEED) sends MMU_NOTIFY_CLEAR", () => {
    const { mm, addr, events } = setup();
    fill(mm, addr, 16);
    expect(mm.madvise(addr, 2 * PAGE_SIZE, MADV_DONTNEED)).toBe(0);
    expect(events).toEqual(["MMU_NOTIFY_CLEAR 0..2"]);
    expect(mm.readU32(addr)).toBe(0);
  });

  it("mprotect sends MMU_NOTIFY_PROTECTION_VMA where page tables exist", () => {
    const { mm, addr, events } = setup();
    fill(mm, addr, 16);
    expect(mm.mprotect(addr, 8 * PAGE_SIZE, PROT_READ)).toBe(0);
    expect(events).toEqual(["MMU_NOTIFY_PROTECTION_VMA 0..8"]);
  });

  it("fork of a COW mapping sends MMU_NOTIFY_PROTECTION_PAGE on the parent; the child's first write COWs in the child only", () => {
    const { mm, addr, events } = setup();
    fill(mm, addr, 16);
    const child = mm.fork();
    expect(events).toContain("MMU_NOTIFY_PROTECTION_PAGE 0..16");
    events.length = 0;
    child.writeU32(addr, 99); // the child has no interval notifier: nothing reaches the parent's
    expect(events).toEqual([]);
    expect(mm.readU32(addr)).toBe(1);
    mm.writeU32(addr + PAGE_SIZE, 77); // the parent's COW write fault replaces the page: CLEAR in the parent
    expect(events).toEqual(["MMU_NOTIFY_CLEAR 1..2"]);
    child.exit();
  });

  it("fork of a shared mapping sends no protection event (no COW)", () => {
    const { mm, addr, events } = setup(16, MAP_SHARED | MAP_ANONYMOUS);
    fill(mm, addr, 16);
    const child = mm.fork();
    expect(events.filter((e) => e.startsWith("MMU_NOTIFY_PROTECTION_PAGE"))).toEqual([]);
    child.writeU32(addr, 5);
    expect(mm.readU32(addr)).toBe(5);
    child.exit();
  });

  it("exit sends MMU_NOTIFY_RELEASE over [0, ULONG_MAX] first, then the unmap of the VMAs", () => {
    const { mm, addr, events } = setup();
    fill(mm, addr, 16);
    mm.exit();
    expect(events[0]).toBe("MMU_NOTIFY_RELEASE all");
    expect(events.length).toBeGreaterThan(1);
    expect(events.slice(1).every((e) => e.startsWith("MMU_NOTIFY_UNMAP"))).toBe(true);
  });
});

describe("interval notifiers and mm lifetime", () => {
  it("insert on an exited mm fails with -EINVAL (mmget_not_zero)", () => {
    const kernel = createKernel({ ramBytes: 16 << 20 });
    const mm = kernel.createMm();
    mm.exit();
    expect(mmuIntervalNotifierInsert(new MmuIntervalNotifier(), mm, 0x100000, PAGE_SIZE, { invalidate: () => true })).toBe(-EINVAL);
  });
});
