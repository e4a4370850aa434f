import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { userInfo } from "node:os";
import { DcctlError, errorMessage, ExitCode } from "../../util/errors.js";
import { lastLine, run, runOk } from "../../util/process.js";
import type { SiteHost } from "../../inventory/index.js";
import type { ArchiveGap, ArchiveHome, ArchiveStatus, ArchivedServer, RecoverOptions, RecoverResult } from "../pitr.js";
import { PROBE_TIMEOUT_MS } from "../replication.js";
import { shipToScratch } from "../scratch.js";
import { pgArgv, pgDbname, pgEnv, type PgConnection } from "./connection.js";
import { expectOk, type Executor } from "../../hosts/executor.js";
import { pgQuery } from "./query.js";
import { ensureReplicationRole } from "./replication.js";
import { asOsUser, type PgServerControl } from "./server.js";

/**
 * PostgreSQL's continuous archive, kept by Barman on the site's management host: `pg_receivewal` (Barman's
 * receive-wal) streams the WAL through a replication slot as it is written, and `pg_basebackup` (Barman's postgres
 * backup method) takes the base backups. The database host holds no credential to the archive: each site pulls its
 * own copy with the replication account, so a primary that is taken over cannot reach the secondary's.
 */

/** A server's settings as the archive needs them: how to reach it for SQL and streaming, and how it runs. */
export interface PgArchiveEnd extends ArchivedServer {
  conn: PgConnection;
  server: PgServerControl;
}

const BASE_BACKUP_TIMEOUT_MS = 6 * 3600_000;
const RECOVER_TIMEOUT_MS = 6 * 3600_000;
/** What a WAL segment's `pg_waldump` costs at most: a segment is 16 MiB. */
const WALDUMP_TIMEOUT_MS = 60_000;

const configFile = (home: ArchiveHome) => join(home.dir, "barman.conf");
const passFile = (home: ArchiveHome) => join(home.dir, "pgpass");
const barmanHome = (home: ArchiveHome) => join(home.dir, "home");
/** The name the receiver has on the server (pg_stat_replication) and the name of its slot: one per archiving site. */
const receiverName = (home: ArchiveHome) => `dcctl_pitr_${home.site.replace(/[^a-z0-9_]/gi, "_").toLowerCase()}`;

/** The address the management host reaches a server at: its settings' host, unless that is the host's own loopback. */
export function serverAddress(conn: PgConnection, host: SiteHost): string {
  const h = conn.host;
  return !h || h === "localhost" || h.startsWith("127.") || h === "::1" ? host.ip : h;
}

function conninfo(home: ArchiveHome, end: PgArchiveEnd, db?: string): string {
  const parts = [`host=${serverAddress(end.conn, end.host)}`, `port=${end.conn.port}`, `user=${home.account.user}`, `passfile=${passFile(home)}`];
  if (db) parts.push(`dbname=${db}`);
  return parts.join(" ");
}

/** Barman's configuration: one section per archived server, the replication account's password in a 0600 file beside it. */
function writeConfig(home: ArchiveHome, ends: PgArchiveEnd[]): void {
  mkdirSync(barmanHome(home), { recursive: true, mode: 0o700 });
  const escaped = home.account.password.replace(/\\/g, "\\\\").replace(/:/g, "\\:");
  writeFileSync(passFile(home), `*:*:*:${home.account.user}:${escaped}\n`, { mode: 0o600 });
  const lines = [
    "# Written by dcctl pitr setup: each section is a server whose changes this site archives.",
    "[barman]",
    `barman_user = ${userInfo().username}`,
    `barman_home = ${barmanHome(home)}`,
    `log_file = ${join(home.dir, "barman.log")}`,
    "log_level = INFO",
  ];
  for (const end of ends) {
    lines.push(
      "",
      `[${end.host.name}]`,
      `description = "${end.host.name}, archived by site ${home.site}"`,
      `conninfo = ${conninfo(home, end, "postgres")}`,
      `streaming_conninfo = ${conninfo(home, end)}`,
      "backup_method = postgres",
      "streaming_archiver = on",
      "archiver = off",
      `streaming_archiver_name = ${receiverName(home)}`,
      `slot_name = ${receiverName(home)}`,
      "create_slot = auto",
      ...(end.conn.binDir ? [`path_prefix = ${end.conn.binDir}`] : []),
      `retention_policy = RECOVERY WINDOW OF ${end.recoveryWindowDays} DAYS`,
      "minimum_redundancy = 1",
    );
  }
  writeFileSync(configFile(home), lines.join("\n") + "\n", { mode: 0o600 });
}

