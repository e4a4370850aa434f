import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../util/tools.js";
import { testLab } from "../helpers/lab.js";

/**
 * The README's main job as a new user meets it: `npm run demo`'s script on a lab of its own, then every command it
 * prints at its end, typed as printed in a fresh shell that has only sourced what the demo said to source.
 */
const t = testLab("lab-demo");

afterAll(() => {
  t.lab(["down"]);
  rmSync(t.dir, { recursive: true, force: true });
});

/** The "To look around" lines of the demo's output, without their comments. */
function lookAroundCommands(out: string): string[] {
  const block = out.slice(out.indexOf("To look around"), out.indexOf("To lose the primary"));
  return block
    .split("\n")
    .slice(1)
    .map((l) => l.replace(/\s+# .*$/, "").trim())
    .filter(Boolean);
}

describe("the demo and the commands it prints", () => {
  it("runs, and every command it prints at its end runs as printed", () => {
    const demo = spawnSync(process.execPath, [join(repoRoot, "dist", "scripts", "demo.js")], { env: t.env, encoding: "utf8", timeout: 600_000 });
    expect(demo.status, demo.stdout.slice(-2000) + demo.stderr.slice(-2000)).toBe(0);
    expect(demo.stdout).toMatch(/^# DR drill \S+: OK/m);
    const commands = lookAroundCommands(demo.stdout);
    expect(commands[0]).toBe(`source ${join(t.dir, "env")}`);
    expect(commands.length).toBeGreaterThanOrEqual(8);

    // A shell that knows nothing of the lab or of this checkout: no DCCTL_* and a PATH without any dcctl on it.
    const bare: NodeJS.ProcessEnv = { HOME: process.env.HOME ?? "/root", PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8" };
    const [source, ...rest] = commands;
    for (const command of rest) {
      const res = spawnSync("bash", ["-c", `${source} && ${command}`], { env: bare, encoding: "utf8", input: "", timeout: 120_000 });
      expect(res.status, `${command}\n${res.stdout}${res.stderr}`).toBe(0);
      expect(res.stderr, command).not.toMatch(/not running|command not found|No such file/);
    }
    const status = spawnSync("bash", ["-c", `${source} && dcctl lab status`], { env: bare, encoding: "utf8" });
    expect(status.stdout).toMatch(/lab-db-01/);
  });
});
