import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import { dirname } from "node:path";
import { lastLine } from "../../util/process.js";
import { DcctlError, ExitCode, errorMessage } from "../../util/errors.js";
import { expectOk, type Executor } from "../../hosts/executor.js";
import { pgArgv, type PgConnection } from "./connection.js";
import { pgQuery } from "./query.js";
import { pgDiverged } from "./diverged.js";
import { asOsUser, type PgReplicationEnd, type PgServerControl } from "./server.js";
import { discardedNotes, gateDiverged } from "../keep.js";
import { PROBE_TIMEOUT_MS, type ReplicaSetupOptions, type ReplicaSetupResult, type ReplicaStatus, type ReplicationAccount } from "../replication.js";

/**
 * PostgreSQL physical streaming replication, primary → standby: seeded with pg_basebackup over the network through a
 * replication slot (the primary keeps the WAL a standby has not received), the standby following with
 * `primary_conninfo` that names a password file on the standby host, never a password.
 */

/** The slot on the primary that holds WAL for one standby: named after it, in the characters slot names allow. */
function slotName(standby: string): string {
  return `dcctl_${standby.toLowerCase().replace(/[^a-z0-9_]/g, "_")}`.slice(0, 63);
}

/**
 * A SCRAM-SHA-256 verifier of the password (RFC 5802/7677, as PostgreSQL stores it): the primary is given this, so the
 * password itself never travels to the server, nor into its logs.
 */
function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password.normalize("NFKC"), salt, iterations, 32, "sha256");
  const hmac = (key: Buffer, text: string) => createHmac("sha256", key).update(text).digest();
  const storedKey = createHash("sha256").update(hmac(salted, "Client Key")).digest();
  const serverKey = hmac(salted, "Server Key");
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

