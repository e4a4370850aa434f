import { randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import { DcctlError, errorMessage, ExitCode, InputError } from "../util/errors.js";
import { type ExecCompletion, type Executor } from "./exec/index.js";
import type { Restic } from "./restic/index.js";
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
}

export interface PgRestoreOptions extends RestoreCommon {
  /** A role that may create databases (and drop the target, for overwrite). */
  target: PgConnection;
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
}

/** The newest snapshot carrying all these tags (of `host`, when given), or the id given; throws when there is none. */
export async function resolveSnapshot(restic: Restic, snapshot: string, tags: string[], host?: string): Promise<string> {
  if (snapshot !== "latest") return snapshot;
  const snaps = await restic.snapshots({ tags, ...(host ? { host } : {}) });
  const newest = snaps.reduce<(typeof snaps)[number] | undefined>((best, s) => (!best || Date.parse(s.time) > Date.parse(best.time) ? s : best), undefined);
  if (!newest) throw new DcctlError(`no snapshot tagged ${tags.join(", ")}${host ? ` of host ${host}` : ""} in ${restic.repo.url.replace(/\/\/[^@/]*@/, "//")}`);
  return newest.id;
}

/**
 * Restores a PostgreSQL database from its pg_dump snapshot: `restic dump` streams straight into `pg_restore` on the
 * target host (no file anywhere). The dump goes into a fresh staging database that only becomes `targetDb` once
 * pg_restore succeeded, so a failed restore never leaves a half-filled database under the real name, and with
 * `overwrite` the old database is dropped only after its replacement is complete.
 */
export async function restorePostgres(o: PgRestoreOptions): Promise<DbRestoreResult> {
  const targetDb = o.targetDb ?? o.db;
  checkName(targetDb);
  // PostgreSQL would silently cut a longer name, and restore under a name nobody asked for.
  if (Buffer.byteLength(targetDb) > 63) throw new InputError([`PostgreSQL database names are at most 63 bytes: ${targetDb}`]);
  const { targetExec: exec, target } = o;
  const exists = async (name: string) => (await pgQuery(exec, target, "postgres", "SELECT 1 FROM pg_database WHERE datname = :'name';\n", { name })).trim() === "1";
  const existed = await exists(targetDb);
  if (existed && !o.overwrite) throw refusal(targetDb, "PostgreSQL", exec);
  const snapshotId = await resolveSnapshot(o.restic, o.snapshot, pgTags(o.db), o.host);

  // Within PostgreSQL's 63-byte identifier limit whatever the target's name.
  const staging = `dcctl_restore_${randomBytes(6).toString("hex")}`;
  await pgQuery(exec, target, "postgres", 'CREATE DATABASE :"name";\n', { name: staging });
  try {
    // --exit-on-error: the first failing statement fails the restore instead of a warning count at the end.
    const argv = pgArgv(target, "pg_restore", ["--no-owner", ...(o.noPrivileges ? ["--no-privileges"] : []), "--exit-on-error", "-d", pgDbname(staging)]);
    await pipeDump(o.restic, snapshotId, "/" + pgDumpFilename(o.db), exec, argv, pgEnv(target));
    await pgQuery(exec, target, "postgres", (o.overwrite ? 'DROP DATABASE IF EXISTS :"target" WITH (FORCE);\n' : "") + 'ALTER DATABASE :"staging" RENAME TO :"target";\n', {
      target: targetDb,
      staging,
    });
  } catch (e) {
    await pgQuery(exec, target, "postgres", 'DROP DATABASE IF EXISTS :"name" WITH (FORCE);\n', { name: staging }).catch(() => undefined);
    throw e;
  }
  return { snapshotId, targetDb, replaced: existed };
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
  const out = await mariadbQuery(exec, target, `SELECT 1 FROM information_schema.schemata WHERE schema_name = ${sqlString(targetDb)};\n`);
  const existed = out.trim() === "1";
  if (existed && !o.overwrite) throw refusal(targetDb, "MariaDB", exec);
  const snapshotId = await resolveSnapshot(o.restic, o.snapshot, mariadbTags(o.db), o.host);

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

function refusal(db: string, what: string, exec: Executor): RestoreTargetExistsError {
  return new RestoreTargetExistsError(`database ${db} already exists on ${what} at ${exec.target}; not restoring over it without overwrite (--yes)`, db);
}

function checkName(db: string): void {
  if (!db || db.includes("\0") || db.includes("\n")) throw new InputError([`not a usable database name: ${JSON.stringify(db)}`]);
}