/** Runs barman with this site's configuration; a failure is one line, its own last. */
async function barman(home: ArchiveHome, args: string[], timeoutMs = 120_000): Promise<string> {
  const argv = ["-c", configFile(home), ...args];
  const res = await run("barman", argv, { timeoutMs });
  if (res.code !== 0) {
    const why = lastLine(res.stderr) || lastLine(res.stdout) || `exit ${res.code}`;
    throw new DcctlError(`barman ${args.filter((a) => !a.startsWith("-")).join(" ")} failed: ${why.replace(/^ERROR: /, "")}`);
  }
  return res.stdout;
}

interface BarmanBackup {
  backup_id: string;
  status: string;
  end_time_timestamp: string;
}

async function listBackups(home: ArchiveHome, host: string): Promise<BarmanBackup[]> {
  const out = await barman(home, ["-f", "json", "list-backups", host]);
  const all = (JSON.parse(out || "{}") as Record<string, BarmanBackup[]>)[host] ?? [];
  return all.filter((b) => b.status === "DONE").sort((a, b) => Number(a.end_time_timestamp) - Number(b.end_time_timestamp));
}

/**
 * The privileges Barman's backups need of a role that is not a superuser (PostgreSQL 15's names), besides REPLICATION.
 * Granting again what is held is a no-op, so set-up can run any number of times.
 */
const BARMAN_GRANTS = `GRANT EXECUTE ON FUNCTION pg_catalog.pg_backup_start(text, boolean), pg_catalog.pg_backup_stop(boolean), pg_catalog.pg_switch_wal(), pg_catalog.pg_create_restore_point(text) TO :"user";
GRANT pg_read_all_settings, pg_read_all_stats, pg_checkpoint TO :"user";
`;

/**
 * Makes each server archived: the account and its privileges on the server, Barman's configuration, the receiver
 * streaming through its slot, and a first base backup where there is none. Run again, it changes nothing that is right.
 */
export async function setupPgArchive(home: ArchiveHome, ends: PgArchiveEnd[]): Promise<void> {
  for (const end of ends) {
    await ensureReplicationRole(end.exec, end.conn, home.account);
    await pgQuery(end.exec, end.conn, "postgres", BARMAN_GRANTS, { user: home.account.user });
  }
  writeConfig(home, ends);
  for (const end of ends) {
    const name = end.host.name;
    await barman(home, ["receive-wal", "--create-slot", name]).catch((e: unknown) => {
      if (!/already exists/.test(errorMessage(e))) throw e;
    });
    // `barman cron` starts a receiver for each server that has none (and is what keeps them running: dcctl pitr cron).
    await barman(home, ["cron"]);
    await waitReceiving(home, end, 60_000);
    await firstSegmentArchived(home, end, 120_000);
    if ((await listBackups(home, name)).length === 0) {
      home.log(`${name}: first base backup`);
      await pgBaseBackup(home, end).catch(async (e: unknown) => {
        // Barman now and then refuses the first backup right after its receiver started ("Impossible to start the
        // backup": seen on the lab, at set-up only); a second try, after its cron has run again, goes through.
        if (!/Impossible to start the backup/.test(errorMessage(e))) throw e;
        home.log(`${name}: Barman refused the first base backup (${errorMessage(e)}); trying once more`);
        await barman(home, ["cron"]);
        return pgBaseBackup(home, end);
      });
    }
    home.log(`${name}: archived by ${home.site} (receiver ${receiverName(home)})`);
  }
}

