import { createHash } from "node:crypto";
import { spawn } from "node:child_process";
import { mkdirSync, openSync, closeSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { DcctlError, errorMessage, ExitCode } from "../../util/errors.js";
import { isRunning, lastLine } from "../../util/process.js";
import { toolEnv } from "../../util/tools.js";
import { expectOk, type Executor } from "../../hosts/executor.js";
import type { SiteHost } from "../../inventory/index.js";
import type { ArchiveGap, ArchiveHome, ArchiveStatus, ArchivedServer, RecoverOptions, RecoverResult } from "../pitr.js";
import { PROBE_TIMEOUT_MS } from "../replication.js";
import { shipToScratch } from "../scratch.js";
import { mariadbArgv, sqlString, type MariadbConnection } from "./connection.js";
import { mariadbQuery } from "./query.js";
import { nativePasswordHash } from "./replication.js";
import { replayPlan, stopSecond, transactionsOf, type BinlogTransaction } from "./binlog.js";

/**
 * MariaDB's continuous archive, kept on the site's management host: `mariadb-binlog --read-from-remote-server --raw
 * --stop-never` copies the server's binary log as it is written (a replica's connection, with the replication
 * account), and `mariadb-backup --backup --stream=xbstream`, run on the database host over SSH, takes the base
 * backups, unpacked here by `mbstream`. A restore copies a base backup to the target, prepares it, starts a scratch
 * mariadbd on it and replays the archived binary log from the backup's position up to the point asked.
 */

/** A server's settings as the archive needs them: how dcctl reaches it for SQL (its admin account). */
export interface MariadbArchiveEnd extends ArchivedServer {
  conn: MariadbConnection;
}

/** What maintain() needs to keep a receiver running without being told the servers: written by setup. */
interface ArchivedEntry {
  host: string;
  address: string;
  port: number;
  recoveryWindowDays: number;
  /** Set by `pitr stop`: the receiver is not restarted until setup runs again. */
  stopped?: boolean;
}

/** A base backup's record, written beside its files once mbstream has unpacked them all. */
interface BaseBackup {
  id: string;
  /** When the backup ended (ISO): the oldest point it can serve. */
  endTime: string;
  /** Where in the binary log the backup's data ends (xtrabackup_binlog_info). */
  binlogFile: string;
  binlogPosition: number;
  gtid: string;
}

const BASE_BACKUP_TIMEOUT_MS = 6 * 3600_000;
const RECOVER_TIMEOUT_MS = 6 * 3600_000;
const BASE_RECORD = "dcctl-base.json";

const serversFile = (home: ArchiveHome) => join(home.dir, "servers.json");
const accountFile = (home: ArchiveHome) => join(home.dir, "account.cnf");
const serverDir = (home: ArchiveHome, host: string) => join(home.dir, host);
const baseRoot = (home: ArchiveHome, host: string) => join(serverDir(home, host), "base");
const binlogDir = (home: ArchiveHome, host: string) => join(serverDir(home, host), "binlog");
const pidFile = (home: ArchiveHome, host: string) => join(serverDir(home, host), "receiver.pid");
const receiverLog = (home: ArchiveHome, host: string) => join(serverDir(home, host), "receiver.log");

/**
 * The server id the receiver registers with (a replica's): one per archiving site, so that both sites' receivers are
 * connected at once (a server drops an older connection that registers the same id), far above the lab's and any
 * hand-picked server_id.
 */
export function receiverServerId(site: string): number {
  return 4_000_000_000 + (createHash("sha256").update(`dcctl-pitr-${site}`).digest().readUInt32BE(0) % 200_000_000);
}

/** The address the management host reaches a server at: its settings' host, unless that is the host's own loopback. */
export function mariadbServerAddress(conn: MariadbConnection, host: SiteHost): string {
  const h = conn.host;
  return !h || h === "localhost" || h.startsWith("127.") || h === "::1" ? host.ip : h;
}

function readEntries(home: ArchiveHome): ArchivedEntry[] {
  try {
    return JSON.parse(readFileSync(serversFile(home), "utf8")) as ArchivedEntry[];
  } catch {
    return [];
  }
}

function writeEntries(home: ArchiveHome, entries: ArchivedEntry[]): void {
  writeFileSync(serversFile(home), JSON.stringify(entries, null, 2) + "\n", { mode: 0o600 });
}

/** The replication account's login, for mariadb-binlog: a 0600 option file, never a password on a command line. */
function writeAccountFile(home: ArchiveHome): void {
  const esc = (s: string) => s.replace(/\\/g, "\\\\").replace(/"/g, '\\"');
  writeFileSync(accountFile(home), `[client]\nuser="${esc(home.account.user)}"\npassword="${esc(home.account.password)}"\n`, { mode: 0o600 });
}

/** Binary log files by their sequence number (name.000123). */
const seq = (file: string) => Number(/\.(\d+)$/.exec(file)?.[1] ?? -1);

/** The archived binary log files of a server, oldest first. */
export function archivedBinlogs(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => /\.\d{6,}$/.test(n)).sort((a, b) => seq(a) - seq(b));
}

/**
 * The runs of binary log files missing from the archive between `first` (where a base backup's data ends) and the
 * newest it holds: the server numbers its files one by one, so a number skipped is a file the archive never got (a
 * receiver down longer than the server kept its binary log). A replay cannot pass it.
 */
export function binlogGaps(first: string, files: string[]): { missing: string; count: number; before?: string; lastMissing: number }[] {
  const stem = first.replace(/\.\d+$/, "");
  const width = (/\.(\d+)$/.exec(first)?.[1] ?? "000000").length;
  const held = [...new Set(files.filter((f) => f.replace(/\.\d+$/, "") === stem).map(seq))].filter((n) => n >= seq(first)).sort((a, b) => a - b);
  const gaps: ReturnType<typeof binlogGaps> = [];
  const newest = held.at(-1);
  if (newest === undefined) return gaps;
  const name = (n: number) => `${stem}.${String(n).padStart(width, "0")}`;
  let expected = seq(first);
  for (const n of held) {
    if (n > expected) gaps.push({ missing: name(expected), count: n - expected, ...(expected > seq(first) ? { before: name(expected - 1) } : {}), lastMissing: n - 1 });
    expected = n + 1;
  }
  return gaps;
}

/** The gaps after the oldest base backup, with the span each makes unreachable (to the first base backup after it). */
async function mariadbArchiveGaps(home: ArchiveHome, host: string, bases: BaseBackup[]): Promise<ArchiveGap[]> {
  const oldest = bases[0];
  if (!oldest) return [];
  const dir = binlogDir(home, host);
  const out: ArchiveGap[] = [];
  for (const g of binlogGaps(oldest.binlogFile, archivedBinlogs(dir)).slice(0, 5)) {
    const last = g.before ? (await transactionsOf(dir, g.before).catch(() => [])).filter((t) => t.committed).at(-1)?.at : undefined;
    const from = last ?? (g.before ? new Date(statSync(join(dir, g.before)).mtimeMs) : undefined);
    const resumes = bases.find((b) => seq(b.binlogFile) > g.lastMissing);
    out.push({ what: "binary log file", missing: g.missing, count: g.count, ...(g.before ? { before: g.before } : {}), ...(from ? { from: from.toISOString() } : {}), ...(resumes ? { resumesAt: resumes.endTime } : {}) });
  }
  return out;
}

/** The base backups of a server that are complete (their record written), oldest first. */
function listBases(home: ArchiveHome, host: string): BaseBackup[] {
  let ids: string[];
  try {
    ids = readdirSync(baseRoot(home, host));
  } catch {
    return [];
  }
  const out: BaseBackup[] = [];
  for (const id of ids) {
    try {
      out.push(JSON.parse(readFileSync(join(baseRoot(home, host), id, BASE_RECORD), "utf8")) as BaseBackup);
    } catch {
      // Not complete (being taken, or cut off): not a base backup.
    }
  }
  return out.sort((a, b) => Date.parse(a.endTime) - Date.parse(b.endTime));
}

/** The receiver's pid, if it runs (and is a mariadb-binlog: a pid can be reused). */
function receiverPid(home: ArchiveHome, host: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile(home, host), "utf8").trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isRunning(pid)) return undefined;
  try {
    if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("binlog")) return undefined;
  } catch {
    // No /proc: trust the signal.
  }
  return pid;
}

