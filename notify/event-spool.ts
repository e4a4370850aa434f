import { randomUUID } from "node:crypto";
import { closeSync, fstatSync, fsyncSync, openSync, readFileSync, readSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { makeDir } from "../util/dirs.js";
import { syncDir, writeAtomic } from "../util/files.js";
import { tryLock, type Lock, type LockHolder } from "../util/lock.js";
import { CATALOGUE, type FeedEvent } from "./events.js";

/**
 * The site's spool of events for the SOC's collectors, under `<stateDir>/events/`:
 *
 *   spool.jsonl   a header line naming this spool ({"spool":"<uuid>"}), then one event per line, appended in order
 *   cursors.json  per collector: the byte offset up to which it has received the spool, and how its last try went
 *   locks/        "spool" (one appender, or the compaction, at a time) and "send" (one sender at a time)
 *
 * An append is one write(2) of whole lines with O_APPEND under the lock "spool", fsynced before the caller goes on:
 * appenders in several processes never interleave, and what was appended survives a crash of the machine. A crash mid-write can leave the
 * last line torn (no newline): a sender never reads past the last newline, so the torn bytes are never sent, and the
 * next append ends them with a newline and adds a DCCTL-9001 event saying that one event was lost there. A line that
 * is no event (the torn start) is skipped. Nothing before it is touched.
 *
 * Collectors move their own cursors; once every collector has all of the spool, the sender removes the file under
 * the exclusive lock (no append is half-way then). The header's uuid tells a new spool from the old one, so that a
 * crash between that removal and the reset of the cursors cannot apply an old offset to a new file.
 */

export const SPOOL_FILE = "spool.jsonl";

/** How long an append waits for the lock (another append's write and fsync, or a compaction's unlink). */
const APPEND_LOCK_WAIT_MS = 2_000;

export interface SinkCursor {
  /** Bytes of the spool this collector has received. */
  offset: number;
  /** Events it received in all, and when it last did (ISO). */
  sent: number;
  lastSentAt?: string;
  /** The last try that failed: when, and why (one line). Cleared by a try that succeeds. */
  lastFailedAt?: string;
  lastError?: string;
}

export interface Cursors {
  /** The uuid of the spool the offsets are into; absent: none yet (every offset counts from a new spool's start). */
  spool?: string;
  sinks: Record<string, SinkCursor>;
}

export interface SpooledEvent {
  /** Where its line starts and where the next one does. */
  offset: number;
  end: number;
  event: FeedEvent;
}

export interface SpoolContents {
  /** The spool's uuid; undefined when there is no spool file. */
  spool?: string;
  /** Where the events start (after the header). */
  start: number;
  /** The end of the last whole line: no sender reads past it. */
  end: number;
  events: SpooledEvent[];
  /** Whole lines that are no event (a torn start that a later append ended): skipped. */
  damaged: number;
}

export class EventSpool {
  readonly file: string;
  readonly cursorsFile: string;
  readonly locksDir: string;

  constructor(readonly dir: string) {
    this.file = join(dir, SPOOL_FILE);
    this.cursorsFile = join(dir, "cursors.json");
    this.locksDir = join(dir, "locks");
  }

  /**
   * Appends an event, durably, after every event appended before it by any process. Throws only when the disk says
   * no (a full disk, a read-only state folder): the caller (emitEvent) turns that into a line on stderr.
   */
  append(event: FeedEvent): void {
    makeDir(this.dir);
    const lock = this.appendLock();
    try {
      let fd: number;
      let prefix = "";
      try {
        fd = openSync(this.file, "wx", 0o640);
        prefix = JSON.stringify({ spool: randomUUID(), created: event.at }) + "\n";
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        // Read and append: the end of the file is looked at for a line a crash tore.
        fd = openSync(this.file, "a+", 0o640);
      }
      try {
        const torn = prefix ? 0 : tornTail(fd);
        if (torn > 0) prefix = "\n" + JSON.stringify(damagedEvent(event, torn)) + "\n";
        writeSync(fd, prefix + JSON.stringify(event) + "\n");
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      // A new spool file's name must survive a crash too, or the events in it would go with it.
      if (prefix.startsWith('{"spool"')) syncDir(this.dir);
    } finally {
      if (lock) lock.release();
    }
  }

  /** The spool's events from `offset` (of spool `spool`; another spool's offset counts from this one's start). */
  read(cursor?: { spool?: string; offset: number }): SpoolContents {
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return { start: 0, end: 0, events: [], damaged: 0 };
      throw e;
    }
    const end = bytes.lastIndexOf(0x0a) + 1;
    const headerEnd = bytes.indexOf(0x0a) + 1;
    let spool: string | undefined;
    try {
      const h = JSON.parse(bytes.toString("utf8", 0, headerEnd)) as { spool?: unknown };
      if (typeof h.spool === "string") spool = h.spool;
    } catch {
      // A spool whose header is torn holds nothing else: the first append wrote both at once.
    }
    const start = headerEnd;
    let at = cursor && cursor.spool === spool && cursor.offset >= start && cursor.offset <= end ? cursor.offset : start;
    const events: SpooledEvent[] = [];
    let damaged = 0;
    while (at < end) {
      const next = bytes.indexOf(0x0a, at) + 1;
      const line = bytes.toString("utf8", at, next - 1);
      const event = line.trim() === "" ? undefined : parseEvent(line);
      if (event) events.push({ offset: at, end: next, event });
      else if (line.trim() !== "") damaged++;
      at = next;
    }
    return { ...(spool !== undefined ? { spool } : {}), start, end, events, damaged };
  }

  /** The uuid of the spool there now; undefined when there is none (or its header is torn). */
  id(): string | undefined {
    let fd: number;
    try {
      fd = openSync(this.file, "r");
    } catch {
      return undefined;
    }
    try {
      const buf = Buffer.alloc(256);
      const n = readSync(fd, buf, 0, buf.length, 0);
      const nl = buf.subarray(0, n).indexOf(0x0a);
      const h = JSON.parse(buf.toString("utf8", 0, nl < 0 ? n : nl)) as { spool?: unknown };
      return typeof h.spool === "string" ? h.spool : undefined;
    } catch {
      return undefined;
    } finally {
      closeSync(fd);
    }
  }

  cursors(): Cursors {
    try {
      const c = JSON.parse(readFileSync(this.cursorsFile, "utf8")) as Partial<Cursors>;
      return { ...(typeof c.spool === "string" ? { spool: c.spool } : {}), sinks: c.sinks && typeof c.sinks === "object" ? c.sinks : {} };
    } catch {
      return { sinks: {} };
    }
  }

  saveCursors(c: Cursors): void {
    writeAtomic(this.cursorsFile, JSON.stringify(c, null, 1) + "\n", 0o640);
  }

  /**
   * Removes the spool once every named collector has all of it: under the exclusive lock, so that no append is
   * between its open and its write; then points the cursors at no spool. False when it is not the time (or an
   * append holds the lock: the next pass removes it).
   */
  compact(c: Cursors, sinks: string[]): boolean {
    const now = this.read({ ...(c.spool !== undefined ? { spool: c.spool } : {}), offset: 0 });
    if (now.spool === undefined || c.spool !== now.spool || sinks.length === 0) return false;
    if (!sinks.every((s) => (c.sinks[s]?.offset ?? 0) === now.end)) return false;
    const lock = tryLock(this.locksDir, "spool", { mode: "exclusive" });
    if (!isLock(lock)) return false;
    try {
      const again = this.read({ spool: now.spool, offset: now.end });
      // An append got in between the look and the lock, or the last line is still torn: not now.
      if (again.end !== now.end || again.spool !== now.spool || fileSize(this.file) !== now.end) return false;
      unlinkSync(this.file);
      syncDir(this.dir);
      delete c.spool;
      for (const s of Object.values(c.sinks)) s.offset = 0;
      this.saveCursors(c);
      return true;
    } finally {
      lock.release();
    }
  }

  /**
   * One appender at a time: the end of the file it looks at for a torn line must be another append's whole end, not
   * the half of a write still being copied in (a write of several pages shows page by page). An append holds it for
   * a write and an fsync; past the wait (a holder stopped mid-way), the append goes on unlocked: at worst a DCCTL-9001
   * that was not needed, never a lost event.
   */
  private appendLock(): Lock | undefined {
    const deadline = Date.now() + APPEND_LOCK_WAIT_MS;
    for (let delay = 2; ; delay = Math.min(delay * 2, 100)) {
      const got = tryLock(this.locksDir, "spool", { mode: "exclusive" });
      if (isLock(got)) return got;
      if (Date.now() >= deadline) return undefined;
      // A synchronous pause: the append must be on disk before emitEvent returns.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, delay);
    }
  }
}

function isLock(x: Lock | LockHolder): x is Lock {
  return "release" in x;
}

/** How many bytes follow the spool's last newline: a line a crash cut short (0 when it ends whole). */
function tornTail(fd: number): number {
  const size = fstatSync(fd).size;
  if (size === 0) return 0;
  const chunk = Math.min(size, 1 << 20);
  const buf = Buffer.alloc(chunk);
  readSync(fd, buf, 0, chunk, size - chunk);
  if (buf[chunk - 1] === 0x0a) return 0;
  const nl = buf.lastIndexOf(0x0a);
  return nl < 0 ? chunk : chunk - nl - 1;
}

/** The DCCTL-9001 event that marks where a torn line was, written by the append that found it. */
function damagedEvent(next: FeedEvent, bytes: number): FeedEvent {
  const { v, at, site, host, pid, version, user, sudoUser } = next;
  return {
    v,
    uid: randomUUID(),
    id: CATALOGUE["feed.damaged"].id,
    kind: "feed.damaged",
    at,
    severity: CATALOGUE["feed.damaged"].severity,
    site,
    host,
    pid,
    version,
    user,
    ...(sudoUser !== undefined ? { sudoUser } : {}),
    action: CATALOGUE["feed.damaged"].title,
    target: "event spool",
    outcome: "detected",
    message: `event spool damaged: ${bytes} bytes of an event torn by a crash were skipped; the events before and after it are intact`,
    data: { bytes: String(bytes) },
  };
}

function parseEvent(line: string): FeedEvent | undefined {
  try {
    const e = JSON.parse(line) as Partial<FeedEvent>;
    return e.v === 1 && typeof e.uid === "string" && typeof e.id === "string" && typeof e.at === "string" ? (e as FeedEvent) : undefined;
  } catch {
    return undefined;
  }
}

function fileSize(path: string): number {
  const fd = openSync(path, "r");
  try {
    return fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
}