/** A base backup now (Barman's `backup --wait`: done once the WAL it needs is archived too). */
export async function pgBaseBackup(home: ArchiveHome, end: PgArchiveEnd): Promise<string> {
  await barman(home, ["backup", "--wait", "--wait-timeout", "600", end.host.name], BASE_BACKUP_TIMEOUT_MS);
  const newest = (await listBackups(home, end.host.name)).pop();
  if (!newest) throw new DcctlError(`barman backup of ${end.host.name} ended without a base backup`);
  return newest.backup_id;
}

/** Stops the receivers (the archive stays); with `dropSlot`, the server stops keeping WAL for this site too. */
export async function stopPgArchive(home: ArchiveHome, ends: PgArchiveEnd[], dropSlot: boolean): Promise<void> {
  for (const end of ends) {
    // A receiver that already died (its server lost for a while) is as stopped as can be.
    await barman(home, ["receive-wal", "--stop", end.host.name]).catch((e: unknown) => {
      if (!/no such process/.test(errorMessage(e))) throw e;
    });
    if (dropSlot) await dropSlotOnceFree(home, end);
  }
}

/**
 * Drops the archive's slot on the server. Its walsender outlives the receiver stopped just before by a moment, and
 * an active slot cannot be dropped: tried again for up to 30 s.
 */
