import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Socket, createServer } from "node:net";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Transform, type Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { InputError } from "../../util/errors.js";
import { diesWithUs, isAlive } from "../../util/process.js";
import { repoRoot, toolEnv, toolPath } from "../../util/tools.js";
import { formatDuration } from "../../util/duration.js";
import { Watchdog, type ProgressClock } from "../../util/watchdog.js";
import {
  BackupSourceError,
  ResticAppendOnlyError,
  ResticError,
  ResticExit,
  ResticIncompleteError,
  ResticStalledError,
  errorForExit,
} from "./errors.js";
import { oneLine, redactRepo } from "./redact.js";
import type { BackupSummary, CheckSummary, ForgetGroup, RepoConfig, RepoStats, RestoreSummary, Snapshot } from "./types.js";
import { resticVersion, supportsStdinFromCommand } from "./version.js";

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

interface RawResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Set when a watchdog killed restic: where it stood. */
  stalled?: string;
}

/** Commands that only read or write repository metadata: a stall bound fits them as a plain deadline. */
const METADATA_COMMANDS = new Set(["snapshots", "forget", "unlock", "cat", "list", "tag", "init", "stats"]);

/** The producer restic runs for a stream; see stream-relay.ts for why a snapshot of a partial stream cannot be kept. */
const STREAM_RELAY = join(repoRoot, "dist", "backup", "restic", "stream-relay.js");

interface ExecOptions {
  /** Kill restic when it fires; the result then carries why (`stalled`). */
  watchdog?: Watchdog;
  /** A second one, never touched: an overall deadline beside a progress watchdog. */
  deadline?: Watchdog;
  /** Each line restic prints on stdout, as it comes (collected all the same). */
  onLine?: (line: string) => void;
  stdin?: Readable;
  /** Send stdout here instead of collecting it. */
  stdout?: Writable;
  /** Whether `stdout` is ended when restic's output ends. */
  endStdout?: boolean;
  env?: Record<string, string>;
}

/** restic's environment variables that would override the repository or the password we hand it. */
const FOREIGN_ENV = [
  "RESTIC_REPOSITORY",
  "RESTIC_REPOSITORY_FILE",
  "RESTIC_PASSWORD",
  "RESTIC_PASSWORD_FILE",
  "RESTIC_PASSWORD_COMMAND",
  "RESTIC_FROM_REPOSITORY",
  "RESTIC_FROM_REPOSITORY_FILE",
  "RESTIC_FROM_PASSWORD",
  "RESTIC_FROM_PASSWORD_FILE",
  "RESTIC_FROM_PASSWORD_COMMAND",
  "RESTIC_REST_USERNAME",
  "RESTIC_REST_PASSWORD",
];

const STDERR_TAIL = 64 * 1024;

/**
 * A restic repository and the commands dcctl runs on it. restic runs by argument vector; the repository
 * location goes through RESTIC_REPOSITORY (a URL may hold credentials) and the password through RESTIC_PASSWORD_FILE.
 */
export class Restic {
  readonly bin: string;

  constructor(
    readonly repo: ResticRepo,
    private readonly opts: ResticOptions = {},
  ) {
    this.bin = opts.bin ?? toolPath("restic");
  }

  /** How this wrapper runs restic (limits, stall bound, the stop signal): what restic run elsewhere must honour too. */
  get options(): Readonly<ResticOptions> {
    return this.opts;
  }

  /** The repository location with any credentials replaced by `***`, for messages. */
  get where(): string {
    return redactRepo(this.repo.url);
  }

  async init(): Promise<{ id: string }> {
    const res = await this.ok("init", ["--json"]);
    const msg = jsonLines(res.stdout).find((m) => m.message_type === "initialized");
    return { id: typeof msg?.id === "string" ? msg.id : "" };
  }

