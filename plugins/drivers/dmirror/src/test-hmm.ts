/**
 * lib/test_hmm.c: the module (hmm_dmirror_init / hmm_dmirror_exit, dmirror_device_init) and the file operations
 * of /dev/hmm_dmirror<N> (dmirror_fops_open / release / mmap / unlocked_ioctl).
 *
 * `hmmDmirrorInit(kernel, params)` loads the driver on a simulated kernel: devices 0 and 1 are
 * MEMORY_DEVICE_PRIVATE; devices 2 and 3 are MEMORY_DEVICE_COHERENT and exist only when both `spmAddrDev0` and
 * `spmAddrDev1` are set (the module parameters; any truthy value, since hmmsim places device pfns itself). Each
 * device gets one DEVMEM_CHUNK_SIZE chunk at init. Each device's owner (pgmap.owner, dev_private_owner,
 * pgmap_owner) is its DmirrorDevice object, so the four devices never see each other's pages as their own.
 */
import {
  ENODEV,
  ENOMEM,
  InvalidArgumentError,
  KernelRuleError,
  PAGE_SIZE,
  allocPages,
  putPage,
  vmInsertPage,
  type Kernel,
  type Mm,
  type VmAreaStruct,
} from "@hmmsim/core";
import { DMIRROR_NDEVICES, DmirrorDevice, ZoneDeviceData, type DmirrorDeviceOptions, type DmirrorModuleContext } from "./dmirror-device.js";
import { Dmirror } from "./dmirror.js";
import { HMM_DMIRROR_MEMORY_DEVICE_COHERENT, HMM_DMIRROR_MEMORY_DEVICE_PRIVATE, type HmmDmirrorCmd } from "./test-hmm-uapi.js";

/** Module parameters (module_param spm_addr_dev0 / spm_addr_dev1). */
export interface HmmDmirrorParams {
  spmAddrDev0?: number;
  spmAddrDev1?: number;
}

/** An open /dev/hmm_dmirror<N> (struct file with private_data = the dmirror). */
export class DmirrorFile {
  private released = false;
  constructor(readonly dmirror: Dmirror) {}
  get device(): DmirrorDevice {
    return this.dmirror.mdevice;
  }
  /** dmirror_fops_unlocked_ioctl(). */
  ioctl(command: number, arg: HmmDmirrorCmd | null): number {
    if (this.released) throw new KernelRuleError("dmirror_ioctl_after_release", this.device.name);
    return this.dmirror.ioctl(command, arg);
  }
  /** dmirror_fops_mmap(): a zeroed kernel page per VA, vm_insert_page'd (a VM_MIXEDMAP mapping). */
  mmap(vma: VmAreaStruct): number {
    const k = this.dmirror.kernel;
    for (let addr = vma.vmStart; addr < vma.vmEnd; addr += PAGE_SIZE) {
      const page = allocPages(k, 0, true);
      if (page < 0) return -ENOMEM;
      const ret = vmInsertPage(vma, addr, page);
      putPage(k, page);
      if (ret) return ret;
    }
    return 0;
  }
  /** dmirror_fops_release(): the last reference to the file was dropped. */
  release(): number {
    if (this.released) throw new KernelRuleError("dmirror_double_release", this.device.name);
    this.released = true;
    this.dmirror.release();
    return 0;
  }
  get isReleased(): boolean {
    return this.released;
  }
}

/** The loaded module: its devices (index = minor number; null where a device does not exist). */
export class HmmDmirrorModule implements DmirrorModuleContext {
  readonly zdd = new ZoneDeviceData();
  /** The devices by minor number (DMIRROR_NDEVICES of them in the kernel; a machine's module has one per spec device). */
  readonly devices: (DmirrorDevice | null)[];
  /** Open files not yet released. */
  readonly files = new Set<DmirrorFile>();
  private loaded = true;

  constructor(
    readonly kernel: Kernel,
    readonly params: HmmDmirrorParams,
    ndevices: number = DMIRROR_NDEVICES,
  ) {
    if (!Number.isSafeInteger(ndevices) || ndevices < 0) throw new InvalidArgumentError("ndevices", "must be a whole number of devices", ndevices);
    this.devices = new Array<DmirrorDevice | null>(ndevices).fill(null);
  }

  /** open("/dev/hmm_dmirror<minor>") by a process whose mm is `mm`: the file, or -ENODEV / -errno. */
  open(minor: number, mm: Mm): DmirrorFile | number {
    if (!this.loaded) return -ENODEV;
    if (!Number.isInteger(minor) || minor < 0 || minor >= this.devices.length) return -ENODEV;
    const mdevice = this.devices[minor];
    if (mdevice === null || mdevice === undefined) return -ENODEV;
    const d = Dmirror.open(mdevice, mm);
    if (typeof d === "number") return d;
    const f = new DmirrorFile(d);
    this.files.add(f);
    return f;
  }