async function dropSlotOnceFree(home: ArchiveHome, end: PgArchiveEnd): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await barman(home, ["receive-wal", "--drop-slot", end.host.name]);
      return;
    } catch (e) {
      // Gone already, or the server not answering (a lost site's slot cannot be dropped from here): as before, a note-free end.
      if (!/in use/.test(errorMessage(e))) return;
      if (Date.now() > deadline) throw e;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** `barman cron`: receivers that died started again, streamed segments moved into the archive, retention applied. */
export async function pgArchiveCron(home: ArchiveHome): Promise<void> {
  await barman(home, ["cron"], 600_000);
}

interface ReceiverRow {
  state: string;
  behindBytes: number;
  writeLagSeconds?: number;
  replyAgeSeconds?: number;
}

/** The receiver as the server sees it (pg_stat_replication), within seconds; undefined if it is not connected. */
async function receiverOnServer(home: ArchiveHome, end: PgArchiveEnd): Promise<ReceiverRow | undefined> {
  const out = await pgQuery(
    end.exec,
    end.conn,
    "postgres",
    "SELECT state || '|' || pg_wal_lsn_diff(pg_current_wal_lsn(), write_lsn)::bigint || '|' || coalesce(extract(epoch FROM write_lag)::text, '') || '|' || coalesce(extract(epoch FROM now() - reply_time)::text, '') FROM pg_stat_replication WHERE application_name = :'name';\n",
    { name: receiverName(home) },
    PROBE_TIMEOUT_MS,
  );
  const line = out.trim().split("\n")[0];
  if (!line) return undefined;
  const [state = "", behind = "0", lag = "", age = ""] = line.split("|");
  return { state, behindBytes: Number(behind), ...(lag ? { writeLagSeconds: Number(lag) } : {}), ...(age ? { replyAgeSeconds: Number(age) } : {}) };
}

async function waitReceiving(home: ArchiveHome, end: PgArchiveEnd, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let cron = Date.now();
  for (;;) {
    const row = await receiverOnServer(home, end).catch(() => undefined);
    if (row?.state === "streaming") return;
    // A receiver that did not start, or ended at once (its slot still held by a walsender of a receiver just
    // stopped), is started again, as the schedule's maintain would a minute later.
    if (!row && Date.now() - cron > 10_000) {
      await barman(home, ["cron"]).catch(() => undefined);
      cron = Date.now();
    }
    if (Date.now() > deadline) throw new DcctlError(`${end.host.name}: the archive's receiver ${receiverName(home)} is not streaming after ${timeoutMs / 1000} s (see ${join(home.dir, "barman.log")})`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Closes the segment being written and waits for it in the archive: Barman takes no base backup before its WAL
 * archive holds a segment, and it proves the chain from server to archive. Run as the archive's own account, from
 * here (its `switch-wal` would want a superuser; the account is granted pg_switch_wal and CHECKPOINT instead).
 */
async function firstSegmentArchived(home: ArchiveHome, end: PgArchiveEnd, timeoutMs: number): Promise<void> {
  const archived = () => walFiles(home, end.host.name).some((f) => !f.path.endsWith(".partial"));
  if (archived()) return;
  const psql = end.conn.binDir ? join(end.conn.binDir, "psql") : "psql";
  await runOk(psql, ["--no-password", "-X", "-q", "-d", conninfo(home, end, "postgres"), "-c", "CHECKPOINT", "-c", "SELECT pg_switch_wal()"], { timeoutMs: 60_000 });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await barman(home, ["archive-wal", end.host.name]);
    if (archived()) return;
    if (Date.now() > deadline) throw new DcctlError(`${end.host.name}: no WAL segment reached the archive within ${timeoutMs / 1000} s (see ${join(home.dir, "barman.log")})`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The names in a folder; none when it is not there (yet). */
function namesIn(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** The WAL files the archive holds for a server, newest first: streamed (`.partial`: being written) then archived. */
function walFiles(home: ArchiveHome, host: string): { path: string; segment: string }[] {
  const root = join(barmanHome(home), host);
  // Archived segments are filed by Barman in a folder per 16 hex digits of their names.
  const dirs = [join(root, "streaming"), ...namesIn(join(root, "wals")).filter((d) => /^[0-9A-F]{16}$/.test(d)).map((d) => join(root, "wals", d))];
  const found = dirs.flatMap((dir) => namesIn(dir).map((n) => ({ path: join(dir, n), segment: n.replace(/\.partial$/, "") }))).filter((f) => /^[0-9A-F]{24}$/.test(f.segment));
  // Timeline first, then position: the names sort as the WAL goes.
  return found.sort((a, b) => b.segment.localeCompare(a.segment) || (a.path.endsWith(".partial") ? -1 : 1));
}

/**
 * A WAL segment's timeline and its place in the log, counted in segments: the name is the timeline, the log id and
 * the segment (8 hex digits each), 256 segments of 16 MiB (the default wal_segment_size) to a log id.
 */
export function walPosition(segment: string): { timeline: number; position: number } {
  return { timeline: parseInt(segment.slice(0, 8), 16), position: parseInt(segment.slice(8, 16), 16) * 0x100 + parseInt(segment.slice(16, 24), 16) };
}

const segmentName = (timeline: number, position: number) =>
  [timeline, Math.floor(position / 0x100), position % 0x100].map((n) => n.toString(16).toUpperCase().padStart(8, "0")).join("");

/**
 * The runs of segments missing from the archive's listing between `beginWal` (a base backup's first) and the newest
 * it holds: a recovery from that base backup cannot replay past the first one. A segment on any timeline from the
 * base backup's on counts (after a promotion the same place is on the old timeline, partial, and on the new one).
 */
export function walGaps(beginWal: string, segments: string[]): { missing: string; count: number; before?: string; after: string; position: number; lastMissing: number }[] {
  const start = walPosition(beginWal);
  const held = new Map<number, string>();
  for (const s of segments) {
    const p = walPosition(s);
    if (p.timeline >= start.timeline && p.position >= start.position && !held.has(p.position)) held.set(p.position, s);
  }
  const positions = [...held.keys()].sort((a, b) => a - b);
  const newest = positions.at(-1);
  const gaps: ReturnType<typeof walGaps> = [];
  if (newest === undefined) return gaps;
  let previous: string | undefined;
  for (let pos = start.position; pos <= newest; ) {
    const here = held.get(pos);
    if (here !== undefined) {
      previous = here;
      pos++;
      continue;
    }
    const next = positions.find((p) => p > pos) ?? newest;
    const timeline = previous ? walPosition(previous).timeline : start.timeline;
    gaps.push({ missing: segmentName(timeline, pos), count: next - pos, ...(previous ? { before: previous } : {}), after: held.get(next) ?? "", position: pos, lastMissing: next - 1 });
    pos = next;
  }
  return gaps;
}

/** A base backup's first WAL segment, from Barman's record of it (backup.info); undefined when unreadable. */
function beginWalOf(home: ArchiveHome, host: string, backupId: string): string | undefined {
  try {
    return /^begin_wal=([0-9A-F]{24})$/m.exec(readFileSync(join(barmanHome(home), host, "base", backupId, "backup.info"), "utf8"))?.[1];
  } catch {
    return undefined;
  }
}

/**
 * The gaps after the oldest base backup, with the span each makes unreachable: from the last commit before it (else
 * the time the segment before it was archived) to the end of the first base backup that began after it.
 */
async function pgArchiveGaps(home: ArchiveHome, end: PgArchiveEnd, backups: BarmanBackup[]): Promise<ArchiveGap[]> {
  const oldest = backups[0];
  const begin = oldest ? beginWalOf(home, end.host.name, oldest.backup_id) : undefined;
  if (!begin) return [];
  let files = walFiles(home, end.host.name);
  let gaps = walGaps(begin, files.map((f) => f.segment));
  if (gaps.length) {
    // Barman may have moved a segment from streaming/ to wals/ between the two folders' listings: listed again, a
    // gap counts only when it is in both.
    const first = new Set(gaps.map((g) => g.missing));
    files = walFiles(home, end.host.name);
    gaps = walGaps(begin, files.map((f) => f.segment)).filter((g) => first.has(g.missing));
  }
  const out: ArchiveGap[] = [];
  for (const g of gaps.slice(0, 5)) {
    const before = files.find((f) => f.segment === g.before);
    const commits = before ? await commitTimes(home, end, before).catch(() => []) : [];
    const from = commits.at(-1) ?? (before ? new Date(statSync(before.path).mtimeMs) : undefined);
    const resumes = backups.find((b) => {
      const w = beginWalOf(home, end.host.name, b.backup_id);
      return w !== undefined && walPosition(w).position > g.lastMissing;
    });
    out.push({ what: "WAL segment", missing: g.missing, count: g.count, ...(g.before ? { before: g.before } : {}), ...(from ? { from: from.toISOString() } : {}), ...(resumes ? { resumesAt: new Date(Number(resumes.end_time_timestamp) * 1000).toISOString() } : {}) });
  }
  return out;
}

/** The commit times pg_waldump reads in one archived segment (a `.partial` too), oldest first. */
async function commitTimes(home: ArchiveHome, end: PgArchiveEnd, f: { path: string; segment: string }): Promise<Date[]> {
  const waldump = end.conn.binDir ? join(end.conn.binDir, "pg_waldump") : "pg_waldump";
  // pg_waldump reads a segment by its name: a `.partial` is given one without the suffix.
  const dir = mkdtempSync(join(home.dir, "waldump-"));
  try {
    symlinkSync(f.path, join(dir, f.segment));
    const res = await run(waldump, ["-p", dir, "-r", "Transaction", f.segment], { timeoutMs: WALDUMP_TIMEOUT_MS });
    // It ends with an error at the end of the valid WAL (a partial segment's zeroes): what it printed before counts.
    return [...res.stdout.matchAll(/desc: COMMIT (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC/g)].map((m) => new Date(`${(m[1] ?? "").replace(" ", "T")}Z`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The commit time of the newest transaction the archive holds (pg_waldump over its newest segments). A restore to a
 * point at or past it recovers everything archived; PostgreSQL itself would refuse a target it never sees passed.
 */
async function newestArchivedCommit(home: ArchiveHome, end: PgArchiveEnd): Promise<Date | undefined> {
  for (const f of walFiles(home, end.host.name).slice(0, 3)) {
    const last = (await commitTimes(home, end, f)).at(-1);
    if (last) return last;
  }
  return undefined;
}

/** How a server's archive stands: receiving or not, its lag, and the span a restore can reach. */
export async function pgArchiveStatus(home: ArchiveHome, end: PgArchiveEnd, now: Date = new Date()): Promise<ArchiveStatus> {
  const notes: string[] = [];
  const backups = await listBackups(home, end.host.name).catch((e: unknown) => {
    notes.push(errorMessage(e));
    return [];
  });
  let answered = true;
  const row = await receiverOnServer(home, end).catch((e: unknown) => {
    notes.push(`${end.host.name} did not answer: ${errorMessage(e)}`);
    answered = false;
    return undefined;
  });
  const receiving = row?.state === "streaming";
  if (row && !receiving) notes.push(`receiver ${receiverName(home)} is ${row.state}`);
  if (!row && notes.length === 0) notes.push(`receiver ${receiverName(home)} is not connected to ${end.host.name} (dcctl pitr cron starts it)`);
  // Caught up: nothing written that the archive lacks. Behind: the server's measure of the receiver's write lag; the
  // receiver confirms every 10 s (pg_receivewal's status interval), so that is the resolution of what is confirmed.
  const lagSeconds = !receiving || !row ? undefined : row.behindBytes <= 0 ? 0 : (row.writeLagSeconds ?? row.replyAgeSeconds);
  const commit = await newestArchivedCommit(home, end).catch(() => undefined);
  const latestMs = Math.max(commit?.getTime() ?? 0, lagSeconds === undefined ? 0 : now.getTime() - lagSeconds * 1000);
  const oldest = backups[0];
  const newest = backups.at(-1);
  const iso = (ts: string) => new Date(Number(ts) * 1000).toISOString();
  const gaps = await pgArchiveGaps(home, end, backups).catch((e: unknown) => {
    notes.push(`the archive's WAL could not be checked for gaps: ${errorMessage(e)}`);
    return [];
  });
  return {
    host: end.host.name,
    receiving,
    ...(answered ? {} : { answered }),
    ...(lagSeconds === undefined ? {} : { lagSeconds }),
    ...(oldest && latestMs ? { earliest: iso(oldest.end_time_timestamp), latest: new Date(latestMs).toISOString() } : {}),
    baseBackups: backups.length,
    ...(newest ? { newestBaseBackup: iso(newest.end_time_timestamp) } : {}),
    notes,
    ...(gaps.length ? { gaps } : {}),
    measuredAt: now.toISOString(),
  };
}

/** Runs `from | to` on the host, failing when either side fails. */
const PIPE_SCRIPT = 'set -o pipefail; n=$1; shift; "${@:1:$n}" | "${@:$((n + 1))}"';

/**
 * A database of one server (the recovered scratch server) into a fresh database of another on the same host, made
 * again if it is there: pg_dump piped into psql, without owners or grants (the target's roles are its own).
 */
async function copyDatabase(exec: Executor, from: PgConnection, db: string, to: PgConnection, into: string): Promise<void> {
  await pgQuery(exec, to, "postgres", 'DROP DATABASE IF EXISTS :"name" WITH (FORCE);\nCREATE DATABASE :"name";\n', { name: into });
  const dump = pgArgv(from, "pg_dump", ["--no-owner", "--no-privileges", "-d", pgDbname(db)]);
  const load = pgArgv(to, "psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pgDbname(into)]);
  const argv = ["bash", "-c", PIPE_SCRIPT, "dcctl-pitr-copy", String(dump.length), ...dump, ...load];
  // Both ends use the host's password file: the scratch server is a copy of a server whose roles it keeps.
  expectOk(await exec.run(argv, { env: { ...pgEnv(from), ...pgEnv(to) }, timeoutMs: RECOVER_TIMEOUT_MS }), argv.slice(0, 1), exec.target);
}

/** Files a recovered data directory needs that Debian keeps in /etc, not in the data directory a base backup copies. */
function completeConfig(dir: string): void {
  const has = (f: string) => readdirSync(dir).includes(f);
  if (!has("postgresql.conf")) writeFileSync(join(dir, "postgresql.conf"), "# written by dcctl restore: the server's own lived outside its data directory\n");
  if (!has("pg_hba.conf")) writeFileSync(join(dir, "pg_hba.conf"), "local all all peer\nhost all all 0.0.0.0/0 scram-sha-256\n");
}

/** The lines of PostgreSQL's log that say where recovery stopped, read into the result. */
export function recoveryOutcome(log: string): Pick<RecoverResult, "stoppedBefore" | "lastTransactionAt"> {
  const stop = /recovery stopping (?:before|after) (?:commit|abort) of transaction (\d+), time ([0-9-]+ [0-9:.]+\+\d\d)/.exec(log);
  const last = /last completed transaction was at log time ([0-9-]+ [0-9:.]+\+\d\d)/.exec(log);
  const iso = (t: string) => new Date(t.replace(" ", "T").replace(/\+(\d\d)$/, "+$1:00")).toISOString();
  return {
    ...(stop?.[1] && stop[2] ? { stoppedBefore: { transaction: stop[1], committedAt: iso(stop[2]) } } : {}),
    ...(last?.[1] ? { lastTransactionAt: iso(last[1]) } : {}),
  };
}

/**
 * Waits for the recovered server to end its recovery and take sessions: `pg_ctl -w` returns once recovery has begun
 * (with hot_standby off the server says "standby" at once), not once it is over. Then whether it holds the database:
 * "false|true" when all is well. A server that stopped meanwhile ends the wait with its log's reason.
 */
async function recoveredState(exec: Executor, scratch: PgConnection, db: string, status: string[], logFile: string): Promise<string> {
  const deadline = Date.now() + RECOVER_TIMEOUT_MS;
  for (;;) {
    try {
      const got = (await pgQuery(exec, scratch, "postgres", "SELECT pg_is_in_recovery()::text || '|' || EXISTS (SELECT FROM pg_database WHERE datname = :'db')::text;\n", { db })).trim();
      if (!got.startsWith("true")) return got;
    } catch (e) {
      // Replaying: "the database system is starting up", "Hot standby mode is disabled". Stopped: its log says why.
      if ((await exec.run(status)).code !== 0) {
        const log = (await exec.run(["cat", logFile])).stdout;
        throw new DcctlError(`the recovered server stopped while recovering: ${lastLine(log.split("\n").filter((l) => /FATAL|PANIC/.test(l)).join("\n")) || errorMessage(e)}`);
      }
    }
    if (Date.now() > deadline) return "true|";
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Recovers the server's cluster as it was at the target into a scratch server on `o.onto`: Barman restores the newest
 * base backup that ended before the target, with the WAL after it (the segment still being streamed too), here; the
 * data directory is then carried to the target over SSH and started there on `o.port`, where it replays up to the
 * target and is promoted. Nothing of the archived server, or of any server already on the target, is touched.
 */
export async function recoverPg(home: ArchiveHome, end: PgArchiveEnd, target: PgArchiveEnd, o: RecoverOptions): Promise<RecoverResult> {
  const name = end.host.name;
  // Streamed segments that are complete go into the archive, so that Barman's copy includes them.
  await barman(home, ["archive-wal", name], 600_000);
  const backups = await listBackups(home, name);
  const base = [...backups].reverse().find((b) => Number(b.end_time_timestamp) * 1000 <= o.target.getTime());
  if (!base) throw new DcctlError(`no base backup of ${name} ended before ${o.target.toISOString()}`, ExitCode.badInput);
  const newestCommit = await newestArchivedCommit(home, end);
  // Past the archive's newest transaction, every archived change is wanted: recover to the end of the WAL.
  const toEnd = newestCommit !== undefined && o.target.getTime() >= newestCommit.getTime();
  mkdirSync(join(home.dir, "recover"), { recursive: true, mode: 0o700 });
  const local = mkdtempSync(join(home.dir, "recover", `${name}-`));
  try {
    // PostgreSQL reads "2026-12-05 10:59:00.123456+07:00", not the ISO "T" and "Z" forms.
    const pgTime = o.targetText.trim().replace(/^(\S{10})T/i, "$1 ").replace(/Z$/i, "+00");
    const args = ["recover", ...(toEnd ? [] : ["--target-time", pgTime, ...(o.inclusive ? [] : ["--exclusive"]), "--target-action", "promote"]), name, base.backup_id, local];
    home.log(`${name}: restoring base backup ${base.backup_id}${toEnd ? ", then every archived change" : `, then the changes up to ${pgTime}`}`);
    await barman(home, args, RECOVER_TIMEOUT_MS);
    // The segment still being written lives beside the archive as `.partial`: recovery reads it from pg_wal.
    const partial = walFiles(home, name).find((f) => f.path.endsWith(".partial"));
    if (partial) await runOk("cp", [partial.path, join(local, "pg_wal", partial.segment)]);
    completeConfig(local);
    const dir = await shipToScratch(local, o.ontoExec, { owner: target.server.osUser, what: "the recovered data" });
    const listen = { address: serverAddress(target.conn, o.onto), port: o.port };
    const pgCtl = target.conn.binDir ? join(target.conn.binDir, "pg_ctl") : "pg_ctl";
    const options = `-p ${listen.port} -k ${dir} -c listen_addresses=${listen.address} -c hot_standby=off -c archive_mode=off -c cluster_name=dcctl-pitr`;
    // hot_standby off: no session reads a half-recovered copy. pg_ctl -w returns once recovery has begun (the server
    // then says "standby"); recoveredState waits for its end.
    const start = asOsUser(target.server, [pgCtl, "-D", dir, "-l", join(dir, "recovery.log"), "-o", options, "-w", "-t", String(RECOVER_TIMEOUT_MS / 1000), "start"]);
    const stop = asOsUser(target.server, [pgCtl, "-D", dir, "-m", "fast", "stop"]);
    const started = await o.ontoExec.run(start, { timeoutMs: RECOVER_TIMEOUT_MS + 60_000 });
    const log = (await o.ontoExec.run(["cat", join(dir, "recovery.log")])).stdout;
    if (started.code !== 0) {
      // A copy that did not come up holds nothing the archive does not: stopped (pg_ctl may have given up waiting), removed.
      await o.ontoExec.run(stop);
      await o.ontoExec.run(["rm", "-rf", "--", dir]);
      throw new DcctlError(`the recovered server on ${o.onto.name} did not start: ${lastLine(log.split("\n").filter((l) => /FATAL|PANIC/.test(l)).join("\n")) || lastLine(started.stderr) || `exit ${started.code}`}`);
    }
    const scratch = { ...target.conn, host: listen.address, port: listen.port };
    const found = await recoveredState(o.ontoExec, scratch, o.db, asOsUser(target.server, [pgCtl, "-D", dir, "status"]), join(dir, "recovery.log"));
    if (found !== "false|true") {
      throw new DcctlError(`the recovered server on ${o.onto.name}:${listen.port} ${found.startsWith("true") ? "is still recovering" : `has no database ${o.db}`} (its data: ${dir}; stop it with ${stop.join(" ")})`);
    }
    const result: RecoverResult = {
      host: name,
      baseBackup: base.backup_id,
      baseBackupEnd: new Date(Number(base.end_time_timestamp) * 1000).toISOString(),
      dataDir: dir,
      address: listen.address,
      port: listen.port,
      target: o.targetText,
      // Everything archived is replayed as a crash recovery, which logs no transaction time: the archive's newest says it.
      ...(toEnd && newestCommit ? { lastTransactionAt: newestCommit.toISOString() } : {}),
      // Read again now that recovery is over: where it stopped is logged at its end, after pg_ctl returned.
      ...recoveryOutcome((await o.ontoExec.run(["cat", join(dir, "recovery.log")])).stdout),
      stop,
    };
    if (o.into === undefined) return result;
    try {
      await copyDatabase(o.ontoExec, scratch, o.db, target.conn, o.into);
    } finally {
      // The scratch server held nothing the archive does not; its database lives on in the host's own server.
      await o.ontoExec.run(stop);
      await o.ontoExec.run(["rm", "-rf", "--", dir]);
    }
    return { ...result, dataDir: "", stop: [], into: o.into };
  } finally {
    rmSync(local, { recursive: true, force: true });
  }
}