  /** Backs up files and folders. Exit 3 (some files unreadable) becomes ResticIncompleteError carrying the snapshot id. */
  async backup(paths: string[], opts: BackupOptions = {}): Promise<BackupResult> {
    const args = backupPathArgs(paths, opts);
    const watchdog = this.watchdog((idle) => `restic read no file and saved no data for ${formatDuration(idle)} (backup of ${paths.join(", ")} to ${this.where})`);
    const res = await this.exec("backup", args, { watchdog, onLine: statusReader(watchdog, opts.onProgress) });
    const summary = backupSummary(res.stdout);
    if (res.code === ResticExit.incomplete) {
      throw new ResticIncompleteError(
        `restic backup to ${this.where} left out unreadable files: ${resticDetail(res.stderr) || "see restic's output"}`,
        summary?.snapshot_id,
      );
    }
    if (res.code !== 0) throw this.failure("backup", res);
    // restic skips a source path that does not exist and still exits 0; the caller should hear about it.
    return { ...this.requireSummary(summary), warnings: backupWarnings(res.stderr) };
  }

  /**
   * Backs up the standard output of a local command (argument vector) as one file. With restic ≥ 0.17 restic runs the
   * command itself (--stdin-from-command) and saves nothing when it exits non-zero; with older restic we pipe the
   * command into `--stdin` and forget the snapshot if the command failed. Either way a failure throws BackupSourceError.
   */
  async backupCommand(argv: string[], opts: StdinBackupOptions): Promise<BackupSummary> {
    if (argv.length === 0) throw new InputError(["backup command is empty"]);
    const version = await resticVersion(this.bin);
    if (!supportsStdinFromCommand(version)) return this.backupCommandPiped(argv, opts);
    const res = await this.exec("backup", ["--json", ...backupFlags(opts), "--stdin-filename", opts.filename, "--stdin-from-command", "--", ...argv]);
    if (res.code !== 0) {
      const err = this.failure("backup", res);
      // restic wraps the command's failure as "command failed: exit status N"; anything else is restic's own problem.
      if (/command failed|exit status/i.test(err.message) && err.resticCode === ResticExit.fatal) {
        throw new BackupSourceError(`backup source \`${argv[0]}\` failed, nothing was saved to ${this.where}: ${resticDetail(res.stderr)}`, "backup", res.code);
      }
      throw err;
    }
    return this.requireSummary(backupSummary(res.stdout));
  }

  /**
   * Backs up a stream (e.g. the stdout of pg_dump run over SSH) as one file. A snapshot is kept only when dcctl has
   * seen the whole stream end well: the source's `done` reports code 0 and every byte reached restic (see
   * STREAM_RELAY; restic < 0.17 falls back to forgetting a failed stream's snapshot). A failed source throws
   * BackupSourceError; a stream that stops moving fails after `stallMs` with ResticStalledError.
   */
  async backupStream(stream: StreamSource, opts: StdinBackupOptions): Promise<BackupSummary> {
    const source = heardAtOnce(stream);
    if (!supportsStdinFromCommand(await resticVersion(this.bin))) return this.backupStreamPiped(source, opts);
    const dir = mkdtempSync(join(tmpdir(), "dcctl-stream-"));
    try {
      return await this.backupStreamRelayed(source, opts, join(dir, "socket"), join(dir, "complete"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  private async backupStreamRelayed(source: StreamSource, opts: StdinBackupOptions, socketPath: string, marker: string): Promise<BackupSummary> {
    let sent = 0;
    let sourceEnded = false;
    let pipe: Socket | undefined;
    const watchdog = this.watchdog((idle) => {
      const d = formatDuration(idle);
      if (sourceEnded) return `restic did not finish the snapshot of ${opts.filename} in ${this.where} within ${d} after the stream ended`;
      if (!pipe) return `restic did not start reading ${opts.filename} within ${d} (${this.where} not answering?)`;
      if (pipe.writableLength > 0) return `restic took no data of ${opts.filename} for ${d} (${this.where} not answering?)`;
      return `the source of ${opts.filename} sent no data for ${d} (after ${sent} bytes)`;
    });
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        sent += chunk.length;
        watchdog?.touch();
        opts.onProgress?.({ bytesDone: sent, filesDone: 0 });
        cb(null, chunk);
      },
    });
    const metered = pipeline(source.stdout, meter);
    metered.catch(() => undefined);
    const server = createServer({ pauseOnConnect: true });
    const connected = new Promise<Socket>((resolve) => server.once("connection", resolve));
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(socketPath, resolve));
    const args = ["--json", ...backupFlags(opts), "--stdin-filename", opts.filename, "--stdin-from-command", "--", process.execPath, STREAM_RELAY, socketPath, marker];
    let resticDone = false;
    const run = this.exec("backup", args, { watchdog }).then((r) => {
      resticDone = true;
      // restic gone first (refused, stalled, killed): stop the source so that its completion settles.
      source.kill?.();
      meter.destroy();
      pipe?.destroy();
      server.close();
      return r;
    });
    let copied = false;
    const first = await Promise.race([connected, run]);
    if (first instanceof Socket) {
      pipe = first;
      // Only the one relay restic started may connect.
      server.close();
      pipe.on("error", () => undefined);
      copied = await pipeline(meter, pipe, { end: false })
        .then(() => metered)
        .then(() => flushed(first))
        .then(
          () => true,
          () => false,
        );
    }
    sourceEnded = true;
    const prod = await source.done;
    if (!resticDone && copied && prod.code === 0) writeFileSync(marker, String(sent));
    pipe?.end();
    const res = await run;
    const summary = backupSummary(res.stdout);
    if (res.stalled) throw this.failure("backup", res);
    if (prod.code !== 0 && (res.code === 0 || isRelayFailure(res.stderr))) {
      // The producer's failure is the story; restic's "command failed" only echoes it.
      if (res.code === 0 && summary?.snapshot_id) await this.forgetIds([summary.snapshot_id]);
      const why = oneLine(lastLines(prod.stderr, 3)) || `exit code ${prod.code}`;
      throw new BackupSourceError(`backup source of ${opts.filename} failed (${why}); no snapshot kept in ${this.where}`, "backup", res.code);
    }
    if (res.code !== 0) throw this.failure("backup", res);
    const got = this.requireSummary(summary);
    if (got.total_bytes_processed !== sent) {
      if (got.snapshot_id) await this.forgetIds([got.snapshot_id]);
      throw new ResticError(`restic stored ${got.total_bytes_processed} bytes of ${opts.filename} but ${sent} were sent; snapshot forgotten in ${this.where}`, "backup", 0);
    }
    return got;
  }

