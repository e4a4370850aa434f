import { createHash } from "node:crypto";
import { createReadStream, existsSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync } from "node:fs";
import { machine, type as osType } from "node:os";
import { delimiter, join } from "node:path";
import { PassThrough, Transform } from "node:stream";
import { InputError } from "../util/errors.js";
import { formatDuration } from "../util/duration.js";
import { makeDir } from "../util/dirs.js";
import { cacheDir, toolEnv } from "../util/tools.js";
import type { Watchdog } from "../util/watchdog.js";
import type { ExecCompletion, Executor } from "../hosts/executor.js";
import { BackupSourceError, ResticError, ResticIncompleteError, ResticInterruptedError, ResticStalledError, errorForExit } from "./errors.js";
import { oneLine, redactRepo } from "./redact.js";
import { backupFromCommand, backupPathArgs, globalFlags, restoreCommand } from "./args.js";
import type { BackupOptions, BackupResult, RestoreOptions, StdinBackupOptions } from "./options.js";
import { backupSummary, backupWarnings, jsonLines, resticDetail, statusReader } from "./output.js";
import type { Restic } from "./restic.js";
import type { BackupSummary, RestoreSummary } from "./types.js";
import { parseResticVersion, resticVersion, type ResticVersion } from "./version.js";

/**
 * restic run on another host over an executor (SSH), against the repository as that host reaches it: restic there
 * reads the files itself, so its change detection (size, mtime, inode against the parent snapshot) skips every
 * unchanged file without reading or sending it, and a restore writes only what it restores.
 *
 * - The binary is the host's own restic when it has one recent enough (HOST_RESTIC_MIN): the path the repositories
 *   file names (`hostRestic.path`), else restic on the login's PATH (a package). Only failing that, and unless the
 *   file says `hostRestic.push: false`, this machine's restic is pushed, once per version: copied to `<the SSH user's
 *   cache>/dcctl/restic/<version>-<sha256 prefix>/restic` (`$XDG_CACHE_HOME`, else `~/.cache`), checked there
 *   against its sha256 and only then renamed into place, so a half-copied or altered file is never run. Each run
 *   checks its size (no hashing of 60 MB per run, on either side); a mismatch or absence pushes it again. The choice
 *   is made once per host and process; each run says it in one line (`onHostRestic`): which restic, and why a copy.
 * - The repository location and password travel on the SSH channel's stdin, read by the remote shell into
 *   variables and handed to restic through a pipe (restic reads its password from a stdin that is not a terminal):
 *   never on a command line, never in a file on the host, never in the remote environment but the location's.
 * - The channel's stdin stays open while restic runs, and a watcher on the host stops restic (TERM, then KILL) when
 *   it closes: when dcctl stops it on purpose (SIGTERM, a stall) and when dcctl or the connection dies. That holds
 *   for root logins too, whose commands sshd neither signals nor ends with the connection.
 */

/** Whether a repository location can be reached from the hosts as written (a URL), unlike a path on this machine. */
export function reachableFromHosts(url: string): boolean {
  return /^rest:https?:\/\//i.test(url);
}

export interface RemoteResticOptions {
  /** Where pushed binaries live on the host: relative to its user's cache folder (default "dcctl/restic"), or absolute. */
  binDir?: string;
}

/**
 * The oldest restic of a host's own that dcctl runs there: --stdin-from-command (0.17.0) without its early-exit panic,
 * and restore's JSON summary with skipped files (0.17.1).
 */
export const HOST_RESTIC_MIN = { major: 0, minor: 17, patch: 1 } as const;

/** The restic that runs on a host: the host's own (no size to check), or dcctl's copy (pushed when missing). */
interface HostBinary {
  /** Absolute, or relative to the login's cache folder (dcctl's copy). */
  path: string;
  /** dcctl's copy: what is pushed, and the size the run checks. */
  copy?: { local: LocalBinary; dir: string };
  /** The note line that says which one, and why. */
  note: string;
  /** The host could not be asked (the connection failed): the run that follows reports that; nothing is remembered. */
  unasked?: true;
}

