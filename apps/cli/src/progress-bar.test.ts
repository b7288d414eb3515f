import { describe, expect, it } from "vitest";
import { BufferWriter } from "./cli-io.js";
import { COUNT_WIDTH, LABEL_WIDTH, ProgressBar, renderProgress } from "./progress-bar.js";

describe("renderProgress", () => {
  it("known total: a bar, a 3-wide percent and a padded label, the same width for every frame", () => {
    const frames = [
      renderProgress({ title: "hmmsim a100-pcie4", done: 0, total: 1000, label: "0 ps simulated", columns: 100 }),
      renderProgress({ title: "hmmsim a100-pcie4", done: 421, total: 1000, label: "9.87 µs simulated", columns: 100 }),
      renderProgress({ title: "hmmsim a100-pcie4", done: 1000, total: 1000, label: "170 ms simulated", columns: 100 }),
    ];
    expect(frames[0]).toMatch(/^hmmsim a100-pcie4 \[\.{10,40}\] {3}0% 0 ps simulated +$/);
    expect(frames[1]).toMatch(/^hmmsim a100-pcie4 \[#+\.+\] {2}42% 9\.87 µs simulated +$/);
    expect(frames[2]).toMatch(/^hmmsim a100-pcie4 \[#{10,40}\] 100% 170 ms simulated +$/);
    expect(new Set(frames.map((f) => f.length)).size).toBe(1);
    expect(new Set(frames.map((f) => f.indexOf("]"))).size).toBe(1); // the bar does not move
    for (const f of frames) expect(f.length).toBeLessThan(100);
  });

  it("unknown total (BFS): a bouncing block and a fixed-width access count, the same width for every frame", () => {
    const frame = (done: number, tick: number) => renderProgress({ title: "hmmsim g", done, total: undefined, label: "1.5 ms simulated", columns: 80, tick });
    const frames = [frame(0, 0), frame(4096, 1), frame(123_456, 2), frame(98_765_432_100, 57)];
    expect(frames[2]).toMatch(/^hmmsim g \[ {2}=== +\] +123,456 accesses 1\.5 ms simulated +$/);
    expect(frames[0]).toMatch(/^hmmsim g \[=== +\] +0 accesses /);
    expect(frames[3]).toContain("98,765,432,100 accesses");
    expect(new Set(frames.map((f) => f.length)).size).toBe(1);
    expect(frames.every((f) => !f.includes("NaN") && !f.includes("%"))).toBe(true);
    // The block bounces inside the bar and never leaves it.
    const bar = (f: string) => f.slice(f.indexOf("[") + 1, f.indexOf("]"));
    const width = bar(frames[0]!).length;
    for (let t = 0; t < 3 * width; t++) {
      const b = bar(frame(1, t));
      expect(b.length).toBe(width);
      expect(b.trim()).toBe("===");
    }
    expect(bar(frame(1, width - 3))).toBe(" ".repeat(width - 3) + "===");
    expect(bar(frame(1, width - 2))).toBe(" ".repeat(width - 4) + "=== ");
    expect(COUNT_WIDTH).toBeGreaterThanOrEqual("98,765,432,100".length);
  });

  it("keeps within narrow and wide terminals; a long label is cut to its field", () => {
    const narrow = renderProgress({ title: "hmmsim a100-pcie4", done: 1, total: 2, label: "1 s simulated", columns: 40 });
    expect(narrow).toMatch(/\[#{5}\.{5}\] {2}50%/); // the bar never goes below 10 cells
    const wide = renderProgress({ title: "t", done: 1, total: 2, label: "x", columns: 500 });
    expect(wide).toMatch(/\[#{20}\.{20}\]/); // nor above 40
    const long = renderProgress({ title: "t", done: 1, total: 2, label: "y".repeat(50), columns: 80 });
    expect(long.endsWith("y".repeat(LABEL_WIDTH))).toBe(true);
  });
});

describe("ProgressBar", () => {
  it("redraws on whole-percent changes only; an unknown total redraws as the count grows by 2% (at least 4,096)", () => {
    const out = new BufferWriter(true, 80);
    const bar = new ProgressBar(out, true, "t");
    for (let i = 0; i <= 10_000; i++) bar.update(i, 10_000, "l");
    expect(bar.frames).toBe(101);
    const spin = new ProgressBar(out, true, "t");
    for (let i = 0; i <= 1_000_000; i += 256) spin.update(i, undefined, "l");
    expect(spin.frames).toBeGreaterThan(50);
    expect(spin.frames).toBeLessThan(300);
    spin.finish();
    expect(out.text.endsWith("\r\x1b[K")).toBe(true);
    const off = new BufferWriter(true, 80);
    new ProgressBar(off, false, "t").update(1, undefined, "l");
    expect(off.text).toBe("");
  });
});