  /** restic before 0.17: the stream piped into `--stdin`, and the snapshot of a failed source forgotten afterwards. */
  private async backupStreamPiped(source: StreamSource, opts: StdinBackupOptions): Promise<BackupSummary> {
    const input = source.stdout;
    const run = this.exec("backup", ["--json", ...backupFlags(opts), "--stdin", "--stdin-filename", opts.filename], { stdin: input });
    // If restic dies first the producer would block on a full pipe for ever; stop it so its completion settles.
    let stoppedByUs = false;
    void run.then((r) => {
      if (r.code !== 0) {
        stoppedByUs = true;
        source.kill?.();
        input.destroy();
      }
    });
    const [res, prod] = await Promise.all([run, source.done.catch((e: unknown): ProducerResult => ({ code: -1, stderr: e instanceof Error ? e.message : String(e) }))]);
    const summary = backupSummary(res.stdout);
    // The producer's failure is then only the echo of restic's own, which is the one worth reporting.
    if (stoppedByUs) throw this.failure("backup", res);
    if (prod.code !== 0) {
      const id = summary?.snapshot_id;
      if (id) await this.forgetIds([id]);
      const why = oneLine(lastLines(prod.stderr, 3)) || `exit code ${prod.code}`;
      throw new BackupSourceError(`backup source of ${opts.filename} failed (${why}); no snapshot kept in ${this.where}`, "backup", res.code);
    }
    if (res.code !== 0) throw this.failure("backup", res);
    return this.requireSummary(summary);
  }

  /** The snapshots matching `filter`; `timeoutMs` bounds this one listing instead of the wrapper's listing bound. */
  async snapshots(filter: SnapshotFilter = {}, opts: { timeoutMs?: number } = {}): Promise<Snapshot[]> {
    const res = await this.ok("snapshots", ["--json", ...filterFlags(filter)], opts.timeoutMs ? { watchdog: this.listingDeadline("snapshots", opts.timeoutMs) } : {});
    const parsed = parseJson(res.stdout, "snapshots");
    if (!Array.isArray(parsed)) throw new ResticError(`restic snapshots on ${this.where} did not print a JSON list`, "snapshots", 0);
    return parsed as Snapshot[];
  }

