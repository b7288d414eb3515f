import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { userCwd } from "./cli-io.js";

describe("userCwd", () => {
  it("is turbo's invocation directory, else npm's INIT_CWD (where the user typed `npm start -- ./my.yaml`) when it is an existing directory, else the cwd", () => {
    const dir = mkdtempSync(join(tmpdir(), "hmmsim-cwd-"));
    expect(userCwd({ INIT_CWD: dir }, "/srv/x/apps/cli")).toBe(dir);
    expect(userCwd({}, "/srv/x/apps/cli")).toBe("/srv/x/apps/cli");
    expect(userCwd({ INIT_CWD: join(dir, "gone") }, "/c")).toBe("/c");
    expect(userCwd({ INIT_CWD: "relative/dir" }, "/c")).toBe("/c");
    expect(userCwd({ INIT_CWD: "" }, "/c")).toBe("/c");
    // Under turbo (npm start): the nested npm's INIT_CWD is apps/cli; turbo's invocation directory wins.
    const root = mkdtempSync(join(tmpdir(), "hmmsim-root-"));
    expect(userCwd({ TURBO_INVOCATION_DIR: root, INIT_CWD: dir }, "/c")).toBe(root);
    expect(userCwd({ TURBO_INVOCATION_DIR: join(root, "gone"), INIT_CWD: dir }, "/c")).toBe(dir);
  });
});
