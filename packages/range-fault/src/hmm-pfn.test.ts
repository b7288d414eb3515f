import { describe, expect, it } from "vitest";
import {
  HMM_PFN_DMA_MAPPED,
  HMM_PFN_ERROR,
  HMM_PFN_FLAGS,
  HMM_PFN_INOUT_FLAGS,
  HMM_PFN_ORDER_SHIFT,
  HMM_PFN_P2PDMA,
  HMM_PFN_P2PDMA_BUS,
  HMM_PFN_REQ_FAULT,
  HMM_PFN_REQ_WRITE,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  hmmPfnFlags,
  hmmPfnFlagsOrder,
  hmmPfnToMapOrder,
  hmmPfnToPfn,
  hmmPfnToString,
  makeHmmPfn,
} from "./hmm-pfn.js";

describe("HMM_PFN encoding (flags low, pfn * 2^11)", () => {
  it("has the kernel's flag set: six distinct flag bits and a 5-bit order field inside HMM_PFN_FLAGS", () => {
    const bits = [HMM_PFN_VALID, HMM_PFN_WRITE, HMM_PFN_ERROR, HMM_PFN_DMA_MAPPED, HMM_PFN_P2PDMA, HMM_PFN_P2PDMA_BUS];
    expect(new Set(bits).size).toBe(6);
    for (const b of bits) expect(b & (b - 1)).toBe(0);
    const all = bits.reduce((a, b) => a | b, 0) | (0x1f << HMM_PFN_ORDER_SHIFT);
    expect(all).toBe(HMM_PFN_FLAGS);
    expect(HMM_PFN_FLAGS).toBe(0x7ff);
    expect(HMM_PFN_REQ_FAULT).toBe(HMM_PFN_VALID);
    expect(HMM_PFN_REQ_WRITE).toBe(HMM_PFN_WRITE);
    expect(HMM_PFN_INOUT_FLAGS).toBe(HMM_PFN_DMA_MAPPED | HMM_PFN_P2PDMA | HMM_PFN_P2PDMA_BUS);
  });

  it("round-trips pfns up to 2^42 - 1 with every flag and order", () => {
    for (const pfn of [0, 1, 0x12345, 2 ** 32 - 1, 2 ** 42 - 1]) {
      for (const order of [0, 9, 18, 31]) {
        const flags = HMM_PFN_VALID | HMM_PFN_WRITE | HMM_PFN_P2PDMA_BUS | hmmPfnFlagsOrder(order);
        const e = makeHmmPfn(pfn, flags);
        expect(Number.isSafeInteger(e)).toBe(true);
        expect(hmmPfnToPfn(e)).toBe(pfn);
        expect(hmmPfnToMapOrder(e)).toBe(order);
        expect(hmmPfnFlags(e)).toBe(flags);
      }
    }
  });

  it("formats entries for messages", () => {
    expect(hmmPfnToString(makeHmmPfn(0x1234, HMM_PFN_VALID | HMM_PFN_WRITE | hmmPfnFlagsOrder(9)))).toBe("pfn 0x1234 VALID|WRITE order 9");
    expect(hmmPfnToString(HMM_PFN_ERROR)).toBe("pfn 0x0 ERROR");
    expect(hmmPfnToString(0)).toBe("pfn 0x0 0");
  });
});
