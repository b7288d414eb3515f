/**
 * The help screens (`hmmsim --help`, `hmmsim run --help`, `hmmsim selftest --help`), written for a newcomer:
 * what each command does, its options, what it prints and its exit codes. Hand-written rather than cac's
 * generated help (which prints through console.info; main() writes through injectable writers).
 */
import { PRESETS_DIR, presetNames } from "@hmmsim/machines";
import { CLI_WORKLOAD_KINDS, DEFAULT_PRESET } from "./spec-source.js";

export const VERSION = "0.1.0";

const EXIT_CODES = `Exit codes:
  0  success
  1  the run or a self-test failed, or its input is bad (spec file missing or invalid, bad trace line)
  2  bad command line (unknown command or option, bad option value)`;

export function globalHelp(): string {
  return `hmmsim ${VERSION}: a simulator of Linux HMM (Heterogeneous Memory Management) on CPU + GPU machines

Usage:
  $ hmmsim <command> [options]

Commands:
  run [spec]   Simulate a machine running a workload and print a summary
               (simulated time, faults, pages migrated, link utilisation, evictions).
               spec: a preset name (${presetNames.join(", ")}) or a YAML/JSON spec file;
               default ${DEFAULT_PRESET}.
  selftest     Run the port of the kernel's HMM self-tests (tools/testing/selftests/mm/hmm-tests.c)
               against the simulated dmirror driver (lib/test_hmm.c); prints a TAP report.

For more, run a command with --help:
  $ hmmsim run --help
  $ hmmsim selftest --help

Options:
  -h, --help     Show this help
  -v, --version  Show the version

Examples:
  $ hmmsim run                          # the ${DEFAULT_PRESET} preset and its default workload
  $ hmmsim run gh200-c2c --seed 7
  $ hmmsim run a100-pcie4 --policy on-demand
  $ hmmsim run my-machine.yaml --json > summary.json
  $ hmmsim selftest

${EXIT_CODES}
`;
}