/** The local restic binary dcctl pushes: its real path, size, content hash and version. */
export interface LocalBinary {
  path: string;
  size: number;
  sha256: string;
  version: string;
}

/** What the remote wrapper exits with when the binary is missing or not the expected size: push, then run again. */
const NEEDS_BINARY = 97;
/** The wrapper did not get its settings on stdin (the channel closed at once). */
const NO_SETTINGS = 98;
/** The host's system or machine is not the one the local binary is built for. */
const WRONG_PLATFORM = 96;
/** A restore told to go ahead only into an empty place found it has content. */
const OCCUPIED = 94;
/** After stdin is closed, how long restic gets to stop on the host before the channel is killed outright. */
const STOP_GRACE_MS = 15_000;

/**
 * The command line run on the host (POSIX sh): checks the binary, reads the settings from stdin, starts restic with
 * the password on a pipe, and stops it when stdin closes. restic's output reaches the channel through two relays that
 * ignore SIGPIPE and keep reading: when the connection drops, restic must not die of a write to a closed channel
 * before it has removed its lock. Arguments: the binary (relative: to the login's cache folder), its size (or "": the
 * host's own, not checked), a place that must be empty or absent (or ""), restic's argv. The script opens the relays'
 * FIFOs read-write itself before anything reads them, so no open() waits for the other end: restic killed after its
 * fork but before it opened them (a stop that lands then) used to leave both relays, and the script waiting on them,
 * blocked for ever.
 */
const RUN_SCRIPT = `
bin=$1 size=$2 empty=$3; shift 3
if [ -d "$empty" ]; then [ -z "$(find "$empty" -mindepth 1 -maxdepth 1 -print -quit)" ] || exit ${OCCUPIED}; elif [ -n "$empty" ] && [ -e "$empty" ]; then exit ${OCCUPIED}; fi
case $bin in /*) ;; *) bin=\${XDG_CACHE_HOME:-$HOME/.cache}/$bin ;; esac
if [ ! -x "$bin" ] || { [ -n "$size" ] && [ "$(($(wc -c <"$bin")))" -ne "$size" ]; }; then exit ${NEEDS_BINARY}; fi
IFS= read -r repo && IFS= read -r pw && IFS= read -r ru && IFS= read -r rp || exit ${NO_SETTINGS}
unset RESTIC_REPOSITORY_FILE RESTIC_PASSWORD RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND RESTIC_FROM_REPOSITORY RESTIC_FROM_REPOSITORY_FILE RESTIC_FROM_PASSWORD RESTIC_FROM_PASSWORD_FILE RESTIC_FROM_PASSWORD_COMMAND RESTIC_REST_USERNAME RESTIC_REST_PASSWORD
RESTIC_REPOSITORY=$repo RESTIC_PROGRESS_FPS=0.2
export RESTIC_REPOSITORY RESTIC_PROGRESS_FPS
if [ -n "$ru" ]; then RESTIC_REST_USERNAME=$ru RESTIC_REST_PASSWORD=$rp; export RESTIC_REST_USERNAME RESTIC_REST_PASSWORD; fi
rp=
t=$(mktemp -d) && mkfifo "$t/o" "$t/e" || exit 1
trap 'rm -rf "$t"' EXIT
exec 4<>"$t/o" 5<>"$t/e"
(trap '' PIPE; while IFS= read -r l || [ -n "$l" ]; do printf '%s\\n' "$l"; done <"$t/o") 2>/dev/null 4>&- 5>&- &
o=$!
(trap '' PIPE; while IFS= read -r l || [ -n "$l" ]; do printf '%s\\n' "$l" >&2; done <"$t/e") 4>&- 5>&- &
e=$!
printf '%s\\n' "$pw" | "$bin" "$@" >&4 2>&5 4>&- 5>&- &
r=$!
exec 4>&- 5>&-
pw=
echo "dcctl-restic: pid $r"
exec 3<&0
(
  while IFS= read -r _; do :; done <&3
  kill -TERM $r 2>/dev/null || exit 0
  i=0
  while kill -0 $r 2>/dev/null; do
    i=$((i+1))
    if [ $i -gt 100 ]; then kill -KILL $r; exit 0; fi
    sleep 0.1
  done
) >/dev/null 2>&1 &
w=$!
exec 3<&- 0</dev/null
wait $r
c=$?
kill $w 2>/dev/null
wait $o $e
exit $c
`;

