import { mkdirSync, openSync, readFileSync, rmSync, writeSync, closeSync, fsyncSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { DcctlError, ExitCode } from "../../util/errors.js";
import { isAlive } from "../../util/process.js";

/**
 * One DR run at a time per scope (e.g. the secondary site): a lock file made with O_EXCL. A lock whose process is
 * gone from this machine (the run crashed) is stale and is taken over, with a note; a live one ends with exit 3.
 */
interface LockInfo {
  runId: string;
  pid: number;
  host: string;
  since: string;
}

export interface HeldLock {
  path: string;
  /** Set when a crashed run's lock was taken over. */
  tookOver?: LockInfo;
  release(): void;
}

function readLock(path: string): LockInfo | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as LockInfo;
  } catch {
    return undefined;
  }
}

/** The run id holding a scope's lock, if its process is alive on this machine. */
export function lockHolder(dir: string, scope: string): string | undefined {
  const held = readLock(lockPath(dir, scope));
  return held && (held.host !== hostname() || isAlive(held.pid)) ? held.runId : undefined;
}

export function lockPath(dir: string, scope: string): string {
  return join(dir, `${scope.replace(/[^A-Za-z0-9_.-]/g, "_")}.lock`);
}

export function acquireLock(dir: string, scope: string, runId: string): HeldLock {
  mkdirSync(dir, { recursive: true });
  const path = lockPath(dir, scope);
  const mine: LockInfo = { runId, pid: process.pid, host: hostname(), since: new Date().toISOString() };
  let tookOver: LockInfo | undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o640);
      writeSync(fd, JSON.stringify(mine) + "\n");
      fsyncSync(fd);
      closeSync(fd);
      return {
        path,
        ...(tookOver ? { tookOver } : {}),
        release: () => {
          if (readLock(path)?.pid === process.pid) rmSync(path, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const held = readLock(path);
      // Only a lock of this machine can be proven stale; one from another host (shared state) is left to a human.
      if (held && held.host === hostname() && !isAlive(held.pid)) {
        tookOver = held;
        rmSync(path, { force: true });
        continue;
      }
      const who = held ? `run ${held.runId} (pid ${held.pid} on ${held.host}, since ${held.since})` : "another run";
      throw new DcctlError(`DR scope ${scope} is locked by ${who}; wait for it, or remove ${path} if that run is surely gone`, ExitCode.locked);
    }
  }
  throw new DcctlError(`could not take the lock ${path}`, ExitCode.locked);
}