  /** Applies a keep policy; with `prune` also removes the unreferenced data. Returns what was kept and removed per group. */
  async forget(policy: KeepPolicy, opts: ForgetOptions = {}): Promise<ForgetGroup[]> {
    const args = ["--json", ...policyFlags(policy), ...filterFlags(opts)];
    if (opts.groupBy !== undefined) args.push("--group-by", opts.groupBy);
    if (opts.prune) args.push("--prune");
    if (opts.dryRun) args.push("--dry-run");
    await this.clearDeadLocks();
    const res = await this.ok("forget", args, opts.bound ? this.bounded("forget", opts.bound) : {});
    const line = res.stdout.split("\n").find((l) => l.startsWith("["));
    return line ? (parseJson(line, "forget") as ForgetGroup[]) : [];
  }

  /** Forgets the given snapshots (no prune). */
  async forgetIds(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.ok("forget", ["--", ...ids]);
  }

  async prune(opts: { maxUnused?: string; bound?: RunBound } = {}): Promise<void> {
    await this.clearDeadLocks();
    await this.ok("prune", opts.maxUnused ? ["--max-unused", opts.maxUnused] : [], this.bounded("prune", opts.bound));
  }

  /** `restic check`; `readDataSubset` is restic's syntax: "10%", "1/5", "500M". Throws when errors are found. */
  async check(opts: { readDataSubset?: string; bound?: RunBound } = {}): Promise<CheckSummary> {
    const args = ["--json"];
    if (opts.readDataSubset) args.push("--read-data-subset", opts.readDataSubset);
    await this.clearDeadLocks();
    const res = await this.ok("check", args, this.bounded("check", opts.bound));
    const summary = jsonLines(res.stdout).find((m) => m.message_type === "summary");
    return (summary ?? { num_errors: 0, broken_packs: null, suggest_repair_index: false, suggest_prune: false }) as unknown as CheckSummary;
  }

  /** Copies snapshots from `from` into this repository (all, or the given ids, or those matching the filter). */
  async copy(from: ResticRepo, opts: SnapshotFilter & { snapshotIds?: string[]; bound?: RunBound } = {}): Promise<void> {
    const args = ["--from-password-file", from.passwordFile, ...filterFlags(opts)];
    if (opts.snapshotIds?.length) args.push("--", ...opts.snapshotIds);
    // The source location goes by environment like our own: it may carry credentials.
    await this.ok("copy", args, { env: { RESTIC_FROM_REPOSITORY: from.url }, ...this.bounded(`copy from ${redactRepo(from.url)}`, opts.bound) });
  }

  async restore(snapshot: string, target: string, opts: RestoreOptions = {}): Promise<RestoreSummary | undefined> {
    const args = ["--json", "--target", target];
    for (const i of opts.include ?? []) args.push("--include", i);
    for (const e of opts.exclude ?? []) args.push("--exclude", e);
    if (opts.host) args.push("--host", opts.host);
    args.push("--", snapshot);
    const res = await this.ok("restore", args);
    const summary = jsonLines(res.stdout).find((m) => m.message_type === "summary");
    return summary as unknown as RestoreSummary | undefined;
  }

  /** Streams one file of a snapshot to `out` (ended afterwards unless `end: false`). */
  async dump(snapshot: string, file: string, out: Writable, opts: { end?: boolean } = {}): Promise<void> {
    const res = await this.exec("dump", ["--", snapshot, file], { stdout: out, endStdout: opts.end ?? true });
    if (res.code !== 0) throw this.failure("dump", res);
  }

  /** `bound` replaces the listing bound: raw-data stats of a large repository reads every tree. */
  async stats(opts: { mode?: "restore-size" | "files-by-contents" | "raw-data" | "blobs-per-file"; snapshotIds?: string[]; bound?: RunBound } = {}): Promise<RepoStats> {
    const args = ["--json"];
    if (opts.mode) args.push("--mode", opts.mode);
    if (opts.snapshotIds?.length) args.push("--", ...opts.snapshotIds);
    const res = await this.ok("stats", args, opts.bound ? this.bounded("stats", opts.bound) : {});
    return parseJson(res.stdout, "stats") as RepoStats;
  }

  /** Removes stale locks (of processes that died); `removeAll` also removes live ones. */
  async unlock(opts: { removeAll?: boolean } = {}): Promise<void> {
    await this.ok("unlock", opts.removeAll ? ["--remove-all"] : []);
  }

