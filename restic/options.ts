import type { Readable } from "node:stream";
import type { ProgressClock } from "../util/watchdog.js";
import type { BackupSummary } from "./types.js";

/** What callers hand the Restic wrapper and what it hands back besides restic's own JSON (types.ts). */

/** Where a repository is and how to open it. The password lives in a file; dcctl never holds it on a command line. */
export interface ResticRepo {
  /** A restic repository location, e.g. `rest:http://127.0.0.1:8000/primary/`. May carry credentials; they are redacted in messages. */
  url: string;
  /** A file whose first line is the repository password. */
  passwordFile: string;
  /** HTTP basic auth for a rest-server with an .htpasswd, passed as RESTIC_REST_USERNAME/RESTIC_REST_PASSWORD. */
  rest?: { user: string; passwordFile: string };
}

/** A backup's summary, plus what restic warned about on the way (e.g. a source path that does not exist). */
export type BackupResult = BackupSummary & { warnings: string[] };

export interface ResticOptions {
  /** The restic binary; default: the set-up tool cache, then PATH. */
  bin?: string;
  /** restic's cache folder (RESTIC_CACHE_DIR); default restic's own. */
  cacheDir?: string;
  /** Wait this long for a lock held by another restic (e.g. "2m") instead of failing at once. */
  retryLock?: string;
  /** restic --limit-upload, in KiB/s (0 or absent: no limit), so that a backup does not fill the WAN. */
  limitUploadKiB?: number;
  /** Extra environment for restic (e.g. RESTIC_HOST); must not carry passwords. */
  env?: Record<string, string>;
  /**
   * A backup that makes no progress for this long (no data taken, no file read), or a repository listing, lookup or
   * forget that does not answer within it (unless `listingMs` says otherwise), is killed and fails with
   * ResticStalledError naming where it stood. Absent: restic's own timeouts only. Long maintenance (check, prune,
   * copy) has bounds of its own, given to each call (RunBound).
   */
  stallMs?: number;
  /** A repository listing, lookup or forget that does not answer within this is killed (ResticStalledError). */
  listingMs?: number;
  /**
   * Backups count their stall from this clock's last progress: one clock for the items of a job makes the stall limit
   * the job's, not each item's (a frozen repository costs a job one limit, not one per item).
   */
  progress?: ProgressClock;
  /** Aborting it stops every restic this object runs (SIGINT, then SIGKILL), e.g. when dcctl itself is told to stop. */
  signal?: AbortSignal;
  /** Told one line for each thing done on the side, e.g. a dead process's lock removed. */
  onNote?: (line: string) => void;
  /**
   * restic on other hosts (remote.ts): a path where they have their own, tried before the one on their PATH; and
   * whether dcctl may copy its own there when they have none recent enough (default true).
   */
  hostRestic?: { path?: string; push?: boolean };
  /** Told, at each run of restic on another host, which restic ran there and why (e.g. dcctl's copy, pushed now). */
  onHostRestic?: (line: string) => void;
}

/** A restic lock file's content (`restic cat lock`). */
export interface ResticLock {
  id: string;
  time: string;
  exclusive: boolean;
  hostname: string;
  username?: string;
  pid: number;
}

/** How far a backup has come, from restic's status messages or from the bytes dcctl has streamed into it. */
export interface BackupProgress {
  bytesDone: number;
  filesDone: number;
  /** Known for files restic scans itself, not for a stream. */
  totalBytes?: number;
}

/** Snapshot selection shared by several commands. Tags: a snapshot must carry all of them. */
export interface SnapshotFilter {
  host?: string;
  tags?: string[];
  paths?: string[];
}

export interface BackupOptions {
  tags?: string[];
  /** The host name recorded in the snapshot (default: this machine's). */
  host?: string;
  excludes?: string[];
  excludeFiles?: string[];
  oneFileSystem?: boolean;
  onProgress?: (p: BackupProgress) => void;
}

export interface StdinBackupOptions extends Omit<BackupOptions, "excludes" | "excludeFiles" | "oneFileSystem"> {
  /** The file name the stream is stored under, e.g. `appdb.sql`; it is restored as `/<filename>`. */
  filename: string;
}

/** How a stream producer (pg_dump over SSH, say) ended; a non-zero code means its output is not a complete dump. */
export interface ProducerResult {
  code: number;
  stderr: string;
}

/** A running producer of backup data; an executor's ExecStream is one. */
export interface StreamSource {
  stdout: Readable;
  /** Settles when the producer has exited. */
  done: Promise<ProducerResult>;
  /** Stops the producer; called when restic fails, so that `done` settles instead of waiting on a full pipe. */
  kill?(): void;
}

export interface KeepPolicy {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
}

export interface ForgetOptions extends SnapshotFilter {
  prune?: boolean;
  dryRun?: boolean;
  /** restic's --group-by (default host,paths). */
  groupBy?: string;
  /** Replaces the listing bound: forgetting by retention in a large repository is part of a prune's time. */
  bound?: RunBound;
}

export interface RestoreOptions {
  include?: string[];
  exclude?: string[];
  /** Only consider snapshots of this host when the snapshot is `latest`. */
  host?: string;
}

/**
 * How long a long command (copy, prune, check) may run: stopped once its progress output has not changed for
 * `stallMs`, or after `timeoutMs` in all, whichever comes first; it then fails with ResticStalledError.
 */
export interface RunBound {
  stallMs?: number;
  timeoutMs?: number;
  /** Names the bound in the error line, e.g. "limits.replicate in /etc/dcctl/repositories.yaml". */
  setting?: string;
}