const sqlLiteral = (s: string) => `'${s.replace(/'/g, "''")}'`;
/** A value in a libpq connection string (single-quoted, backslash and quote escaped). */
const conninfoValue = (s: string) => `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;

/** Where the standby's server reaches the primary: the address dcctl uses unless that is loopback, else the host's own. */
function primaryAddress(primary: PgReplicationEnd): string {
  const h = primary.conn.host;
  return h && !h.startsWith("127.") && h !== "localhost" ? h : primary.host.ip;
}

/** The password file the standby's server reads (outside the data directory, which seeding replaces). */
function standbyPassFile(server: PgServerControl): string {
  return `${dirname(server.dataDir.replace(/\/+$/, ""))}/dcctl-replication.pgpass`;
}

async function sh(exec: Executor, argv: string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<string> {
  return expectOk(await exec.run(argv, opts), argv, exec.target).stdout;
}

interface StandbyView {
  inRecovery: boolean;
  slot: string;
  receiver: string;
  receiveLsn: string;
  replayLsn: string;
  lastReplayEpoch?: number;
  lastReceiptEpoch?: number;
  nowEpoch: number;
}

async function standbyView(end: PgReplicationEnd, timeoutMs?: number): Promise<StandbyView> {
  const sql = `SELECT pg_is_in_recovery(), current_setting('primary_slot_name'),
  coalesce((SELECT status FROM pg_stat_wal_receiver), ''),
  coalesce(pg_last_wal_receive_lsn()::text, ''), coalesce(pg_last_wal_replay_lsn()::text, ''),
  coalesce(extract(epoch FROM pg_last_xact_replay_timestamp())::text, ''),
  coalesce((SELECT extract(epoch FROM last_msg_receipt_time)::text FROM pg_stat_wal_receiver), ''),
  extract(epoch FROM clock_timestamp());\n`;
  const out = await pgQuery(end.exec, end.conn, "postgres", sql, {}, timeoutMs);
  const [rec = "", slot = "", receiver = "", receiveLsn = "", replayLsn = "", replay = "", receipt = "", now = ""] = out.trim().split("|");
  const num = (s: string) => (s === "" ? undefined : Number(s));
  return { inRecovery: rec === "t", slot, receiver, receiveLsn, replayLsn, lastReplayEpoch: num(replay), lastReceiptEpoch: num(receipt), nowEpoch: Number(now) };
}

async function userDatabases(end: PgReplicationEnd): Promise<string[]> {
  const out = await pgQuery(end.exec, end.conn, "postgres", "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres' ORDER BY 1;\n");
  return out.split("\n").filter(Boolean);
}

/**
 * Makes the standby a streaming replica of the primary. Kept as it is when it already streams through its slot. A
 * standby holding databases, or following another primary, is replaced only with `overwrite`. The new copy is built
 * beside the old data directory while the old server keeps running; only a complete copy takes its place, so a
 * failed or interrupted seeding leaves the standby as it was.
 */
export async function setupPgReplica(primary: PgReplicationEnd, standby: PgReplicationEnd, account: ReplicationAccount, o: ReplicaSetupOptions): Promise<ReplicaSetupResult> {
  const slot = slotName(standby.host.name);
  const dataDir = standby.server.dataDir.replace(/\/+$/, "");
  const view = await standbyView(standby).catch((e: unknown) => {
    // A standby whose server is down is seeded only when told to: what its data directory holds cannot be seen.
    if (!o.overwrite) throw new DcctlError(`PostgreSQL on ${standby.host.name} does not answer (${errorMessage(e)}); run again with --yes to rebuild ${dataDir} from ${primary.host.name}`, ExitCode.notConfirmed);
    return undefined;
  });
  if (view?.inRecovery && view.slot === slot && view.receiver === "streaming") {
    return { action: "kept", notes: [`${standby.host.name} already streams from ${primary.host.name} through slot ${slot}: nothing changed`] };
  }
  if (view && !o.overwrite) {
    const ours = view.inRecovery && view.slot === slot;
    const dbs = ours ? [] : await userDatabases(standby);
    const what = view.inRecovery && !ours ? [`it follows another primary (slot "${view.slot || "none"}")`] : dbs.length ? [`it holds database${dbs.length > 1 ? "s" : ""} ${dbs.join(", ")}`] : [];
    if (what.length) throw new DcctlError(`${standby.host.name}: ${what.join("; ")}; replication setup replaces its data directory ${dataDir} with a copy of ${primary.host.name}: run again with --yes to overwrite`, ExitCode.notConfirmed);
  }

  // A former primary's writes past the fork are measured and kept before anything of it is replaced.
  const diverged = view?.inRecovery ? undefined : await gateDiverged(() => pgDiverged(primary, standby, o.diverged.keepDir, view !== undefined), o, `what ${standby.host.name} holds past where ${primary.host.name}'s history forked`);

  await preparePrimary(primary, standby, slot, account);
  const passFile = standbyPassFile(standby.server);
  const address = primaryAddress(primary);
  // Any database: replication, and pg_rewind's look at the primary's files (through the functions granted above).
  await sh(standby.exec, ["sh", "-c", 'umask 077 && cat > "$1" && chown "$2": "$1"', "sh", passFile, standby.server.osUser], {
    stdin: `${address}:${primary.conn.port}:*:${account.user}:${account.password.replace(/\\/g, "\\\\").replace(/:/g, "\\:")}\n`,
  });
  const conninfo = [`host=${conninfoValue(address)}`, `port=${primary.conn.port}`, `user=${conninfoValue(account.user)}`, `passfile=${conninfoValue(passFile)}`, `application_name=${conninfoValue(standby.host.name)}`].join(" ");

  // A former primary of the same cluster (the failover's old primary, or a promoted standby on the way back) has
  // diverged only since the promotion: pg_rewind winds it back to there instead of copying everything.
  const notes: string[] = [];
  if (view && !view.inRecovery && (await sameCluster(primary, standby))) {
    const rewound = await rewindPg(primary, standby, slot, conninfo, o).then(
      (seconds) => seconds,
      (e: unknown) => void notes.push(`pg_rewind was not possible (${errorMessage(e)}): copied with pg_basebackup instead`),
    );
    if (rewound !== undefined) return { action: "rewound", notes: [`${standby.host.name} rewound onto ${primary.host.name} in ${rewound.toFixed(1)} s (pg_rewind) and streaming through slot ${slot}`, ...discardedNotes(diverged)], ...(diverged ? { diverged } : {}) };
  }

  const fresh = `${dataDir}.dcctl-new`;
  const aside = `${dataDir}.dcctl-old`;
  // What an interrupted run left: a pg_basebackup that outlived its dcctl (a root login's command survives the
  // connection) is stopped, a half-made copy thrown away, an old directory set aside put back.
  await sh(standby.exec, ["sh", "-c", 'pkill -KILL -f -- "pg_basebackup.* -D $1 " || true; while pgrep -f -- "pg_basebackup.* -D $1 " >/dev/null; do sleep 0.1; done', "sh", fresh]);
  await sh(standby.exec, ["rm", "-rf", "--", fresh]);
  await sh(standby.exec, ["sh", "-c", '[ ! -e "$2" ] || [ -e "$1" ] || mv -- "$2" "$1"', "sh", dataDir, aside]);
  await sh(standby.exec, ["sh", "-c", 'mkdir -m 0700 -- "$1" && chown "$2": "$1"', "sh", fresh, standby.server.osUser]);
  const basebackup = asOsUser(standby.server, [pgBin(standby.conn, "pg_basebackup"), "--no-password", "-d", conninfo, "-D", fresh, "-X", "stream", "-S", slot, "-R", "--checkpoint=fast"]);
  // A rewind that gave up has just stopped the standby: its last walsender may still hold the slot.
  await freeSlot(primary, standby, slot);
  o.log(`copying ${primary.host.name} to ${standby.host.name} with pg_basebackup (slot ${slot})`);
  const started = Date.now();
  const res = await standby.exec.run(basebackup);
  if (res.code !== 0) {
    await standby.exec.run(["rm", "-rf", "--", fresh]);
    throw new DcctlError(`pg_basebackup of ${primary.host.name} on ${standby.host.name} failed (exit ${res.code}): ${lastLine(res.stderr) || "no output"}; ${standby.host.name} is unchanged`);
  }
  const copySeconds = (Date.now() - started) / 1000;

  o.log(`switching ${standby.host.name} to the copy`);
  const stop = await standby.exec.run(standby.server.stop);
  if (stop.code !== 0 && (await standbyView(standby, PROBE_TIMEOUT_MS).then(() => true, () => false))) {
    await standby.exec.run(["rm", "-rf", "--", fresh]);
    throw new DcctlError(`${standby.host.name}: the server did not stop (${lastLine(stop.stderr || stop.stdout) || "no output"}); ${standby.host.name} is unchanged`);
  }
  await sh(standby.exec, ["sh", "-c", '[ ! -e "$1" ] || mv -- "$1" "$2"', "sh", dataDir, aside]);
  await sh(standby.exec, ["mv", "--", fresh, dataDir]);
  const start = await standby.exec.run(standby.server.start);
  if (start.code !== 0) {
    // Put the old server back as it was, so a failed switch leaves a working (if unreplicated) standby.
    await standby.exec.run(["sh", "-c", 'rm -rf -- "$3" && mv -- "$1" "$3" && mv -- "$2" "$1"', "sh", dataDir, aside, fresh]);
    await standby.exec.run(standby.server.start);
    throw new DcctlError(`${standby.host.name}: the server did not start on the copy (${lastLine(start.stderr || start.stdout) || "no output"}); the old data directory is back in place`);
  }
  await followAsReplica(standby, slot);
  await sh(standby.exec, ["rm", "-rf", "--", aside]);
  return { action: "seeded", notes: [...notes, `${standby.host.name} seeded from ${primary.host.name} in ${copySeconds.toFixed(1)} s and streaming through slot ${slot}`, ...discardedNotes(diverged)], ...(diverged ? { diverged } : {}) };
}