  /** Release a file (the VFS calls this when the last reference goes). */
  close(f: DmirrorFile): number {
    if (!this.files.delete(f)) throw new KernelRuleError("dmirror_close_unknown_file", f.device.name);
    return f.release();
  }

  /** Device pages in use over all devices (0 once every mirrored page has been freed through pageFree). */
  devicePagesInUse(): number {
    let n = 0;
    for (const d of this.devices) if (d !== null) n += d.pagesInUse();
    return n;
  }

  /**
   * References the driver holds outside page tables: the backing page of every allocated private device page
   * (for @hmmsim/testing's checkInvariants `extraRefs`).
   */
  driverRefs(): Map<number, number> {
    const m = new Map<number, number>();
    for (const [pfn, v] of this.zdd.entries()) {
      if (typeof v === "number" && this.kernel.store.refcount(pfn) > 0) m.set(this.kernel.store.folioHead(v), 1);
    }
    return m;
  }

  /** hmm_dmirror_exit(): remove every device (dmirror_device_remove → dmirror_device_remove_chunks). */
  exit(): void {
    if (this.files.size > 0) throw new KernelRuleError("module_unload_busy", `${this.files.size} open file(s)`);
    for (const d of this.devices) if (d !== null) d.removeChunks();
    this.loaded = false;
  }
}

/** hmm_dmirror_init(): create the devices and give each its first chunk. */
export function hmmDmirrorInit(kernel: Kernel, params: HmmDmirrorParams = {}): HmmDmirrorModule {
  if (kernel === null || typeof kernel !== "object" || !("pgmaps" in kernel)) throw new InvalidArgumentError("kernel", "must be a Kernel");
  if (params === null || typeof params !== "object") throw new InvalidArgumentError("params", "must be an object");
  const types = [HMM_DMIRROR_MEMORY_DEVICE_PRIVATE, HMM_DMIRROR_MEMORY_DEVICE_PRIVATE];
  if (params.spmAddrDev0 && params.spmAddrDev1) types.push(HMM_DMIRROR_MEMORY_DEVICE_COHERENT, HMM_DMIRROR_MEMORY_DEVICE_COHERENT);
  return initDevices(kernel, params, types.map((zoneDeviceType) => ({ zoneDeviceType })), DMIRROR_NDEVICES);
}

/** One device of hmmDmirrorInitDevices: its memory type (HMM_DMIRROR_MEMORY_DEVICE_*) and options. */
export interface DmirrorDeviceDef extends DmirrorDeviceOptions {
  zoneDeviceType: number;
}

/**
 * hmm_dmirror_init() with the devices a machine spec declares instead of the kernel's fixed four: device `i` of
 * `defs` is minor `i`, with its memory type, name and memory size. Each gets its first chunk, as in the kernel.
 */
export function hmmDmirrorInitDevices(kernel: Kernel, defs: readonly DmirrorDeviceDef[]): HmmDmirrorModule {
  if (!Array.isArray(defs)) throw new InvalidArgumentError("defs", "must be an array of device definitions");
  defs.forEach((d, i) => {
    if (d.zoneDeviceType !== HMM_DMIRROR_MEMORY_DEVICE_PRIVATE && d.zoneDeviceType !== HMM_DMIRROR_MEMORY_DEVICE_COHERENT) {
      throw new InvalidArgumentError(`defs[${i}].zoneDeviceType`, "must be HMM_DMIRROR_MEMORY_DEVICE_PRIVATE or HMM_DMIRROR_MEMORY_DEVICE_COHERENT", d.zoneDeviceType);
    }
  });
  return initDevices(kernel, {}, defs, defs.length);
}

function initDevices(kernel: Kernel, params: HmmDmirrorParams, defs: readonly DmirrorDeviceDef[], ndevices: number): HmmDmirrorModule {
  if (kernel === null || typeof kernel !== "object" || !("pgmaps" in kernel)) throw new InvalidArgumentError("kernel", "must be a Kernel");
  const mod = new HmmDmirrorModule(kernel, params, ndevices);
  defs.forEach(({ zoneDeviceType, ...options }, id) => {
    const dev = new DmirrorDevice(mod, id, zoneDeviceType, options);
    // dmirror_device_init(): build a list of free ZONE_DEVICE struct pages.
    const ret = dev.allocateChunk(false, false);
    if (ret < -1) throw new KernelRuleError("dmirror_device_init_failed", `${dev.name}: ${ret}`);
    mod.devices[id] = dev;
  });
  return mod;
}
