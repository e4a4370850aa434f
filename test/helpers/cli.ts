import { spawn, spawnSync, type ChildProcessByStdio } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
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
  const res = spawnSync(process.execPath, [mainJs, ...args], { cwd: repoRoot, env, encoding: "utf8", timeout: timeoutMs });
  return { code: res.status ?? 1, stdout: res.stdout, stderr: res.stderr };
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