/**
 * Starts the receiver, detached so that it outlives this dcctl (its pid in the archive's folder): it copies the
 * server's binary log from `from` (a file name) on, file by file as the server writes and rotates them.
 */
function startReceiver(home: ArchiveHome, entry: ArchivedEntry, from: string): number {
  mkdirSync(binlogDir(home, entry.host), { recursive: true, mode: 0o700 });
  const log = openSync(receiverLog(home, entry.host), "a", 0o600);
  try {
    const args = [
      `--defaults-extra-file=${accountFile(home)}`,
      "--read-from-remote-server",
      "--raw",
      "--stop-never",
      `--stop-never-slave-server-id=${receiverServerId(home.site)}`,
      "--protocol=TCP",
      `--host=${entry.address}`,
      `--port=${entry.port}`,
      `--result-file=${binlogDir(home, entry.host)}/`,
      from,
    ];
    const child = spawn("mariadb-binlog", args, { detached: true, stdio: ["ignore", log, log], env: toolEnv(), cwd: serverDir(home, entry.host) });
    child.unref();
    if (!child.pid) throw new DcctlError(`${entry.host}: mariadb-binlog did not start`);
    writeFileSync(pidFile(home, entry.host), `${child.pid}\n`, { mode: 0o600 });
    return child.pid;
  } finally {
    closeSync(log);
  }
}

