import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { DcctlError, ExitCode } from "../util/errors.js";

/**
 * Lock files that keep two dcctl runs from working on the same host or repository at once.
 *
 * A lock is a folder; a holder is a file in it created with O_EXCL (`exclusive.lock`, or `shared-<pid>-<n>.lock`),
 * holding its pid, the pid's start time and the machine name. A holder whose process is gone (or whose pid now
 * belongs to a younger process) is stale and is removed by the next one who looks. Shared holders (backups into one
 * repository) coexist; an exclusive holder (a job's host, a prune) excludes everyone. Each side first creates its own
 * file and then looks for the other kind, backing off if it finds a live one: two contenders may both back off,
 * but two can never both proceed.
 */

export class LockedError extends DcctlError {
  constructor(message: string) {
    super(message, ExitCode.locked);
  }
}

export type LockMode = "exclusive" | "shared";

export interface LockOptions {
  mode?: LockMode;
  /** Keep trying this long before giving up with LockedError (exit 3). Default 0: fail at once. */
  waitMs?: number;
  /** What the lock protects, for messages, e.g. "job qn-db-01/db-hourly". */
  what?: string;
}

export interface Lock {
  readonly path: string;
  release(): void;
}

interface Holder {
  pid: number;
  start?: string;
  host: string;
  file: string;
}

let counter = 0;

/** Takes the lock `<dir>/<name>`; throws LockedError (exit 3) if a live holder keeps it past `waitMs`. */
export async function acquireLock(dir: string, name: string, opts: LockOptions = {}): Promise<Lock> {
  const lockDir = join(dir, safeName(name));
  mkdirSync(lockDir, { recursive: true });
  const mode = opts.mode ?? "exclusive";
  const deadline = Date.now() + (opts.waitMs ?? 0);
  let delay = 50;
  for (;;) {
    const blocker = tryAcquire(lockDir, mode);
    if (typeof blocker !== "object") {
      const file = blocker;
      let released = false;
      return {
        path: file,
        release: () => {
          if (released) return;
          released = true;
          unlinkQuietly(file);
        },
      };
    }
    if (Date.now() >= deadline) {
      const host = blocker.host === hostname() ? "" : ` on ${blocker.host}`;
      throw new LockedError(`${opts.what ?? name} is locked by another run (pid ${blocker.pid}${host}, ${blocker.file})`);
    }
    // Jittered back-off, so that two contenders that both backed off do not collide again in step.
    await new Promise((r) => setTimeout(r, delay + Math.random() * delay));
    delay = Math.min(delay * 2, 1_000);
  }
}

/** Runs `fn` holding the lock, and releases it afterwards whatever happens. */
export async function withLock<T>(dir: string, name: string, opts: LockOptions, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(dir, name, opts);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}

/** The holder file on success; the live holder in the way otherwise. */
function tryAcquire(lockDir: string, mode: LockMode): string | Holder {
  const mine = join(lockDir, mode === "exclusive" ? "exclusive.lock" : `shared-${process.pid}-${++counter}.lock`);
  for (;;) {
    if (createExclusive(mine)) break;
    // Only exclusive.lock can already exist: is its holder alive?
    const holder = readHolder(mine);
    if (holder && isAlive(holder)) return holder;
    breakStale(lockDir, mine);
  }
  for (const other of holders(lockDir)) {
    if (other === mine) continue;
    if (mode === "shared" && !other.endsWith("exclusive.lock")) continue;
    const holder = readHolder(other);
    if (holder && isAlive(holder)) {
      unlinkQuietly(mine);
      return holder;
    }
    breakStale(lockDir, other);
  }
  return mine;
}

function createExclusive(file: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, "wx", 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw new DcctlError(`cannot create lock file ${file}: ${(e as Error).message}`);
  }
  try {
    writeSync(fd, JSON.stringify({ pid: process.pid, start: processStart(process.pid), host: hostname(), at: new Date().toISOString() }) + "\n");
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Removes a stale holder file. Breakers take `break.lock` first and re-read the holder under it, so that two of
 * them cannot remove one stale file and then, the second one, the fresh lock a third process has just taken.
 */
function breakStale(lockDir: string, file: string): void {
  const breaker = join(lockDir, "break.lock");
  if (!createExclusive(breaker)) {
    const b = readHolder(breaker);
    // A breaker that died mid-way would block every later breaker; its own staleness is judged the same way.
    if (!b || !isAlive(b)) unlinkQuietly(breaker);
    return;
  }
  try {
    const holder = readHolder(file);
    if (holder === undefined || !isAlive(holder)) unlinkQuietly(file);
  } finally {
    unlinkQuietly(breaker);
  }
}

function holders(lockDir: string): string[] {
  try {
    return readdirSync(lockDir)
      .filter((f) => f.endsWith(".lock") && f !== "break.lock")
      .map((f) => join(lockDir, f));
  } catch {
    return [];
  }
}

/** undefined when the file is gone or unreadable (a holder half-written by a process that died at that instant). */
function readHolder(file: string): Holder | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  try {
    const v = JSON.parse(text) as { pid?: unknown; start?: unknown; host?: unknown };
    if (typeof v.pid !== "number") return undefined;
    return { pid: v.pid, start: typeof v.start === "string" ? v.start : undefined, host: typeof v.host === "string" ? v.host : "", file };
  } catch {
    // Being written this instant (alive), or left half-written by a process that died between open and write
    // (stale once it is a few seconds old).
    return Date.now() - mtimeMs(file) > 10_000 ? undefined : { pid: process.pid, host: hostname(), file };
  }
}

/**
 * Whether the holder's process still runs. A lock from another machine (a shared state folder) cannot be
 * checked and counts as alive. A pid reused by a younger process is told apart by its start time.
 */
function isAlive(h: Holder): boolean {
  if (h.host && h.host !== hostname()) return true;
  try {
    process.kill(h.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const start = processStart(h.pid);
  return h.start === undefined || start === undefined || start === h.start;
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); undefined where /proc is not there. */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function mtimeMs(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Already gone.
  }
}

/** Lock names come from job ids and repository names; keep them one path component. */
function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, "_");
}