  /** The locks in the repository now, with who holds them. */
  async locks(): Promise<ResticLock[]> {
    const ids = (await this.ok("list", ["--no-lock", "locks"])).stdout.split("\n").map((l) => l.trim()).filter((l) => /^[0-9a-f]{64}$/.test(l));
    const out: ResticLock[] = [];
    for (const id of ids) {
      const res = await this.exec("cat", ["--no-lock", "lock", id]);
      // A lock removed between the listing and now is simply gone.
      if (res.code === 0) out.push({ id, ...(parseJson(res.stdout, "cat lock") as Omit<ResticLock, "id">) });
    }
    return out;
  }

  /**
   * Removes the locks of restic processes of this machine that are gone (a crash, a SIGKILL): they would hold up
   * prune, check and every later backup. Locks of live processes and of other machines stay. Returns what was removed.
   */
  async clearDeadLocks(): Promise<ResticLock[]> {
    const dead = (await this.locks()).filter((l) => l.hostname === hostname() && !isAlive(l.pid));
    if (dead.length === 0) return [];
    // restic's own rule for a stale lock is the same (this host, process gone), so plain unlock removes exactly these.
    await this.ok("unlock", []);
    for (const l of dead) this.opts.onNote?.(`note: removed the lock of restic pid ${l.pid} on ${l.hostname} (gone; ${l.exclusive ? "exclusive" : "shared"}, since ${l.time.replace(/\.\d+/, "")}) from ${this.where}`);
    return dead;
  }

  async catConfig(): Promise<RepoConfig> {
    const res = await this.ok("cat", ["config"]);
    return parseJson(res.stdout, "cat config") as RepoConfig;
  }

  private async backupCommandPiped(argv: string[], opts: StdinBackupOptions): Promise<BackupSummary> {
    const [cmd, ...args] = argv as [string, ...string[]];
    const child = spawn(cmd, args, { env: toolEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => (stderr = (stderr + b.toString("utf8")).slice(-STDERR_TAIL)));
    const done = new Promise<ProducerResult>((resolve) => {
      child.once("error", (e) => resolve({ code: -1, stderr: e.message }));
      child.once("close", (code) => resolve({ code: code ?? -1, stderr }));
    });
    return this.backupStreamPiped({ stdout: child.stdout, done, kill: () => child.kill("SIGKILL") }, opts);
  }

  private watchdog(describe: (idleMs: number) => string): Watchdog | undefined {
    return this.stallWatchdog(describe);
  }

  /**
   * The watchdog of a backup (here or restic on a host): fires after `stallMs` without progress, counted from the
   * shared progress clock when the caller gave one (a job's items); undefined without a stall limit.
   */
  stallWatchdog(describe: (idleMs: number) => string): Watchdog | undefined {
    return this.opts.stallMs ? new Watchdog(this.opts.stallMs, describe, this.opts.progress) : undefined;
  }

  private listingDeadline(command: string, ms: number): Watchdog {
    return new Watchdog(ms, (idle) => `restic ${command} on ${this.where} did not answer within ${formatDuration(idle)}`);
  }

  /** The watchdogs of a long command: its progress output must change within the stall bound; all of it within the time bound. */
  private bounded(what: string, bound: RunBound | undefined): Pick<ExecOptions, "watchdog" | "deadline" | "onLine"> {
    if (!bound?.stallMs && !bound?.timeoutMs) return {};
    const setting = bound.setting ? ` (${bound.setting})` : "";
    let last = "";
    const watchdog = bound.stallMs ? new Watchdog(bound.stallMs, (idle) => `restic ${what} on ${this.where} made no progress for ${formatDuration(idle)}${last ? ` after "${last}"` : ""}${setting}`) : undefined;
    const deadline = bound.timeoutMs ? new Watchdog(bound.timeoutMs, (idle) => `restic ${what} on ${this.where} did not finish within ${formatDuration(idle)}${setting}`) : undefined;
    const onLine = (line: string) => {
      const seen = progressKey(line);
      if (!seen || seen === last) return;
      last = seen;
      watchdog?.touch();
    };
    return { ...(watchdog ? { watchdog } : {}), ...(deadline ? { deadline } : {}), onLine };
  }

  private requireSummary(summary: BackupSummary | undefined): BackupSummary {
    if (!summary) throw new ResticError(`restic backup to ${this.where} printed no summary`, "backup", 0);
    return summary;
  }

  /** Runs a command and throws the typed error for any non-zero exit or for a refused delete. */
  private async ok(command: string, args: string[], opts: ExecOptions = {}): Promise<RawResult> {
    const res = await this.exec(command, args, opts);
    if (res.code !== 0 || refusedDelete(res.stderr)) throw this.failure(command, res);
    return res;
  }

  private failure(command: string, res: RawResult): ResticError {
    if (res.stalled) return new ResticStalledError(`stalled: ${res.stalled}; restic ${command} stopped${command === "backup" ? ", nothing saved" : ""}`, command, res.code);
    const detail = resticDetail(res.stderr);
    if (refusedDelete(res.stderr)) {
      return new ResticAppendOnlyError(`repository ${this.where} refused to delete data (append-only): restic ${command} removed nothing`, command, res.code);
    }
    return errorForExit(command, res.code, this.repo.url, detail);
  }

  private env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const base: NodeJS.ProcessEnv = { ...process.env };
    for (const k of FOREIGN_ENV) delete base[k];
    const rest = this.repo.rest ? { RESTIC_REST_USERNAME: this.repo.rest.user, RESTIC_REST_PASSWORD: readSecret(this.repo.rest.passwordFile, this.where) } : {};
    return toolEnv(
      {
        ...this.opts.env,
        ...extra,
        ...rest,
        RESTIC_REPOSITORY: this.repo.url,
        RESTIC_PASSWORD_FILE: this.repo.passwordFile,
        ...(this.opts.cacheDir ? { RESTIC_CACHE_DIR: this.opts.cacheDir } : {}),
        // restic prints progress to a terminal only; make sure it never waits on one.
        RESTIC_PROGRESS_FPS: "0.2",
      },
      base,
    );
  }