function stopReceiver(home: ArchiveHome, host: string): void {
  const pid = receiverPid(home, host);
  if (pid !== undefined) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // Gone already.
    }
  }
  rmSync(pidFile(home, host), { force: true });
}

/** SHOW MASTER STATUS, with the admin account over SSH: where the server is writing its binary log. */
async function masterStatus(end: MariadbArchiveEnd): Promise<{ file: string; position: number }> {
  const out = await withTimeout(mariadbQuery(end.exec, end.conn, "SHOW MASTER STATUS;\n"), PROBE_TIMEOUT_MS, `${end.host.name} did not answer within ${PROBE_TIMEOUT_MS / 1000} s`);
  const [file = "", position = ""] = (out.split("\n")[0] ?? "").split("\t");
  if (!file) throw new DcctlError(`${end.host.name} has no binary log (SHOW MASTER STATUS is empty): set log-bin in its server configuration and restart it`);
  return { file, position: Number(position) };
}

async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new DcctlError(message)), ms)))]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/**
 * Makes each server archived: the replication account on the server (kept out of its binary log, so that a standby
 * is not asked to change an account it may not have), the receiver copying its binary log, and a first base backup
 * where there is none. Run again, it changes nothing that is right.
 */
export async function setupMariadbArchive(home: ArchiveHome, ends: MariadbArchiveEnd[]): Promise<void> {
  mkdirSync(home.dir, { recursive: true, mode: 0o700 });
  writeAccountFile(home);
  const entries = readEntries(home);
  for (const end of ends) {
    const hash = sqlString(nativePasswordHash(home.account.password));
    const user = `${sqlString(home.account.user)}@'%'`;
    await mariadbQuery(
      end.exec,
      end.conn,
      `SET SESSION sql_log_bin = 0;\nCREATE USER IF NOT EXISTS ${user} IDENTIFIED BY PASSWORD ${hash};\nALTER USER ${user} IDENTIFIED BY PASSWORD ${hash};\nGRANT REPLICATION SLAVE ON *.* TO ${user};\n`,
    );
    const entry: ArchivedEntry = { host: end.host.name, address: mariadbServerAddress(end.conn, end.host), port: end.conn.port, recoveryWindowDays: end.recoveryWindowDays };
    const i = entries.findIndex((e) => e.host === entry.host);
    if (i >= 0) entries[i] = entry;
    else entries.push(entry);
    writeEntries(home, entries);
    mkdirSync(binlogDir(home, entry.host), { recursive: true, mode: 0o700 });
    if (receiverPid(home, entry.host) === undefined) {
      const from = archivedBinlogs(binlogDir(home, entry.host)).at(-1) ?? (await masterStatus(end)).file;
      startReceiver(home, entry, from);
    }
    await waitReceived(home, end, 60_000);
    if (listBases(home, entry.host).length === 0) {
      home.log(`${entry.host}: first base backup`);
      await mariadbBaseBackup(home, end);
    }
    home.log(`${entry.host}: archived by ${home.site} (mariadb-binlog, server id ${receiverServerId(home.site)})`);
  }
}