/** Installs the binary read from stdin: arguments folder, sha256, expected \`uname -sm\`. */
const PUSH_SCRIPT = `
d=$1 sum=$2 want=$3
case $d in /*) ;; *) d=\${XDG_CACHE_HOME:-$HOME/.cache}/$d ;; esac
have=$(uname -sm)
if [ "$have" != "$want" ]; then cat >/dev/null; echo "this host is $have, the restic to copy is built for $want" >&2; exit ${WRONG_PLATFORM}; fi
mkdir -p "$d" && chmod 700 "$d" || exit 1
tmp=$d/restic.$$.part
trap 'rm -f "$tmp"' EXIT
(umask 077 && cat >"$tmp") || exit 1
echo "$sum  $tmp" | sha256sum -c --status || { echo "the copy does not match sha256 $sum" >&2; exit 1; }
chmod 700 "$tmp" && mv -f "$tmp" "$d/restic"
`;

/**
 * The host's own restic binaries: the named path ($1, may be "") and restic on the login's PATH, one line each,
 * `path<TAB>first line of its version output`.
 */
const FIND_SCRIPT = `
for b in "$1" "$(command -v restic 2>/dev/null)"; do
  case $b in /*) ;; *) continue ;; esac
  [ -f "$b" ] && [ -x "$b" ] || continue
  printf '%s\t%s\n' "$b" "$("$b" version 2>/dev/null | head -n 1)"
done
`;

/** Waits until restic (pid $1) is gone on the host, TERM after 3 s, KILL after 8 s; exit 1 if it is still there. */
const GONE_SCRIPT = `
i=0
while kill -0 "$1" 2>/dev/null; do
  if [ -r "/proc/$1/cmdline" ] && ! grep -q restic "/proc/$1/cmdline"; then exit 0; fi
  case $i in 30) kill -TERM "$1" ;; 80) kill -KILL "$1" ;; 120) exit 1 ;; esac
  i=$((i+1))
  sleep 0.1
done
`;

interface RemoteResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Set when dcctl stopped it: why. */
  stopped?: { stalled?: string };
  /** restic's pid on the host, as the wrapper reported it. */
  pid?: number;
  /** The connection failed or dropped before the command reported its exit: why. */
  lost?: string;
}

interface RunHooks {
  watchdog?: Watchdog;
  onLine?: (line: string) => void;
  /** Run only if this path is empty or absent on the host (else TargetOccupiedError): the look and the run in one go. */
  ifEmpty?: string;
}

/** A restore that was to write only into an empty place found content there; nothing was written. */
export class TargetOccupiedError extends ResticError {}

/** restic on a host (see above), for one repository; `restic` is the local wrapper of that same repository. */
export class RemoteRestic {
  constructor(
    private readonly exec: Executor,
    private readonly restic: Restic,
    private readonly opts: RemoteResticOptions = {},
  ) {
    if (!reachableFromHosts(restic.repo.url)) throw new InputError([`restic on ${exec.target} cannot reach repository ${restic.where}: only rest: URLs are reachable from other hosts`]);
  }

  /** "restic on root@host:22", for messages. */
  get who(): string {
    return `restic on ${this.exec.target}`;
  }

