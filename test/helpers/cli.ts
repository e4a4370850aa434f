import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../../util/tools.js";

/** The built CLI. `npm test` builds it (scripts/setup.sh runs tsc) before vitest starts. */
export const mainJs = join(repoRoot, "dist", "cli", "main.js");

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `dcctl ARGS` as an operator would, from the repository root, with no terminal. */
export function dcctl(args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 600_000): CliRun {
  if (!existsSync(mainJs)) throw new Error(`${mainJs} is missing: run npm run build (npm test does it first)`);
  const res = spawnSync(process.execPath, [mainJs, ...args], { cwd: repoRoot, env, encoding: "utf8", timeout: timeoutMs });
  return { code: res.status ?? 1, stdout: res.stdout, stderr: res.stderr };
}
