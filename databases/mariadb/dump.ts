import { DcctlError, InputError } from "../../util/errors.js";
import type { Executor } from "../../hosts/executor.js";
import type { BackupSummary, Restic } from "../../restic/index.js";
import { dumpIntoRestic, type DumpItem, type DumpOptions, type DumpPlacement, type DumpSource } from "../dump.js";
import { mariadbArgv, type MariadbConnection } from "./connection.js";
import { listMariadbDatabases, MARIADB_SYSTEM_SCHEMAS } from "./query.js";

export interface MariadbSourceOptions extends MariadbConnection, DumpPlacement {
  /** Which databases to back up; default "all" (every one but the server's own schemas). */
  databases?: string[] | "all";
  /** Databases to leave out of "all". */
  exclude?: string[];
}

export function mariadbDumpFilename(db: string): string {
  return `mariadb/${db}.sql`;
}

export function mariadbTags(db: string): string[] {
  return ["source:mariadb", `db:${db}`];
}

/** The job item a snapshot of this source belongs to, from its tags. */
export function mariadbSnapshotItem(tags: readonly string[]): string | undefined {
  const db = tags.find((t) => t.startsWith("db:"))?.slice(3);
  return db !== undefined ? `mariadb/${db}` : undefined;
}

/**
 * MariaDB/MySQL databases, one snapshot each (mysqldump SQL, one consistent transaction for InnoDB tables).
 * The dump names no database (no --databases): it holds no CREATE DATABASE or USE, so it can be restored under
 * another name, which a DR drill needs, without writing into the original.
 */
export function mariadbSource(opts: MariadbSourceOptions): DumpSource<"mariadb"> {
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) throw new InputError([`MariaDB port must be 1-65535, not ${opts.port}`]);
  const item = (db: string): DumpItem<"mariadb"> => ({ kind: "mariadb", name: `mariadb/${db}`, tags: mariadbTags(db) });

  return {
    kind: "mariadb" as const,

    async items(exec: Executor): Promise<DumpItem<"mariadb">[]> {
      const present = await listMariadbDatabases(exec, opts);
      if (opts.databases === undefined || opts.databases === "all") {
        const skip = new Set([...MARIADB_SYSTEM_SCHEMAS, ...(opts.exclude ?? [])]);
        return present.filter((d) => !skip.has(d)).map(item);
      }
      const missing = opts.databases.filter((d) => !present.includes(d));
      if (missing.length) throw new DcctlError(`MariaDB on ${exec.target} port ${opts.port} has no database ${missing.map((d) => `"${d}"`).join(", ")}`);
      return opts.databases.map(item);
    },

    async backup(exec: Executor, restic: Restic, it: DumpItem, bo: DumpOptions): Promise<BackupSummary> {
      const db = it.name.replace(/^mariadb\//, "");
      const argv = mariadbArgv(opts, "mysqldump", [
        "--single-transaction",
        "--routines",
        "--triggers",
        "--events",
        // Binary columns as hex literals: the SQL file stays valid text whatever the blobs hold.
        "--hex-blob",
        "--",
        db,
      ]);
      return dumpIntoRestic(exec, restic, argv, {}, opts, { filename: mariadbDumpFilename(db), host: bo.host, tags: [...bo.tags, ...it.tags], onProgress: bo.onProgress });
    },
  };
}
