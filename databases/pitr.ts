import { InputError } from "../util/errors.js";
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
  measuredAt: string;
}

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

/**
 * A point in time as an operator types it: ISO 8601 with its offset (2026-12-05T10:59:00+07:00, or Z). A time
 * without an offset would mean different moments at the two sites and to the management host's clock, so it is refused.
 */
export function parsePointInTime(text: string, flag: string, now: Date = new Date()): Date {
  const iso = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})$/i.exec(text.trim());
  if (!iso) throw new InputError([`${flag} ${JSON.stringify(text)}: not a time: give ISO 8601 with an offset, e.g. 2026-12-05T10:59:00+07:00 or …Z`]);
  // Seconds are optional: an absent one reads NaN, which no comparison below fails on.
  const [, y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0] = iso.map(Number);
  // Date rolls 30 February over into March: the calendar is checked on its own fields.
  const day = new Date(Date.UTC(y, mo - 1, d));
  const when = new Date(text.trim().replace(" ", "T"));
  if (Number.isNaN(when.getTime()) || day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d || h > 23 || mi > 59 || sec > 59) {
    throw new InputError([`${flag} ${JSON.stringify(text)}: no such time`]);
  }
  if (when.getTime() > now.getTime()) throw new InputError([`${flag} ${text}: is in the future (now ${now.toISOString()})`]);
  return when;
}

/** Refuses a point the archive cannot reach, before anything is touched: one line naming what it can reach. */
export function checkCovered(status: ArchiveStatus, target: Date, flag: string): void {
  if (!status.earliest || !status.latest) throw new InputError([`${flag}: the archive of ${status.host} has no base backup yet: run dcctl pitr base-backup --host ${status.host}`]);
  const range = `the archive of ${status.host} covers ${status.earliest} to ${status.latest} (dcctl restore --points)`;
  if (target.getTime() < Date.parse(status.earliest)) throw new InputError([`${flag} ${target.toISOString()}: before the oldest base backup's end; ${range}`]);
  if (target.getTime() > Date.parse(status.latest)) throw new InputError([`${flag} ${target.toISOString()}: past the newest change archived; ${range}`]);
}