/** Both servers are copies of one cluster (a standby seeded from the other, promoted or not). */
async function sameCluster(a: PgReplicationEnd, b: PgReplicationEnd): Promise<boolean> {
  const id = async (e: PgReplicationEnd) => (await pgQuery(e.exec, e.conn, "postgres", "SELECT system_identifier FROM pg_control_system();\n")).trim();
  const [x, y] = await Promise.all([id(a), id(b)]);
  return x !== "" && x === y;
}

/**
 * Winds a stopped former primary back to where it left its new primary's timeline (pg_rewind, which needs
 * wal_log_hints or data checksums on it), then starts it as that primary's replica. Returns the seconds it took;
 * throws when it cannot, leaving the caller to copy the primary afresh (a failed rewind may leave the data directory
 * unusable: the copy replaces it).
 */
async function rewindPg(primary: PgReplicationEnd, standby: PgReplicationEnd, slot: string, conninfo: string, o: ReplicaSetupOptions): Promise<number> {
  const started = Date.now();
  const [hints = "", checksums = ""] = (await pgQuery(standby.exec, standby.conn, "postgres", "SELECT current_setting('wal_log_hints'), current_setting('data_checksums');\n")).trim().split("|");
  if (hints !== "on" && checksums !== "on") throw new DcctlError("it has neither wal_log_hints nor data checksums");
  o.log(`stopping ${standby.host.name} and rewinding it with pg_rewind`);
  const stop = await standby.exec.run(standby.server.stop);
  if (stop.code !== 0 && (await standbyView(standby, PROBE_TIMEOUT_MS).then(() => true, () => false))) throw new DcctlError(`the server did not stop (${lastLine(stop.stderr || stop.stdout) || "no output"})`);
  // A standby just promoted records its new timeline in its control file only at its next checkpoint; before it,
  // pg_rewind sees one timeline and finds "no rewind required".
  await pgQuery(primary.exec, primary.conn, "postgres", "CHECKPOINT;\n");
  const rewind = asOsUser(standby.server, [pgBin(standby.conn, "pg_rewind"), "--target-pgdata", standby.server.dataDir, "--source-server", `${conninfo} dbname=postgres`, "--write-recovery-conf"]);
  const res = await standby.exec.run(rewind);
  if (res.code !== 0) throw new DcctlError(`pg_rewind exit ${res.code}: ${lastLine(res.stderr) || "no output"}`);
  // pg_rewind brought the primary's own settings along, a slot name of its standby days among them: the last line of
  // postgresql.auto.conf wins, and the server must find its slot before it can reach a consistent state.
  await sh(standby.exec, asOsUser(standby.server, ["sh", "-c", 'printf "primary_slot_name = \x27%s\x27\n" "$2" >> "$1"', "sh", `${standby.server.dataDir.replace(/\/+$/, "")}/postgresql.auto.conf`, slot]));
  const start = await standby.exec.run(standby.server.start);
  if (start.code !== 0) throw new DcctlError(`the server did not start after pg_rewind (${lastLine(start.stderr || start.stdout) || "no output"})`);
  await followAsReplica(standby, slot);
  return (Date.now() - started) / 1000;
}

