import { rmdirSync } from "node:fs";
import { LockedError, acquireLock as takeLock, liveHolder, lockFolder, type LockHolder } from "../../util/lock.js";
import { DcctlError, ExitCode } from "../../util/errors.js";

/**
 * One DR run at a time per scope (e.g. the secondary site): an exclusive lock of util/lock.ts (the folder
 * `<locks>/<scope>`) whose holder carries the run id. A lock whose process is gone from this machine (the run
 * crashed) is stale and is taken over, with a note; a live one ends with exit 3.
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

function info(h: LockHolder): LockInfo {
  return { runId: h.meta?.runId ?? "?", pid: h.pid, host: h.host, since: h.meta?.since ?? h.at ?? "?" };
}

/** The run id holding a scope's lock, if its process is alive on this machine (or it is another machine's). */
export function lockHolder(dir: string, scope: string): string | undefined {
  return liveHolder(dir, scope)?.meta?.runId;
}

/** The lock folder of a scope. */
export function lockPath(dir: string, scope: string): string {
  return lockFolder(dir, scope);
}

export async function acquireLock(dir: string, scope: string, runId: string): Promise<HeldLock> {
  const path = lockPath(dir, scope);
  try {
    const lock = await takeLock(dir, scope, { mode: "exclusive", what: `DR scope ${scope}`, meta: { runId, since: new Date().toISOString() } });
    const stale = lock.brokeStale?.[0];
    return {
      path: lock.path,
      ...(stale ? { tookOver: info(stale) } : {}),
      release: () => {
        lock.release();
        // Leave no empty folder behind; one a new holder is already in stays (ENOTEMPTY).
        try {
          rmdirSync(path);
        } catch {
          // Not empty, or gone.
        }
      },
    };
  } catch (err) {
    // A live holder here, or any holder from another host (shared state): only a lock of this machine can be
    // proven stale, the rest is left to a human.
    if (!(err instanceof LockedError)) throw err;
    const held = err.holder && info(err.holder);
    const who = held ? `run ${held.runId} (pid ${held.pid} on ${held.host}, since ${held.since})` : "another run";
    throw new DcctlError(`DR scope ${scope} is locked by ${who}; wait for it, or remove ${err.holder?.file ?? path} if that run is surely gone`, ExitCode.locked);
  }
}
