import { mkdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { DcctlError } from "./errors.js";

/**
 * Creates a folder and its parents, failing with one line that names the folder. Node's own recursive mkdir spins
 * for ever at 100 % CPU where the kernel answers ENOENT for a parent that exists (/proc, /sys), so the walk is ours:
 * each level is made on its own, and any answer but "made" or "already a folder" ends it.
 */
export function makeDir(path: string): void {
  const abs = resolve(path);
  const missing: string[] = [];
  for (let p = abs; ; p = dirname(p)) {
    const kind = entryKind(p);
    if (kind === "dir") break;
    if (kind === "other") throw new DcctlError(`cannot create folder ${abs}: ${p} exists and is not a folder`);
    missing.unshift(p);
    if (dirname(p) === p) break;
  }
  for (const p of missing) {
    try {
      mkdirSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EEXIST" && entryKind(p) === "dir") continue;
      throw new DcctlError(`cannot create folder ${abs}: ${code ?? String(e)} at ${p}`);
    }
  }
}

function entryKind(p: string): "dir" | "other" | "none" {
  try {
    return statSync(p).isDirectory() ? "dir" : "other";
  } catch {
    return "none";
  }
}
