import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "./errors.js";
import { createKernel } from "./kernel.js";
import { PAGE_SIZE } from "./page-flags.js";
import { PM_MMAP_EXCLUSIVE, PM_PRESENT, PM_SOFT_DIRTY, PM_SWAP, pagemapRead, pagemapReadRange } from "./pagemap.js";
import { SWP_DEVICE_WRITE, ptePfn } from "./pgtable.js";
import { FakeDevice } from "./testing/test-util.js";
import { MREMAP_FIXED, MREMAP_MAYMOVE } from "./mremap.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from "./vma.js";

const MREMAP_FIXED_FLAGS = MREMAP_MAYMOVE | MREMAP_FIXED;

describe("pagemapRead (/proc/self/pagemap)", () => {
  it("present, zero page, none, device-private (swap), shared after fork, file, soft-dirty after mremap", () => {
    const k = createKernel({ ramBytes: 16 << 20 });
    const mm = k.createMm();
    const dev = new FakeDevice(k, 8);
    const a = mm.mmap({ length: 8 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.touch(a, true);
    mm.touch(a + PAGE_SIZE, false);
    mm.touch(a + 2 * PAGE_SIZE, true);
    const pfn0 = ptePfn(mm.pgtable.pteGet(a));
    const e0 = pagemapRead(mm, a + 123);
    expect(e0).toMatchObject({ present: true, swap: false, exclusive: true, file: false, frame: pfn0 });
    expect(e0.pm).toBe(PM_PRESENT | PM_MMAP_EXCLUSIVE | BigInt(pfn0));
    // zero page: present, no struct-page flags
    expect(pagemapRead(mm, a + PAGE_SIZE)).toMatchObject({ present: true, exclusive: false, frame: k.zeroPfn });
    // untouched and outside any VMA: all zero
    expect(pagemapRead(mm, a + 5 * PAGE_SIZE).pm).toBe(0n);
    expect(pagemapRead(mm, a + 64 * PAGE_SIZE).pm).toBe(0n);
    // device-private: PM_SWAP, not present; frame = type | pfn << 5
    const d = dev.migrateToDevice(mm, a + 2 * PAGE_SIZE);
    const e2 = pagemapRead(mm, a + 2 * PAGE_SIZE);
    expect(e2.pm & PM_SWAP).toBe(PM_SWAP);
    expect(e2.pm & PM_PRESENT).toBe(0n);
    expect(e2.frame).toBe(SWP_DEVICE_WRITE + d * 32);
    // after fork the page is mapped twice: not exclusive
    const c = mm.fork();
    expect(pagemapRead(mm, a).exclusive).toBe(false);
    c.exit();
    expect(pagemapRead(mm, a).exclusive).toBe(true);
    // mremap sets soft-dirty on moved entries
    const dst = a + 256 * PAGE_SIZE;
    expect(mm.mremap(a, 8 * PAGE_SIZE, 8 * PAGE_SIZE, MREMAP_FIXED_FLAGS, dst)).toBe(dst);
    expect(pagemapRead(mm, dst).pm & PM_SOFT_DIRTY).toBe(PM_SOFT_DIRTY);
    expect(pagemapRead(mm, dst + 2 * PAGE_SIZE).swap).toBe(true);
    // a shared file/shmem page: PM_FILE
    const sh = mm.mmap({ length: PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_SHARED | MAP_ANONYMOUS });
    mm.touch(sh, true);
    expect(pagemapRead(mm, sh)).toMatchObject({ present: true, file: true, exclusive: true });
    expect(pagemapReadRange(mm, dst, 3).map((e) => e.present)).toEqual([true, true, false]);
    expect(() => pagemapReadRange(mm, dst + 1, 1)).toThrow(InvalidArgumentError);
  });
});
