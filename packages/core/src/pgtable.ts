/**
 * Packed page-table entries (arch/x86/include/asm/pgtable.h, pgtable_types.h; include/linux/swapops.h,
 * include/linux/leafops.h). A PTE or PMD entry is one JS number (an integer below 2^53):
 *
 *   entry = pfn * 2^12 + low bits          (pfn = floor(entry / 4096); low = entry & 0xfff)
 *
 *   bit 0   _PAGE_PRESENT
 *   bit 1   _PAGE_RW            (write)
 *   bit 2   _PAGE_DIRTY         (present PTEs and migration entries)
 *   bit 3   _PAGE_ACCESSED      (young; present PTEs and migration entries)
 *   bit 4   _PAGE_SPECIAL       (pte_special: no struct page to refcount: zero page, VM_PFNMAP/VM_IO)
 *   bit 5   _PAGE_PSE           (huge: a PMD leaf)
 *   bit 6   _PAGE_SOFT_DIRTY
 *   bits 8..11  swap type of a non-present entry (present bit clear): SWP_* below
 *
 * 0 is pte_none. The pfn field holds up to 41 bits (2^53 / 2^12), so any pfn below 2^32 fits. `entry & 0xfff` is
 * exact for every entry (ToInt32 keeps the low 32 bits of an integer below 2^53).
 */
export const PTE_PFN_SHIFT = 12;
const PFN_MUL = 4096;

export const _PAGE_PRESENT = 1 << 0;
export const _PAGE_RW = 1 << 1;
export const _PAGE_DIRTY = 1 << 2;
export const _PAGE_ACCESSED = 1 << 3;
export const _PAGE_SPECIAL = 1 << 4;
export const _PAGE_PSE = 1 << 5;
export const _PAGE_SOFT_DIRTY = 1 << 6;
export const SWP_TYPE_SHIFT = 8;
const SWP_TYPE_MASK = 0xf << SWP_TYPE_SHIFT;

/** Non-present entry types (swp_type; include/linux/swap.h SWP_DEVICE_*, SWP_MIGRATION_*, SWP_HWPOISON). */
export const SWP_SWAPFILE = 1;
export const SWP_DEVICE_READ = 2;
export const SWP_DEVICE_WRITE = 3;
export const SWP_DEVICE_EXCLUSIVE = 4;
export const SWP_MIGRATION_READ = 5;
export const SWP_MIGRATION_READ_EXCLUSIVE = 6;
export const SWP_MIGRATION_WRITE = 7;
export const SWP_HWPOISON = 8;
export const SWP_PTE_MARKER = 9;

export const PTE_NONE = 0;

function lowBits(e: number): number {
  return e & 0xfff;
}

/** pfn_pte(pfn, prot): a present entry. */
export function pfnPte(pfn: number, write: boolean, opts?: { dirty?: boolean; young?: boolean; special?: boolean }): number {
  let low = _PAGE_PRESENT;
  if (write) low |= _PAGE_RW;
  if (opts?.dirty) low |= _PAGE_DIRTY;
  if (opts?.young ?? true) low |= _PAGE_ACCESSED;
  if (opts?.special) low |= _PAGE_SPECIAL;
  return pfn * PFN_MUL + low;
}
/** pfn_pmd(): a present PMD leaf (trans-huge). */
export function pfnPmd(pfn: number, write: boolean, opts?: { dirty?: boolean; young?: boolean; special?: boolean }): number {
  return pfnPte(pfn, write, opts) + _PAGE_PSE;
}