  private exec(command: string, args: string[], opts: ExecOptions = {}): Promise<RawResult> {
    const argv = [
      command,
      ...(this.opts.retryLock ? ["--retry-lock", this.opts.retryLock] : []),
      ...(this.opts.limitUploadKiB ? ["--limit-upload", String(this.opts.limitUploadKiB)] : []),
      ...args,
    ];
    const listingMs = this.opts.listingMs ?? this.opts.stallMs;
    const watchdog = opts.watchdog ?? opts.deadline ?? (METADATA_COMMANDS.has(command) && listingMs ? this.listingDeadline(command, listingMs) : undefined);
    const deadline = opts.watchdog ? opts.deadline : undefined;
    const env = this.env(opts.env);
    return new Promise((resolve, reject) => {
      const [cmd, cmdArgs] = diesWithUs(this.bin, argv);
      const child = spawn(cmd, cmdArgs, { env, stdio: ["pipe", "pipe", "pipe"] });
      const out: Buffer[] = [];
      let stderr = "";
      let partial = "";
      let stalled: string | undefined;
      const stop = () => {
        child.kill("SIGINT");
        // restic answers SIGINT by removing its lock and leaving; one that does not within 10 s is killed.
        setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
      };
      for (const w of [watchdog, deadline]) {
        w?.onFire((why) => {
          stalled ??= why;
          child.kill("SIGKILL");
        });
      }
      const signal = this.opts.signal;
      if (signal?.aborted) stop();
      signal?.addEventListener("abort", stop, { once: true });
      child.stderr.on("data", (b: Buffer) => (stderr = (stderr + b.toString("utf8")).slice(-STDERR_TAIL)));
      let piping: Promise<void> = Promise.resolve();
      if (opts.stdout) {
        piping = pipeline(child.stdout, opts.stdout, { end: opts.endStdout ?? true });
        // A reader that goes away early (a failed restore target) rejects this before restic has closed; it is handled
        // when restic closes, but must not count as an unhandled rejection in between.
        piping.catch(() => undefined);
      } else {
        child.stdout.on("data", (b: Buffer) => {
          out.push(b);
          if (!opts.onLine) return;
          const lines = (partial + b.toString("utf8")).split("\n");
          partial = lines.pop() ?? "";
          for (const line of lines) opts.onLine(line);
        });
      }
      // A producer that errors, or restic closing its stdin early, must not crash the process with EPIPE.
      child.stdin.on("error", () => undefined);
      if (opts.stdin) {
        opts.stdin.on("error", () => child.stdin.destroy());
        opts.stdin.pipe(child.stdin);
      } else {
        child.stdin.end();
      }
      child.once("error", (e) => {
        watchdog?.stop();
        deadline?.stop();
        reject(new ResticError(`cannot run restic (${this.bin}): ${e.message}`, command, -1));
      });
      child.once("close", (code, sig) => {
        watchdog?.stop();
        deadline?.stop();
        signal?.removeEventListener("abort", stop);
        const finish = () =>
          resolve({
            code: code ?? (sig === "SIGINT" ? ResticExit.interrupted : -1),
            stdout: Buffer.concat(out).toString("utf8"),
            stderr,
            ...(stalled ? { stalled } : {}),
          });
        piping.then(finish, (e: unknown) => {
          stderr += `\nwriting restic ${command} output failed: ${e instanceof Error ? e.message : String(e)}`;
          resolve({ code: code === 0 ? ResticExit.fatal : (code ?? -1), stdout: "", stderr });
        });
      });
    });
  }
}