  /**
   * Backs up paths of the host. Exit 3 (some files unreadable) becomes ResticIncompleteError carrying the snapshot
   * id; a stop (the run's signal, a stall) fails it, and a snapshot that was written all the same is forgotten.
   */
  async backup(paths: string[], opts: BackupOptions = {}): Promise<BackupResult> {
    const args = backupPathArgs(paths, opts);
    let started = false;
    const watchdog = this.restic.stallWatchdog((idle) =>
      started
        ? `${this.who} read no file and saved no data for ${formatDuration(idle)} (backup of ${paths.join(", ")} to ${this.restic.where}; not answering?)`
        : `${this.who} did not start the backup of ${paths.join(", ")} within ${formatDuration(idle)} (${this.restic.where} not answering?)`,
    );
    const status = statusReader(watchdog, opts.onProgress);
    const res = await this.run("backup", args, {
      watchdog,
      onLine: (line) => {
        if (line.startsWith('{"message_type":"status"')) started = true;
        status(line);
      },
    });
    const summary = backupSummary(res.stdout);
    if (res.stopped) {
      // It finished just as it was stopped: not a snapshot this run accepts.
      if (summary?.snapshot_id) await this.restic.forgetIds([summary.snapshot_id]);
      throw this.stopFailure("backup", res);
    }
    if (res.code === 3) {
      throw new ResticIncompleteError(`${this.who} left out unreadable files backing up to ${this.restic.where}: ${unreadable(res.stderr) || resticDetail(res.stderr) || "see restic's output"}`, summary?.snapshot_id);
    }
    if (res.code !== 0) {
      const err = this.failure("backup", res);
      const missing = backupWarnings(res.stderr).filter((w) => /does not exist, skipping$/.test(w));
      if (missing.length) err.message += ` (${missing.map((w) => w.replace(/, skipping$/, "")).join("; ")})`;
      throw err;
    }
    if (!summary) throw new ResticError(`${this.who} printed no backup summary for ${this.restic.where}`, "backup", 0);
    return { ...summary, warnings: backupWarnings(res.stderr) };
  }

  /**
   * Backs up what a command run on the host prints (`restic backup --stdin-from-command`, e.g. pg_dump): the dump
   * never crosses the network, only the data restic adds to the repository does. A command that exits non-zero
   * leaves no snapshot (restic's own rule) and fails with BackupSourceError quoting the command's last lines.
   */
  async backupCommand(argv: string[], opts: StdinBackupOptions): Promise<BackupSummary> {
    const { args } = backupFromCommand(argv, opts);
    const watchdog = this.restic.stallWatchdog((idle) => `${this.who} took no data of ${opts.filename} for ${formatDuration(idle)} (${argv[0] ?? "the source"} sends nothing, or ${this.restic.where} is not answering)`);
    const res = await this.run("backup", args, { watchdog, onLine: statusReader(watchdog, opts.onProgress) });
    const summary = backupSummary(res.stdout);
    if (res.stopped) {
      if (summary?.snapshot_id) await this.restic.forgetIds([summary.snapshot_id]);
      throw this.stopFailure("backup", res);
    }
    if (res.code !== 0 && /command failed/.test(res.stderr)) {
      // restic passes the command's stderr on as "subprocess NAME: line".
      const said = res.stderr.split("\n").filter((l) => l.startsWith("subprocess ")).slice(-3).map((l) => l.replace(/^subprocess [^:]*: /, ""));
      throw new BackupSourceError(`backup source of ${opts.filename} failed on ${this.exec.target} (${oneLine(said.join("\n")) || resticDetail(res.stderr)}); no snapshot kept in ${this.restic.where}`, "backup", res.code);
    }
    if (res.code !== 0) throw this.failure("backup", res);
    if (!summary) throw new ResticError(`${this.who} printed no backup summary for ${this.restic.where}`, "backup", 0);
    return summary;
  }