/**
 * A replica's last settings, then the wait for it to stream: its slot named, and a fence the copy may have brought
 * along (ALTER SYSTEM settings travel in the data directory) lifted, so that it is writable once promoted.
 */
async function followAsReplica(standby: PgReplicationEnd, slot: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await standbyView(standby, PROBE_TIMEOUT_MS).then((v) => v.inRecovery, () => false))) {
    if (Date.now() > deadline) throw new DcctlError(`${standby.host.name} did not come up as a standby within 60 s`);
    await new Promise((r) => setTimeout(r, 250));
  }
  await pgQuery(standby.exec, standby.conn, "postgres", "ALTER SYSTEM SET primary_slot_name = :'slot';\nALTER SYSTEM RESET default_transaction_read_only;\nSELECT pg_reload_conf();\n", { slot });
  await waitStreaming(standby, slot, 60_000);
}

function pgBin(conn: PgConnection, program: string): string {
  return pgArgv(conn, program, [])[0] ?? program;
}

/** The replication role on a primary, with the account's password as a SCRAM verifier: made, or brought up to date. */
export async function ensureReplicationRole(exec: Executor, conn: PgConnection, account: ReplicationAccount): Promise<void> {
  const verifier = sqlLiteral(scramVerifier(account.password));
  await pgQuery(
    exec,
    conn,
    "postgres",
    `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') AS present \\gset\n` +
      `\\if :present\n  ALTER ROLE :"user" WITH REPLICATION LOGIN PASSWORD ${verifier};\n\\else\n  CREATE ROLE :"user" WITH REPLICATION LOGIN PASSWORD ${verifier};\n\\endif\n`,
    { user: account.user },
  );
}

