import { InputError } from "../util/errors.js";
import { formatInZone, instantOfWallTime, offsetText, zoneOffsetMinutes } from "../util/time-zone.js";
import type { Executor } from "../hosts/executor.js";
import type { SiteHost } from "../inventory/index.js";
import type { ReplicationAccount } from "./replication.js";

/**
 * Continuous archiving for point-in-time recovery: what an engine's archive (PostgreSQL: Barman, streaming the WAL
 * to the site's management host) does, in the terms `dcctl pitr` and `dcctl restore --at/--before` speak.
 */

/** Where a site keeps its archives (on the management host dcctl runs on), and how they log in to the servers. */
export interface ArchiveHome {
  /** The folder of this engine's archive: its tool's configuration, catalogue and data. */
  dir: string;
  /** The site archiving (a slot and a receiver of its own at each server, so both sites pull their own copy). */
  site: string;
  /** The account the archive streams and takes base backups with (the replication account). */
  account: ReplicationAccount;
  log(line: string): void;
}

/** A database server whose changes are archived, and what its policy asks of the archive. */
export interface ArchivedServer {
  host: SiteHost;
  /** The SSH connection to the server's host (its SQL, to prepare the account and measure the lag). */
  exec: Executor;
  /** Base backups (and the changes since) kept for point-in-time recovery this many days back. */
  recoveryWindowDays: number;
}

/** How one server's archive stands. */
export interface ArchiveStatus {
  host: string;
  /** Whether the archive receives the server's changes as they are written, now. */
  receiving: boolean;
  /** False when the server did not answer the probe within its time limit (lost, or frozen): what is archived here stands. */
  answered?: boolean;
  /** Seconds between the server's newest change and its arrival in the archive: the live RPO. Absent when unknown. */
  lagSeconds?: number;
  /** The oldest and the newest point a restore can reach (ISO); absent before the first base backup. */
  earliest?: string;
  latest?: string;
  /** Base backups in the archive, and the newest one's end (ISO). */
  baseBackups: number;
  newestBaseBackup?: string;
  /** One line each: why it is not receiving, what the server said. */
  notes: string[];
  /** Stretches the archive lacks after its oldest base backup (a receiver down longer than the server kept its log). */
  gaps?: ArchiveGap[];
  measuredAt: string;
}

/**
 * A stretch of the server's log the archive lacks: no point inside it can be reached, nor any after it until a base
 * backup taken after it (whose log the archive holds from its start).
 */
export interface ArchiveGap {
  /** What is missing: "WAL segment" or "binary log file", and the first one missing (its name). */
  what: string;
  missing: string;
  /** How many are missing in a row, and the file the archive holds just before them (absent: none before). */
  count: number;
  before?: string;
  /** The newest point reachable before the gap (its last transaction, else that file's time; ISO). */
  from?: string;
  /** The end of the first base backup that began after the gap: points from there on are reachable again (ISO). */
  resumesAt?: string;
}

/** A gap said in one line: what is missing, and the span of points it makes unreachable. */
export function gapText(host: string, g: ArchiveGap): string {
  const missing = g.count > 1 ? `${g.count} ${g.what}s from ${g.missing}` : `${g.what} ${g.missing}`;
  return `the archive of ${host} lacks ${missing}${g.before ? ` (after ${g.before})` : ""}: no point from ${g.from ?? "its start"} to ${g.resumesAt ?? "now"} can be reached${g.resumesAt ? " (the next base backup's end)" : " (until a base backup after it: dcctl pitr base-backup)"}`;
}

/** Where a recovered scratch server's data folder is made on its host (databases/scratch.ts). */
export const SCRATCH_PREFIX = "/var/tmp/dcctl-pitr-";

/** A point-in-time recovery into a scratch server of its own. */
export interface RecoverOptions {
  /** The point: recover every transaction committed at or before it (`inclusive`), or strictly before it. */
  target: Date;
  /** The point as the operator gave it (ISO 8601 with offset): to the microsecond, where a Date keeps milliseconds. */
  targetText: string;
  inclusive: boolean;
  /** The host the recovered server runs on, its SSH connection, and the port it listens on (at the host's database address). */
  onto: SiteHost;
  ontoExec: Executor;
  port: number;
  /** The database the caller wants back: checked to be there once recovered. */
  db: string;
  /**
   * Load the recovered database into the target host's own server under this name (replacing one of that name), then
   * stop and remove the scratch server: what a DR run checks and carries on with, as it does a restored dump.
   */
  into?: string;
}

export interface RecoverResult {
  host: string;
  /** The base backup it started from (the tool's id) and where its data lives on the target. */
  baseBackup: string;
  /** When that base backup ended (ISO): the recovered data is complete at least up to it. */
  baseBackupEnd?: string;
  dataDir: string;
  address: string;
  port: number;
  /** The point asked for, and where recovery stopped: before the first transaction past it, and the last one applied. */
  target: string;
  stoppedBefore?: { transaction: string; committedAt: string };
  lastTransactionAt?: string;
  /** The argv that stops the recovered server on its host (none once it is loaded `into` the host's own server). */
  stop: string[];
  /** The database of the host's own server it was loaded into (RecoverOptions.into); the scratch server is gone then. */
  into?: string;
}

/** Where a time without an offset is read: the site's zone (inventory `timeZone:`), and the site it is of. */
export interface SiteClock {
  site: string;
  timeZone?: string;
}

