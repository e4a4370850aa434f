import { DcctlError, InputError } from "../../util/errors.js";
import { expectOk, type Executor } from "../../hosts/index.js";
import type { BackupSummary, Restic } from "../restic/index.js";
import { dumpIntoRestic, type DumpPlacement } from "./dump.js";
import type { DataSource, SourceBackupOptions, SourceItem } from "./source.js";

/** How dcctl reaches a PostgreSQL server from the host it runs on (always over TCP, usually loopback). */
export interface PgConnection {
  /** Default 127.0.0.1. */
  host?: string;
  port: number;
  user: string;
  /**
   * A libpq password file on the host (PGPASSFILE), owned by the SSH login user with mode 0600. Without it libpq
   * uses ~/.pgpass or trust. The password itself never appears on a command line.
   */
  passFile?: string;
  /** Where the client programs are on the host (e.g. /usr/lib/postgresql/15/bin); default: the host's PATH. */
  binDir?: string;
}

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

/** The argument vector of a PostgreSQL client program, with the connection flags. */
export function pgArgv(conn: PgConnection, program: string, args: string[]): string[] {
  const bin = conn.binDir ? `${conn.binDir.replace(/\/+$/, "")}/${program}` : program;
  // --no-password: a missing password must fail at once, never wait for a prompt on a terminal no one watches.
  return [bin, "--no-password", "-h", conn.host ?? "127.0.0.1", "-p", String(conn.port), "-U", conn.user, ...args];
}

/** The environment of a PostgreSQL client: the password file's path (not a secret) and nothing else. */
export function pgEnv(conn: PgConnection): Record<string, string> {
  return conn.passFile ? { PGPASSFILE: conn.passFile } : {};
}

/**
 * The -d argument naming a database. libpq reads a -d value containing "=" or starting with "postgresql://" as a
 * connection string, so a database name always goes in as `dbname='…'` (quoted the way conninfo quotes).
 */
export function pgDbname(db: string): string {
  return `dbname='${db.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/**
 * Runs SQL with psql on the host; `vars` become psql variables (:'name' in the SQL), so values are quoted by psql.
 * `timeoutMs` bounds it all, reaching the host included (a probe of a lost site).
 */
export async function pgQuery(exec: Executor, conn: PgConnection, db: string, sql: string, vars: Record<string, string> = {}, timeoutMs?: number): Promise<string> {
  const args = ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", pgDbname(db)];
  for (const [k, v] of Object.entries(vars)) args.push("-v", `${k}=${v}`);
  // SQL goes on stdin: psql interpolates variables there but not in -c.
  const argv = pgArgv(conn, "psql", args);
  const res = await exec.run(argv, { stdin: sql, env: pgEnv(conn), ...(timeoutMs === undefined ? {} : { timeoutMs }) });
  return expectOk(res, argv, exec.target).stdout;
}

/** The databases of a server that can be dumped: not templates, and accepting connections. */
export async function listPgDatabases(exec: Executor, conn: PgConnection): Promise<string[]> {
  const out = await pgQuery(exec, conn, "postgres", "SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY datname;\n");
  return out.split("\n").filter((l) => l !== "");
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
export function postgresSource(opts: PostgresSourceOptions): DataSource {
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) throw new InputError([`PostgreSQL port must be 1-65535, not ${opts.port}`]);
  if (!opts.user) throw new InputError(["PostgreSQL user is required"]);
  const item = (db: string): SourceItem => ({ kind: "postgresql", name: `postgresql/${db}`, tags: db === PG_GLOBALS ? ["source:postgresql", "pg:globals"] : pgTags(db) });

  return {
    kind: "postgresql",

    async items(exec: Executor): Promise<SourceItem[]> {
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

    async backup(exec: Executor, restic: Restic, it: SourceItem, bo: SourceBackupOptions): Promise<BackupSummary> {
      const db = it.name.replace(/^postgresql\//, "");
      const argv =
        db === PG_GLOBALS
          ? pgArgv(opts, "pg_dumpall", ["--globals-only", ...(opts.globals === "without-role-passwords" ? ["--no-role-passwords"] : []), "-l", "postgres"])
          : pgArgv(opts, "pg_dump", PG_DUMP_FORMAT.concat(["-d", pgDbname(db)]));
      return dumpIntoRestic(exec, restic, argv, pgEnv(opts), opts, { filename: pgDumpFilename(db), host: bo.host, tags: [...bo.tags, ...it.tags], onProgress: bo.onProgress });
    },
  };
}