/** The replication role (its password as a SCRAM verifier) and the standby's slot on the primary; WAL settings checked. */
async function preparePrimary(primary: PgReplicationEnd, standby: PgReplicationEnd, slot: string, account: ReplicationAccount): Promise<void> {
  const q = (sql: string, vars: Record<string, string> = {}) => pgQuery(primary.exec, primary.conn, "postgres", sql, vars);
  const [walLevel = "", senders = "0", inRecovery = ""] = (await q("SELECT current_setting('wal_level'), current_setting('max_wal_senders'), pg_is_in_recovery();\n")).trim().split("|");
  if (inRecovery === "t") throw new DcctlError(`${primary.host.name} is itself a standby (in recovery): a replica follows a primary`);
  if (walLevel === "minimal" || Number(senders) < 1) {
    throw new DcctlError(`${primary.host.name}: replication needs wal_level replica or logical (it is ${walLevel}) and max_wal_senders > 0 (it is ${senders})`);
  }
  await ensureReplicationRole(primary.exec, primary.conn, account);
  // pg_rewind, run by a former primary to wind back onto this one, reads files through these (no superuser needed).
  await q(
    'GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean), pg_catalog.pg_stat_file(text, boolean), pg_catalog.pg_read_binary_file(text), pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO :"user";\n',
    { user: account.user },
  );
  const exists = await freeSlot(primary, standby, slot);
  // A slot left by an earlier copy holds WAL from back then: start from a fresh one.
  if (exists) await q("SELECT pg_drop_replication_slot(:'slot');\n", { slot });
  await q("SELECT pg_create_physical_replication_slot(:'slot', true);\n", { slot });
}

/**
 * Makes sure no walsender holds the standby's slot; returns whether the slot exists. One that streams to the
 * standby's own address is the standby being rebuilt (or its last connection, not yet timed out after the server
 * stopped): it is ended. One that streams anywhere else is another server using this standby's slot: an error.
 */
