import { createHash } from "node:crypto";
import { PassThrough } from "node:stream";
import { lastLine } from "../../util/process.js";
import { DcctlError, ExitCode, errorMessage } from "../../util/errors.js";
import { expectOk, type ExecCompletion, type ExecResult } from "../../hosts/executor.js";
import { mariadbArgv, sqlIdent, sqlString, type MariadbReplicationEnd } from "./connection.js";
import { listMariadbDatabases, MARIADB_SYSTEM_SCHEMAS, mariadbQuery } from "./query.js";
import { mariadbDiverged } from "./diverged.js";
import { discardedNotes, gateDiverged } from "../keep.js";
import { PROBE_TIMEOUT_MS, type ReplicaSetupOptions, type ReplicaSetupResult, type ReplicaStatus, type ReplicationAccount } from "../replication.js";

/**
 * MariaDB GTID replication, primary → standby: the standby is seeded with one consistent mysqldump of the primary's
 * databases (taken on the primary host, loaded by the standby host's client, never stored), which also sets the
 * standby's gtid_slave_pos; the standby then follows the primary from there (MASTER_USE_GTID=slave_pos), read-only.
 * The replication account's password reaches the primary only as a hash, and the standby only on its client's stdin.
 */

/** One row of a result set, by column name; NULL as null. */
type Row = Record<string, string | null>;

/** SHOW SLAVE STATUS, the fields dcctl reads. */
interface SlaveStatus {
  masterHost: string;
  masterPort: number;
  ioRunning: string;
  sqlRunning: string;
  usingGtid: string;
  secondsBehind?: number;
  relayMasterLogFile: string;
  execMasterLogPos: number;
  gtidIoPos: string;
  ioErrno: number;
  ioError: string;
  sqlErrno: number;
  sqlError: string;
  sqlState: string;
}

interface StandbyView {
  serverId: number;
  readOnly: boolean;
  gtidSlavePos: string;
  /** Absent when the server follows no primary (SHOW SLAVE STATUS is empty). */
  slave?: SlaveStatus;
}

interface PrimaryView {
  logBin: boolean;
  serverId: number;
  gtidBinlogPos: string;
  /** SHOW MASTER STATUS; absent without a binary log. */
  binlog?: { file: string; position: number };
}

/** The mariadb client's --batch escapes in a field (\n, \t, \\, \0). */
function unescapeField(s: string): string {
  return s.replace(/\\([ntr0\\])/g, (_, c: string) => ({ n: "\n", t: "\t", r: "\r", "0": "\0", "\\": "\\" })[c] ?? c);
}

/**
 * Runs `sql` (two statements: one whose result is always one row, then one with zero or one row, as SELECT @@… and
 * SHOW SLAVE STATUS are) in one client session, and returns both rows by column name. `timeoutMs` bounds it all.
 */