/** Waits until the receiver holds the file the server writes, up to the server's position: the chain works. */
async function waitReceived(home: ArchiveHome, end: MariadbArchiveEnd, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = await masterStatus(end);
    const size = fileSize(join(binlogDir(home, end.host.name), m.file));
    if (size !== undefined && size >= m.position) return;
    if (receiverPid(home, end.host.name) === undefined) {
      throw new DcctlError(`${end.host.name}: the archive's mariadb-binlog stopped: ${lastLine(tail(receiverLog(home, end.host.name))) || "no output"} (see ${receiverLog(home, end.host.name)})`);
    }
    if (Date.now() > deadline) throw new DcctlError(`${end.host.name}: the archive has not received ${m.file} up to ${m.position} after ${timeoutMs / 1000} s (see ${receiverLog(home, end.host.name)})`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

function fileSize(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch {
    return undefined;
  }
}

function tail(path: string): string {
  try {
    return readFileSync(path, "utf8").slice(-4096);
  } catch {
    return "";
  }
}

/** `file<TAB>position<TAB>gtid`: where the backup's data ends in the binary log. */
export function parseBinlogInfo(text: string): { binlogFile: string; binlogPosition: number; gtid: string } {
  const [file = "", pos = "", gtid = ""] = (text.trim().split("\n")[0] ?? "").split("\t");
  const position = Number(pos);
  if (!file || !Number.isInteger(position) || position < 4) throw new DcctlError(`the base backup's xtrabackup_binlog_info is not file, position and GTID: ${JSON.stringify(text.trim())}`);
  return { binlogFile: file, binlogPosition: position, gtid };
}

/**
 * A base backup now: mariadb-backup streams the server's files from its host, mbstream unpacks them here; the backup
 * counts once its record (end time, binary log position) is written, so a cut-off one is never used.
 */
export async function mariadbBaseBackup(home: ArchiveHome, end: MariadbArchiveEnd): Promise<string> {
  const name = end.host.name;
  const now = new Date();
  const id = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  mkdirSync(baseRoot(home, name), { recursive: true, mode: 0o700 });
  const partial = join(baseRoot(home, name), `.${id}.partial`);
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { mode: 0o700 });
  const c = end.conn;
  const bin = c.binDir ? `${c.binDir.replace(/\/+$/, "")}/mariadb-backup` : "mariadb-backup";
  const argv = [
    bin,
    ...(c.defaultsFile ? [`--defaults-extra-file=${c.defaultsFile}`] : []),
    "--backup",
    "--stream=xbstream",
    "--protocol=TCP",
    `--host=${c.host ?? "127.0.0.1"}`,
    `--port=${c.port}`,
    ...(c.user ? [`--user=${c.user}`] : []),
  ];
  try {
    const stream = end.exec.stream(argv, { timeoutMs: BASE_BACKUP_TIMEOUT_MS });
    const unpack = spawn("mbstream", ["-x", "-C", partial], { stdio: ["pipe", "ignore", "pipe"], env: toolEnv() });
    let unpackErr = "";
    unpack.stderr.on("data", (b: Buffer) => (unpackErr += b.toString()));
    const unpacked = new Promise<number>((resolve) => unpack.on("close", (code) => resolve(code ?? 1)));
    unpack.stdin.on("error", () => stream.kill());
    stream.stdout.pipe(unpack.stdin);
    const [done, code] = await Promise.all([stream.done, unpacked]);
    if (done.code !== 0) throw new DcctlError(`mariadb-backup on ${end.exec.target} failed (exit ${done.code}): ${lastLine(done.stderr.split("\n").filter((l) => !/^\[\d+\] .*(Copying|copied|Streaming|Done)/.test(l)).join("\n")) || "no output"}`);
    if (code !== 0) throw new DcctlError(`mbstream -x failed: ${lastLine(unpackErr) || `exit ${code}`}`);
    const info = parseBinlogInfo(readFileSync(join(partial, "xtrabackup_binlog_info"), "utf8"));
    const record: BaseBackup = { id, endTime: new Date().toISOString(), ...info };
    writeFileSync(join(partial, BASE_RECORD), JSON.stringify(record, null, 2) + "\n", { mode: 0o600 });
    renameSync(partial, join(baseRoot(home, name), id));
    home.log(`${name}: base backup ${id}, binary log ${info.binlogFile}:${info.binlogPosition} (GTID ${info.gtid || "none"})`);
    return id;
  } catch (e) {
    rmSync(partial, { recursive: true, force: true });
    throw e;
  }
}

/** Stops the receivers (the archive stays restorable); MariaDB keeps nothing for them, so `dropSlot` frees nothing. */
export async function stopMariadbArchive(home: ArchiveHome, ends: MariadbArchiveEnd[], dropSlot: boolean): Promise<void> {
  const entries = readEntries(home);
  for (const end of ends) {
    stopReceiver(home, end.host.name);
    for (const e of entries) if (e.host === end.host.name) e.stopped = true;
    home.log(`${end.host.name}: archiving stopped${dropSlot ? " (MariaDB keeps no slot: the server holds nothing for the archive)" : ""}`);
  }
  if (entries.length) writeEntries(home, entries);
}

/**
 * What the scheduler runs every minute: a receiver that died started again from the newest archived file (which it
 * copies again whole), and retention: base backups older than the newest one before the recovery window removed, and
 * the binary log files older than the oldest base backup kept.
 */
export async function maintainMariadbArchive(home: ArchiveHome, now: Date = new Date()): Promise<void> {
  const problems: string[] = [];
  for (const entry of readEntries(home)) {
    if (entry.stopped) continue;
    if (receiverPid(home, entry.host) === undefined) {
      const from = archivedBinlogs(binlogDir(home, entry.host)).at(-1);
      if (from) {
        const pid = startReceiver(home, entry, from);
        home.log(`${entry.host}: receiver started again from ${from} (pid ${pid})`);
      } else {
        problems.push(`${entry.host}: nothing archived to restart from: run dcctl pitr setup`);
      }
    }
    applyRetention(home, entry, now);
  }
  if (problems.length) throw new DcctlError(problems.join("; "));
}

/** Which base backups retention keeps: those ended within the window, and the newest one ended before it. */
export function basesToKeep<B extends { endTime: string }>(bases: B[], windowDays: number, now: Date): B[] {
  const start = now.getTime() - windowDays * 86_400_000;
  const sorted = [...bases].sort((a, b) => Date.parse(a.endTime) - Date.parse(b.endTime));
  const before = sorted.filter((b) => Date.parse(b.endTime) < start);
  return [...before.slice(-1), ...sorted.filter((b) => Date.parse(b.endTime) >= start)];
}

function applyRetention(home: ArchiveHome, entry: ArchivedEntry, now: Date): void {
  const bases = listBases(home, entry.host);
  if (bases.length === 0) return;
  const keep = basesToKeep(bases, entry.recoveryWindowDays, now);
  for (const b of bases) {
    if (keep.includes(b)) continue;
    rmSync(join(baseRoot(home, entry.host), b.id), { recursive: true, force: true });
    home.log(`${entry.host}: base backup ${b.id} removed (older than the recovery window of ${entry.recoveryWindowDays} days)`);
  }
  const oldest = keep[0];
  if (!oldest) return;
  const files = archivedBinlogs(binlogDir(home, entry.host));
  const newest = files.at(-1);
  for (const f of files) {
    if (f === newest || seq(f) >= seq(oldest.binlogFile)) continue;
    rmSync(join(binlogDir(home, entry.host), f), { force: true });
  }
}

/** The newest archived transaction's time, from the newest files that hold one. */
async function newestArchived(home: ArchiveHome, host: string): Promise<Date | undefined> {
  const files = archivedBinlogs(binlogDir(home, host)).slice(-2).reverse();
  for (const f of files) {
    const last = (await transactionsOf(binlogDir(home, host), f)).filter((t) => t.committed).at(-1);
    if (last) return last.at;
  }
  return undefined;
}

/** How a server's archive stands: receiving or not, its lag, and the span a restore can reach. */
export async function mariadbArchiveStatus(home: ArchiveHome, end: MariadbArchiveEnd, now: Date = new Date()): Promise<ArchiveStatus> {
  const name = end.host.name;
  const notes: string[] = [];
  const bases = listBases(home, name);
  const pid = receiverPid(home, name);
  if (pid === undefined) notes.push(`the archive's mariadb-binlog is not running for ${name} (dcctl pitr maintain starts it again)`);
  let answered = true;
  const master = await masterStatus(end).catch((e: unknown) => {
    notes.push(`${name} did not answer: ${errorMessage(e)}`);
    answered = false;
    return undefined;
  });
  const receiving = pid !== undefined && master !== undefined;
  let lagSeconds: number | undefined;
  if (receiving && master) {
    const local = join(binlogDir(home, name), master.file);
    const size = fileSize(local);
    if (size !== undefined && size >= master.position) lagSeconds = 0;
    else {
      // Behind: how long since the archive last received anything (its newest file last grew).
      const newest = archivedBinlogs(binlogDir(home, name)).at(-1);
      const mtime = newest ? statSync(join(binlogDir(home, name), newest)).mtimeMs : undefined;
      if (mtime !== undefined) lagSeconds = Math.max(0, (now.getTime() - mtime) / 1000);
      notes.push(`the archive holds ${newest ?? "nothing"} (${size ?? 0} bytes of ${master.file}); the server writes ${master.file} at ${master.position}`);
    }
  }
  const newestAt = await newestArchived(home, name).catch(() => undefined);
  const latestMs = lagSeconds === 0 ? now.getTime() : (newestAt?.getTime() ?? 0);
  const oldest = bases[0];
  const newest = bases.at(-1);
  const gaps = await mariadbArchiveGaps(home, name, bases).catch((e: unknown) => {
    notes.push(`the archive's binary log could not be checked for gaps: ${errorMessage(e)}`);
    return [];
  });
  return {
    host: name,
    receiving,
    ...(answered ? {} : { answered }),
    ...(lagSeconds === undefined ? {} : { lagSeconds }),
    ...(oldest && latestMs ? { earliest: oldest.endTime, latest: new Date(Math.max(latestMs, Date.parse(oldest.endTime))).toISOString() } : {}),
    baseBackups: bases.length,
    ...(newest ? { newestBaseBackup: newest.endTime } : {}),
    notes,
    ...(gaps.length ? { gaps } : {}),
    measuredAt: now.toISOString(),
  };
}

/** Starts mariadbd in the background on the target, its output in the data folder; waits for nothing. */
const START_SCRIPT = `d=$1; shift
PATH=$PATH:/usr/sbin:/usr/local/sbin
setsid mariadbd "$@" >>"$d/dcctl-pitr.log" 2>&1 </dev/null &`;

/** The OS account the target's own MariaDB runs as (the owner of its datadir), which the scratch server runs as too. */
async function serverOsUser(exec: Executor, conn: MariadbConnection): Promise<string> {
  try {
    const datadir = (await mariadbQuery(exec, conn, "SELECT @@datadir;\n")).trim();
    const res = await exec.run(["stat", "-c", "%U", datadir]);
    const user = res.stdout.trim();
    if (res.code === 0 && user && user !== "UNKNOWN") return user;
  } catch {
    // No server on the target to ask: Debian's account.
  }
  return "mysql";
}

/**
 * Recovers the server as it was at the target into a scratch server on `o.onto`: the newest base backup that ended
 * before the target is copied there, prepared and started on `o.port`; the archived binary log is then replayed into
 * it from the backup's position up to the target. Nothing of the archived server, or of any server already on the
 * target, is touched.
 */
export async function recoverMariadb(home: ArchiveHome, end: MariadbArchiveEnd, target: MariadbArchiveEnd, o: RecoverOptions): Promise<RecoverResult> {
  const name = end.host.name;
  // Not yet: the recovered server is left running beside the host's own, as `restore --at` leaves it.
  if (o.into !== undefined) throw new DcctlError(`loading a recovered MariaDB database into the host's own server (a DR recover) is not supported yet: restore ${o.db} with dcctl restore --before`);
  const base = [...listBases(home, name)].reverse().find((b) => Date.parse(b.endTime) <= o.target.getTime());
  if (!base) throw new DcctlError(`no base backup of ${name} ended before ${o.target.toISOString()}`, ExitCode.badInput);
  const dir = binlogDir(home, name);
  const files = archivedBinlogs(dir).filter((f) => seq(f) >= seq(base.binlogFile));
  if (files[0] !== base.binlogFile) throw new DcctlError(`the archive of ${name} lacks ${base.binlogFile}, where base backup ${base.id} ends: it cannot be replayed from there`);
  // Every transaction after the base backup, file by file, until one is past the stop second.
  const stopMs = stopSecond(o.target, o.inclusive);
  const txs: BinlogTransaction[] = [];
  for (const f of files) {
    const found = await transactionsOf(dir, f, f === base.binlogFile ? base.binlogPosition : 4);
    txs.push(...found);
    if (found.some((t) => !t.committed || t.at.getTime() >= stopMs)) break;
  }
  const plan = replayPlan(txs, stopMs);

  const osUser = await serverOsUser(o.ontoExec, target.conn);
  const bin = (p: string) => (target.conn.binDir ? `${target.conn.binDir.replace(/\/+$/, "")}/${p}` : p);
  home.log(`${name}: copying base backup ${base.id} to ${o.onto.name} and preparing it`);
  const data = await shipToScratch(join(baseRoot(home, name), base.id), o.ontoExec, {
    owner: osUser,
    exclude: [BASE_RECORD],
    then: [bin("mariadb-backup"), "--prepare", "--target-dir"],
    what: "the base backup",
    timeoutMs: RECOVER_TIMEOUT_MS,
  });
  const address = mariadbServerAddress(target.conn, o.onto);
  const pid = join(data, "mysqld.pid");
  const stop = ["sh", "-c", 'p=$(cat "$1") && kill "$p" && while kill -0 "$p" 2>/dev/null; do sleep 0.2; done', "dcctl-pitr-stop", pid];
  const removeAll = async () => {
    await o.ontoExec.run(stop).catch(() => undefined);
    await o.ontoExec.run(["rm", "-rf", "--", data]).catch(() => undefined);
  };
  try {
    const serverId = 4_200_000_000 + (o.port % 90_000_000);
    const args = [
      "--no-defaults",
      `--datadir=${data}`,
      `--socket=${join(data, "mysqld.sock")}`,
      `--pid-file=${pid}`,
      `--port=${o.port}`,
      `--bind-address=${address}`,
      "--skip-slave-start",
      `--server-id=${serverId}`,
      "--skip-log-bin",
      "--skip-name-resolve",
      `--user=${osUser}`,
    ];
    expectOk(await o.ontoExec.run(["sh", "-c", START_SCRIPT, "dcctl-pitr-start", data, ...args]), ["mariadbd"], o.ontoExec.target);
    const scratch: MariadbConnection = { ...target.conn, host: address, port: o.port };
    const deadline = Date.now() + 120_000;
    for (;;) {
      const up = await mariadbQuery(o.ontoExec, scratch, "SELECT 1;\n").then(() => true, () => false);
      if (up) break;
      if (Date.now() > deadline) {
        const log = (await o.ontoExec.run(["tail", "-n", "20", join(data, "dcctl-pitr.log")])).stdout;
        throw new DcctlError(`the recovered server on ${o.onto.name}:${o.port} did not start: ${lastLine(log.split("\n").filter((l) => /ERROR/.test(l)).join("\n")) || lastLine(log) || "no log"}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    const last = plan.apply.at(-1);
    if (last) {
      const upto = files.slice(0, files.indexOf(last.file) + 1);
      home.log(`${name}: replaying ${plan.apply.length} transactions from ${base.binlogFile}:${base.binlogPosition} to ${last.file}:${last.end}`);
      await replay(dir, upto, base.binlogPosition, last.end, o.ontoExec, scratch);
    }
    const found = (await mariadbQuery(o.ontoExec, scratch, `SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ${sqlString(o.db)};\n`)).trim();
    if (found !== "1") throw new DcctlError(`the recovered server on ${o.onto.name}:${o.port} has no database ${o.db}`);
    return {
      host: name,
      baseBackup: base.id,
      dataDir: data,
      address,
      port: o.port,
      target: o.targetText,
      ...(plan.next ? { stoppedBefore: { transaction: plan.next.gtid, committedAt: plan.next.at.toISOString() } } : {}),
      lastTransactionAt: (last?.at ?? new Date(base.endTime)).toISOString(),
      stop,
    };
  } catch (e) {
    await removeAll();
    throw e;
  }
}

/**
 * mariadb-binlog over the archived files (from the base backup's position in the first, to the last transaction's
 * end in the last) piped into the scratch server's client on its host: the transactions applied as they were.
 */
async function replay(dir: string, files: string[], from: number, to: number, exec: Executor, scratch: MariadbConnection): Promise<void> {
  const args = ["--no-defaults", `--start-position=${from}`, `--stop-position=${to}`, ...files.map((f) => join(dir, f))];
  const dump = spawn("mariadb-binlog", args, { stdio: ["ignore", "pipe", "pipe"], env: toolEnv({ TZ: "UTC" }) });
  let dumpErr = "";
  dump.stderr.on("data", (b: Buffer) => (dumpErr = (dumpErr + b.toString()).slice(-8192)));
  const dumped = new Promise<number>((resolve) => dump.on("close", (code) => resolve(code ?? 1)));
  const pipe = new PassThrough();
  dump.stdout.pipe(pipe);
  const loadArgv = mariadbArgv(scratch, "mariadb", ["--batch", "--binary-mode"]);
  const loaded = await exec.run(loadArgv, { stdin: pipe, timeoutMs: RECOVER_TIMEOUT_MS });
  if (loaded.code !== 0) dump.kill();
  const code = await dumped;
  if (loaded.code !== 0) throw new DcctlError(`replaying the binary log into the recovered server failed: ${lastLine(loaded.stderr) || `exit ${loaded.code}`}`);
  if (code !== 0) throw new DcctlError(`mariadb-binlog failed: ${lastLine(dumpErr) || `exit ${code}`}`);
}