async function freeSlot(primary: PgReplicationEnd, standby: PgReplicationEnd, slot: string): Promise<boolean> {
  const q = (sql: string) => pgQuery(primary.exec, primary.conn, "postgres", sql, { slot });
  const deadline = Date.now() + 15_000;
  for (;;) {
    const row = (await q("SELECT s.active::text || '|' || coalesce(s.active_pid::text, '') || '|' || coalesce(host(r.client_addr), '') FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid WHERE s.slot_name = :'slot';\n")).trim();
    if (!row.startsWith("true")) return row !== "";
    const [, pid = "?", client = ""] = row.split("|");
    const ours = [standby.host.ip, standby.conn.host, "127.0.0.1"].includes(client) || client === "";
    if (!ours) throw new DcctlError(`${primary.host.name}: replication slot ${slot} is in use by ${client} (pid ${pid}), not ${standby.host.name}: another server streams as ${standby.host.name}`);
    if (Date.now() > deadline) throw new DcctlError(`${primary.host.name}: replication slot ${slot} is still held by pid ${pid} after ending it`);
    await q("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = :'slot' AND active;\n");
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function waitStreaming(standby: PgReplicationEnd, slot: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: string;
  for (;;) {
    try {
      const v = await standbyView(standby, PROBE_TIMEOUT_MS);
      if (v.inRecovery && v.slot === slot && v.receiver === "streaming") return;
      last = v.inRecovery ? `WAL receiver ${v.receiver || "not running"}` : "not in recovery";
    } catch (e) {
      last = errorMessage(e);
    }
    if (Date.now() > deadline) throw new DcctlError(`${standby.host.name} did not start streaming within ${timeoutMs / 1000} s (${last})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Lag and positions of the pair; the primary is asked with a short limit, so a lost primary still gets an answer. */
export async function pgReplicaStatus(primary: PgReplicationEnd, standby: PgReplicationEnd): Promise<ReplicaStatus> {
  const measuredAt = new Date().toISOString();
  let view: StandbyView;
  try {
    view = await standbyView(standby, PROBE_TIMEOUT_MS);
  } catch (e) {
    return { health: "unreachable", primaryAnswered: false, notes: [`${standby.host.name}: ${errorMessage(e)}`], measuredAt };
  }
  if (!view.inRecovery) return { health: "not-a-replica", primaryAnswered: false, notes: [`${standby.host.name} is not in recovery: it follows no primary`], measuredAt };
  const slot = slotName(standby.host.name);
  const notes: string[] = [];
  const iso = (epoch?: number) => (epoch === undefined ? undefined : new Date(epoch * 1000).toISOString());
  const base = { replicaPosition: view.replayLsn, ...(view.lastReceiptEpoch !== undefined ? { lastReceivedAt: iso(view.lastReceiptEpoch) } : {}), measuredAt };
  if (view.slot !== slot) notes.push(`${standby.host.name} follows slot "${view.slot || "none"}", not ${slot}`);
  if (view.receiver !== "streaming") notes.push(`${standby.host.name}: WAL receiver ${view.receiver || "not running"} (no connection to ${primary.host.name})`);

  let primaryRow: string[] | undefined;
  try {
    const sql = "SELECT pg_current_wal_lsn(), pg_wal_lsn_diff(pg_current_wal_lsn(), :'replay'::pg_lsn), coalesce((SELECT active::text FROM pg_replication_slots WHERE slot_name = :'slot'), 'missing');\n";
    const out = await pgQuery(primary.exec, primary.conn, "postgres", sql, { replay: view.replayLsn || "0/0", slot }, PROBE_TIMEOUT_MS);
    primaryRow = out.trim().split("|");
  } catch (e) {
    notes.push(`${primary.host.name} did not answer: ${errorMessage(e)}`);
  }
  if (!primaryRow) {
    // Without the primary, the honest bound is the time since the replica last heard from it; with its receiver gone
    // (the connection broke), since the last commit it replayed: it holds everything up to then at least.
    const heard = view.lastReceiptEpoch ?? view.lastReplayEpoch;
    const since = heard !== undefined ? Math.max(0, view.nowEpoch - heard) : undefined;
    return { health: "broken", primaryAnswered: false, ...(since !== undefined ? { lagSeconds: since } : {}), notes, ...base };
  }
  const [current = "", diff = "", slotActive = ""] = primaryRow;
  const lagBytes = Math.max(0, Math.round(Number(diff)));
  if (slotActive === "missing") notes.push(`slot ${slot} is missing on ${primary.host.name}`);
  else if (slotActive !== "true") notes.push(`slot ${slot} on ${primary.host.name} is not in use`);
  // Nothing unapplied: no lag, however long ago the last write was. Otherwise the age of the newest replayed commit.
  const lagSeconds = lagBytes === 0 ? 0 : view.lastReplayEpoch !== undefined ? Math.max(0, view.nowEpoch - view.lastReplayEpoch) : undefined;
  const health = notes.length ? "broken" : "streaming";
  return { health, primaryAnswered: true, lagBytes, ...(lagSeconds !== undefined ? { lagSeconds } : {}), primaryPosition: current, notes, ...base };
}

/** Promotes a standby to a primary; a server that is not in recovery needs nothing. */
export async function promotePg(end: PgReplicationEnd): Promise<string[]> {
  const state = (await pgQuery(end.exec, end.conn, "postgres", "SELECT pg_is_in_recovery();\n")).trim();
  if (state !== "t") return [`${end.host.name} is not in recovery: already a primary, nothing to promote`];
  const done = (await pgQuery(end.exec, end.conn, "postgres", "SELECT pg_promote(true, 60);\n")).trim();
  if (done !== "t") throw new DcctlError(`${end.host.name}: pg_promote did not finish within 60 s`);
  // A fence of its former primary (ALTER SYSTEM, kept in the data directory) may have come along with the copy.
  await pgQuery(end.exec, end.conn, "postgres", "ALTER SYSTEM RESET default_transaction_read_only;\nSELECT pg_reload_conf();\n");
  return [`${end.host.name} promoted to primary (pg_promote)`];
}
