import { describe, expect, it } from "vitest";
import { EAGAIN, EBUSY, EEXIST, EFAULT, EHWPOISON, EINTR, EINVAL, EIO, ENOENT, ENOMEM, ENOSPC, EOPNOTSUPP, EOVERFLOW, EPERM, errnoName } from "./errno.js";
import { InvalidArgumentError, KernelRuleError, SegmentationFault } from "./errors.js";

describe("errno", () => {
  it("has the kernel's values", () => {
    expect([EPERM, ENOENT, EINTR, EIO, EAGAIN, ENOMEM, EFAULT, EBUSY, EEXIST, EINVAL, ENOSPC, EOVERFLOW, EOPNOTSUPP, EHWPOISON]).toEqual([
      1, 2, 4, 5, 11, 12, 14, 16, 17, 22, 28, 75, 95, 133,
    ]);
  });
  it("names negative errnos", () => {
    expect(errnoName(-EBUSY)).toBe("-EBUSY");
    expect(errnoName(0)).toBe("0");
    expect(errnoName(-9999)).toBe("-9999");
  });
  it("typed errors carry code, rule and field", () => {
    const k = new KernelRuleError("folio_unlock_not_locked", "pfn 3");
    expect(k.code).toBe("KERNEL_RULE");
    expect(k.rule).toBe("folio_unlock_not_locked");
    expect(k.message).toContain("folio_unlock_not_locked");
    const a = new InvalidArgumentError("length", "must be > 0", 0);
    expect(a.code).toBe("INVALID_ARGUMENT");
    expect(a.field).toBe("length");
    expect(a.message).toContain("length");
    const s = new SegmentationFault(0x1000, true, 0x40, "no VMA");
    expect(s.message).toContain("0x1000");
    expect(s.address).toBe(0x1000);
  });
});