/** The pfn of a present or pfn-carrying non-present entry (pte_pfn / swp_offset_pfn / softleaf_to_pfn). */
export function ptePfn(e: number): number {
  return (e - lowBits(e)) / PFN_MUL;
}
export function pteNone(e: number): boolean {
  return e === 0;
}
export function ptePresent(e: number): boolean {
  return (e & _PAGE_PRESENT) !== 0;
}
export function pteWrite(e: number): boolean {
  return (e & (_PAGE_PRESENT | _PAGE_RW)) === (_PAGE_PRESENT | _PAGE_RW);
}
export function pteDirty(e: number): boolean {
  return (e & _PAGE_DIRTY) !== 0;
}
export function pteYoung(e: number): boolean {
  return (e & _PAGE_ACCESSED) !== 0;
}
export function pteSpecial(e: number): boolean {
  return (e & (_PAGE_PRESENT | _PAGE_SPECIAL)) === (_PAGE_PRESENT | _PAGE_SPECIAL);
}
export function pteSoftDirty(e: number): boolean {
  return (e & _PAGE_SOFT_DIRTY) !== 0;
}
/** pmd_trans_huge / pmd_leaf for a present PMD entry. */
export function pmdTransHuge(e: number): boolean {
  return (e & (_PAGE_PRESENT | _PAGE_PSE)) === (_PAGE_PRESENT | _PAGE_PSE);
}
export function pteMkwrite(e: number): number {
  return setLow(e, lowBits(e) | _PAGE_RW);
}
export function pteWrprotect(e: number): number {
  return setLow(e, lowBits(e) & ~_PAGE_RW);
}
export function pteMkdirty(e: number): number {
  return setLow(e, lowBits(e) | _PAGE_DIRTY);
}
export function pteMkclean(e: number): number {
  return setLow(e, lowBits(e) & ~_PAGE_DIRTY);
}
export function pteMkyoung(e: number): number {
  return setLow(e, lowBits(e) | _PAGE_ACCESSED);
}
export function pteMkold(e: number): number {
  return setLow(e, lowBits(e) & ~_PAGE_ACCESSED);
}
/** pte_mksoft_dirty / pte_swp_mksoft_dirty (bit 6 serves present and swap entries). */
export function pteMksoftDirty(e: number): number {
  return e === 0 ? 0 : setLow(e, lowBits(e) | _PAGE_SOFT_DIRTY);
}
function setLow(e: number, low: number): number {
  return e - lowBits(e) + low;
}

// --- non-present (swap-format) entries --------------------------------------------------------------------
/** swp_type() of a non-present entry (0 for none and for present entries). */
export function pteSwpType(e: number): number {
  if (e === 0 || ptePresent(e)) return 0;
  return (lowBits(e) & SWP_TYPE_MASK) >> SWP_TYPE_SHIFT;
}
function makeSwp(type: number, pfn: number, extra = 0): number {
  return pfn * PFN_MUL + ((type << SWP_TYPE_SHIFT) | extra);
}
/** is_swap_pte(): non-none and non-present. */
export function isSwapPte(e: number): boolean {
  return e !== 0 && !ptePresent(e);
}
/** make_readable_device_private_entry / make_writable_device_private_entry. */
export function makeDevicePrivateEntry(pfn: number, write: boolean): number {
  return makeSwp(write ? SWP_DEVICE_WRITE : SWP_DEVICE_READ, pfn);
}
export function isDevicePrivateEntry(e: number): boolean {
  const t = pteSwpType(e);
  return t === SWP_DEVICE_READ || t === SWP_DEVICE_WRITE;
}
export function isWritableDevicePrivateEntry(e: number): boolean {
  return pteSwpType(e) === SWP_DEVICE_WRITE;
}
/** make_device_exclusive_entry(): no write bit in ≥6.15 kernels. Dirty is moved to the folio. */
export function makeDeviceExclusiveEntry(pfn: number, softDirty = false): number {
  return makeSwp(SWP_DEVICE_EXCLUSIVE, pfn, softDirty ? _PAGE_SOFT_DIRTY : 0);
}
export function isDeviceExclusiveEntry(e: number): boolean {
  return pteSwpType(e) === SWP_DEVICE_EXCLUSIVE;
}
export type MigrationKind = "read" | "read-exclusive" | "write";
/** make_readable/readable_exclusive/writable_migration_entry(), with young/dirty carried (make_migration_entry_young/dirty). */
export function makeMigrationEntry(pfn: number, kind: MigrationKind, opts?: { young?: boolean; dirty?: boolean }): number {
  const t = kind === "write" ? SWP_MIGRATION_WRITE : kind === "read-exclusive" ? SWP_MIGRATION_READ_EXCLUSIVE : SWP_MIGRATION_READ;
  return makeSwp(t, pfn, (opts?.young ? _PAGE_ACCESSED : 0) | (opts?.dirty ? _PAGE_DIRTY : 0));
}
export function isMigrationEntry(e: number): boolean {
  const t = pteSwpType(e);
  return t === SWP_MIGRATION_READ || t === SWP_MIGRATION_READ_EXCLUSIVE || t === SWP_MIGRATION_WRITE;
}
export function isWritableMigrationEntry(e: number): boolean {
  return pteSwpType(e) === SWP_MIGRATION_WRITE;
}
export function isReadableExclusiveMigrationEntry(e: number): boolean {
  return pteSwpType(e) === SWP_MIGRATION_READ_EXCLUSIVE;
}
/**
 * make_readable_migration_entry(swp_offset(entry)) for a writable or readable-exclusive migration entry, keeping
 * what the offset and the PTE carry: young, dirty (SWP_MIG_YOUNG/DIRTY) and soft-dirty (copy_nonpresent_pte).
 */