/**
 * The source as backupStream uses it, taken up before its first await: its output is read into a buffer at once
 * (Node discards a child's output that nobody reads by the time it exits) and its completion never rejects (a
 * source that fails early, an SSH host key refused, must not be an unhandled rejection while restic starts).
 */
function heardAtOnce(source: StreamSource): StreamSource & { done: Promise<ProducerResult> } {
  const stdout = new PassThrough();
  pipeline(source.stdout, stdout).catch(() => undefined);
  const done = source.done.catch((e: unknown): ProducerResult => ({ code: -1, stderr: e instanceof Error ? e.message : String(e) }));
  return {
    stdout,
    done,
    kill: () => {
      source.kill?.();
      source.stdout.destroy();
    },
  };
}

/** Resolves once everything written to `sock` so far has reached the kernel (a write's callback comes in order). */
function flushed(sock: Socket): Promise<void> {
  return new Promise((resolve, reject) => sock.write(Buffer.alloc(0), (e) => (e ? reject(e) : resolve())));
}

/** restic's error when its producer (our relay) failed: the stream ended without dcctl's completion marker. */
function isRelayFailure(stderr: string): boolean {
  return /command failed/i.test(stderr);
}

/**
 * What a line of restic's plain output says, without the elapsed time that starts a progress line ("[0:35] 40.00%  2 /
 * 5 packs copied") or an ETA: restic repeats a progress line every few seconds (RESTIC_PROGRESS_FPS), so only a line
 * that says something new is progress.
 */
export function progressKey(line: string): string {
  return line
    .replace(/^\[[\d:]+\]\s*/, "")
    .replace(/\s*ETA\s+[\d:]+\s*$/, "")
    .trim();
}

/** Reads restic backup's JSON status lines: progress touches the watchdog and is reported. */
export function statusReader(watchdog: Watchdog | undefined, onProgress: ((p: BackupProgress) => void) | undefined): (line: string) => void {
  let last = "";
  return (line) => {
    if (!line.startsWith('{"message_type":"status"')) return;
    try {
      const m = JSON.parse(line) as { bytes_done?: number; files_done?: number; total_bytes?: number };
      const p: BackupProgress = { bytesDone: m.bytes_done ?? 0, filesDone: m.files_done ?? 0, totalBytes: m.total_bytes };
      const key = `${p.bytesDone}/${p.filesDone}`;
      if (key !== last) watchdog?.touch();
      last = key;
      onProgress?.(p);
    } catch {
      // A status line cut short: the next one will do.
    }
  };
}

/** `restic backup`'s arguments for paths, here or on a host: JSON output, tags, host, excludes, the paths. */
export function backupPathArgs(paths: string[], opts: BackupOptions): string[] {
  if (paths.length === 0) throw new InputError(["restic backup needs at least one path"]);
  const args = ["--json", ...backupFlags(opts)];
  for (const e of opts.excludes ?? []) args.push("--exclude", e);
  for (const f of opts.excludeFiles ?? []) args.push("--exclude-file", f);
  if (opts.oneFileSystem) args.push("--one-file-system");
  args.push("--", ...paths);
  return args;
}

