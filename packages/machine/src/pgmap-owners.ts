/**
 * The machine's dev_pagemap owners: which devices share one `pgmap->owner`. Devices joined by peer links
 * (transitively) share one owner object; every other device has its own. Registered per machine under the
 * `PgmapOwners` token (one `PgmapOwnerGroups` per machine, built from the spec by createMachine);
 * `machine.pgmapOwner(device)` is the same lookup.
 *
 * Why groups: the kernel decides with one pointer comparison, `page_pgmap(page)->owner == owner`, whether a
 * device-private page belongs to "us" (mm/hmm.c hmm_vma_handle_pte: report it, don't fault it;
 * mm/migrate_device.c migrate_vma_collect_pmd: collect it for MIGRATE_VMA_SELECT_DEVICE_PRIVATE). Drivers whose
 * devices can reach each other's memory directly therefore give their pagemaps one owner: amdgpu uses the XGMI
 * hive when the device is in one (`SVM_ADEV_PGMAP_OWNER(adev)` is `adev->hive ?: adev`, kfd_svm.h [S102]), NVIDIA
 * UVM uses one owner for all its GPUs (`devmem->pagemap.owner = &g_uvm_global`, uvm_pmm_gpu.c [S103]). Here the
 * spec's peer links say which devices can: the group is a connected component of the peer-link graph.
 *
 * How a driver uses it (one owner, three places):
 *
 *   const owner = owners.ownerOf(device);              // inject PgmapOwners, or machine.pgmapOwner(device)
 *   memremapPages(kernel, { type: MEMORY_DEVICE_PRIVATE, owner, ops, … });        // its dev_pagemap owner
 *   hmmRangeFault({ …, devPrivateOwner: owner });         // a peer's device-private page is reported (VALID, its
 *                                                         // pfn in the peer's pgmap), not faulted; a page of any
 *                                                         // other owner is faulted back to RAM through that
 *                                                         // owner's migrateToRam (do_swap_page)
 *   migrateVmaSetup({ …, pgmapOwner: owner, flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE });  // collects its own
 *                                                         // and its peers' pages: device → device migration
 *
 * With an owner per group, a page hmmRangeFault reports may sit in a peer's memory: the driver looks at the pfn's
 * pgmap (`kernel.pgmaps.pgmapOf(pfn)`) to see whose it is, and maps it remotely over the peer link
 * (`links.peer(a, b)`) or migrates it over that link (`links.peerDirection(from, to)`).
 *
 * **The trap.** lib/test_hmm.c (and this repository's GPU driver) ignores an MMU_NOTIFY_MIGRATE invalidation
 * whose `range.owner` is its own owner: "our own migration: the pages move through src/dst, the driver updates
 * its mappings itself". With a group owner, `range.owner === owner` is also true when a *peer's* driver migrates
 * (migrate_vma_setup passes its pgmapOwner, the group, as the notifier's owner). A driver that skips it then keeps
 * device mappings of pages that are moving away — of system RAM the peer is pulling into its memory, or of its
 * own memory the peer is taking — and reads stale data after the migration. So a driver must not skip an
 * MMU_NOTIFY_MIGRATE invalidation merely because the owner matches: it skips only the migrations it started
 * itself (it knows: it holds its own lock or marks the range it is migrating, as UVM's
 * `ignore_hmm_invalidate_va_block`), or it skips none (amdgpu's svm_range_cpu_invalidate_pagetables evicts on every
 * event but MMU_NOTIFY_RELEASE). UVM can skip by owner alone (uvm_hmm.c `hmm_invalidate` [S103]) only because one
 * driver instance maps every GPU and unmaps them all in its own migration path; separate driver instances cannot.
 */
import { MachineError } from "./machine-error.js";
import type { MachineSpec } from "./machine-spec.js";

/**
 * One dev_pagemap owner: compared by identity (`===`), as the kernel compares the `owner` pointer. Frozen; its
 * `devices` are the group it stands for (one device, or the devices joined by peer links), in spec order.
 */
export class PgmapOwner {
  readonly devices: readonly string[];

  constructor(devices: readonly string[]) {
    this.devices = Object.freeze([...devices]);
    Object.freeze(this);
  }

  /** True when `device` uses this owner. */
  has(device: string): boolean {
    return this.devices.includes(device);
  }

  toString(): string {
    return `PgmapOwner(${this.devices.join(", ")})`;
  }
}

/** The owners of a machine's device pagemaps (the `PgmapOwners` token). */
export interface PgmapOwners {
  /**
   * The owner object of `device`'s dev_pagemap: the same object for every device of its peer-link group, a
   * distinct one for every other device. Throws MachineError for a device the spec does not declare.
   */
  ownerOf(device: string): PgmapOwner;
  /** Every owner, in the spec order of each group's first device. */
  all(): readonly PgmapOwner[];
}

/** PgmapOwners from a spec's devices and peer links (connected components of the peer-link graph). */
export class PgmapOwnerGroups implements PgmapOwners {
  readonly #byDevice = new Map<string, PgmapOwner>();
  readonly #all: readonly PgmapOwner[];
  readonly #names: readonly string[];

  constructor(spec: Pick<MachineSpec, "devices" | "links">) {
    const names = spec.devices.map((d) => d.name);
    this.#names = names;
    // Union-find over device indices (by name; the spec is validated: names are unique, peers are declared).
    const index = new Map(names.map((n, i) => [n, i]));
    const parent = names.map((_, i) => i);
    const find = (i: number): number => {
      while (parent[i] !== i) i = parent[i] = parent[parent[i]!]!;
      return i;
    };
    for (const l of spec.links ?? []) {
      if (!l.peers) continue;
      const a = index.get(l.peers[0]);
      const b = index.get(l.peers[1]);
      if (a === undefined || b === undefined) throw new MachineError(`link ${JSON.stringify(l.name)}: peers ${JSON.stringify(l.peers)} names a device the spec does not declare`);
      const ra = find(a);
      const rb = find(b);
      if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb); // the root is the group's first device
    }
    const groups = new Map<number, string[]>();
    names.forEach((n, i) => {
      const r = find(i);
      let g = groups.get(r);
      if (!g) groups.set(r, (g = []));
      g.push(n);
    });
    const all: PgmapOwner[] = [];
    for (const members of groups.values()) {
      const owner = new PgmapOwner(members);
      all.push(owner);
      for (const m of members) this.#byDevice.set(m, owner);
    }
    this.#all = Object.freeze(all);
  }

  ownerOf(device: string): PgmapOwner {
    const o = this.#byDevice.get(device);
    if (!o) throw new MachineError(`no device named ${JSON.stringify(device)} (devices: ${this.#names.join(", ") || "none"})`);
    return o;
  }

  all(): readonly PgmapOwner[] {
    return this.#all;
  }
}