export function makeReadableMigrationEntry(e: number): number {
  return makeSwp(SWP_MIGRATION_READ, ptePfn(e), e & (_PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_SOFT_DIRTY));
}
export function isMigrationEntryYoung(e: number): boolean {
  return isMigrationEntry(e) && (e & _PAGE_ACCESSED) !== 0;
}
export function isMigrationEntryDirty(e: number): boolean {
  return isMigrationEntry(e) && (e & _PAGE_DIRTY) !== 0;
}
/** make_hwpoison_entry(). */
export function makeHwpoisonEntry(pfn: number): number {
  return makeSwp(SWP_HWPOISON, pfn);
}
export function isHwpoisonEntry(e: number): boolean {
  return pteSwpType(e) === SWP_HWPOISON;
}
/** is_pfn_swap_entry(): migration, device-private, device-exclusive, hwpoison entries carry a pfn. */
export function isPfnSwapEntry(e: number): boolean {
  const t = pteSwpType(e);
  return t >= SWP_DEVICE_READ && t <= SWP_HWPOISON;
}
/** Same entry at PMD level (a huge non-present entry keeps _PAGE_PSE so walkers can tell the level). */
export function pmdMkhuge(e: number): number {
  return setLow(e, lowBits(e) | _PAGE_PSE);
}
export function pteIsHuge(e: number): boolean {
  return (e & _PAGE_PSE) !== 0;
}
/** Strip the huge bit (a PMD entry's per-page PTE equivalent, for split). */
export function pmdToPteBits(e: number): number {
  return setLow(e, lowBits(e) & ~_PAGE_PSE);
}

/** A readable name for an entry kind (tests and messages). */
export function pteKind(e: number): string {
  if (e === 0) return "none";
  if (ptePresent(e)) return pteIsHuge(e) ? "pmd" : pteSpecial(e) ? "special" : "present";
  switch (pteSwpType(e)) {
    case SWP_DEVICE_READ:
      return "device-private-read";
    case SWP_DEVICE_WRITE:
      return "device-private-write";
    case SWP_DEVICE_EXCLUSIVE:
      return "device-exclusive";
    case SWP_MIGRATION_READ:
      return "migration-read";
    case SWP_MIGRATION_READ_EXCLUSIVE:
      return "migration-read-exclusive";
    case SWP_MIGRATION_WRITE:
      return "migration-write";
    case SWP_HWPOISON:
      return "hwpoison";
    case SWP_SWAPFILE:
      return "swap";
    default:
      return "marker";
  }
}
