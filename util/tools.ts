import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The checkout this code runs from (the source tree or its dist/ build). */
export const repoRoot: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("dcctl: cannot find package.json above " + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
})();

/** Where scripts/setup.sh keeps the Go-built tools (shared by every clone). Keep in step with setup.sh. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DCCTL_CACHE) return resolve(env.DCCTL_CACHE);
  return join(env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "dcctl");
}

/**
 * Folders put first on PATH for every tool dcctl starts: an installed release's own (libexec/, with the Node it runs
 * on, so that the policy analyzer runs on it too), then set-up's.
 */
export function toolPathDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const shipped = join(repoRoot, "libexec");
  return [...(existsSync(shipped) ? [shipped] : []), join(cacheDir(env), "bin")];
}

let version: string | undefined;

/** This dcctl's version, from its package.json. */
export function dcctlVersion(): string {
  version ??= (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string }).version;
  return version;
}

/** The environment for child processes: PATH with the tool folders in front, everything else as given. */
export function toolEnv(extra: Record<string, string | undefined> = {}, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const rest = (base.PATH ?? "").split(delimiter).filter((p) => p && !toolPathDirs(base).includes(p));
  return { ...base, ...extra, PATH: [...toolPathDirs(base), ...rest].join(delimiter) };
}

/** The absolute path of a tool that setup installed, or the bare name (to be found on PATH). */
export function toolPath(name: string, env: NodeJS.ProcessEnv = process.env): string {
  for (const dir of toolPathDirs(env)) {
    const candidate = join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return name;
}
