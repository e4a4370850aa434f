import { DcctlError, InputError } from "../../util/errors.js";
import { expectOk, type Executor } from "../../hosts/index.js";
import type { BackupSummary, Restic } from "../restic/index.js";
import { dumpIntoRestic, type DumpPlacement } from "./dump.js";
import type { DataSource, SourceBackupOptions, SourceItem } from "./source.js";

/** How dcctl reaches a MariaDB/MySQL server from the host it runs on (over TCP, usually loopback). */
export interface MariadbConnection {
  /** Default 127.0.0.1. */
  host?: string;
  port: number;
  /** The account; may instead come from the defaults file's [client] section. */
  user?: string;
  /**
   * A client option file on the host (`[client]` with user= and password=), passed as --defaults-extra-file. It is
   * how the password reaches mysqldump: never as -p<password> on a command line, where `ps` would show it.
   */
  defaultsFile?: string;
  /** Where the client programs are on the host; default: the host's PATH. */
  binDir?: string;
}

export interface MariadbSourceOptions extends MariadbConnection, DumpPlacement {
  /** Which databases to back up; default "all" (every one but the server's own schemas). */
  databases?: string[] | "all";
  /** Databases to leave out of "all". */
  exclude?: string[];
}

/** The server's own schemas; "all" leaves them out (list `mysql` explicitly to back up accounts and grants). */
export const MARIADB_SYSTEM_SCHEMAS = ["information_schema", "performance_schema", "sys", "mysql"];

export function mariadbDumpFilename(db: string): string {
  return `mariadb/${db}.sql`;
}

export function mariadbTags(db: string): string[] {
  return ["source:mariadb", `db:${db}`];
}

/** The argument vector of a MariaDB client program with the connection flags; --defaults-extra-file must come first. */
export function mariadbArgv(conn: MariadbConnection, program: string, args: string[]): string[] {
  const bin = conn.binDir ? `${conn.binDir.replace(/\/+$/, "")}/${program}` : program;
  return [
    bin,
    ...(conn.defaultsFile ? [`--defaults-extra-file=${conn.defaultsFile}`] : []),
    "--protocol=TCP",
    `--host=${conn.host ?? "127.0.0.1"}`,
    `--port=${conn.port}`,
    ...(conn.user ? [`--user=${conn.user}`] : []),
    // Vietnamese names survive only if every hop speaks 4-byte UTF-8.
    "--default-character-set=utf8mb4",
    ...args,
  ];
}

/** Runs SQL with the mariadb client on the host (SQL on stdin); returns batch output without column names. */
export async function mariadbQuery(exec: Executor, conn: MariadbConnection, sql: string, db?: string): Promise<string> {
  const argv = mariadbArgv(conn, "mariadb", ["--batch", "--skip-column-names", ...(db ? ["--", db] : [])]);
  const res = await exec.run(argv, { stdin: sql });
  return expectOk(res, argv, exec.target).stdout;
}

/** A SQL string literal (backslash and quote escaped, as MariaDB reads them by default). */
export function sqlString(s: string): string {
  return `'${s.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
}

/** A SQL identifier in backquotes. */
export function sqlIdent(s: string): string {
  return "`" + s.replace(/`/g, "``") + "`";
}

export async function listMariadbDatabases(exec: Executor, conn: MariadbConnection): Promise<string[]> {
  const out = await mariadbQuery(exec, conn, "SELECT schema_name FROM information_schema.schemata ORDER BY schema_name;\n");
  return out.split("\n").filter((l) => l !== "");
}

/**
 * MariaDB/MySQL databases, one snapshot each (mysqldump SQL, one consistent transaction for InnoDB tables).
 * The dump names no database (no --databases): it holds no CREATE DATABASE or USE, so it can be restored under
 * another name, which a DR drill needs, without writing into the original.
 */
export function mariadbSource(opts: MariadbSourceOptions): DataSource {
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) throw new InputError([`MariaDB port must be 1-65535, not ${opts.port}`]);
  const item = (db: string): SourceItem => ({ kind: "mariadb", name: `mariadb/${db}`, tags: mariadbTags(db) });

  return {
    kind: "mariadb",

    async items(exec: Executor): Promise<SourceItem[]> {
      const present = await listMariadbDatabases(exec, opts);
      if (opts.databases === undefined || opts.databases === "all") {
        const skip = new Set([...MARIADB_SYSTEM_SCHEMAS, ...(opts.exclude ?? [])]);
        return present.filter((d) => !skip.has(d)).map(item);
      }
      const missing = opts.databases.filter((d) => !present.includes(d));
      if (missing.length) throw new DcctlError(`MariaDB on ${exec.target} port ${opts.port} has no database ${missing.map((d) => `"${d}"`).join(", ")}`);
      return opts.databases.map(item);
    },

    async backup(exec: Executor, restic: Restic, it: SourceItem, bo: SourceBackupOptions): Promise<BackupSummary> {
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
