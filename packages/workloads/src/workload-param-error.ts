/** One problem with a generator's parameters: `path` names the field (e.g. "stride"), `message` the rule. */
export interface ParamIssue {
  path: string;
  message: string;
}

/**
 * Bad generator parameters. `field` and `rule` describe the first problem; `issues` lists every problem found.
 * Example message: `strided.stride: must be a multiple of granularity (4096), got 1000`.
 */
export class WorkloadParamError extends Error {
  override readonly name = "WorkloadParamError";
  readonly kind: string;
  readonly field: string;
  readonly rule: string;
  readonly issues: readonly ParamIssue[];

  constructor(kind: string, issues: readonly ParamIssue[]) {
    super(issues.map((i) => `${kind}${i.path ? "." + i.path : ""}: ${i.message}`).join("\n"));
    this.kind = kind;
    this.issues = issues;
    this.field = issues[0]?.path ?? "";
    this.rule = issues[0]?.message ?? "";
  }
}
