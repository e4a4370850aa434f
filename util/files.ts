import { closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { makeDir } from "./dirs.js";

/**
 * Writes a file whole or not at all: into a temporary file in the same folder, synced, then renamed over the old one
 * (atomic on POSIX), so a reader or a crash sees the old content or the new, never half of it.
 */
export function writeAtomic(path: string, content: string, mode = 0o644): void {
  makeDir(dirname(path));
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, "w", mode);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
