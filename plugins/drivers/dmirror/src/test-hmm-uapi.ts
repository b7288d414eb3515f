/**
 * lib/test_hmm_uapi.h: the dmirror driver's private UAPI — struct hmm_dmirror_cmd, the ioctl numbers, the
 * snapshot byte values (HMM_DMIRROR_PROT_*), the FLAGS bits and the device memory types.
 */

/**
 * struct hmm_dmirror_cmd. In the kernel `addr` and `ptr` are user pointers (u64). Here `addr` is a virtual
 * address of the mirrored mm and `ptr` is the user buffer itself (the C test's malloc'd `buffer->mirror`; a host
 * buffer, see README): copy_to_user / copy_from_user copy into / out of it, and a missing or too-small buffer is
 * a bad user pointer (-EFAULT).
 */
export interface HmmDmirrorCmd {
  addr: number;
  ptr: Uint8Array | null;
  npages: number;
  cpages: number;
  faults: number;
}

/** _IOWR('H', nr, struct hmm_dmirror_cmd): dir 3 << 30 | size 40 << 16 | 'H' << 8 | nr. */
function iowr(nr: number): number {
  return ((3 << 30) >>> 0) + (40 << 16) + (0x48 << 8) + nr;
}

export const HMM_DMIRROR_READ = iowr(0x00);
export const HMM_DMIRROR_WRITE = iowr(0x01);
export const HMM_DMIRROR_MIGRATE_TO_DEV = iowr(0x02);
export const HMM_DMIRROR_MIGRATE_TO_SYS = iowr(0x03);
export const HMM_DMIRROR_SNAPSHOT = iowr(0x04);
export const HMM_DMIRROR_EXCLUSIVE = iowr(0x05);
export const HMM_DMIRROR_CHECK_EXCLUSIVE = iowr(0x06);
export const HMM_DMIRROR_RELEASE = iowr(0x07);
export const HMM_DMIRROR_FLAGS = iowr(0x08);

/** Names of the ioctls, by request number (messages, traces). */
export const HMM_DMIRROR_IOCTL_NAMES: ReadonlyMap<number, string> = new Map([
  [HMM_DMIRROR_READ, "HMM_DMIRROR_READ"],
  [HMM_DMIRROR_WRITE, "HMM_DMIRROR_WRITE"],
  [HMM_DMIRROR_MIGRATE_TO_DEV, "HMM_DMIRROR_MIGRATE_TO_DEV"],
  [HMM_DMIRROR_MIGRATE_TO_SYS, "HMM_DMIRROR_MIGRATE_TO_SYS"],
  [HMM_DMIRROR_SNAPSHOT, "HMM_DMIRROR_SNAPSHOT"],
  [HMM_DMIRROR_EXCLUSIVE, "HMM_DMIRROR_EXCLUSIVE"],
  [HMM_DMIRROR_CHECK_EXCLUSIVE, "HMM_DMIRROR_CHECK_EXCLUSIVE"],
  [HMM_DMIRROR_RELEASE, "HMM_DMIRROR_RELEASE"],
  [HMM_DMIRROR_FLAGS, "HMM_DMIRROR_FLAGS"],
]);

/** HMM_DMIRROR_FLAGS bits: the next device-memory allocation of this mirror fails (one shot). */
export const HMM_DMIRROR_FLAG_FAIL_ALLOC = 1 << 0;

/** Values returned in each byte of the mirror buffer by HMM_DMIRROR_SNAPSHOT. */
export const HMM_DMIRROR_PROT_ERROR = 0xff;
export const HMM_DMIRROR_PROT_NONE = 0x00;
export const HMM_DMIRROR_PROT_READ = 0x01;
export const HMM_DMIRROR_PROT_WRITE = 0x02;
export const HMM_DMIRROR_PROT_PMD = 0x04;
export const HMM_DMIRROR_PROT_PUD = 0x08;
export const HMM_DMIRROR_PROT_ZERO = 0x10;
export const HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL = 0x20;
export const HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE = 0x30;
export const HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL = 0x40;
export const HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE = 0x50;

/** enum { HMM_DMIRROR_MEMORY_DEVICE_PRIVATE = 1, HMM_DMIRROR_MEMORY_DEVICE_COHERENT }. */
export const HMM_DMIRROR_MEMORY_DEVICE_PRIVATE = 1;
export const HMM_DMIRROR_MEMORY_DEVICE_COHERENT = 2;
