// The range-fault bench's correctness guard on a small range: the bare typed-array scan the bench times
// hmmRangeFault against must produce hmmRangeFault's output entry for entry (THP off: PTE tables; THP on: PMD
// leaves), and the guard must report a difference.
import { PAGE_SIZE } from "@hmmsim/core";
import { describe, expect, it } from "vitest";
import { HMM_PFN_VALID, HMM_PFN_WRITE, hmmPfnFlags } from "./hmm-pfn.js";
import { bareScan, checkSameOutput, populated, verifyBareScan } from "./range-fault.bench.js";

const NPAGES = 4 * 512;
const RAM = 64 * 1024 * 1024;

describe("range-fault bench: the bare scan computes what hmmRangeFault returns", () => {
  for (const thp of ["never", "always"] as const) {
    it(`THP ${thp === "always" ? "on (PMD leaves)" : "off (PTE tables)"}: equal outputs`, () => {
      const { mm, range } = populated(thp, NPAGES, RAM);
      expect(range.start % (512 * PAGE_SIZE)).toBe(0);
      expect(mm.mmapLock.tryDownRead()).toBe(true);
      try {
        verifyBareScan(mm, range, thp === "always");
        for (const e of range.hmmPfns) expect(hmmPfnFlags(e) & (HMM_PFN_VALID | HMM_PFN_WRITE)).toBe(HMM_PFN_VALID | HMM_PFN_WRITE);
      } finally {
        mm.mmapLock.upRead();
      }
    });
  }

  it("the guard names the first entry that differs", () => {
    const { mm, range } = populated("never", NPAGES, RAM);
    expect(mm.mmapLock.tryDownRead()).toBe(true);
    try {
      verifyBareScan(mm, range, false);
      const scan = bareScan(mm, range, false);
      scan.run();
      scan.out[700] = scan.out[700]! - HMM_PFN_WRITE; // a scan that lost the write bit of one page
      expect(() => checkSameOutput(range.hmmPfns as Float64Array, scan.out, "THP off")).toThrow(/THP off: entry 700 differs: hmmRangeFault pfn 0x[0-9a-f]+ VALID\|WRITE, bare scan pfn 0x[0-9a-f]+ VALID$/);
      expect(() => checkSameOutput(range.hmmPfns as Float64Array, scan.out.subarray(1), "x")).toThrow(/2048 entries, the bare scan 2047/);
      // A scan of the wrong THP layout is caught too (PMD leaves read where PTE tables are).
      expect(() => verifyBareScan(mm, range, true)).toThrow(/THP on: entry 0 differs/);
    } finally {
      mm.mmapLock.upRead();
    }
  });
});
