import { DcctlError, InputError } from "../../util/errors.js";
import type { Executor } from "../../hosts/executor.js";
import type { BackupSummary, Restic } from "../../restic/index.js";
import { dumpIntoRestic, type DumpItem, type DumpOptions, type DumpPlacement, type DumpSource } from "../dump.js";
import { pgArgv, pgDbname, pgEnv, type PgConnection } from "./connection.js";
import { listPgDatabases } from "./query.js";

export interface PostgresSourceOptions extends PgConnection, DumpPlacement {
  /** Which databases to back up; default "all" (every database that accepts connections, templates excluded). */
  databases?: string[] | "all";
  /** Databases to leave out of "all". */
  exclude?: string[];
  /**
   * Also back up roles and tablespaces (pg_dumpall --globals-only), default true. "without-role-passwords" works for a
   * backup role that is not a superuser (it cannot read pg_authid), at the price of restoring roles without passwords.
   */
  globals?: boolean | "without-role-passwords";
}

export const PG_GLOBALS = "_globals";

/** The file a database's dump is stored under in its snapshot (restored as `/<this>`). */
export function pgDumpFilename(db: string): string {
  return db === PG_GLOBALS ? "postgresql/_globals.sql" : `postgresql/${db}.dump`;
}

/** The tags that mark a snapshot as one database's dump; restore looks for the newest snapshot carrying them. */
export function pgTags(db: string): string[] {
  return ["source:postgresql", `db:${db}`];
}

/** The job item a snapshot of this source belongs to, from its tags. */
export function pgSnapshotItem(tags: readonly string[]): string | undefined {
  const db = tags.find((t) => t.startsWith("db:"))?.slice(3);
  return tags.includes("pg:globals") ? `postgresql/${PG_GLOBALS}` : db !== undefined ? `postgresql/${db}` : undefined;
}

/**
 * pg_dump's archive: the custom format (what pg_restore --jobs reads, and --list), uncompressed. pg_dump's own zlib
 * runs in one thread on the database host and was the whole backup's bottleneck (1.15 GB portal: 178 MiB in ~22 s,
 * against 959 MiB in ~7 s at -Z0, see bench/db-backup.ts); restic compresses instead (zstd, in parallel) to about
 * the same stored size, deduplicates the tables that did not change between two dumps, which a compressed stream
 * defeats, and pg_restore has nothing to inflate.
 */
export const PG_DUMP_FORMAT: readonly string[] = ["-Fc", "-Z0"];

/** PostgreSQL databases, one snapshot each (pg_dump custom format), plus one for the roles and tablespaces. */
export function postgresSource(opts: PostgresSourceOptions): DumpSource<"postgresql"> {
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) throw new InputError([`PostgreSQL port must be 1-65535, not ${opts.port}`]);
  if (!opts.user) throw new InputError(["PostgreSQL user is required"]);
  const item = (db: string): DumpItem<"postgresql"> => ({ kind: "postgresql", name: `postgresql/${db}`, tags: db === PG_GLOBALS ? ["source:postgresql", "pg:globals"] : pgTags(db) });

  return {
    kind: "postgresql" as const,

    async items(exec: Executor): Promise<DumpItem<"postgresql">[]> {
      const present = await listPgDatabases(exec, opts);
      let dbs: string[];
      if (opts.databases === undefined || opts.databases === "all") {
        const skip = new Set(opts.exclude ?? []);
        dbs = present.filter((d) => !skip.has(d));
      } else {
        // A database the job names but the server lacks is an error, not a silent gap in the backups.
        const missing = opts.databases.filter((d) => !present.includes(d));
        if (missing.length) throw new DcctlError(`PostgreSQL on ${exec.target} port ${opts.port} has no database ${missing.map((d) => `"${d}"`).join(", ")}`);
        dbs = [...opts.databases];
      }
      if (dbs.includes(PG_GLOBALS)) throw new DcctlError(`a database named "${PG_GLOBALS}" clashes with the item for roles and tablespaces`);
      const items = dbs.map(item);
      if (opts.globals !== false) items.push(item(PG_GLOBALS));
      return items;
    },

    async backup(exec: Executor, restic: Restic, it: DumpItem, bo: DumpOptions): Promise<BackupSummary> {
      const db = it.name.replace(/^postgresql\//, "");
      const argv =
        db === PG_GLOBALS
          ? pgArgv(opts, "pg_dumpall", ["--globals-only", ...(opts.globals === "without-role-passwords" ? ["--no-role-passwords"] : []), "-l", "postgres"])
          : pgArgv(opts, "pg_dump", PG_DUMP_FORMAT.concat(["-d", pgDbname(db)]));
      return dumpIntoRestic(exec, restic, argv, pgEnv(opts), opts, { filename: pgDumpFilename(db), host: bo.host, tags: [...bo.tags, ...it.tags], onProgress: bo.onProgress });
    },
  };
}