/** A point as read: the instant, and the text PostgreSQL is given (ISO 8601 with its offset, to the microsecond). */
export interface PointRead {
  at: Date;
  text: string;
  /** The digits after the second as typed (a Date keeps milliseconds; the text keeps microseconds). */
  fraction?: string;
}

/**
 * A point in time as an operator types it: ISO 8601 with its offset (2026-12-05T10:59:00+07:00, or Z), or the site's
 * wall clock without one (2026-12-05 10:59:00), read in the site's `timeZone:`. A site without one has no wall clock
 * to read it in (the management host's own zone could differ from the operator's), so it is refused.
 */
export function readPointInTime(text: string, flag: string, o: { clock?: SiteClock; now?: Date } = {}): PointRead {
  const now = o.now ?? new Date();
  const trimmed = text.trim();
  const iso = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}:?\d{2})?$/i.exec(trimmed);
  const zone = o.clock?.timeZone;
  const example = `e.g. 2026-12-05T10:59:00+07:00 or …Z${zone ? `, or ${o.clock?.site ?? "the site"}'s wall clock (${zone}) without one: 2026-12-05 10:59:00` : ""}`;
  if (!iso) throw new InputError([`${flag} ${JSON.stringify(text)}: not a time: give ISO 8601 with an offset, ${example}`]);
  // Seconds are optional: an absent one reads NaN, which no comparison below fails on.
  const [, y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0] = iso.map(Number);
  const fraction = iso[7];
  const offset = iso[8];
  // Date rolls 30 February over into March: the calendar is checked on its own fields.
  const day = new Date(Date.UTC(y, mo - 1, d));
  if (day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d || h > 23 || mi > 59 || sec > 59) throw new InputError([`${flag} ${JSON.stringify(text)}: no such time`]);
  let at: Date;
  let withOffset: string;
  if (offset !== undefined) {
    at = new Date(trimmed.replace(" ", "T"));
    withOffset = trimmed;
  } else {
    if (!zone) {
      throw new InputError([`${flag} ${JSON.stringify(text)}: not a time: give ISO 8601 with an offset, ${example} (a time without one is read in the site's timeZone:, which site ${o.clock?.site ?? "?"} does not set)`]);
    }
    const whole = instantOfWallTime(zone, { year: y, month: mo, day: d, hour: h, minute: mi, second: Number.isNaN(sec) ? 0 : sec });
    if (whole === "skipped") throw new InputError([`${flag} ${JSON.stringify(text)}: no such time in ${zone} (its clocks skipped it)`]);
    if (whole === "repeated") throw new InputError([`${flag} ${JSON.stringify(text)}: happened twice in ${zone} (its clocks went back): give the offset`]);
    at = new Date(whole + (fraction ? Math.floor(Number(`0.${fraction}`) * 1000) : 0));
    withOffset = `${trimmed.replace("T", " ")}${Number.isNaN(sec) ? ":00" : ""}${offsetText(zoneOffsetMinutes(zone, whole))}`;
  }
  if (Number.isNaN(at.getTime())) throw new InputError([`${flag} ${JSON.stringify(text)}: no such time`]);
  if (at.getTime() > now.getTime()) throw new InputError([`${flag} ${text}: is in the future (now ${now.toISOString()}${zone ? `, ${formatInZone(now.getTime(), zone)} in ${zone}` : ""})`]);
  return { at, text: withOffset, ...(fraction ? { fraction } : {}) };
}

/** As readPointInTime, the instant only. */
export function parsePointInTime(text: string, flag: string, now: Date = new Date(), clock?: SiteClock): Date {
  return readPointInTime(text, flag, { now, ...(clock ? { clock } : {}) }).at;
}

/** The point said exactly, in UTC and on the site's wall clock: `2026-12-05T03:59:00.123456Z (UTC), 2026-12-05 10:59:00.123456+07:00 (Asia/Ho_Chi_Minh)`. */
export function pointText(p: Pick<PointRead, "at" | "fraction">, timeZone?: string): string {
  const ms = p.at.getTime();
  const whole = Math.floor(ms / 1000) * 1000;
  const frac = p.fraction ?? String(ms - whole).padStart(3, "0");
  const utc = `${new Date(whole).toISOString().slice(0, 19)}${/^0*$/.test(frac) ? "" : `.${frac}`}Z`;
  return `${utc} (UTC)${timeZone ? `, ${formatInZone(ms, timeZone, frac)} (${timeZone})` : ""}`;
}

/** Refuses a point the archive cannot reach, before anything is touched: one line naming what it can reach. */
export function checkCovered(status: ArchiveStatus, target: Date, flag: string): void {
  if (!status.earliest || !status.latest) throw new InputError([`${flag}: the archive of ${status.host} has no base backup yet: run dcctl pitr base-backup --host ${status.host}`]);
  const range = `the archive of ${status.host} covers ${status.earliest} to ${status.latest} (dcctl restore --points)`;
  if (target.getTime() < Date.parse(status.earliest)) throw new InputError([`${flag} ${target.toISOString()}: before the oldest base backup's end; ${range}`]);
  if (target.getTime() > Date.parse(status.latest)) throw new InputError([`${flag} ${target.toISOString()}: past the newest change archived; ${range}`]);
  for (const g of status.gaps ?? []) {
    const from = g.from === undefined ? Date.parse(status.earliest) : Date.parse(g.from);
    const resumes = g.resumesAt === undefined ? Infinity : Date.parse(g.resumesAt);
    if (target.getTime() > from && target.getTime() < resumes) throw new InputError([`${flag} ${target.toISOString()}: ${gapText(status.host, g)}; nothing was touched`]);
  }
}
