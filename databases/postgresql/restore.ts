import { randomBytes } from "node:crypto";
import { expectOk, type Executor } from "../../hosts/executor.js";
import { InputError } from "../../util/errors.js";
import type { DumpPlacement } from "../dump.js";
import { checkName, onHostFile, pipeDump, processors, refusal, resolveSnapshot, restoresOnHost, type DbRestoreResult, type RestoreCommon } from "../restore.js";
import type { StagingLedger } from "../staging.js";
import { pgArgv, pgDbname, pgEnv, type PgConnection } from "./connection.js";
import { pgDumpFilename, pgTags } from "./dump.js";
import { pgQuery } from "./query.js";

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
