/**
 * CPU accesses to user memory, as the MMU + arch fault handler (arch/x86/mm/fault.c do_user_addr_fault) would do
 * them: translate through the page tables, setting the accessed/dirty bits; on a miss or a write to a read-only
 * entry call handleMmFault and retry. A fault the handler cannot resolve throws SegmentationFault naming the
 * address; a fault that would sleep (migration entry, locked page) throws FaultWouldBlockError.
 */
import { FaultWouldBlockError, InvalidArgumentError, SegmentationFault } from "./errors.js";
import { handleMmFault } from "./memory.js";
import type { Mm } from "./mm.js";
import { PAGE_SIZE, PMD_SIZE } from "./page-flags.js";
import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  isMigrationEntry,
  pmdTransHuge,
  ptePfn,
  ptePresent,
  pteWrite,
} from "./pgtable.js";
import { FAULT_FLAG_USER, FAULT_FLAG_WRITE, VM_FAULT_ERROR, VM_FAULT_OOM, VM_FAULT_RETRY, VM_FAULT_SIGBUS } from "./vm-fault.js";

const MAX_FAULT_RETRIES = 8;

/** Translate addr for an access, setting A/D bits; -1 when the access would fault. */
function translate(mm: Mm, addr: number, write: boolean): number {
  const pt = mm.pgtable;
  const pmd = pt.pmdGet(addr);
  if (pmd !== 0) {
    if (!pmdTransHuge(pmd) || (write && !pteWrite(pmd))) return -1;
    const bits = _PAGE_ACCESSED | (write ? _PAGE_DIRTY : 0);
    if ((pmd & bits) !== bits) pt.pmdSet(addr, pmd - (pmd & 0xfff) + ((pmd & 0xfff) | bits));
    return ptePfn(pmd) + (Math.floor(addr / PAGE_SIZE) % (PMD_SIZE / PAGE_SIZE));
  }
  const pte = pt.pteGet(addr);
  if (!ptePresent(pte) || (write && !pteWrite(pte))) return -1;
  const bits = _PAGE_ACCESSED | (write ? _PAGE_DIRTY : 0);
  if ((pte & bits) !== bits) pt.pteSet(addr, pte - (pte & 0xfff) + ((pte & 0xfff) | bits));
  return ptePfn(pte);
}

/** One access to the page containing addr; returns the pfn accessed. A write sets the content tag unless tag === null. */
export function cpuAccess(mm: Mm, addr: number, write: boolean, tag?: number | null): number {
  if (!Number.isInteger(addr) || addr < 0) throw new InvalidArgumentError("addr", "must be an integer >= 0", addr);
  if (tag !== undefined && tag !== null && !Number.isFinite(tag)) throw new InvalidArgumentError("tag", "must be a finite number", tag);
  for (let tries = 0; tries < MAX_FAULT_RETRIES; tries++) {
    const vma = mm.vmaLookup(addr);
    if (vma !== null) {
      // access_error(): the VMA decides permissions, the PTE only caches them.
      const allowed = write ? (vma.vmFlags & 0x2) !== 0 : (vma.vmFlags & 0x5) !== 0;
      if (allowed) {
        const pfn = translate(mm, addr, write);
        if (pfn >= 0) {
          if (write && tag !== null) mm.kernel.pageBytes.setTag(pfn, tag ?? mm.kernel.pageBytes.nextTag());
          return pfn;
        }
      }
    }
    const ret = handleMmFault(mm, addr, FAULT_FLAG_USER | (write ? FAULT_FLAG_WRITE : 0));
    if (ret & VM_FAULT_ERROR) {
      const reason = ret & VM_FAULT_OOM ? "out of memory" : ret & VM_FAULT_SIGBUS ? "SIGBUS" : vma === null ? "no VMA" : "SIGSEGV (access not permitted)";
      throw new SegmentationFault(addr, write, ret, reason);
    }
    if (ret & VM_FAULT_RETRY) {
      const pte = mm.pgtable.pteGet(addr);
      const pmd = mm.pgtable.pmdGet(addr);
      throw new FaultWouldBlockError(addr, isMigrationEntry(pte) || isMigrationEntry(pmd) ? "migration-entry" : "page-locked");
    }
  }
  throw new FaultWouldBlockError(addr, "no-progress");
}

function checkLen(len: number): void {
  if (!Number.isInteger(len) || len < 0) throw new InvalidArgumentError("len", "must be an integer >= 0", len);
}

export function cpuRead(mm: Mm, addr: number, len: number): Uint8Array {
  checkLen(len);
  if (!Number.isInteger(addr) || addr < 0) throw new InvalidArgumentError("addr", "must be an integer >= 0", addr);
  const out = new Uint8Array(len);
  let done = 0;
  while (done < len) {
    const a = addr + done;
    const off = a % PAGE_SIZE;
    const n = Math.min(len - done, PAGE_SIZE - off);
    const pfn = cpuAccess(mm, a, false);
    mm.kernel.pageBytes.read(pfn, off, n, out, done);
    done += n;
  }
  return out;
}

export function cpuWrite(mm: Mm, addr: number, bytes: Uint8Array): void {
  if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError("bytes", "must be a Uint8Array");
  if (!Number.isInteger(addr) || addr < 0) throw new InvalidArgumentError("addr", "must be an integer >= 0", addr);
  let done = 0;
  while (done < bytes.length) {
    const a = addr + done;
    const off = a % PAGE_SIZE;
    const n = Math.min(bytes.length - done, PAGE_SIZE - off);
    const pfn = cpuAccess(mm, a, true, null);
    mm.kernel.pageBytes.write(pfn, off, bytes.subarray(done, done + n));
    done += n;
  }
}
