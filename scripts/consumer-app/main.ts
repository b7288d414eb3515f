// A user's app, written against the published packages only: scripts/check-packages.mjs copies this folder into
// a fresh project outside the repository, installs the packed tarballs there, type-checks it with
// `tsc --noEmit` (moduleResolution nodenext) and runs it.
import "reflect-metadata"; // first, once: the app is the composition root (tsyringe needs the Reflect polyfill)
import { defaultPlugins, formatSummary, simulate, type RunSummary } from "@hmmsim/machine";
import { PciePlugin } from "@hmmsim/interconnect-pcie";
import { GpuDriverPlugin } from "@hmmsim/driver-gpu";
import { OnDemandPolicyPlugin } from "@hmmsim/policy-on-demand";

// A host and one GPU behind PCIe 4.0 x16; the host writes 4 MiB, the GPU reads it (every page migrates to the
// GPU on its first fault), the host reads it back (every page migrates back).
const spec = {
  name: "consumer-app",
  seed: 7,
  bytes: "off",
  cpus: { count: 4, frequency: "3GHz" },
  ram: { size: "8GiB" },
  links: [{ name: "pcie0", kind: "pcie4x16" }],
  devices: [{ kind: "gpu", name: "gpu0", memory: "4GiB", memoryType: "private", link: "pcie0", policy: "on-demand" }],
  workload: {
    kind: "phases",
    params: {
      phases: [
        { on: "cpu", kind: "streaming", params: { bytes: "4MiB", writeFraction: 1 } },
        { on: "gpu0", kind: "streaming", params: { bytes: "4MiB" } },
        { on: "cpu", kind: "streaming", params: { bytes: "4MiB" } },
      ],
    },
  },
};

const plugins = [...defaultPlugins(), new PciePlugin(), new GpuDriverPlugin(), new OnDemandPolicyPlugin()];
const summary: RunSummary = await simulate({ spec, plugins });
process.stdout.write(formatSummary(summary));

const pages = (4 * 1024 * 1024) / 4096;
if (summary.migrated.h2d.pages !== pages || summary.migrated.d2h.pages !== pages) {
  throw new Error(`expected ${pages} pages to migrate each way, got ${summary.migrated.h2d.pages} h2d and ${summary.migrated.d2h.pages} d2h`);
}
console.log(`consumer-app: ok (${summary.migrated.h2d.pages} pages to gpu0 and back)`);