  /** Restores (parts of) a snapshot into `target` on the host; an include that matches nothing is an error. */
  async restore(snapshot: string, target: string, opts: RestoreOptions & { tags?: string[]; ifEmpty?: string } = {}): Promise<RestoreSummary> {
    const { args } = restoreCommand(snapshot, target, opts);
    const res = await this.run("restore", args, opts.ifEmpty ? { ifEmpty: opts.ifEmpty } : {});
    if (res.stopped) throw this.stopFailure("restore", res);
    if (res.code === OCCUPIED) throw new TargetOccupiedError(`${opts.ifEmpty ?? target} on ${this.exec.target} is not empty; nothing restored`, "restore", res.code);
    if (res.code !== 0) throw this.failure("restore", res);
    const summary = jsonLines(res.stdout).find((m) => m.message_type === "summary") as Partial<RestoreSummary> | undefined;
    // restic leaves out zero counts: a file already there as it was counts as skipped, not restored.
    if (!summary?.total_files && !summary?.files_skipped) {
      throw new ResticError(`${this.who} restored nothing: ${(opts.include ?? []).join(", ") || "the snapshot"} is not in ${snapshot === "latest" ? "the latest snapshot" : `snapshot ${snapshot.slice(0, 8)}`} of ${this.restic.where}`, "restore", 0);
    }
    return { total_files: 0, files_restored: 0, total_bytes: 0, bytes_restored: 0, ...summary };
  }

  /** Runs restic there, pushing the binary first when the host lacks it. */
  private async run(command: string, args: string[], hooks: RunHooks = {}): Promise<RemoteResult> {
    if (this.restic.options.signal?.aborted) {
      hooks.watchdog?.stop();
      return { code: -1, stdout: "", stderr: "", stopped: {} };
    }
    try {
      let bin = await this.binary();
      let res = await this.launch(bin, command, args, hooks);
      if (res.code === NEEDS_BINARY && !res.stopped && !bin.copy) {
        // The host's own restic went away since it was chosen: choose again.
        choices.delete(this.choiceKey);
        bin = await this.binary();
        res = await this.launch(bin, command, args, hooks);
      }
      let pushed = false;
      if (res.code === NEEDS_BINARY && !res.stopped && bin.copy) {
        if (this.restic.options.hostRestic?.push === false) throw new ResticError(`${this.who}: no restic to run there, and hostRestic.push is false in the repositories file`, "push", -1);
        await this.push(bin.copy.local, bin.copy.dir, hooks.watchdog);
        pushed = true;
        res = await this.launch(bin, command, args, hooks);
      }
      if (!bin.unasked && !res.lost) this.restic.options.onHostRestic?.(pushed ? bin.note.replace("copied there earlier", "copied there now") : bin.note);
      return res;
    } finally {
      hooks.watchdog?.stop();
    }
  }

  private get choiceKey(): string {
    const h = this.restic.options.hostRestic;
    return JSON.stringify([this.exec.target, this.restic.bin, this.opts.binDir ?? "", h?.path ?? "", h?.push ?? true]);
  }

  /**
   * Which restic runs on this host (see above), chosen once per host and process: the host's own when it is recent
   * enough, else dcctl's copy (pushed when the run finds it missing).
   */
  private async binary(): Promise<HostBinary> {
    const key = this.choiceKey;
    let choice = choices.get(key);
    if (!choice) {
      choice = this.choose();
      choices.set(key, choice);
      choice.then(
        (b) => void (b.unasked && choices.delete(key)),
        () => choices.delete(key),
      );
    }
    return choice;
  }

