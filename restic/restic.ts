import { hostname } from "node:os";
import { isAbsolute } from "node:path";
import type { Writable } from "node:stream";
import { formatDuration } from "../util/duration.js";
import { DcctlError } from "../util/errors.js";
import { isAlive } from "../util/process.js";
import { toolPath } from "../util/tools.js";
import { Watchdog } from "../util/watchdog.js";
import {
  backupFromCommand,
  backupPathsCommand,
  catConfigCommand,
  catLockCommand,
  checkCommand,
  copyCommand,
  dumpCommand,
  forgetCommand,
  forgetIdsCommand,
  initCommand,
  listLocksCommand,
  pruneCommand,
  restoreCommand,
  snapshotsCommand,
  statsCommand,
  unlockCommand,
  type ResticCommand,
} from "./args.js";
import { BackupSourceError, ResticError, ResticExit, ResticIncompleteError } from "./errors.js";
import type { BackupOptions, BackupResult, ForgetOptions, KeepPolicy, ResticLock, ResticOptions, ResticRepo, RestoreOptions, RunBound, SnapshotFilter, StdinBackupOptions, StreamSource } from "./options.js";
import { backupSummary, backupWarnings, jsonLines, parseJson, refusedDelete, requireSummary, resticDetail, resticFailure, statusReader, type RawResult } from "./output.js";
import { boundedRun, listingDeadline, runRestic, spawnProducer, type RunHooks } from "./process.js";
import { redactRepo } from "./redact.js";
import { heardAtOnce, pipeStream, relayStream, type StreamRunner } from "./relay.js";
import type { BackupSummary, CheckSummary, ForgetGroup, RepoConfig, RepoStats, RestoreSummary, Snapshot } from "./types.js";
import { resticVersion, supportsStdinFromCommand } from "./version.js";

/** restic built with its debug tag (scripts/setup.sh), the one that can make a key with `--insecure-kdf`. */
function throwawayKeyMaker(): string {
  const bin = toolPath("restic-throwaway-keys");
  if (!isAbsolute(bin)) throw new DcctlError("restic-throwaway-keys (restic built with its debug tag) is not installed: run scripts/setup.sh");
  return bin;
}