export function backupFlags(opts: { tags?: string[]; host?: string }): string[] {
  const args: string[] = [];
  for (const t of opts.tags ?? []) args.push("--tag", t);
  if (opts.host) args.push("--host", opts.host);
  return args;
}

function filterFlags(f: SnapshotFilter): string[] {
  const args: string[] = [];
  if (f.host) args.push("--host", f.host);
  // One --tag with a comma list: a snapshot must carry every tag (several --tag flags would mean "any of").
  if (f.tags?.length) args.push("--tag", f.tags.join(","));
  for (const p of f.paths ?? []) args.push("--path", p);
  return args;
}

function policyFlags(p: KeepPolicy): string[] {
  const flags: [keyof KeepPolicy, string][] = [
    ["keepLast", "--keep-last"],
    ["keepHourly", "--keep-hourly"],
    ["keepDaily", "--keep-daily"],
    ["keepWeekly", "--keep-weekly"],
    ["keepMonthly", "--keep-monthly"],
    ["keepYearly", "--keep-yearly"],
  ];
  const args: string[] = [];
  const problems: string[] = [];
  for (const [key, flag] of flags) {
    const n = p[key];
    if (n === undefined) continue;
    if (!Number.isInteger(n) || n < 1) problems.push(`${key} must be a whole number ≥ 1, not ${n}`);
    else args.push(flag, String(n));
  }
  if (problems.length) throw new InputError(problems);
  // restic refuses an empty policy too, but only after opening the repository; and "keep nothing" is never what we mean.
  if (args.length === 0) throw new InputError(["a keep policy needs at least one keep* rule"]);
  return args;
}

/** rest-server --append-only answers a delete with 403; restic reports it per file. */
function refusedDelete(stderr: string): boolean {
  return /unexpected HTTP response \(403\)/.test(stderr);
}

/** The first line of a secret file; the error names the file, never its content. */
function readSecret(path: string, where: string): string {
  try {
    return (readFileSync(path, "utf8").split("\n")[0] ?? "").trim();
  } catch (e) {
    throw new ResticError(`cannot read the rest-server password file ${path} for ${where}: ${(e as NodeJS.ErrnoException).code ?? "error"}`, "auth", -1);
  }
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ResticError(`restic ${what} printed output that is not JSON: ${oneLine(text).slice(0, 200)}`, what, 0);
  }
}

/** The JSON objects among restic's output lines (it mixes them with plain text in some modes). */
export function jsonLines(text: string): Record<string, unknown>[] {
  const msgs: Record<string, unknown>[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const v = JSON.parse(line) as unknown;
      if (v && typeof v === "object" && !Array.isArray(v)) msgs.push(v as Record<string, unknown>);
    } catch {
      // A progress line cut in half; not ours to read.
    }
  }
  return msgs;
}

export function backupSummary(stdout: string): BackupSummary | undefined {
  const msg = lastOf(jsonLines(stdout), (m) => m.message_type === "summary");
  return msg as unknown as BackupSummary | undefined;
}

export function backupWarnings(stderr: string): string[] {
  const warnings: string[] = [];
  for (const line of stderr.split("\n").map((l) => l.trim())) {
    if (!line) continue;
    if (!line.startsWith("{")) {
      warnings.push(redactRepo(line));
      continue;
    }
    try {
      const msg = JSON.parse(line) as { message_type?: string; error?: { message?: string }; item?: string };
      if (msg.message_type === "error") warnings.push(redactRepo(`${msg.item ?? ""}: ${msg.error?.message ?? ""}`));
    } catch {
      // Not one of restic's messages.
    }
  }
  return warnings;
}

/** restic's own explanation: the exit_error message in JSON mode, else the last line of stderr (credentials removed). */
export function resticDetail(stderr: string): string {
  const exit = lastOf(jsonLines(stderr), (m) => m.message_type === "exit_error");
  if (exit && typeof exit.message === "string") return redactRepo(oneLine(exit.message.split("\n")[0] ?? ""));
  const lines = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("{"));
  return redactRepo(oneLine(lines[lines.length - 1] ?? ""));
}

function lastLines(text: string, n: number): string {
  return text.split("\n").filter((l) => l.trim()).slice(-n).join("\n");
}

function lastOf<T>(items: T[], pred: (item: T) => boolean): T | undefined {
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i] as T;
    if (pred(item)) return item;
  }
  return undefined;
}