export function runHelp(): string {
  return `hmmsim run: simulate a machine running a workload, then print a summary

Usage:
  $ hmmsim run [spec] [options]

  spec  A preset name or a machine spec file (YAML or JSON). Default: ${DEFAULT_PRESET}.
        Presets: ${presetNames.join(", ")} (files in ${PRESETS_DIR}).
        A spec names the CPUs, RAM, links, devices, the workload and the seed; see
        packages/machine/README.md ("Machine spec") and apps/machines/presets/*.yaml for examples.

Options:
  --json              Print only the summary, as JSON, on stdout (no progress bar, nothing else on stdout)
  --seed <n>          Override the spec's seed, a non-negative integer (same spec + same seed = identical
                      summary)
  --workload <kind>   Replace the spec's workload with <kind> (${CLI_WORKLOAD_KINDS.join(", ")}) on the first
                      device; needs --size unless the spec's workload already has that kind
  --size <size>       Working-set size of the workload, e.g. 256MiB (whole 4KiB pages); on a workload of
                      phases (the presets' default) every phase gets this size
  --trace <file>      Replay a trace file (lines "R 0x1000" / "W 4096 12.5") on the first device
  --plugin <module>   Load a plugin module (a path, relative to the current folder, or an installed
                      package name) in addition to the built-ins and the spec's \`plugins:\`; repeatable.
                      Loading a plugin runs its code. A spec's own \`plugins:\` may name only installed
                      packages and paths inside the spec's folder; anything else needs --plugin
  --policy <names>    Replace every device's policy: a policy or bundle name, or a comma-separated list of
                      them run together (e.g. on-demand, uvm-default, "on-demand,evict-tree",
                      "uvm-default,access-counters"). The devices' policySpec is dropped (it belonged to the
                      old policy) unless --policy-spec gives one. A name no plugin provides is a spec error
                      listing the names that are
  --policy-spec <json>
                      Replace every device's policySpec with this JSON object: the policy's fields for one
                      name ('{"variant":"tbn"}' with --policy tree-prefetch), or fields keyed by member for a
                      list or a bundle ('{"tree-prefetch":{"threshold":60}}'); alone, it keeps the policies
  --max-simulated-time <duration>
                      Stop the run after this much virtual time, e.g. 10ms, 500us, 2s (overrides the spec's
                      \`maxSimulatedTime\`): the summary covers what ran and says where it stopped; exit 0
  --no-progress       Do not draw the progress bar (it is drawn on stderr only when stderr is a terminal;
                      a workload of unknown length, BFS, shows a count of accesses instead of a percent).
                      It shows the simulated time, how fast it advances (simulated time per second) and,
                      at that pace, the time left: a run that thrashes shows hours left at once
  -h, --help          Show this help
  An option given twice with different values is an error; a flag given twice counts once.

Output (stdout):
  machine              the preset or spec file, seed, host CPUs and RAM, each device (kind, memory, memory
                       type DEVICE_PRIVATE/DEVICE_COHERENT, link, driver, policy), each link (bandwidths, α)
  simulated time       virtual time the workload took
  phase <i> (<where>)  each phase: accesses and time; a GPU phase's fault entries, the pages they were for,
                       the batches that serviced them, device TLB hits/misses
  CPU faults           page faults taken by CPU threads
  device faults        fault-buffer entries the devices raised and the batches that serviced them (a warp
                       that faults on a page already in the batch adds an entry, not a page)
  migrated to device   pages and bytes migrated host → device (h2d); pages the CPU never wrote are
                       zero-filled on the device, not copied (0 B)
  migrated to host     pages and bytes migrated device → host (d2h)
  CPU coherent access  (machines with DEVICE_COHERENT memory) CPU loads/stores done in place in device
                       memory over the coherent link: one 64-byte line each, at the link's CPU-access
                       latency + bandwidth, charged to the CPU thread
  evictions            device pages evicted to make room
  link <name> <dir>    utilisation = busy time / simulated time, per direction, with bytes and transfers.
                       Busy time counts data moving only: each transfer's setup α is on top, not in it
  charged cost         time charged to tasks per cost kind (CPU_FAULT, PAGE_ZERO, ...), summed over tasks
  plugins              every plugin that ran, with its version (built-in and loaded)
  thrash               device-memory evictions per device fault entry, and pages migrated (both ways,
                       evictions included) per page of the working set
  warning              a figure past its threshold: more than 0.05 evictions per device fault (oversubscribed
                       streaming evicts about 0.002), more than 4 pages migrated per working-set page per phase
  stopped              (a run that ended before its workload) why, when, and how many accesses had run; the
                       phase it cut is marked "cut short by the stop"
  With --json the same figures as one object: machine, workload, phases[] (gpu { faults, batches,
  faultedPages, migratedPages, populatedPages, tlbHits, tlbMisses, remoteAccesses } / cpu { coherentAccesses,
  coherentPs }, partial: true on a phase cut by a stop), simulatedPs, events, faults { cpu, device,
  deviceBatches, batchedFaults }, migrated { h2d, d2h } ({ count, pages, bytes }), coherentCpuAccess
  { accesses, ps }, evictions, invalidations, links { <name>: { h2d, d2h } ({ busyPs, bytes, transfers,
  utilisation }) }, cost, unsettledPs, plugins[] ({ name, kind, version }), workingSetBytes, thrash
  { evictionsPerDeviceFault, pagesMovedPerWorkingSetPage }, warnings[], stopped (null, or { reason, atPs,
  message, accessesDone, accessesTotal }). Times are in ps.

Errors (stderr, exit 1): a spec file that does not exist; a spec that cannot run: every problem is listed
with its path, from the schema (e.g. "devices[0].memory: expected a size like \\"16GiB\\", got \\"40 gigs\\"")
and from the plugins (a driver, policy or link kind no plugin provides, with the names that are; a
driverSpec, policySpec or link field the plugin rejects), and a missing trace file; a plugin module that does
not load or does not export a plugin (the message names the module and why); a trace file with a bad line
(the message names the file and the line); a --trace file that does not exist. A spec is also checked
against the machine's limits, each with its reason: RAM at most 8 TiB - 2 MiB and RAM + device memory within
the 2^32 page frames the simulator addresses; GPU device memory a whole number of 2 MiB root chunks; a CPU
clock between 1 MHz and 100 GHz; link bandwidths between 1 MB/s and 1 PB/s; at most 4096 devices and 4096
links; a workload that writes more pages than RAM + device memory hold; the GPU driver's fields within their
ranges (e.g. at most 65,536 warps). At most 100 problems are listed, then how many more there are.

A run that stops at a limit of the machine prints its partial summary on stdout and the reason on stderr,
and exits 1: its virtual time would pass 2^53 ps (≈ 9007 s), memory ran out (RAM, or RAM + device memory),
or a device made no forward progress (a warp's access faulted more than its driverSpec.maxFaultsPerAccess
times without completing: thrash).

Examples:
  $ hmmsim run
  $ hmmsim run h100-pcie5 --workload random --size 256MiB --seed 3
  $ hmmsim run ./my-machine.yaml --trace ./accesses.trace --json
  $ hmmsim run ./my-machine.yaml --plugin ./my-policy.js
  $ hmmsim run a100-pcie4 --policy on-demand         # the preset under on-demand instead of uvm-default
  $ hmmsim run a100-pcie4 --policy tree-prefetch --policy-spec '{"variant":"tbn"}'
  $ hmmsim run ./oversubscribed.yaml --max-simulated-time 50ms

${EXIT_CODES}
`;
}

export function selftestHelp(): string {
  return `hmmsim selftest: run the HMM kernel self-tests against the simulated dmirror driver

Usage:
  $ hmmsim selftest [options]

The tests are a port of the kernel's tools/testing/selftests/mm/hmm-tests.c; the driver under test is
@hmmsim/driver-dmirror, a port of lib/test_hmm.c. The report on stdout is kselftest TAP ("TAP version 13",
one "ok"/"not ok" line per test, then the totals).

Options:
  --filter <text>  Run only the tests whose name (fixture.variant.test) contains <text>
  --seed <n>       Seed of the test machines (default 1)
  -h, --help       Show this help

${EXIT_CODES.replace("the run or a self-test failed", "a self-test failed")}
`;
}