  private async choose(): Promise<HostBinary> {
    const wanted = this.restic.options.hostRestic;
    const found = await this.exec.run(["sh", "-c", FIND_SCRIPT, "dcctl-restic-find", wanted?.path ?? ""], { timeoutMs: 30_000 }).catch(() => undefined);
    const unasked = found === undefined || found.code !== 0;
    const own = (unasked ? "" : found.stdout)
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        const [path = "", said = ""] = line.split("\t");
        return { path, version: parseResticVersion(said) };
      });
    const usable = own.find((b) => b.version && newEnough(b.version));
    if (usable?.version) return { path: usable.path, note: `${this.who}: the host's own ${usable.path} (${usable.version.text})` };
    const min = `${HOST_RESTIC_MIN.major}.${HOST_RESTIC_MIN.minor}.${HOST_RESTIC_MIN.patch}`;
    const why = own.length ? own.map((b) => `${b.path} is ${b.version ? b.version.text.replace("restic ", "") : "not a restic that says its version"}`).join(", ") : `none${wanted?.path ? ` at ${wanted.path} nor` : ""} on its PATH`;
    if (wanted?.push === false && !unasked) {
      throw new ResticError(`${this.who}: the host has no restic ${min} or newer (${why}) and hostRestic.push is false in the repositories file: install one there, or name it as hostRestic.path`, "push", -1);
    }
    const local = await localBinary(this.restic.bin);
    const dir = `${this.opts.binDir ?? "dcctl/restic"}/${local.version}-${local.sha256.slice(0, 16)}`;
    return { path: `${dir}/restic`, copy: { local, dir }, note: `${this.who}: dcctl's restic ${local.version}, copied there earlier (${dir}), as the host has no restic ${min} or newer (${why})`, ...(unasked ? { unasked: true as const } : {}) };
  }

  private launch(bin: HostBinary, command: string, args: string[], hooks: RunHooks): Promise<RemoteResult> {
    const o = this.restic.options;
    const flags = globalFlags(o);
    const repo = this.restic.repo;
    const settings = [repo.url, readPassword(repo.passwordFile, this.restic.where), repo.rest?.user ?? "", repo.rest ? readPassword(repo.rest.passwordFile, this.restic.where) : ""];
    if (settings.some((s) => /[\r\n]/.test(s))) throw new InputError([`the repository location or a password of ${this.restic.where} spans several lines: it cannot be handed to ${this.who}`]);
    // Kept open while restic runs: its end is what stops restic on the host.
    const stdin = new PassThrough();
    stdin.write(settings.join("\n") + "\n");
    const stream = this.exec.stream(["sh", "-c", RUN_SCRIPT, "dcctl-restic", bin.path, bin.copy ? String(bin.copy.local.size) : "", hooks.ifEmpty ?? "", command, ...flags, ...args], { stdin });
    const lines: string[] = [];
    let pid: number | undefined;
    let partial = "";
    let stopped: RemoteResult["stopped"];
    let graceTimer: NodeJS.Timeout | undefined;
    let finished = false;
    const stop = (stalled?: string) => {
      if (stopped || finished) return;
      stopped = stalled ? { stalled } : {};
      stdin.end();
      graceTimer = setTimeout(() => stream.kill(), STOP_GRACE_MS);
    };
    const onAbort = () => stop();
    o.signal?.addEventListener("abort", onAbort, { once: true });
    // Stopped while the binary was being copied: the wrapper starts only to be told to stop at once.
    if (o.signal?.aborted) stop();
    hooks.watchdog?.onFire((why) => stop(why));
    const take = (line: string) => {
      const m = /^dcctl-restic: pid (\d+)$/.exec(line);
      if (m) {
        pid = Number(m[1]);
        return;
      }
      // Status lines come every few seconds for hours: only the last one is kept.
      if (line.startsWith('{"message_type":"status"')) {
        if (lines.at(-1)?.startsWith('{"message_type":"status"')) lines.pop();
      }
      lines.push(line);
      hooks.onLine?.(line);
    };
    stream.stdout.setEncoding("utf8");
    stream.stdout.on("data", (chunk: string) => {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) take(line);
    });
    // The channel may close while its last lines (the summary) still sit in the stream: wait for its end as well.
    const drained = new Promise<void>((resolve) => {
      stream.stdout.once("end", resolve);
      stream.stdout.once("close", resolve);
    });
    return stream.done
      .then(
        (c): ExecCompletion & { lost?: boolean } => c,
        (e: unknown): ExecCompletion & { lost?: boolean } => ({ code: -1, stderr: e instanceof Error ? e.message : String(e), lost: true }),
      )
      .then(async (c) => {
        await drained;
        finished = true;
        clearTimeout(graceTimer);
        o.signal?.removeEventListener("abort", onAbort);
        stdin.end();
        if (partial) take(partial);
        let stderr = c.stderr;
        // The wrapper reports restic's own exit; killed or cut off, it may not have waited for restic: make sure.
        if (stopped && pid !== undefined && (c.signal || c.lost)) {
          const gone = await this.exec.run(["sh", "-c", GONE_SCRIPT, "sh", String(pid)], { timeoutMs: 20_000 }).catch((e: unknown) => ({ code: -1, stderr: String(e), stdout: "" }));
          if (gone.code !== 0) stderr += `\nrestic pid ${pid} on ${this.exec.target} may still be running (${oneLine(gone.stderr) || `exit ${gone.code}`})`;
        }
        return { code: c.code, stdout: lines.join("\n"), stderr, ...(stopped ? { stopped } : {}), ...(pid !== undefined ? { pid } : {}), ...(c.lost ? { lost: oneLine(c.stderr) } : {}) };
      });
  }

  /** Copies the local binary to the host (see above); the watchdog counts the copy's bytes as progress. */
  private async push(bin: LocalBinary, dir: string, watchdog: Watchdog | undefined): Promise<void> {
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        watchdog?.touch();
        cb(null, chunk);
      },
    });
    const file = createReadStream(bin.path);
    file.on("error", (e) => meter.destroy(e));
    file.pipe(meter);
    const res = await this.exec.run(["sh", "-c", PUSH_SCRIPT, "dcctl-restic-push", dir, bin.sha256, localPlatform()], { stdin: meter });
    if (res.code === 0) return;
    const why = oneLine(res.stderr.split("\n").filter((l) => l.trim()).pop() ?? "") || `exit ${res.code}`;
    if (res.code === WRONG_PLATFORM) throw new ResticError(`cannot run restic ${bin.version} on ${this.exec.target}: ${why}`, "push", res.code);
    throw new ResticError(`copying restic ${bin.version} to ${this.exec.target} (${dir}) failed: ${why}`, "push", res.code);
  }

  private stopFailure(command: string, res: RemoteResult): ResticError {
    const left = /may still be running.*/.exec(res.stderr)?.[0];
    const tail = left ? `; ${left}` : "";
    if (res.stopped?.stalled) return new ResticStalledError(`stalled: ${res.stopped.stalled}; ${this.who} stopped, nothing saved${tail}`, command, res.code);
    return new ResticInterruptedError(`${this.who} was stopped (restic ${command} to ${this.restic.where}); nothing saved${tail}`, command, res.code);
  }

  private failure(command: string, res: RemoteResult): ResticError {
    const outcome = command === "backup" ? `no snapshot kept in ${this.restic.where}` : "nothing done";
    if (res.lost) return new ResticError(`cannot run restic ${command} on ${this.exec.target} (${res.lost}); ${outcome}`, command, -1);
    if (res.code === NO_SETTINGS) return new ResticError(`${this.who} did not receive the repository settings (the channel closed)`, command, res.code);
    if (res.code === 127) return new ResticError(`${this.who} could not be started: ${oneLine(res.stderr.split("\n").filter((l) => l.trim()).pop() ?? "")}`, command, res.code);
    const err = errorForExit(command, res.code, this.restic.repo.url, resticDetail(res.stderr));
    // Where restic ran is part of the story: on the host, not here.
    err.message = `on ${this.exec.target}: ${err.message}`;
    return err;
  }
}

