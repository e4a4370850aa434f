import { DcctlError } from "../../util/errors.js";
import { checkName, pipeDump, refusal, resolveSnapshot, type DbRestoreResult, type RestoreCommon } from "../restore.js";
import { mariadbArgv, sqlIdent, sqlString, type MariadbConnection } from "./connection.js";
import { mariadbDumpFilename, mariadbTags } from "./dump.js";
import { mariadbQuery } from "./query.js";

export interface MariadbRestoreOptions extends RestoreCommon {
  target: MariadbConnection;
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
