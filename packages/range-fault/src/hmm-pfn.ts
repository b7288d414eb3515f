/**
 * HMM pfn entries (include/linux/hmm.h: enum hmm_pfn_flags, hmm_pfn_to_page, hmm_pfn_to_map_order).
 *
 * The kernel packs an `unsigned long` with the flags in the TOP 11 bits (VALID = bit 63 ... order at bits 53..57)
 * and the pfn below. A JS number holds integers exactly only up to 2^53, so hmmsim mirrors the layout: the
 * flags sit in the LOW 11 bits and the pfn is shifted up by 11:
 *
 *   entry = pfn * 2^11 + flags          (pfn = floor(entry / 2048); flags = entry & 0x7ff)
 *
 *   bit 0       HMM_PFN_VALID        (input: HMM_PFN_REQ_FAULT)
 *   bit 1       HMM_PFN_WRITE        (input: HMM_PFN_REQ_WRITE)
 *   bit 2       HMM_PFN_ERROR
 *   bit 3       HMM_PFN_DMA_MAPPED   \
 *   bit 4       HMM_PFN_P2PDMA        } sticky: carried from input to output (HMM_PFN_INOUT_FLAGS)
 *   bit 5       HMM_PFN_P2PDMA_BUS   /
 *   bits 6..10  map order (HMM_PFN_ORDER_SHIFT = 6, 5 bits): 0 = PTE, 9 = PMD (THP / device-private PMD)
 *
 * The pfn field holds 42 bits (2^53 / 2^11), more than any pfn hmmsim hands out (< 2^32). `entry & mask` is exact
 * for the flag bits of every entry (ToInt32 keeps the low 32 bits of an integer below 2^53). Code should use the
 * names, never the bit positions (the kernel's own layout changed when the DMA flags were added).
 */

export const HMM_PFN_VALID = 1 << 0;
export const HMM_PFN_WRITE = 1 << 1;
export const HMM_PFN_ERROR = 1 << 2;
/** Sticky flags, carried from input to output (set by hmm_dma_map_pfn in the kernel). */
export const HMM_PFN_DMA_MAPPED = 1 << 3;
export const HMM_PFN_P2PDMA = 1 << 4;
export const HMM_PFN_P2PDMA_BUS = 1 << 5;
/** Where the 5-bit map order sits. */
export const HMM_PFN_ORDER_SHIFT = 6;
export const HMM_PFN_ORDER_MASK = 0x1f << HMM_PFN_ORDER_SHIFT;
/** All flag bits (the kernel's HMM_PFN_FLAGS: the top 11 bits there, the low 11 bits here). */
export const HMM_PFN_FLAGS = (1 << 11) - 1;
/** The pfn is stored as pfn * 2^HMM_PFN_PFN_SHIFT. */
export const HMM_PFN_PFN_SHIFT = 11;
/** 2^HMM_PFN_PFN_SHIFT. */
export const HMM_PFN_PFN_MUL = 2 ** HMM_PFN_PFN_SHIFT;

/** Input flags: the output must have HMM_PFN_VALID, or hmmRangeFault fails. */
export const HMM_PFN_REQ_FAULT = HMM_PFN_VALID;
/** Input flags: the output must have HMM_PFN_WRITE, or hmmRangeFault fails. Must be combined with REQ_FAULT. */
export const HMM_PFN_REQ_WRITE = HMM_PFN_WRITE;

/** mm/hmm.c HMM_PFN_INOUT_FLAGS: flags carried from input to output. */
export const HMM_PFN_INOUT_FLAGS = HMM_PFN_DMA_MAPPED | HMM_PFN_P2PDMA | HMM_PFN_P2PDMA_BUS;

/** The pfn of an entry (`hmm_pfn & ~HMM_PFN_FLAGS`; hmm_pfn_to_page() without the struct page). */
export function hmmPfnToPfn(hmmPfn: number): number {
  return (hmmPfn - (hmmPfn & HMM_PFN_FLAGS)) / HMM_PFN_PFN_MUL;
}

/** The flag bits of an entry. */
export function hmmPfnFlags(hmmPfn: number): number {
  return hmmPfn & HMM_PFN_FLAGS;
}

/**
 * hmm_pfn_to_map_order(): the CPU mapping's size order (0 = 4 KiB PTE, 9 = 2 MiB PMD). The mapping starts at
 * the order-aligned VA and may extend past the range given to hmmRangeFault. Only meaningful with HMM_PFN_VALID.
 */
export function hmmPfnToMapOrder(hmmPfn: number): number {
  return (hmmPfn & HMM_PFN_ORDER_MASK) >> HMM_PFN_ORDER_SHIFT;
}

/** mm/hmm.c hmm_pfn_flags_order(): the order field for `order`. */
export function hmmPfnFlagsOrder(order: number): number {
  return order << HMM_PFN_ORDER_SHIFT;
}

/** Build an entry from a pfn and flags (tests, drivers building inputs). */
export function makeHmmPfn(pfn: number, flags: number): number {
  return pfn * HMM_PFN_PFN_MUL + (flags & HMM_PFN_FLAGS);
}

/** A readable form of an entry, e.g. "pfn 0x1234 VALID|WRITE order 9" (tests and messages). */
export function hmmPfnToString(hmmPfn: number): string {
  const f = hmmPfn & HMM_PFN_FLAGS;
  const names: string[] = [];
  if (f & HMM_PFN_VALID) names.push("VALID");
  if (f & HMM_PFN_WRITE) names.push("WRITE");
  if (f & HMM_PFN_ERROR) names.push("ERROR");
  if (f & HMM_PFN_DMA_MAPPED) names.push("DMA_MAPPED");
  if (f & HMM_PFN_P2PDMA) names.push("P2PDMA");
  if (f & HMM_PFN_P2PDMA_BUS) names.push("P2PDMA_BUS");
  const order = hmmPfnToMapOrder(hmmPfn);
  return `pfn 0x${hmmPfnToPfn(hmmPfn).toString(16)} ${names.length ? names.join("|") : "0"}${order ? ` order ${order}` : ""}`;
}