/** The files restic could not read, from its JSON error lines (at most five named). */
function unreadable(stderr: string): string {
  const items = jsonLines(stderr)
    .filter((m) => m.message_type === "error")
    .map((m) => {
      const message = (m.error as { message?: string } | undefined)?.message ?? "";
      const item = typeof m.item === "string" ? m.item : "";
      // restic's message usually names the file already ("open /srv/x: permission denied").
      return redactRepo(!item || message.includes(item) ? message : `${item}: ${message}`);
    });
  return items.length > 5 ? `${items.slice(0, 5).join("; ")} and ${items.length - 5} more` : items.join("; ");
}

/** The repository password as restic reads a password file (its content, trimmed); the error names the file only. */
function readPassword(path: string, where: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch (e) {
    throw new ResticError(`cannot read the password file ${path} of ${where}: ${(e as NodeJS.ErrnoException).code ?? "error"}`, "auth", -1);
  }
}

/** `uname -sm` of this machine, which a host must match to run its restic. */
function localPlatform(): string {
  return `${osType()} ${machine()}`;
}

/** The restic chosen for each host (and settings) in this process. */
const choices = new Map<string, Promise<HostBinary>>();

function newEnough(v: ResticVersion): boolean {
  const m = HOST_RESTIC_MIN;
  return v.major !== m.major ? v.major > m.major : v.minor !== m.minor ? v.minor > m.minor : v.patch >= m.patch;
}

