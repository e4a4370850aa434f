import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../util/process.js";
import { cacheDir, repoRoot, toolPath } from "../../util/tools.js";

const sdkVersion = (JSON.parse(readFileSync(join(repoRoot, "node_modules/@pulumi/pulumi/package.json"), "utf8")) as { version: string }).version;

describe("tools installed by scripts/setup.sh", () => {
  it.each([
    ["pulumi", ["version"], new RegExp(`^v${sdkVersion.replace(/\./g, "\\.")}\\b`)],
    ["restic", ["version"], /^restic 0\.18\.\d+ /],
    ["rest-server", ["--version"], /rest-server 0\.14\.\d+/],
    ["govc", ["version"], /^govc /],
    ["vcsim", ["-h"], /Usage of .*vcsim/],
  ])("%s resolves through the set-up's bin folder and answers", async (name, args, pattern) => {
    const path = toolPath(name);
    expect(path.startsWith(join(cacheDir(), "bin"))).toBe(true);
    const res = await run(path, args);
    expect(res.stdout + res.stderr).toMatch(pattern);
  });
});