async function twoRows(end: MariadbReplicationEnd, sql: string, timeoutMs?: number): Promise<[Row, Row | undefined]> {
  const bound = timeoutMs === undefined ? [] : [`--connect-timeout=${Math.max(1, Math.ceil(timeoutMs / 1000))}`];
  const argv = mariadbArgv(end.conn, "mariadb", ["--batch", ...bound]);
  let res: ExecResult;
  try {
    res = await end.exec.run(argv, { stdin: sql, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
  } catch (e) {
    throw new DcctlError(`MariaDB on ${end.host.name}: ${errorMessage(e)}`);
  }
  const lines = expectOk(res, argv, end.exec.target).stdout.replace(/\n$/, "").split("\n");
  const row = (header?: string, values?: string): Row | undefined => {
    if (header === undefined || values === undefined) return undefined;
    const v = values.split("\t");
    return Object.fromEntries(header.split("\t").map((name, i) => [name, v[i] === undefined || v[i] === "NULL" ? null : unescapeField(v[i] ?? "")]));
  };
  const first = row(lines[0], lines[1]);
  if (!first) throw new DcctlError(`MariaDB on ${end.host.name}: unexpected answer to a status query (${lines.length} lines)`);
  return [first, row(lines[2], lines[3])];
}

const text = (r: Row, k: string): string => r[k] ?? "";
const num = (r: Row, k: string): number => Number(r[k] ?? 0);

async function standbyView(end: MariadbReplicationEnd, timeoutMs?: number): Promise<StandbyView> {
  const [vars, s] = await twoRows(end, "SELECT @@server_id AS server_id, @@read_only AS read_only, @@gtid_slave_pos AS gtid_slave_pos;\nSHOW SLAVE STATUS;\n", timeoutMs);
  const slave: SlaveStatus | undefined = s && {
    masterHost: text(s, "Master_Host"),
    masterPort: num(s, "Master_Port"),
    ioRunning: text(s, "Slave_IO_Running"),
    sqlRunning: text(s, "Slave_SQL_Running"),
    usingGtid: text(s, "Using_Gtid"),
    ...(s.Seconds_Behind_Master == null ? {} : { secondsBehind: Number(s.Seconds_Behind_Master) }),
    relayMasterLogFile: text(s, "Relay_Master_Log_File"),
    execMasterLogPos: num(s, "Exec_Master_Log_Pos"),
    gtidIoPos: text(s, "Gtid_IO_Pos"),
    ioErrno: num(s, "Last_IO_Errno"),
    ioError: text(s, "Last_IO_Error"),
    sqlErrno: num(s, "Last_SQL_Errno"),
    sqlError: text(s, "Last_SQL_Error"),
    sqlState: text(s, "Slave_SQL_Running_State"),
  };
  return { serverId: num(vars, "server_id"), readOnly: text(vars, "read_only") === "1", gtidSlavePos: text(vars, "gtid_slave_pos"), ...(slave ? { slave } : {}) };
}

async function primaryView(end: MariadbReplicationEnd, timeoutMs?: number): Promise<PrimaryView> {
  const [vars, m] = await twoRows(end, "SELECT @@log_bin AS log_bin, @@server_id AS server_id, @@gtid_binlog_pos AS gtid_binlog_pos;\nSHOW MASTER STATUS;\n", timeoutMs);
  return {
    logBin: text(vars, "log_bin") === "1",
    serverId: num(vars, "server_id"),
    gtidBinlogPos: text(vars, "gtid_binlog_pos"),
    ...(m ? { binlog: { file: text(m, "File"), position: num(m, "Position") } } : {}),
  };
}

/** Where the standby's server reaches the primary: the address dcctl uses unless that is loopback, else the host's own. */
function primaryAddress(primary: MariadbReplicationEnd): string {
  const h = primary.conn.host;
  return h && !h.startsWith("127.") && h !== "localhost" && h !== "::1" ? h : primary.host.ip;
}

/** The standby follows this primary (whether or not its threads run). */
const followsPrimary = (s: SlaveStatus, address: string, port: number) => s.masterHost === address && s.masterPort === port;
const threadsRun = (s: SlaveStatus) => s.ioRunning === "Yes" && s.sqlRunning === "Yes";

/** GTID positions compared as sets of domain-server-seqno (the order of domains in the text does not matter). */
const samePosition = (a: string, b: string) => normalGtid(a) === normalGtid(b);
const normalGtid = (g: string) => g.split(",").map((x) => x.trim()).filter(Boolean).sort().join(",");

/** What is wrong with a replica's threads, one line each (nothing when both run without an error). */
function threadProblems(standby: string, s: SlaveStatus): string[] {
  const out: string[] = [];
  if (s.ioRunning !== "Yes" || s.ioErrno !== 0) out.push(`${standby}: IO thread ${s.ioRunning || "not running"}${s.ioErrno ? `, Last_IO_Error ${s.ioErrno}: ${s.ioError}` : ""}`);
  if (s.sqlRunning !== "Yes" || s.sqlErrno !== 0) out.push(`${standby}: SQL thread ${s.sqlRunning || "not running"}${s.sqlErrno ? `, Last_SQL_Error ${s.sqlErrno}: ${s.sqlError}` : ""}`);
  return out;
}

const userDatabases = async (end: MariadbReplicationEnd): Promise<string[]> => (await listMariadbDatabases(end.exec, end.conn)).filter((d) => !MARIADB_SYSTEM_SCHEMAS.includes(d));

const dropDatabases = (dbs: string[]) => dbs.map((d) => `DROP DATABASE IF EXISTS ${sqlIdent(d)};\n`).join("");

const plural = (n: number, one: string, many = `${one}s`) => (n === 1 ? one : many);

/** The mysql_native_password hash ("*" and SHA1(SHA1(password)) in hex), which the primary is given instead of the password. */
export function nativePasswordHash(password: string): string {
  const inner = createHash("sha1").update(password, "utf8").digest();
  return "*" + createHash("sha1").update(inner).digest("hex").toUpperCase();
}

/**
 * Makes the standby a GTID replica of the primary, seeded from a consistent dump of it. Kept as it is when it already
 * replicates from this primary with both threads running. A standby holding databases of its own, or following
 * another primary, is replaced only with `overwrite`. A seeding that fails leaves a standby that held nothing as it was
 * (what it had begun to load is dropped); with `overwrite` it may be left partially loaded, which the error says.
 */
export async function setupMariadbReplica(primary: MariadbReplicationEnd, standby: MariadbReplicationEnd, account: ReplicationAccount, o: ReplicaSetupOptions): Promise<ReplicaSetupResult> {
  const address = primaryAddress(primary);
  const port = primary.conn.port;
  const from = `${primary.host.name} (${address}:${port})`;
  const view = await standbyView(standby).catch((e: unknown) => {
    throw new DcctlError(`MariaDB on ${standby.host.name} does not answer (${errorMessage(e)}): a replica is seeded through its server, which must be running`);
  });
  const slave = view.slave;
  const ours = slave !== undefined && followsPrimary(slave, address, port);
  if (slave && ours && threadsRun(slave) && slave.usingGtid === "Slave_Pos") {
    return { action: "kept", notes: [`${standby.host.name} already replicates from ${from} with GTID (slave_pos): nothing changed`] };
  }

  const own = await userDatabases(standby);
  if (!o.overwrite) {
    const what: string[] = [];
    if (slave && !ours) what.push(`it replicates from another primary, ${slave.masterHost}:${slave.masterPort}`);
    else if (slave && own.length) what.push(`its replication from ${from} is not running (${threadProblems(standby.host.name, slave).join("; ") || `Using_Gtid ${slave.usingGtid}`})`);
    if (own.length) what.push(`it holds ${plural(own.length, "database")} ${own.join(", ")}`);
    if (what.length) {
      throw new DcctlError(
        `${standby.host.name}: ${what.join("; ")}; replication setup drops its databases, resets its replication and binary log, and loads a copy of ${primary.host.name}: run again with --yes to overwrite`,
        ExitCode.notConfirmed,
      );
    }
  }

  // A former primary's writes its new primary lacks are measured and kept before the re-seed drops them.
  const diverged = slave ? undefined : await gateDiverged(() => mariadbDiverged(primary, standby, o.diverged.keepDir), o, `what ${standby.host.name} holds that ${primary.host.name} lacks`);

  await checkPrimary(primary, standby, view);
  await mariadbQuery(
    primary.exec,
    primary.conn,
    // A hash, not the password: the statements are written to the primary's binary log (and any query log).
    `CREATE USER IF NOT EXISTS ${sqlString(account.user)}@'%' IDENTIFIED BY PASSWORD ${sqlString(nativePasswordHash(account.password))};\n` +
      `ALTER USER ${sqlString(account.user)}@'%' IDENTIFIED BY PASSWORD ${sqlString(nativePasswordHash(account.password))};\n` +
      `GRANT REPLICATION SLAVE ON *.* TO ${sqlString(account.user)}@'%';\n`,
  );
  const databases = await userDatabases(primary);

  // From here on the standby is being rebuilt: no client writes, no replication, no history of its own (its binary
  // log's GTIDs would conflict with the primary's in strict mode, and a promoted standby's log must be the primary's).
  const dropped = o.overwrite ? own : [];
  o.log(`preparing ${standby.host.name}: read_only, replication reset${dropped.length ? `, dropping ${dropped.join(", ")}` : ""}`);
  await mariadbQuery(
    standby.exec,
    standby.conn,
    "SET GLOBAL read_only = ON;\nSTOP SLAVE;\nRESET SLAVE ALL;\nRESET MASTER;\n" + (dropped.length ? `SET SESSION sql_log_bin = 0;\n${dropDatabases(dropped)}` : ""),
  );

  const started = Date.now();
  try {
    if (databases.length) {
      o.log(`copying ${databases.join(", ")} from ${primary.host.name} to ${standby.host.name} (mysqldump --single-transaction --gtid)`);
      await copyDatabases(primary, standby, databases);
    } else {
      // Nothing to copy: the standby starts from where the primary's binary log is now.
      const p = await primaryView(primary);
      await mariadbQuery(standby.exec, standby.conn, `SET GLOBAL gtid_slave_pos = ${sqlString(p.gtidBinlogPos)};\n`);
    }
  } catch (e) {
    if (o.overwrite) {
      throw new DcctlError(
        `seeding ${standby.host.name} from ${primary.host.name} failed: ${errorMessage(e)}; ${standby.host.name} is partially loaded${dropped.length ? ` (its former ${plural(dropped.length, "database")} ${dropped.join(", ")} were dropped)` : ""}, read-only and follows no primary: run replication setup again with --yes to re-seed it`,
      );
    }
    // It held no databases before: drop what the load created, so it is left as it was.
    const cleanup = await mariadbQuery(
      standby.exec,
      standby.conn,
      `SET SESSION sql_log_bin = 0;\n${dropDatabases(databases)}SET GLOBAL gtid_slave_pos = '';\nSET GLOBAL read_only = ${view.readOnly ? "ON" : "OFF"};\n`,
    ).then(
      () => `what it had loaded was dropped: ${standby.host.name} holds no databases, as before`,
      (c: unknown) => `and dropping what it had loaded failed too (${errorMessage(c)}): ${standby.host.name} may hold a partial copy of ${databases.join(", ")}, read-only; run replication setup again with --yes to re-seed it`,
    );
    throw new DcctlError(`seeding ${standby.host.name} from ${primary.host.name} failed: ${errorMessage(e)}; ${cleanup}`);
  }
  const copySeconds = (Date.now() - started) / 1000;

  o.log(`starting replication on ${standby.host.name} from ${from}`);
  await mariadbQuery(
    standby.exec,
    standby.conn,
    `CHANGE MASTER TO MASTER_HOST=${sqlString(address)}, MASTER_PORT=${port}, MASTER_USER=${sqlString(account.user)}, MASTER_PASSWORD=${sqlString(account.password)}, MASTER_USE_GTID=slave_pos;\nSTART SLAVE;\n`,
  );
  const running = await waitRunning(standby, 60_000);
  const notes = [
    `${standby.host.name} seeded from ${primary.host.name} in ${copySeconds.toFixed(1)} s (${databases.length ? databases.join(", ") : "no databases"}) and replicating with GTID from ${running.gtidSlavePos || "the start"}; it is read-only`,
    ...(dropped.length ? [`dropped ${standby.host.name}'s former ${plural(dropped.length, "database")} ${dropped.join(", ")}`] : []),
    ...(await missingAccounts(primary, standby, account.user)),
    ...(await promotable(standby)),
    ...discardedNotes(diverged),
  ];
  return { action: "seeded", notes, ...(diverged ? { diverged } : {}) };
}

/** One error naming every setting the pair lacks: a binary log on the primary, a server_id of each its own. */
async function checkPrimary(primary: MariadbReplicationEnd, standby: MariadbReplicationEnd, sv: StandbyView): Promise<void> {
  const p = await primaryView(primary);
  const [, primarySlave] = await twoRows(primary, "SELECT 1 AS one;\nSHOW SLAVE STATUS;\n");
  if (primarySlave) throw new DcctlError(`${primary.host.name} is itself a replica (of ${text(primarySlave, "Master_Host")}:${text(primarySlave, "Master_Port")}): a standby follows a primary`);
  const problems: string[] = [];
  if (!p.logBin) problems.push(`${primary.host.name} has no binary log: set log-bin (and binlog-format=ROW) in its server configuration and restart it`);
  if (sv.serverId === 0) problems.push(`${standby.host.name} has server_id 0, which cannot replicate: give it a server_id of its own`);
  else if (p.serverId === sv.serverId) problems.push(`${primary.host.name} and ${standby.host.name} both have server_id ${p.serverId}: give each server a unique server_id`);
  if (problems.length) throw new DcctlError(`MariaDB replication ${primary.host.name} → ${standby.host.name} needs: ${problems.join("; ")}`);
}

/**
 * Streams a consistent dump of the databases from the primary's host into the standby's client: one transaction, and
 * the GTID position it was taken at (the dump ends with SET GLOBAL gtid_slave_pos, so a cut-off dump never sets it).
 * Loaded with sql_log_bin=0, so the standby's binary log gets no transactions of its own.
 */
async function copyDatabases(primary: MariadbReplicationEnd, standby: MariadbReplicationEnd, databases: string[]): Promise<void> {
  const dumpArgv = mariadbArgv(primary.conn, "mysqldump", [
    "--single-transaction",
    "--gtid",
    "--master-data=1",
    "--routines",
    "--triggers",
    "--events",
    "--hex-blob",
    "--databases",
    "--",
    ...databases,
  ]);
  const loadArgv = mariadbArgv(standby.conn, "mariadb", ["--batch", "--init-command=SET SESSION sql_log_bin = 0"]);
  const dump = primary.exec.stream(dumpArgv);
  // A pipe of our own between them: if the dump's connection is lost, the loader's input is ended rather than left open.
  const pipe = new PassThrough();
  dump.stdout.pipe(pipe);
  const loading = standby.exec.run(loadArgv, { stdin: pipe }).then(
    (r) => {
      // A loader that stopped no longer reads: end the dump rather than let it block on a full pipe.
      if (r.code !== 0) dump.kill();
      return r;
    },
    (e: unknown) => {
      dump.kill();
      throw e;
    },
  );
  const dumping = dump.done.then(
    (c: ExecCompletion) => c,
    (e: unknown) => {
      dump.stdout.unpipe(pipe);
      pipe.end();
      throw e;
    },
  );
  const [dumped, loaded] = await Promise.allSettled([dumping, loading]);
  const failures: string[] = [];
  if (dumped.status === "rejected") failures.push(`mysqldump on ${primary.exec.target}: ${errorMessage(dumped.reason)}`);
  else if (dumped.value.code !== 0) failures.push(`mysqldump on ${primary.exec.target} failed (exit ${dumped.value.code}): ${lastLine(dumped.value.stderr) || "no output"}`);
  if (loaded.status === "rejected") failures.push(`mariadb on ${standby.exec.target}: ${errorMessage(loaded.reason)}`);
  else if (loaded.value.code !== 0) failures.push(`mariadb on ${standby.exec.target} failed (exit ${loaded.value.code}): ${lastLine(loaded.value.stderr) || "no output"}`);
  if (failures.length) throw new DcctlError(failures.join("; "));
}

/** Waits until both replication threads run; an SQL thread stopped by an error, or the deadline, fails with the errors. */
async function waitRunning(standby: MariadbReplicationEnd, timeoutMs: number): Promise<StandbyView> {
  const deadline = Date.now() + timeoutMs;
  let last: string;
  for (;;) {
    try {
      const v = await standbyView(standby, PROBE_TIMEOUT_MS);
      if (v.slave && threadsRun(v.slave) && v.slave.sqlErrno === 0) return v;
      last = v.slave ? threadProblems(standby.host.name, v.slave).join("; ") : "no replication configured";
      if (v.slave && v.slave.sqlRunning === "No" && v.slave.sqlErrno !== 0) break;
      if (v.slave && v.slave.ioRunning === "No" && v.slave.ioErrno !== 0) break;
    } catch (e) {
      last = errorMessage(e);
    }
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new DcctlError(`${standby.host.name} was seeded but its replication did not start within ${timeoutMs / 1000} s (${last}); fix that and START SLAVE there, or run replication setup again with --yes to re-seed`);
}

/** A standby that does not log what it applies becomes, once promoted, a primary nothing can replicate from. */
async function promotable(standby: MariadbReplicationEnd): Promise<string[]> {
  const [logBin = "", slaveUpdates = ""] = (await mariadbQuery(standby.exec, standby.conn, "SELECT @@log_bin, @@log_slave_updates;\n")).trim().split("\t");
  if (logBin === "1" && slaveUpdates === "1") return [];
  return [`${standby.host.name} has ${logBin === "1" ? "log_slave_updates off" : "no binary log"}: once promoted it cannot be replicated from (set log-bin and log-slave-updates there for a failback)`];
}

/**
 * The primary's accounts the standby lacks. The seed copies databases, not the mysql schema (its accounts would
 * overwrite the standby's own admin login), so they are named: applications need them after a failover, and a GRANT
 * or ALTER USER of one of them on the primary stops the replica's SQL thread.
 */
async function missingAccounts(primary: MariadbReplicationEnd, standby: MariadbReplicationEnd, replicationUser: string): Promise<string[]> {
  const sql = "SELECT user, host FROM mysql.user WHERE user <> '' AND user <> 'mariadb.sys' AND is_role = 'N' ORDER BY 1, 2;\n";
  const accounts = (out: string) => out.split("\n").filter(Boolean).map((l) => l.split("\t").map(unescapeField) as [string, string]);
  try {
    const [p, s] = await Promise.all([mariadbQuery(primary.exec, primary.conn, sql), mariadbQuery(standby.exec, standby.conn, sql)]);
    const key = ([u, h]: [string, string]) => `${sqlString(u)}@${sqlString(h)}`;
    const have = new Set(accounts(s).map(key));
    const missing = accounts(p).filter(([u, h]) => !(u === replicationUser && h === "%")).map(key).filter((a) => !have.has(a));
    if (!missing.length) return [];
    const one = missing.length === 1;
    return [
      `${primary.host.name}'s ${plural(missing.length, "account")} ${missing.slice(0, 10).join(", ")}${missing.length > 10 ? ` and ${missing.length - 10} more` : ""} ${one ? "is" : "are"} not on ${standby.host.name} ` +
        `(the seed copies databases, not accounts): create ${one ? "it" : "them"} there, or a GRANT or ALTER USER of ${one ? "it" : "one"} on the primary will stop replication`,
    ];
  } catch (e) {
    return [`could not compare the accounts of ${primary.host.name} and ${standby.host.name}: ${errorMessage(e)}`];
  }
}

/**
 * Lag and positions of the pair. The standby is asked first, the primary then, each within PROBE_TIMEOUT_MS, so a lost
 * primary still gets an answer (broken, with the replica's own estimate of its lag).
 */
export async function mariadbReplicaStatus(primary: MariadbReplicationEnd, standby: MariadbReplicationEnd): Promise<ReplicaStatus> {
  const measuredAt = new Date().toISOString();
  let view: StandbyView;
  try {
    view = await standbyView(standby, PROBE_TIMEOUT_MS);
  } catch (e) {
    return { health: "unreachable", primaryAnswered: false, notes: [`${standby.host.name}: ${errorMessage(e)}`], measuredAt };
  }
  const s = view.slave;
  if (!s) return { health: "not-a-replica", primaryAnswered: false, notes: [`${standby.host.name} has no replication configured (SHOW SLAVE STATUS is empty): it follows no primary`], replicaPosition: view.gtidSlavePos, measuredAt };

  const address = primaryAddress(primary);
  const problems = threadProblems(standby.host.name, s);
  const ours = followsPrimary(s, address, primary.conn.port);
  if (!ours) problems.push(`${standby.host.name} replicates from ${s.masterHost}:${s.masterPort}, not ${primary.host.name} (${address}:${primary.conn.port})`);
  const info = s.usingGtid === "Slave_Pos" ? [] : [`${standby.host.name} replicates with Using_Gtid ${s.usingGtid}, not Slave_Pos`];
  const base = { replicaPosition: view.gtidSlavePos, measuredAt };
  const behind = s.secondsBehind === undefined ? {} : { lagSeconds: s.secondsBehind };

  let p: PrimaryView;
  try {
    p = await primaryView(primary, PROBE_TIMEOUT_MS);
  } catch (e) {
    return { health: "broken", primaryAnswered: false, ...behind, notes: [...problems, `${primary.host.name} did not answer: ${errorMessage(e)}`, ...info], ...base };
  }
  // Everything the primary has logged is applied: no lag, however long ago the last write was.
  const caughtUp = ours && samePosition(view.gtidSlavePos, p.gtidBinlogPos);
  const lag = caughtUp ? { lagSeconds: 0 } : behind;
  const bytes =
    caughtUp ? { lagBytes: 0 } : ours && p.binlog && s.relayMasterLogFile === p.binlog.file ? { lagBytes: Math.max(0, p.binlog.position - s.execMasterLogPos) } : {};
  return {
    health: problems.length ? "broken" : "streaming",
    primaryAnswered: true,
    ...lag,
    ...bytes,
    primaryPosition: p.gtidBinlogPos,
    notes: [...problems, ...info],
    ...base,
  };
}

/**
 * Makes a replica a writable primary: the IO thread is stopped first and what it had received is applied (bounded), so
 * a promotion loses nothing the replica already holds; then replication is removed and read_only lifted. A server that
 * follows no primary needs nothing. Each step can be run again after an interruption.
 */
export async function promoteMariadb(end: MariadbReplicationEnd, applyTimeoutMs = 60_000): Promise<string[]> {
  const view = await standbyView(end);
  if (!view.slave) return [`${end.host.name} has no replication configured: already a primary, nothing to promote${view.readOnly ? " (note: it is read_only, as a fenced server is)" : ""}`];
  const from = `${view.slave.masterHost}:${view.slave.masterPort}`;
  const notes: string[] = [];
  await mariadbQuery(end.exec, end.conn, "STOP SLAVE IO_THREAD;\n");
  const deadline = Date.now() + applyTimeoutMs;
  let v = await standbyView(end);
  // "Slave has read all relay log": the SQL thread has applied everything the IO thread wrote.
  while (v.slave && v.slave.sqlRunning === "Yes" && !/read all relay log/i.test(v.slave.sqlState)) {
    if (Date.now() > deadline) {
      throw new DcctlError(`${end.host.name}: still applying transactions received from ${from} after ${applyTimeoutMs / 1000} s (at ${v.gtidSlavePos}, received up to ${v.slave.gtidIoPos}); its IO thread is stopped: run promote again to keep waiting`);
    }
    await new Promise((r) => setTimeout(r, 200));
    v = await standbyView(end);
  }
  if (v.slave && v.slave.sqlRunning !== "Yes") {
    notes.push(`${end.host.name}: the SQL thread was not running${v.slave.sqlErrno ? ` (Last_SQL_Error ${v.slave.sqlErrno}: ${v.slave.sqlError})` : ""}: transactions received up to ${v.slave.gtidIoPos} but applied only up to ${v.gtidSlavePos} are discarded`);
  }
  // read_only is lifted before the replication is removed: an interrupted promote still shows a replica, and is redone.
  await mariadbQuery(end.exec, end.conn, "STOP SLAVE;\nSET GLOBAL read_only = OFF;\nRESET SLAVE ALL;\n");
  notes.push(`${end.host.name} promoted to primary: replication from ${from} removed (RESET SLAVE ALL), read_only OFF, data at GTID ${v.gtidSlavePos || "none"}`);
  return notes;
}
