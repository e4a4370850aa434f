import { randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import { DcctlError, errorMessage, ExitCode, InputError } from "../util/errors.js";
import { expectOk, type ExecCompletion, type Executor } from "../hosts/index.js";
import type { Restic } from "./restic/index.js";
import { RemoteRestic, reachableFromHosts } from "./restic/remote.js";
import type { DumpPlacement } from "./sources/dump.js";
import type { StagingLedger } from "./restore-staging.js";
import { mariadbArgv, mariadbDumpFilename, mariadbQuery, mariadbTags, sqlIdent, sqlString, type MariadbConnection } from "./sources/mariadb.js";
import { pgArgv, pgDbname, pgDumpFilename, pgEnv, pgQuery, pgTags, type PgConnection } from "./sources/postgres.js";

/** The target database exists and the caller did not ask to overwrite it; nothing was changed. */
export class RestoreTargetExistsError extends DcctlError {
  constructor(
    message: string,
    readonly database: string,
  ) {
    // Overwriting is a destructive action that needs confirmation (--yes): "not confirmed" is what happened.
    super(message, ExitCode.notConfirmed);
  }
}

export interface RestoreCommon {
  restic: Restic;
  /** A snapshot id, or "latest": the newest snapshot of this database (of `host`, when given). */
  snapshot: string;
  /** The database as it was backed up (its name in the snapshot's tags and file name). */
  db: string;
  /** Only consider snapshots of this host (the inventory host recorded at backup). */
  host?: string;
  /** Where the restore command runs: the target database server's host. */
  targetExec: Executor;
  /** The database to restore into; default `db`. */
  targetDb?: string;
  /** Replace the target database if it exists. Without it an existing target is refused and left untouched. */
  overwrite: boolean;
  /**
   * PostgreSQL only: pg_restore --jobs on the target host (default: its processor count, 2 to 8). Above 1 the dump is
   * first restored as a file on the host (pg_restore reads a file, not a pipe, in parallel); 1 streams it.
   */
  jobs?: number;
}

export interface PgRestoreOptions extends RestoreCommon {
  /** A role that may create databases (and drop the target, for overwrite); where restic runs, as for a backup. */
  target: PgConnection & DumpPlacement;
  /**
   * Where the temporary database is named before it is created, and the inventory host it is on; what a dead restore
   * left on that host is dropped first. Without it (tests of the restore alone) a killed restore leaves it behind.
   */
  staging?: { ledger: StagingLedger; host: string };
  /** Leave out GRANTs (pg_restore --no-privileges), for a target server that lacks the source's roles. */
  noPrivileges?: boolean;
}

export interface MariadbRestoreOptions extends RestoreCommon {
  target: MariadbConnection;
}

export interface DbRestoreResult {
  snapshotId: string;
  targetDb: string;
  /** Whether an existing database was replaced. */
  replaced: boolean;
  /** Temporary databases of restores onto this host that did not finish, dropped first (one line each). */
  notes?: string[];
}

/**
 * The newest snapshot carrying all these tags (of `host`, when given), or the one the id given (full or short) names
 * among them. A database with no snapshot, or an id that is none of its snapshots, is bad input: found by one listing,
 * before anything on the target is touched.
 */
export async function resolveSnapshot(restic: Restic, snapshot: string, tags: string[], host?: string): Promise<string> {
  const snaps = await restic.snapshots({ tags, ...(host ? { host } : {}) });
  const newest = snaps.reduce<(typeof snaps)[number] | undefined>((best, s) => (!best || Date.parse(s.time) > Date.parse(best.time) ? s : best), undefined);
  const of = `${tags.join(", ")}${host ? ` of host ${host}` : ""} in ${restic.repo.url.replace(/\/\/[^@/]*@/, "//")}`;
  if (!newest) throw new InputError([`no snapshot tagged ${of}${await backedUpDatabases(restic, tags, host)}`]);
  if (snapshot === "latest") return newest.id;
  const chosen = snaps.find((s) => s.id === snapshot || s.short_id === snapshot || (snapshot.length >= 8 && s.id.startsWith(snapshot)));
  if (!chosen) throw new InputError([`snapshot ${snapshot} is none of the ${snaps.length} tagged ${of} (newest: ${newest.short_id} of ${newest.time.replace(/\.\d+/, "")})`]);
  return chosen.id;
}

/** For the message: the databases the host does have snapshots of, from the same source (engine). */
async function backedUpDatabases(restic: Restic, tags: string[], host?: string): Promise<string> {
  const source = tags.filter((t) => t.startsWith("source:"));
  const all = await restic.snapshots({ tags: source, ...(host ? { host } : {}) }).catch(() => []);
  const names = [...new Set(all.flatMap((s) => (s.tags ?? []).filter((t) => t.startsWith("db:")).map((t) => t.slice(3))))].sort();
  return names.length ? ` (databases with snapshots there: ${names.join(", ")})` : "";
}

/**
 * Restores a PostgreSQL database from its pg_dump snapshot into a fresh staging database that only becomes
 * `targetDb` once pg_restore succeeded, so a failed restore never leaves a half-filled database under the real name,
 * and with `overwrite` the old database is dropped only after its replacement is complete.
 *
 * The dump reaches pg_restore one of two ways. Where restic can run on the target host (see dumpIntoRestic) and
 * `jobs` is above 1, restic restores the dump there as a file in a private temporary folder (/var/tmp, removed
 * afterwards) and `pg_restore --jobs` loads it: tables and indexes in parallel, and the dump never passes through
 * dcctl (bench/db-restore.ts has the figures). Otherwise `restic dump` here streams it into a single pg_restore there.
 */
export async function restorePostgres(o: PgRestoreOptions): Promise<DbRestoreResult> {
  const targetDb = o.targetDb ?? o.db;
  checkName(targetDb);
  // PostgreSQL would silently cut a longer name, and restore under a name nobody asked for.
  if (Buffer.byteLength(targetDb) > 63) throw new InputError([`PostgreSQL database names are at most 63 bytes: ${targetDb}`]);
  const { targetExec: exec, target } = o;
  const onHost = restoresOnHost(exec, o.restic, target);
  // pg_restore reads a file in parallel, never a pipe: without restic on the host there is no file to read.
  if (!onHost && (o.jobs ?? 1) > 1) throw new InputError([`pg_restore --jobs ${o.jobs ?? 1} needs restic on ${exec.target} (a rest: repository and resticOnHost not false); use --jobs 1 to stream the dump`]);
  // First: a database or snapshot that is not there is bad input, said before any question about the target.
  const snapshotId = await resolveSnapshot(o.restic, o.snapshot, pgTags(o.db), o.host);
  const exists = async (name: string) => (await pgQuery(exec, target, "postgres", "SELECT 1 FROM pg_database WHERE datname = :'name';\n", { name })).trim() === "1";
  const existed = await exists(targetDb);
  if (existed && !o.overwrite) throw refusal(targetDb, "PostgreSQL", exec);

  const dropStaging = (name: string) => pgQuery(exec, target, "postgres", 'DROP DATABASE IF EXISTS :"name" WITH (FORCE);\n', { name });
  const notes = o.staging ? await settlePgStaging(o.staging.ledger, o.staging.host, exec, target) : [];

  // Within PostgreSQL's 63-byte identifier limit whatever the target's name.
  const staging = `dcctl_restore_${randomBytes(6).toString("hex")}`;
  // Named before it exists: a restore killed from here on leaves a database its ledger names.
  o.staging?.ledger.record({ database: staging, engine: "postgresql", host: o.staging.host, restoring: o.db, into: targetDb });
  await pgQuery(exec, target, "postgres", 'CREATE DATABASE :"name";\n', { name: staging }).catch((e: unknown) => {
    o.staging?.ledger.remove(staging);
    throw e;
  });
  try {
    // --exit-on-error: the first failing statement fails the restore instead of a warning count at the end.
    const args = ["--no-owner", ...(o.noPrivileges ? ["--no-privileges"] : []), "--exit-on-error", "-d", pgDbname(staging)];
    const file = "/" + pgDumpFilename(o.db);
    const jobs = onHost ? (o.jobs ?? (await processors(exec))) : 1;
    if (jobs > 1) {
      await onHostFile(exec, o.restic, snapshotId, file, async (path) => {
        const argv = pgArgv(target, "pg_restore", [...args, "--jobs", String(jobs), path]);
        expectOk(await exec.run(argv, { env: pgEnv(target) }), argv, exec.target);
      });
    } else {
      await pipeDump(o.restic, snapshotId, file, exec, pgArgv(target, "pg_restore", args), pgEnv(target));
    }
    // Complete from here: a restore killed between dropping the old database and the rename leaves the only copy.
    o.staging?.ledger.record({ database: staging, engine: "postgresql", host: o.staging.host, restoring: o.db, into: targetDb, complete: true });
    await pgQuery(exec, target, "postgres", (o.overwrite ? 'DROP DATABASE IF EXISTS :"target" WITH (FORCE);\n' : "") + 'ALTER DATABASE :"staging" RENAME TO :"target";\n', {
      target: targetDb,
      staging,
    });
  } catch (e) {
    // Its entry stays when the drop fails: the next restore onto the host tries again.
    await dropStaging(staging).then(
      () => o.staging?.ledger.remove(staging),
      () => undefined,
    );
    throw e;
  }
  o.staging?.ledger.remove(staging);
  return { snapshotId, targetDb, replaced: existed, ...(notes.length ? { notes } : {}) };
}

/**
 * Settles what restores onto a host that are no longer running left (their ledger entries): a temporary database
 * still being filled is dropped; one that was complete — killed during the swap — becomes the database it was meant to
 * be when that name is free (the old one was already dropped), else it is dropped (the old one is still there).
 * Returns one line per database.
 */
export async function settlePgStaging(ledger: StagingLedger, host: string, exec: Executor, target: PgConnection): Promise<string[]> {
  const q = (sql: string, vars: Record<string, string>) => pgQuery(exec, target, "postgres", sql, vars);
  const exists = async (name: string) => (await q("SELECT 1 FROM pg_database WHERE datname = :'name';\n", { name })).trim() === "1";
  const renamed: string[] = [];
  const { dropped, failed } = await ledger.dropLeft(async (e) => {
    if (e.complete && (await exists(e.database)) && !(await exists(e.into))) {
      await q('ALTER DATABASE :"staging" RENAME TO :"target";\n', { staging: e.database, target: e.into });
      renamed.push(`renamed ${e.engine} database ${e.database} on ${e.host} to ${e.into}: a restore of ${e.restoring} (pid ${e.pid}) had filled it and dropped the old ${e.into} when it stopped`);
      return "renamed";
    }
    await q('DROP DATABASE IF EXISTS :"name" WITH (FORCE);\n', { name: e.database });
    return "dropped";
  }, host);
  return [...dropped, ...renamed, ...failed];
}

/**
 * Restores a MariaDB database from its mysqldump snapshot: `restic dump` streams into the `mariadb` client on the
 * target host. MariaDB cannot rename a database, so with `overwrite` the old one is dropped first; a restore that
 * fails drops the database it was filling, so that no half-restored database is mistaken for a good one.
 */
export async function restoreMariadb(o: MariadbRestoreOptions): Promise<DbRestoreResult> {
  const targetDb = o.targetDb ?? o.db;
  checkName(targetDb);
  const { targetExec: exec, target } = o;
  const snapshotId = await resolveSnapshot(o.restic, o.snapshot, mariadbTags(o.db), o.host);
  const out = await mariadbQuery(exec, target, `SELECT 1 FROM information_schema.schemata WHERE schema_name = ${sqlString(targetDb)};\n`);
  const existed = out.trim() === "1";
  if (existed && !o.overwrite) throw refusal(targetDb, "MariaDB", exec);

  await mariadbQuery(exec, target, (existed ? `DROP DATABASE ${sqlIdent(targetDb)};\n` : "") + `CREATE DATABASE ${sqlIdent(targetDb)} CHARACTER SET utf8mb4;\n`);
  try {
    await pipeDump(o.restic, snapshotId, "/" + mariadbDumpFilename(o.db), exec, mariadbArgv(target, "mariadb", ["--batch", "--", targetDb]), {});
  } catch (e) {
    await mariadbQuery(exec, target, `DROP DATABASE IF EXISTS ${sqlIdent(targetDb)};\n`).catch(() => undefined);
    throw new DcctlError(`${e instanceof Error ? e.message : String(e)}; the incomplete database ${targetDb} was dropped`);
  }
  return { snapshotId, targetDb, replaced: existed };
}

/**
 * `restic dump SNAPSHOT FILE | argv` with argv run by the executor (over SSH: restic's output becomes the remote
 * command's stdin). Whichever side fails first stops the other, so neither waits for ever on a pipe.
 */
async function pipeDump(restic: Restic, snapshotId: string, file: string, exec: Executor, argv: string[], env: Record<string, string>): Promise<void> {
  const pipe = new PassThrough();
  const cmd = exec.stream(argv, { stdin: pipe, env });
  // Its stdout must be read or it stalls; pg_restore and mariadb print nothing there worth keeping.
  cmd.stdout.resume();
  let dumpSettled = false;
  // Set when the consumer failed while restic was still writing: restic's own failure is then only the consequence.
  let stoppedByConsumer = false;
  const consumer = cmd.done.then(
    (c: ExecCompletion) => {
      if (c.code === 0) return;
      stopDump();
      const last = c.stderr.split("\n").map((l) => l.trim()).filter(Boolean).pop() ?? `exit code ${c.code}`;
      throw new DcctlError(`${argv[0] ?? "restore"} on ${exec.target} failed (exit ${c.code}): ${last}`);
    },
    (e: unknown) => {
      stopDump();
      throw e;
    },
  );
  function stopDump(): void {
    if (!dumpSettled) stoppedByConsumer = true;
    // The consumer no longer reads: end restic's dump instead of letting it block on a full pipe.
    pipe.destroy();
  }
  const dumping = restic.dump(snapshotId, file, pipe).then(
    () => void (dumpSettled = true),
    (e: unknown) => {
      dumpSettled = true;
      // Without this, the target command would wait for the rest of its input for ever.
      cmd.kill();
      throw e;
    },
  );
  const [dumped, consumed] = await Promise.allSettled([dumping, consumer]);
  if (dumped.status === "rejected" && consumed.status === "rejected") {
    // Both ends failed; which one caused it cannot always be told from the order the reports arrive in, so say both.
    const [cause, effect] = stoppedByConsumer ? [consumed.reason, dumped.reason] : [dumped.reason, consumed.reason];
    throw new DcctlError(`${errorMessage(cause)} (then: ${errorMessage(effect)})`);
  }
  if (dumped.status === "rejected") throw dumped.reason;
  if (consumed.status === "rejected") throw consumed.reason;
}

/** Whether restic can restore on the target host itself: another host that reaches the repository's URL. */
function restoresOnHost(exec: Executor, restic: Restic, placement: DumpPlacement): boolean {
  return exec.target !== "local" && placement.resticOnHost !== false && reachableFromHosts(restic.repo.url);
}

/** The target host's processors, 2 to 8: pg_restore --jobs for a restore (a restore is what the host is for then). */
async function processors(exec: Executor): Promise<number> {
  const res = await exec.run(["nproc"]).catch(() => undefined);
  const n = Number(res?.code === 0 ? res.stdout.trim() : NaN);
  return Number.isInteger(n) ? Math.min(8, Math.max(2, n)) : 2;
}

/**
 * Makes a private temporary folder on the host (mode 0700, under /var/tmp: a dump can outgrow a RAM-backed /tmp) and
 * keeps it for as long as the SSH channel of this command stays open: its end, however it comes (the work done,
 * dcctl killed, the connection lost; a root login too, which sshd signals nothing), removes the folder. Prints it.
 */
const TEMP_DIR_SCRIPT = `d=$(mktemp -d /var/tmp/dcctl-restore-XXXXXXXX) || exit 1
trap 'rm -rf -- "$d"' EXIT
trap 'exit 1' HUP INT TERM
echo "$d"
while IFS= read -r _; do :; done`;

/** One file of a snapshot restored by restic on the host into such a folder, handed to `use`, then removed. */
async function onHostFile(exec: Executor, restic: Restic, snapshotId: string, file: string, use: (path: string) => Promise<void>): Promise<void> {
  const hold = new PassThrough();
  const holder = exec.stream(["sh", "-c", TEMP_DIR_SCRIPT, "dcctl-restore-temp"], { stdin: hold });
  try {
    const dir = await firstLine(holder.stdout);
    if (!dir.startsWith("/var/tmp/dcctl-restore-")) {
      const c = await holder.done;
      throw new DcctlError(`cannot make a temporary folder on ${exec.target} for the restore: ${c.stderr.trim().split("\n").pop() || `exit ${c.code}`}`);
    }
    await new RemoteRestic(exec, restic).restore(snapshotId, dir, { include: [file] });
    await use(dir + file);
  } finally {
    hold.end();
    await holder.done.catch(() => undefined);
  }
}

/** The first line a stream prints ("" if it ends first); the rest is read and dropped. */
function firstLine(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    let done = false;
    const finish = () => {
      if (!done) resolve(text.split("\n")[0] ?? "");
      done = true;
    };
    stream.on("data", (b: Buffer) => {
      text += b.toString("utf8");
      if (text.includes("\n")) finish();
    });
    stream.once("end", finish);
    stream.once("close", finish);
  });
}

function refusal(db: string, what: string, exec: Executor): RestoreTargetExistsError {
  return new RestoreTargetExistsError(`database ${db} already exists on ${what} at ${exec.target}; not restoring over it without overwrite (--yes)`, db);
}

function checkName(db: string): void {
  if (!db || db.includes("\0") || db.includes("\n")) throw new InputError([`not a usable database name: ${JSON.stringify(db)}`]);
}
