/** The error of a machine spec with problems (the schema's, the plugins', the runner's), each with its path. */
import { SPEC_LIMITS } from "./spec-limits.js";

export interface SpecIssue {
  /** e.g. "devices[0].memory" ("" for the whole spec). */
  path: string;
  message: string;
}

/**
 * A machine spec with problems; `issues` lists every one, each with its path. The message lists the first
 * SPEC_LIMITS.maxReportedIssues (100) and counts the rest ("… and 87,900 more"), so a spec with 88,000 unknown keys
 * gives a message of a few kilobytes, not megabytes.
 */
export class SpecError extends Error {
  override readonly name = "SpecError";
  constructor(readonly issues: readonly SpecIssue[]) {
    super(formatIssues(issues));
  }
}

function formatIssues(issues: readonly SpecIssue[]): string {
  const max = SPEC_LIMITS.maxReportedIssues;
  const shown = issues.length > max ? issues.slice(0, max) : issues;
  let text = `invalid machine spec (${issues.length.toLocaleString("en-US")} problem${issues.length === 1 ? "" : "s"}):\n` + shown.map((i) => `  ${i.path || "(spec)"}: ${i.message}`).join("\n");
  if (issues.length > max) text += `\n  … and ${(issues.length - max).toLocaleString("en-US")} more (the first ${max} are listed)`;
  return text;
}