const binaries = new Map<string, Promise<LocalBinary>>();

/**
 * The local binary's identity. Its sha256 is remembered in the tool cache by path, size, mtime and inode, so that a
 * run hashes 60 MB only when the binary changed.
 */
export function localBinary(bin: string): Promise<LocalBinary> {
  let found = binaries.get(bin);
  if (!found) {
    found = identify(bin);
    found.catch(() => binaries.delete(bin));
    binaries.set(bin, found);
  }
  return found;
}

interface DigestEntry {
  size: number;
  mtimeMs: number;
  ino: number;
  sha256: string;
  version: string;
}

async function identify(bin: string): Promise<LocalBinary> {
  const path = realpathSync(onPath(bin));
  const st = statSync(path);
  const file = join(cacheDir(), "restic-digests.json");
  let known: Record<string, DigestEntry> = {};
  try {
    known = JSON.parse(readFileSync(file, "utf8")) as Record<string, DigestEntry>;
  } catch {
    // No record yet (or a broken one): it is rebuilt below.
  }
  const k = known[path];
  if (k && k.size === st.size && k.mtimeMs === st.mtimeMs && k.ino === st.ino) return { path, size: k.size, sha256: k.sha256, version: k.version };
  const [sha256, v] = await Promise.all([sha256Of(path), resticVersion(path)]);
  const version = `${v.major}.${v.minor}.${v.patch}`;
  try {
    makeDir(cacheDir());
    const tmp = `${file}.${process.pid}`;
    writeFileSync(tmp, JSON.stringify({ ...known, [path]: { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, sha256, version } }) + "\n");
    renameSync(tmp, file);
  } catch {
    // A read-only cache costs a hash per run, nothing else.
  }
  return { path, size: st.size, sha256, version };
}

function sha256Of(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(path)
      .on("error", reject)
      .on("data", (b) => h.update(b))
      .on("end", () => resolve(h.digest("hex")));
  });
}

/** A bare command name as the tools' PATH finds it. */
function onPath(bin: string): string {
  if (bin.includes("/")) return bin;
  for (const dir of (toolEnv().PATH ?? "").split(delimiter)) {
    if (dir && existsSync(join(dir, bin))) return join(dir, bin);
  }
  throw new ResticError(`cannot find ${bin} to copy to the hosts (not on PATH; run scripts/setup.sh)`, "push", -1);
}
