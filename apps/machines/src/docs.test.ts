// The repository's documents stand on their own (docs/README.md, "Rules for every document"):
//  - no file names a path of a development machine or a folder or document outside the repository;
//  - every source key `[S<n>]` cited anywhere (presets, READMEs, docs, source comments) resolves to an entry of
//    docs/references.md, and every entry there gives a title, its authors or project, a year and what is used
//    (the file/function or table), and is cited somewhere.
// Files: `git ls-files` from the repository root (tracked files, plus new ones that are not ignored, so a file is
// checked before its first commit).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const REFERENCES = "docs/references.md";

function repoFiles(): { path: string; text: string }[] {
  const out = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: ROOT, encoding: "utf8" });
  const files: { path: string; text: string }[] = [];
  for (const path of new Set(out.split("\0").filter(Boolean))) {
    if (!existsSync(join(ROOT, path))) continue; // deleted in the work tree
    const buf = readFileSync(join(ROOT, path));
    if (buf.includes(0)) continue; // binary
    files.push({ path, text: buf.toString("utf8") });
  }
  return files;
}

// The patterns are assembled from parts so that this file does not match them itself.
const slash = (...parts: string[]) => parts.join("/");
const FORBIDDEN: readonly { what: string; re: RegExp }[] = [
  { what: "a path of a development machine", re: new RegExp(slash("", "work", "")) },
  { what: "a home directory", re: new RegExp(slash("", "(?:ho" + "me|Us" + "ers)", "[A-Za-z]")) },
  { what: "a folder outside the repository", re: new RegExp(slash("\\.\\.", "sha" + "red")) },
  { what: "the team's reference folder", re: new RegExp(slash("sha" + "red", "refe" + "rence")) },
  {
    what: "a document outside the repository (the design is docs/architecture.md, the sources docs/references.md)",
    re: new RegExp(`\\b(?:${["DES" + "IGN", "anch" + "ors", "tool" + "chain", "style-anch" + "ors"].join("|")})\\.md\\b|\\bhmm-(?:sp` + "ec|tests-cat" + "alog)\\b"),
  },
];

/** `[S<n>]`, `[S<n>, S<m>]`, `[S<n>–S<m>]`, `[S<n>-logs]` citations of a text, with their 1-based lines. */
function citedKeys(text: string): { key: string; line: number }[] {
  const out: { key: string; line: number }[] = [];
  const lines = text.split("\n");
  lines.forEach((l, i) => {
    for (const m of l.matchAll(/(?<![\w$\]])\[(S\d+[^\][\n]{0,80})\]/g)) {
      const inner = m[1]!;
      if (!/^S\d+[a-z]?(?:-logs)?(?:\s*(?:[,;–-]|and)\s*(?:S\d+[a-z]?(?:-logs)?|\d+|B\d))*$/.test(inner)) continue;
      const singles = inner.replace(/S(\d+)\s*[–-]\s*S?(\d+)\b/g, (_all, a: string, b: string) => {
        for (let n = Number(a); n <= Number(b); n++) out.push({ key: `S${n}`, line: i + 1 });
        return "";
      });
      for (const k of singles.matchAll(/S(\d+[a-z]?)(?:-logs)?/g)) out.push({ key: `S${k[1]}`, line: i + 1 });
    }
  });
  return out;
}

/** The entries of docs/references.md: `### [S<n>] Title` headings and their `- **Field:**` lines. */
function referenceEntries(markdown: string): Map<string, { line: number; body: string }> {
  const entries = new Map<string, { line: number; body: string }>();
  const lines = markdown.split("\n");
  let current: { key: string; line: number; body: string[] } | null = null;
  const flush = () => {
    if (current) entries.set(current.key, { line: current.line, body: current.body.join("\n") });
  };
  lines.forEach((l, i) => {
    const h = /^#{2,4}\s/.exec(l);
    if (!h) return void current?.body.push(l);
    flush();
    const k = /^#{2,4}\s+\[(S\d+[a-z]?)\]/.exec(l);
    current = k ? { key: k[1]!, line: i + 1, body: [l] } : null;
  });
  flush();
  return entries;
}

const files = repoFiles();

describe("the repository's documents", () => {
  it("name no path of a development machine, no folder and no document outside the repository", () => {
    const hits: string[] = [];
    for (const f of files) {
      f.text.split("\n").forEach((l, i) => {
        for (const { what, re } of FORBIDDEN) if (re.test(l)) hits.push(`${f.path}:${i + 1}: ${what}: ${l.trim().slice(0, 160)}`);
      });
    }
    expect(hits).toEqual([]);
  });

  describe(`source keys and ${REFERENCES}`, () => {
    const refs = files.find((f) => f.path === REFERENCES);
    const entries = referenceEntries(refs?.text ?? "");
    const citations = files.filter((f) => f.path !== REFERENCES).flatMap((f) => citedKeys(f.text).map((c) => ({ ...c, path: f.path })));

    it(`${REFERENCES} exists and the repository cites sources`, () => {
      expect(refs, `${REFERENCES} is missing`).toBeDefined();
      expect(citations.length).toBeGreaterThan(0);
    });

    it("every cited key has an entry", () => {
      const missing = citations.filter((c) => !entries.has(c.key)).map((c) => `${c.path}:${c.line}: [${c.key}] has no entry in ${REFERENCES}`);
      expect(missing).toEqual([]);
    });

    it("every entry gives the title, authors or project, year and what is used, and is cited", () => {
      const problems: string[] = [];
      const cited = new Set(citations.map((c) => c.key));
      for (const [key, { line, body }] of entries) {
        const field = (name: string) => new RegExp(`^- \\*\\*${name}:\\*\\*\\s*\\S`, "m").test(body);
        for (const name of ["Title", "By", "Year", "Used"]) if (!field(name)) problems.push(`${REFERENCES}:${line}: [${key}] has no "- **${name}:**" line`);
        if (!/^- \*\*Year:\*\*.*\b(19|20)\d\d\b/m.test(body)) problems.push(`${REFERENCES}:${line}: [${key}]: the Year line names no year`);
        if (!cited.has(key)) problems.push(`${REFERENCES}:${line}: [${key}] is cited nowhere in the repository`);
      }
      expect(problems).toEqual([]);
    });
  });
});

describe("citedKeys", () => {
  it("reads single keys, lists, ranges and -logs, and ignores index expressions", () => {
    const keys = (t: string) => citedKeys(t).map((c) => c.key);
    expect(keys("as UVM does [S1]; see [S14, S28] and [S36, S37, B2]")).toEqual(["S1", "S14", "S28", "S36", "S37"]);
    expect(keys("defaults [S1–S4] and logs [S14-logs]")).toEqual(["S1", "S2", "S3", "S4", "S14"]);
    expect(keys("table[S1] and x[S2] are code, [see S3] is prose")).toEqual([]);
  });
});
