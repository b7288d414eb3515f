/**
 * A machine spec's text (YAML 1.2, so JSON too) to a plain value, in time linear in its size. The `yaml` package's
 * own duplicate-key check compares every key of a mapping with every other (88,000 keys took 30 s), so it is off
 * and duplicates are found here with one Set per mapping; the result is what `parse(text)` gives, and a duplicate
 * key is still an error (with its line). Text over SPEC_LIMITS.maxSpecTextBytes is refused before parsing.
 */
import { type Node, LineCounter, isMap, isScalar, isSeq, parseDocument } from "yaml";
import { type SpecIssue, SpecError } from "./spec-error.js";
import { SPEC_LIMITS } from "./spec-limits.js";

/** Parses spec text; throws SpecError (path "") for text too big, invalid YAML/JSON, or a duplicate key. */
export function parseSpecText(text: string): unknown {
  if (typeof text !== "string") throw new SpecError([{ path: "", message: `expected the spec's text (a string), got ${typeof text}` }]);
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > SPEC_LIMITS.maxSpecTextBytes) {
    throw new SpecError([
      {
        path: "",
        message: `the spec text is ${(bytes / 2 ** 20).toFixed(1)} MiB; a machine spec is at most ${SPEC_LIMITS.maxSpecTextBytes / 2 ** 20} MiB (4096 devices and 4096 links come to about 2 MiB)`,
      },
    ]);
  }
  const lines = new LineCounter();
  let value: unknown;
  try {
    const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: true, lineCounter: lines });
    if (doc.errors.length > 0) throw doc.errors[0];
    const dups = duplicateKeys(doc.contents as Node | null, lines);
    if (dups.length > 0) throw new SpecError(dups);
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    if (e instanceof SpecError) throw e;
    throw new SpecError([{ path: "", message: `not valid YAML/JSON: ${(e as Error)?.message ?? String(e)}` }]);
  }
  return value;
}

/** Every key that repeats in its mapping, with its path and line (an explicit stack: no recursion depth limit). */
function duplicateKeys(root: Node | null, lines: LineCounter): SpecIssue[] {
  const out: SpecIssue[] = [];
  const stack: [unknown, string][] = [[root, ""]];
  while (stack.length > 0) {
    const [node, path] = stack.pop()!;
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const at = path ? `${path}.${key}` : key;
        if (seen.has(key)) {
          const pos = isScalar(pair.key) && pair.key.range ? lines.linePos(pair.key.range[0]) : undefined;
          out.push({ path: at, message: `duplicate key ${JSON.stringify(key)}${pos ? ` (line ${pos.line})` : ""}: a key may appear once in a mapping` });
        }
        seen.add(key);
        stack.push([pair.value, at]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => stack.push([item, `${path}[${i}]`]));
    }
  }
  return out;
}
