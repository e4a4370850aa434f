import { spawn, spawnSync, type ChildProcessByStdio } from "node:child_process";
import { appendFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { exitStatus } from "../../util/process.js";
import { repoRoot } from "../../util/tools.js";

/** The built CLI. `npm test` builds it (scripts/setup.sh runs tsc) before vitest starts. */
export const mainJs = join(repoRoot, "dist", "cli", "main.js");

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

function needBuilt(): void {
  if (!existsSync(mainJs)) throw new Error(`${mainJs} is missing: run npm run build (npm test does it first)`);
}

/** Runs `dcctl ARGS` as an operator would, from the repository root, with no terminal. */
export function dcctl(args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 600_000): CliRun {
  needBuilt();
  return runCommand(process.execPath, [mainJs, ...args], env, timeoutMs, args);
}

/**
 * Runs a command to its end, its exit status as a shell gives it (a signal's death is 128 + its number). With
 * DCCTL_TEST_TIMING=FILE each run adds a line with its seconds there: where a test's minutes go, for whoever trims
 * the suite.
 */
export function runCommand(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 600_000, shown: string[] = [cmd, ...args]): CliRun {
  const t0 = Date.now();
  const res = spawnSync(cmd, args, { cwd: repoRoot, env, encoding: "utf8", timeout: timeoutMs });
  const code = exitStatus(res.status, res.signal);
  const timing = process.env.DCCTL_TEST_TIMING;
  if (timing) appendFileSync(timing, `${new Date(t0).toISOString()} ${((Date.now() - t0) / 1000).toFixed(1)} s exit ${code} ${shown.join(" ").slice(0, 160)}\n`);
  return { code, stdout: res.stdout, stderr: res.stderr };
}

export interface CliChild {
  /** The dcctl process, for a test that kills it mid-way. */
  child: ChildProcessByStdio<null, Readable, Readable>;
  /** Its exit code (1 when a signal ended it) and all it wrote, once it has exited and closed its output. */
  done: Promise<CliRun>;
}

/** Starts `dcctl ARGS` like {@link dcctl} without waiting for it: for runs side by side, or one a test kills. */
export function startDcctl(args: string[], env: NodeJS.ProcessEnv = process.env): CliChild {
  needBuilt();
  const child = spawn(process.execPath, [mainJs, ...args], { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const done = new Promise<CliRun>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
  return { child, done };
}