/**
 * A restic repository and the commands dcctl runs on it: each method builds its command line (args.ts), runs restic
 * under its bounds (process.ts) and reads what it printed (output.ts). restic runs by argument vector; the repository
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

  /**
   * Creates the repository. A throwaway key (`o.throwawayKey`, by default when DCCTL_THROWAWAY_KEYS=1, as the tests
   * set it) is made by restic's debug build with `--insecure-kdf`: for repositories whose key protects nothing (the
   * lab's, the tests'), so that every later command opens it in milliseconds rather than ~0.6 s of scrypt.
   */
  async init(o: { throwawayKey?: boolean } = {}): Promise<{ id: string }> {
    const throwaway = o.throwawayKey ?? process.env.DCCTL_THROWAWAY_KEYS === "1";
    const cmd = initCommand({ insecureKdf: throwaway });
    const res = await this.ok(cmd, {}, throwaway ? throwawayKeyMaker() : this.bin);
    const msg = jsonLines(res.stdout).find((m) => m.message_type === "initialized");
    return { id: typeof msg?.id === "string" ? msg.id : "" };
  }

  /** Backs up files and folders. Exit 3 (some files unreadable) becomes ResticIncompleteError carrying the snapshot id. */
  async backup(paths: string[], opts: BackupOptions = {}): Promise<BackupResult> {
    const cmd = backupPathsCommand(paths, opts);
    const watchdog = this.stallWatchdog((idle) => `restic read no file and saved no data for ${formatDuration(idle)} (backup of ${paths.join(", ")} to ${this.where})`);
    const res = await this.run(cmd, { watchdog, onLine: statusReader(watchdog, opts.onProgress) });
    const summary = backupSummary(res.stdout);
    if (res.code === ResticExit.incomplete) {
      throw new ResticIncompleteError(
        `restic backup to ${this.where} left out unreadable files: ${resticDetail(res.stderr) || "see restic's output"}`,
        summary?.snapshot_id,
      );
    }
    if (res.code !== 0) throw this.failure("backup", res);
    // restic skips a source path that does not exist and still exits 0; the caller should hear about it.
    return { ...requireSummary(summary, this.where), warnings: backupWarnings(res.stderr) };
  }

  /**
   * Backs up the standard output of a local command (argument vector) as one file. With restic ≥ 0.17 restic runs the
   * command itself (--stdin-from-command) and saves nothing when it exits non-zero; with older restic we pipe the
   * command into `--stdin` and forget the snapshot if the command failed. Either way a failure throws BackupSourceError.
   */
  async backupCommand(argv: string[], opts: StdinBackupOptions): Promise<BackupSummary> {
    const cmd = backupFromCommand(argv, opts);
    const version = await resticVersion(this.bin);
    if (!supportsStdinFromCommand(version)) return pipeStream(this.streamRunner(), spawnProducer(argv as [string, ...string[]]), opts);
    const res = await this.run(cmd);
    if (res.code !== 0) {
      const err = this.failure("backup", res);
      // restic wraps the command's failure as "command failed: exit status N"; anything else is restic's own problem.
      if (/command failed|exit status/i.test(err.message) && err.resticCode === ResticExit.fatal) {
        throw new BackupSourceError(`backup source \`${argv[0]}\` failed, nothing was saved to ${this.where}: ${resticDetail(res.stderr)}`, "backup", res.code);
      }
      throw err;
    }
    return requireSummary(backupSummary(res.stdout), this.where);
  }

  /**
   * Backs up a stream (e.g. the stdout of pg_dump run over SSH) as one file. A snapshot is kept only when dcctl has
   * seen the whole stream end well: the source's `done` reports code 0 and every byte reached restic (see relay.ts;
   * restic < 0.17 falls back to forgetting a failed stream's snapshot). A failed source throws BackupSourceError; a
   * stream that stops moving fails after `stallMs` with ResticStalledError.
   */
  async backupStream(stream: StreamSource, opts: StdinBackupOptions): Promise<BackupSummary> {
    const source = heardAtOnce(stream);
    if (!supportsStdinFromCommand(await resticVersion(this.bin))) return pipeStream(this.streamRunner(), source, opts);
    return relayStream(this.streamRunner(), source, opts);
  }

  /** The snapshots matching `filter`; `timeoutMs` bounds this one listing instead of the wrapper's listing bound. */
  async snapshots(filter: SnapshotFilter = {}, opts: { timeoutMs?: number } = {}): Promise<Snapshot[]> {
    const res = await this.ok(snapshotsCommand(filter), opts.timeoutMs ? { watchdog: listingDeadline(this.where, "snapshots", opts.timeoutMs) } : {});
    const parsed = parseJson(res.stdout, "snapshots");
    if (!Array.isArray(parsed)) throw new ResticError(`restic snapshots on ${this.where} did not print a JSON list`, "snapshots", 0);
    return parsed as Snapshot[];
  }

  /**
   * Applies a keep policy; with `prune` also removes the unreferenced data. Returns what was kept and removed per group.
   * restic orders and buckets by the times snapshots claim: dcctl's prune decides by arrival instead
   * (backup/retention.ts) and forgets by id; this stays for repositories whose writers are all trusted.
   */
  async forget(policy: KeepPolicy, opts: ForgetOptions = {}): Promise<ForgetGroup[]> {
    const cmd = forgetCommand(policy, opts);
    await this.clearDeadLocks();
    const res = await this.ok(cmd, opts.bound ? this.bounded("forget", opts.bound) : {});
    const line = res.stdout.split("\n").find((l) => l.startsWith("["));
    return line ? (parseJson(line, "forget") as ForgetGroup[]) : [];
  }

  /**
   * Forgets the given snapshots (no prune), a few hundred per restic run. With `bound` (a prune's forgetting) the
   * bound replaces the listing bound, and the locks of dead processes of this machine are cleared first, as forget does.
   */
  async forgetIds(ids: string[], opts: { bound?: RunBound } = {}): Promise<void> {
    if (ids.length === 0) return;
    if (opts.bound) await this.clearDeadLocks();
    for (let i = 0; i < ids.length; i += 500) await this.ok(forgetIdsCommand(ids.slice(i, i + 500)), opts.bound ? this.bounded("forget", opts.bound) : {});
  }

  async prune(opts: { maxUnused?: string; bound?: RunBound } = {}): Promise<void> {
    await this.clearDeadLocks();
    await this.ok(pruneCommand(opts), this.bounded("prune", opts.bound));
  }

  /** `restic check`; `readDataSubset` is restic's syntax: "10%", "1/5", "500M". Throws when errors are found. */
  async check(opts: { readDataSubset?: string; bound?: RunBound } = {}): Promise<CheckSummary> {
    const cmd = checkCommand(opts);
    await this.clearDeadLocks();
    const res = await this.ok(cmd, this.bounded("check", opts.bound));
    const summary = jsonLines(res.stdout).find((m) => m.message_type === "summary");
    return (summary ?? { num_errors: 0, broken_packs: null, suggest_repair_index: false, suggest_prune: false }) as unknown as CheckSummary;
  }

  /** Copies snapshots from `from` into this repository (all, or the given ids, or those matching the filter). */
  async copy(from: ResticRepo, opts: SnapshotFilter & { snapshotIds?: string[]; bound?: RunBound } = {}): Promise<void> {
    await this.ok(copyCommand(from, opts), { env: { RESTIC_FROM_REPOSITORY: from.url }, ...this.bounded(`copy from ${redactRepo(from.url)}`, opts.bound) });
  }

  async restore(snapshot: string, target: string, opts: RestoreOptions = {}): Promise<RestoreSummary | undefined> {
    const res = await this.ok(restoreCommand(snapshot, target, opts));
    const summary = jsonLines(res.stdout).find((m) => m.message_type === "summary");
    return summary as unknown as RestoreSummary | undefined;
  }

  /** Streams one file of a snapshot to `out` (ended afterwards unless `end: false`). */
  async dump(snapshot: string, file: string, out: Writable, opts: { end?: boolean } = {}): Promise<void> {
    const res = await this.run(dumpCommand(snapshot, file), { stdout: out, endStdout: opts.end ?? true });
    if (res.code !== 0) throw this.failure("dump", res);
  }

  /** `bound` replaces the listing bound: raw-data stats of a large repository reads every tree. */
  async stats(opts: { mode?: "restore-size" | "files-by-contents" | "raw-data" | "blobs-per-file"; snapshotIds?: string[]; bound?: RunBound } = {}): Promise<RepoStats> {
    const res = await this.ok(statsCommand(opts), opts.bound ? this.bounded("stats", opts.bound) : {});
    return parseJson(res.stdout, "stats") as RepoStats;
  }

  /** Removes stale locks (of processes that died); `removeAll` also removes live ones. */
  async unlock(opts: { removeAll?: boolean } = {}): Promise<void> {
    await this.ok(unlockCommand(opts));
  }

  /** The locks in the repository now, with who holds them. */
  async locks(): Promise<ResticLock[]> {
    const ids = (await this.ok(listLocksCommand())).stdout.split("\n").map((l) => l.trim()).filter((l) => /^[0-9a-f]{64}$/.test(l));
    const out: ResticLock[] = [];
    for (const id of ids) {
      const res = await this.run(catLockCommand(id));
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
    await this.ok(unlockCommand({}));
    for (const l of dead) this.opts.onNote?.(`note: removed the lock of restic pid ${l.pid} on ${l.hostname} (gone; ${l.exclusive ? "exclusive" : "shared"}, since ${l.time.replace(/\.\d+/, "")}) from ${this.where}`);
    return dead;
  }

  async catConfig(): Promise<RepoConfig> {
    const res = await this.ok(catConfigCommand());
    return parseJson(res.stdout, "cat config") as RepoConfig;
  }

  /**
   * The watchdog of a backup (here or restic on a host): fires after `stallMs` without progress, counted from the
   * shared progress clock when the caller gave one (a job's items); undefined without a stall limit.
   */
  stallWatchdog(describe: (idleMs: number) => string): Watchdog | undefined {
    return this.opts.stallMs ? new Watchdog(this.opts.stallMs, describe, this.opts.progress) : undefined;
  }

  private bounded(what: string, bound: RunBound | undefined): Pick<RunHooks, "watchdog" | "deadline" | "onLine"> {
    return boundedRun(this.where, what, bound);
  }

  private streamRunner(): StreamRunner {
    return {
      where: this.where,
      run: (cmd, hooks) => this.run(cmd, hooks),
      failure: (command, res) => this.failure(command, res),
      forgetIds: (ids) => this.forgetIds(ids),
      stallWatchdog: (describe) => this.stallWatchdog(describe),
    };
  }

  private run(cmd: ResticCommand, hooks: RunHooks = {}, bin = this.bin): Promise<RawResult> {
    return runRestic(bin, this.repo, this.opts, cmd, hooks);
  }

  /** Runs a command and throws the typed error for any non-zero exit or for a refused delete. */
  private async ok(cmd: ResticCommand, hooks: RunHooks = {}, bin = this.bin): Promise<RawResult> {
    const res = await this.run(cmd, hooks, bin);
    if (res.code !== 0 || refusedDelete(res.stderr)) throw this.failure(cmd.command, res);
    return res;
  }

  private failure(command: string, res: RawResult): ResticError {
    return resticFailure(command, res, this.repo.url);
  }
}
