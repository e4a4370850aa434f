import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import type { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { InputError } from "../../util/errors.js";
import { toolEnv, toolPath } from "../../util/tools.js";
import {
  BackupSourceError,
  ResticAppendOnlyError,
  ResticError,
  ResticExit,
  ResticIncompleteError,
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
}

export interface RestoreOptions {
  include?: string[];
  exclude?: string[];
  /** Only consider snapshots of this host when the snapshot is `latest`. */
  host?: string;
}

interface RawResult {
  code: number;
  stdout: string;
  stderr: string;
}

interface ExecOptions {
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
    if (paths.length === 0) throw new InputError(["restic backup needs at least one path"]);
    const args = ["--json", ...backupFlags(opts)];
    for (const e of opts.excludes ?? []) args.push("--exclude", e);
    for (const f of opts.excludeFiles ?? []) args.push("--exclude-file", f);
    if (opts.oneFileSystem) args.push("--one-file-system");
    args.push("--", ...paths);
    const res = await this.exec("backup", args);
    const summary = backupSummary(res.stdout);
    if (res.code === ResticExit.incomplete) {
      throw new ResticIncompleteError(
        `restic backup to ${this.where} left out unreadable files: ${this.detail(res.stderr) || "see restic's output"}`,
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
        throw new BackupSourceError(`backup source \`${argv[0]}\` failed, nothing was saved to ${this.where}: ${this.detail(res.stderr)}`, "backup", res.code);
      }
      throw err;
    }
    return this.requireSummary(backupSummary(res.stdout));
  }

  /**
   * Backs up a stream (e.g. the stdout of pg_dump run over SSH) as one file. If the source's `done` reports a non-zero
   * code (or rejects) the snapshot restic made of the truncated stream is forgotten at once, so a failed dump never
   * stays in the repository as if it were good, and BackupSourceError is thrown.
   */
  async backupStream(source: StreamSource, opts: StdinBackupOptions): Promise<BackupSummary> {
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

  async snapshots(filter: SnapshotFilter = {}): Promise<Snapshot[]> {
    const res = await this.ok("snapshots", ["--json", ...filterFlags(filter)]);
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
    const res = await this.ok("forget", args);
    const line = res.stdout.split("\n").find((l) => l.startsWith("["));
    return line ? (parseJson(line, "forget") as ForgetGroup[]) : [];
  }

  /** Forgets the given snapshots (no prune). */
  async forgetIds(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.ok("forget", ["--", ...ids]);
  }

  async prune(opts: { maxUnused?: string } = {}): Promise<void> {
    await this.ok("prune", opts.maxUnused ? ["--max-unused", opts.maxUnused] : []);
  }

  /** `restic check`; `readDataSubset` is restic's syntax: "10%", "1/5", "500M". Throws when errors are found. */
  async check(opts: { readDataSubset?: string } = {}): Promise<CheckSummary> {
    const args = ["--json"];
    if (opts.readDataSubset) args.push("--read-data-subset", opts.readDataSubset);
    const res = await this.ok("check", args);
    const summary = jsonLines(res.stdout).find((m) => m.message_type === "summary");
    return (summary ?? { num_errors: 0, broken_packs: null, suggest_repair_index: false, suggest_prune: false }) as unknown as CheckSummary;
  }

  /** Copies snapshots from `from` into this repository (all, or the given ids, or those matching the filter). */
  async copy(from: ResticRepo, opts: SnapshotFilter & { snapshotIds?: string[] } = {}): Promise<void> {
    const args = ["--from-password-file", from.passwordFile, ...filterFlags(opts)];
    if (opts.snapshotIds?.length) args.push("--", ...opts.snapshotIds);
    // The source location goes by environment like our own: it may carry credentials.
    await this.ok("copy", args, { env: { RESTIC_FROM_REPOSITORY: from.url } });
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

  async stats(opts: { mode?: "restore-size" | "files-by-contents" | "raw-data" | "blobs-per-file"; snapshotIds?: string[] } = {}): Promise<RepoStats> {
    const args = ["--json"];
    if (opts.mode) args.push("--mode", opts.mode);
    if (opts.snapshotIds?.length) args.push("--", ...opts.snapshotIds);
    const res = await this.ok("stats", args);
    return parseJson(res.stdout, "stats") as RepoStats;
  }

  /** Removes stale locks (of processes that died); `removeAll` also removes live ones. */
  async unlock(opts: { removeAll?: boolean } = {}): Promise<void> {
    await this.ok("unlock", opts.removeAll ? ["--remove-all"] : []);
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
    return this.backupStream({ stdout: child.stdout, done, kill: () => child.kill("SIGKILL") }, opts);
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
    const detail = this.detail(res.stderr);
    if (refusedDelete(res.stderr)) {
      return new ResticAppendOnlyError(`repository ${this.where} refused to delete data (append-only): restic ${command} removed nothing`, command, res.code);
    }
    return errorForExit(command, res.code, this.repo.url, detail);
  }

  /** restic's own explanation: the exit_error message in JSON mode, else the last line of stderr. */
  private detail(stderr: string): string {
    const exit = lastOf(jsonLines(stderr), (m) => m.message_type === "exit_error");
    if (exit && typeof exit.message === "string") return redactRepo(oneLine(exit.message.split("\n")[0] ?? ""));
    const lines = stderr
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("{"));
    return redactRepo(oneLine(lines[lines.length - 1] ?? ""));
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
    return new Promise((resolve, reject) => {
      const child = spawn(this.bin, argv, { env: this.env(opts.env), stdio: ["pipe", "pipe", "pipe"] });
      const out: Buffer[] = [];
      let stderr = "";
      child.stderr.on("data", (b: Buffer) => (stderr = (stderr + b.toString("utf8")).slice(-STDERR_TAIL)));
      let piping: Promise<void> = Promise.resolve();
      if (opts.stdout) {
        piping = pipeline(child.stdout, opts.stdout, { end: opts.endStdout ?? true });
        // A reader that goes away early (a failed restore target) rejects this before restic has closed; it is handled
        // when restic closes, but must not count as an unhandled rejection in between.
        piping.catch(() => undefined);
      } else {
        child.stdout.on("data", (b: Buffer) => out.push(b));
      }
      // A producer that errors, or restic closing its stdin early, must not crash the process with EPIPE.
      child.stdin.on("error", () => undefined);
      if (opts.stdin) {
        opts.stdin.on("error", () => child.stdin.destroy());
        opts.stdin.pipe(child.stdin);
      } else {
        child.stdin.end();
      }
      child.once("error", (e) => reject(new ResticError(`cannot run restic (${this.bin}): ${e.message}`, command, -1)));
      child.once("close", (code, signal) => {
        const finish = () =>
          resolve({
            code: code ?? (signal === "SIGINT" ? ResticExit.interrupted : -1),
            stdout: Buffer.concat(out).toString("utf8"),
            stderr,
          });
        piping.then(finish, (e: unknown) => {
          stderr += `\nwriting restic ${command} output failed: ${e instanceof Error ? e.message : String(e)}`;
          resolve({ code: code === 0 ? ResticExit.fatal : (code ?? -1), stdout: "", stderr });
        });
      });
    });
  }
}

function backupFlags(opts: { tags?: string[]; host?: string }): string[] {
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
function jsonLines(text: string): Record<string, unknown>[] {
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

function backupSummary(stdout: string): BackupSummary | undefined {
  const msg = lastOf(jsonLines(stdout), (m) => m.message_type === "summary");
  return msg as unknown as BackupSummary | undefined;
}

function backupWarnings(stderr: string): string[] {
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
