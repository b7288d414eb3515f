import { describe, expect, it } from "vitest";
import { bufferIo } from "./cli-io.js";
import { main } from "./main.js";
import { type RunSummary, formatSummary } from "@hmmsim/machine";

async function summary(argv: string[]): Promise<RunSummary> {
  const io = bufferIo();
  expect(await main(["run", "--json", ...argv], io)).toBe(0);
  return JSON.parse(io.stdout.text) as RunSummary;
}

describe("formatSummary notes", () => {
  it("says in plain words when migrated bytes did not cross a link as DMA, and only then", async () => {
    const s = await summary(["--size", "1MiB"]);
    expect(formatSummary(s)).not.toContain("note (");
    // A driver that copies pages to the host without a link transfer (the CPU copying them, say).
    const t: RunSummary = { ...s, links: { pcie0: { ...s.links.pcie0!, d2h: { ...s.links.pcie0!.d2h, bytes: s.links.pcie0!.d2h.bytes - 8192 } } } };
    expect(formatSummary(t)).toMatch(
      /^ {2}note \(d2h\) +8 KiB of the 1 MiB migrated to the host were copied without a DMA transfer on any link \(the CPU or the driver copied them some other way\), so the link rows above do not count them$/m,
    );
    expect(formatSummary(t)).not.toContain("note (h2d)");
  });
});
