import { closeSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { DcctlError, ExitCode } from "./errors.js";
import { makeDir } from "./dirs.js";
import { procStat } from "./process.js";

/**
 * Lock files that keep two dcctl runs from working on the same host or repository at once.
 *
 * A lock is a folder; a holder is a file in it created with O_EXCL (`exclusive.lock`, or `shared-<pid>-<n>.lock`),
 * holding its pid, the pid's start time and the machine name. A holder whose process is gone (or whose pid now
 * belongs to a younger process) is stale and is removed by the next one who looks. Shared holders (backups into one
 * repository) coexist; an exclusive holder (a job's host, a prune) excludes everyone. Each side first creates its own
 * file and then looks for the other kind, backing off if it finds a live one: two contenders may both back off,
 * but two can never both proceed. A holder may carry its caller's metadata (`meta`, e.g. the DR run id), which
 * `liveHolder` reads back and which a `Lock` reports for the stale holders it broke on the way in.
 */

export class LockedError extends DcctlError {
  constructor(
    message: string,
    /** The live holder in the way. */
    readonly holder?: LockHolder,
  ) {
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
  /** Caller's metadata written into the holder file, e.g. `{ runId }`. */
  meta?: Record<string, string>;
}

export interface Lock {
  readonly path: string;
  /** Stale holders (their process gone) that were removed to take this lock; absent when there were none. */
  readonly brokeStale?: readonly LockHolder[];
  release(): void;
}

export interface LockHolder {
  pid: number;
  start?: string;
  host: string;
  /** When the holder took the lock (ISO time). */
  at?: string;
  meta?: Record<string, string>;
  /** The holder file. */
  file: string;
}

let counter = 0;

/** Takes the lock `<dir>/<name>`; throws LockedError (exit 3) if a live holder keeps it past `waitMs`. */
export async function acquireLock(dir: string, name: string, opts: LockOptions = {}): Promise<Lock> {
  const lockDir = lockFolder(dir, name);
  makeDir(lockDir);
  const mode = opts.mode ?? "exclusive";
  const deadline = Date.now() + (opts.waitMs ?? 0);
  const broken: LockHolder[] = [];
  let delay = 50;
  for (;;) {
    const blocker = tryAcquire(lockDir, mode, opts.meta, broken);
    if (typeof blocker !== "object") return heldLock(blocker, broken);
    if (Date.now() >= deadline) {
      const host = blocker.host === hostname() ? "" : ` on ${blocker.host}`;
      throw new LockedError(`${opts.what ?? name} is locked by another run (pid ${blocker.pid}${host}, ${blocker.file})`, blocker);
    }
    // Jittered back-off, so that two contenders that both backed off do not collide again in step.
    await new Promise((r) => setTimeout(r, delay + Math.random() * delay));
    delay = Math.min(delay * 2, 1_000);
  }
}

/**
 * Takes the lock `<dir>/<name>` now or not at all, without yielding: for a holder that must finish before its caller
 * goes on (an event appended to the spool before the action it announces). The Lock on success; the live holder in
 * the way otherwise. Stale holders are broken on the way in, as acquireLock does.
 */
export function tryLock(dir: string, name: string, opts: Omit<LockOptions, "waitMs" | "what"> = {}): Lock | LockHolder {
  const lockDir = lockFolder(dir, name);
  makeDir(lockDir);
  const broken: LockHolder[] = [];
  const got = tryAcquire(lockDir, opts.mode ?? "exclusive", opts.meta, broken);
  return typeof got === "object" ? got : heldLock(got, broken);
}

function heldLock(file: string, broken: LockHolder[]): Lock {
  let released = false;
  return {
    path: file,
    ...(broken.length ? { brokeStale: broken } : {}),
    release: () => {
      if (released) return;
      released = true;
      unlinkQuietly(file);
    },
  };
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

/** The folder of the lock `<dir>/<name>`. */
export function lockFolder(dir: string, name: string): string {
  return join(dir, safeName(name));
}

/** The first live holder of the lock `<dir>/<name>` (the exclusive one if there is one), or undefined. */
export function liveHolder(dir: string, name: string): LockHolder | undefined {
  const files = holders(lockFolder(dir, name)).sort((a, b) => Number(b.endsWith("exclusive.lock")) - Number(a.endsWith("exclusive.lock")));
  for (const file of files) {
    const holder = readHolder(file);
    if (holder && isAlive(holder)) return holder;
  }
  return undefined;
}

/** The holder file on success; the live holder in the way otherwise. Stale holders removed are added to `broken`. */
function tryAcquire(lockDir: string, mode: LockMode, meta: Record<string, string> | undefined, broken: LockHolder[]): string | LockHolder {
  const mine = join(lockDir, mode === "exclusive" ? "exclusive.lock" : `shared-${process.pid}-${++counter}.lock`);
  for (;;) {
    if (createExclusive(mine, meta)) break;
    // Only exclusive.lock can already exist: is its holder alive?
    const holder = readHolder(mine);
    if (holder && isAlive(holder)) return holder;
    const gone = breakStale(lockDir, mine);
    if (gone) broken.push(gone);
  }
  for (const other of holders(lockDir)) {
    if (other === mine) continue;
    if (mode === "shared" && !other.endsWith("exclusive.lock")) continue;
    const holder = readHolder(other);
    if (holder && isAlive(holder)) {
      unlinkQuietly(mine);
      return holder;
    }
    const gone = breakStale(lockDir, other);
    if (gone) broken.push(gone);
  }
  return mine;
}

function createExclusive(file: string, meta?: Record<string, string>): boolean {
  let fd: number;
  for (let attempt = 0; ; attempt++) {
    try {
      fd = openSync(file, "wx", 0o644);
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EEXIST") return false;
      // The lock's (empty) folder was removed by a releasing holder meanwhile: make it again.
      if (code === "ENOENT" && attempt < 3) {
        makeDir(dirname(file));
        continue;
      }
      throw new DcctlError(`cannot create lock file ${file}: ${(e as Error).message}`);
    }
  }
  try {
    writeSync(fd, JSON.stringify({ pid: process.pid, start: procStat(process.pid)?.start, host: hostname(), at: new Date().toISOString(), ...(meta ? { meta } : {}) }) + "\n");
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Removes a stale holder file. Breakers take `break.lock` first and re-read the holder under it, so that two of
 * them cannot remove one stale file and then, the second one, the fresh lock a third process has just taken.
 * Returns the holder removed, when it could be read.
 */
function breakStale(lockDir: string, file: string): LockHolder | undefined {
  const breaker = join(lockDir, "break.lock");
  if (!createExclusive(breaker)) {
    const b = readHolder(breaker);
    // A breaker that died mid-way would block every later breaker; its own staleness is judged the same way.
    if (!b || !isAlive(b)) unlinkQuietly(breaker);
    return undefined;
  }
  try {
    const holder = readHolder(file);
    if (holder === undefined || !isAlive(holder)) {
      unlinkQuietly(file);
      return holder;
    }
    return undefined;
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
function readHolder(file: string): LockHolder | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  try {
    const v = JSON.parse(text) as { pid?: unknown; start?: unknown; host?: unknown; at?: unknown; meta?: unknown };
    if (typeof v.pid !== "number") return undefined;
    const h: LockHolder = { pid: v.pid, start: typeof v.start === "string" ? v.start : undefined, host: typeof v.host === "string" ? v.host : "", file };
    if (typeof v.at === "string") h.at = v.at;
    if (v.meta && typeof v.meta === "object") h.meta = Object.fromEntries(Object.entries(v.meta).filter((e): e is [string, string] => typeof e[1] === "string"));
    return h;
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
function isAlive(h: LockHolder): boolean {
  if (h.host && h.host !== hostname()) return true;
  try {
    process.kill(h.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const stat = procStat(h.pid);
  // A killed process whose parent died before reaping it stays a zombie until init gets to it: it holds nothing.
  if (stat?.state === "Z") return false;
  return h.start === undefined || stat?.start === undefined || stat.start === h.start;
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
