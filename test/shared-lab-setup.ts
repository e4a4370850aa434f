import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { labNetId } from "../lab/network.js";
import type { LabState } from "../lab/state.js";
import { isRunning } from "../util/process.js";
import { mainJs } from "./helpers/cli.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** The folder of the lab every lab test file of this run shares (test/helpers/lab.ts: sharedLab). */
    sharedLabDir: string;
  }
}

/**
 * A two-site lab costs minutes to bring up, so one run of the tests brings up one, in the first file that needs it,
 * and every lab test file uses it, putting back what it changes. Here, after the last file: `lab down`, and the proof
 * that it leaves nothing behind (no server, namespace or freezer group; nothing reachable) — a failure of that fails
 * the run.
 */
export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(join(tmpdir(), "dcctl-lab-shared-"));
  project.provide("sharedLabDir", dir);
  return () => {
    const problems: string[] = [];
    try {
      const stateFile = join(dir, "lab.json");
      if (!existsSync(stateFile)) return;
      const state = JSON.parse(readFileSync(stateFile, "utf8")) as LabState;
      const env = { ...process.env, DCCTL_LAB_DIR: dir };
      const down = spawnSync(process.execPath, [mainJs, "lab", "down"], { env, encoding: "utf8", timeout: 300_000 });
      if (down.status !== 0) problems.push(`lab down failed (exit ${down.status}): ${down.stderr}`);
      // Every server stopped by its supervisor: none left for `lab down` to kill.
      if (/leftover/.test(down.stdout + down.stderr)) problems.push(`lab down had to kill leftovers: ${down.stdout}`);
      const alive = state.services.filter((s) => isRunning(s.pid)).map((s) => s.name);
      if (alive.length) problems.push(`still running after lab down: ${alive.join(", ")}`);
      const id = labNetId(dir);
      const namespaces = existsSync("/run/netns") ? readdirSync("/run/netns").filter((n) => n.startsWith(`${id}-`)) : [];
      if (namespaces.length) problems.push(`namespaces left after lab down: ${namespaces.join(", ")}`);
      const freezers = existsSync("/sys/fs/cgroup/freezer") ? readdirSync("/sys/fs/cgroup/freezer").filter((n) => n.startsWith(id)) : [];
      if (freezers.length) problems.push(`freezer groups left after lab down: ${freezers.join(", ")}`);
      // A command aimed at the lab once it is down fails at once, sending nothing anywhere.
      const stray = spawnSync(process.execPath, [mainJs, "lab", "exec", "primary", "--", "true"], { env, encoding: "utf8" });
      if (stray.status !== 1 || !stray.stderr.includes("the lab is not running")) problems.push(`lab exec after lab down: exit ${stray.status}: ${stray.stderr}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      if (problems.length) {
        process.stderr.write(`the shared lab (${dir}) did not go down cleanly:\n${problems.map((p) => `  ${p}\n`).join("")}`);
        process.exitCode = 1;
      }
    }
  };
}
