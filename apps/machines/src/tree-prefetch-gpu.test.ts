// Scenario tests: the tree-prefetch policy (@hmmsim/policy-tree-prefetch) driving the GPU driver on the a100-pcie4
// preset (its machine and its costs as shipped: PCIe 4.0 x16, 45 µs per fault service round), against on-demand.
// They live here because a policy never imports a driver (scripts/check-layers.mjs). Every figure compared is
// simulated (the run summary), never wall-clock. The working sets are smaller than the preset's 64 MiB to keep
// the suite fast; what is compared is the GPU phase of each run: its simulated time and its h2d migrations.
import { describe, expect, it } from "vitest";
import { GpuDriverPlugin } from "@hmmsim/driver-gpu";
import { PciePlugin } from "@hmmsim/interconnect-pcie";
import { defaultPlugins, simulate, type RunSummary } from "@hmmsim/machine";
import { OnDemandPolicyPlugin } from "@hmmsim/policy-on-demand";
import { TreePrefetchPolicyPlugin } from "@hmmsim/policy-tree-prefetch";
import { readPresetText } from "./presets.js";

const plugins = () => [...defaultPlugins(), new PciePlugin(), new GpuDriverPlugin(), new OnDemandPolicyPlugin(), new TreePrefetchPolicyPlugin()];

/** The preset's machine with its GPU phase replaced by `gpu` (the host first writes `hostBytes`), under `policy`. */
async function run(policy: string, gpu: string, hostBytes: string, policySpec = ""): Promise<RunSummary> {
  let text = readPresetText("a100-pcie4");
  // The preset runs uvm-default; here the device runs the one policy compared (no thrashing, no advise).
  text = text.replace(/^ {4}policy: .*\n/m, `    policy: ${policy}\n${policySpec ? `    policySpec: ${policySpec}\n` : ""}`);
  if (!text.includes(`    policy: ${policy}\n`)) throw new Error("the a100-pcie4 preset has no `    policy:` line to replace");
  const workload = text.indexOf("workload:\n");
  text =
    text.slice(0, workload) +
    `workload:\n  kind: phases\n  params:\n    phases:\n` +
    `      - { on: cpu,  kind: streaming, params: { bytes: ${hostBytes}, writeFraction: 1 } }\n` +
    `      - { on: gpu0, ${gpu} }\n`;
  return simulate({ spec: text, plugins: plugins() });
}

interface Figures {
  gpuPs: number;
  migrations: number;
  pages: number;
}
const figures = (s: RunSummary): Figures => ({ gpuPs: s.phases[1]!.endPs - s.phases[1]!.startPs, migrations: s.migrated.h2d.count, pages: s.migrated.h2d.pages });

async function compare(gpu: string, hostBytes: string): Promise<{ onDemand: Figures; tree: Figures }> {
  const onDemand = figures(await run("on-demand", gpu, hostBytes));
  const tree = figures(await run("tree-prefetch", gpu, hostBytes));
  console.log(`${gpu}\n  on-demand: ${JSON.stringify(onDemand)}\n  tree-prefetch: ${JSON.stringify(tree)}`);
  return { onDemand, tree };
}

describe("tree-prefetch vs on-demand on the GPU driver (a100-pcie4, simulated figures)", () => {
  // Measured (npx vitest run src/tree-prefetch-gpu.test.ts in apps/machines): streaming 16 MiB, GPU phase
  // on-demand 26.68 ms / 512 migrations, tree-prefetch 3.22 ms / 48 migrations (8.3×, 10.7×). Per 2 MiB block UVM's
  // rule migrates [0,16), [16,32), [32,64), [64,128), [128,256), [256,512): 6 migrations instead of 64. The entries
  // queued behind a batch whose pages the prefetch made valid are flushed, not serviced (the GPU driver's default
  // replay policy BATCH_FLUSH, as UVM's): with replayPolicy 1 (BATCH) they would cost a service round each.
  it("streaming: at least 5× less simulated time and at least 10× fewer migrations", async () => {
    const { onDemand, tree } = await compare("kind: streaming, params: { bytes: 16MiB, granularity: 128, writeFraction: 0.25 }", "16MiB");
    expect(tree.pages).toBe(onDemand.pages); // the same 4,096 pages move either way
    expect(tree.migrations * 10).toBeLessThanOrEqual(onDemand.migrations);
    expect(tree.gpuPs * 5).toBeLessThanOrEqual(onDemand.gpuPs);
  });

  it("stencil: at least 5× less simulated time and 10× fewer migrations", async () => {
    const { onDemand, tree } = await compare("kind: stencil, params: { bytes: 4MiB, rowBytes: 8KiB }", "8MiB");
    expect(tree.gpuPs * 5).toBeLessThanOrEqual(onDemand.gpuPs);
    expect(tree.migrations * 10).toBeLessThanOrEqual(onDemand.migrations);
  });

  // Uniform random 4 KiB accesses: the faithful rule is not "about on-demand"; which way it goes depends on how
  // densely a batch's faults land in each 2 MiB block. Dense (2,000 accesses over 4,096 pages, ~30 faults per
  // block in the first batch: the big pages pass 51 % and the whole block moves): measured 1.00 ms vs 4.47 ms.
  // Sparse (2,000 over 65,536 pages, ~4 per block): each fault moves its 64 KiB big page, 19× the bytes,
  // 11.75 ms vs 5.70 ms. The issue's "within ±20 % of on-demand" holds for neither: it is UVMSmart's *random
  // prefetcher* that performs like on-demand (docs/reproduce-policies.md), not UVM's tree prefetcher on random access.
  it("uniform random 4 KiB, dense in each block: tree-prefetch faster (whole blocks move)", async () => {
    const { onDemand, tree } = await compare("kind: random, params: { bytes: 16MiB, count: 2000, granularity: 4096 }", "16MiB");
    expect(tree.gpuPs).toBeLessThan(onDemand.gpuPs);
    expect(tree.migrations).toBeLessThan(onDemand.migrations);
  });

  it("uniform random 4 KiB, sparse in each block: tree-prefetch slower (64 KiB per fault moves many more bytes)", async () => {
    const { onDemand, tree } = await compare("kind: random, params: { bytes: 256MiB, count: 2000, granularity: 4096 }", "256MiB");
    expect(tree.pages).toBeGreaterThan(10 * onDemand.pages);
    expect(tree.gpuPs).toBeGreaterThan(onDemand.gpuPs);
  });

  it("UVMSmart's variants order as in its results: TBN < sequential-local < random ≈ on-demand (streaming)", async () => {
    // measured (8 MiB): tbn 4.14 ms, sequential-local 12.51 ms, random 12.83 ms, on-demand 12.83 ms
    const gpu = "kind: streaming, params: { bytes: 8MiB, granularity: 128 }";
    const t = async (v: string) => figures(await run("tree-prefetch", gpu, "8MiB", `{ variant: ${v} }`)).gpuPs;
    const onDemand = figures(await run("on-demand", gpu, "8MiB")).gpuPs;
    const [tbn, sl, random] = [await t("tbn"), await t("sequential-local"), await t("random")];
    console.log(`variants (streaming 8MiB, GPU ps): tbn ${tbn}, sequential-local ${sl}, random ${random}, on-demand ${onDemand}`);
    expect(tbn).toBeLessThan(sl);
    expect(sl).toBeLessThan(random);
    expect(random).toBeGreaterThanOrEqual(onDemand * 0.8);
    expect(random).toBeLessThanOrEqual(onDemand * 1.2);
  });
});
