import type { ServerEnd } from "../replication.js";

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

/** A host's MariaDB as replication sees it: how dcctl logs in for SQL (an admin account). */
export type MariadbReplicationEnd = ServerEnd & { conn: MariadbConnection };

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

/** A SQL string literal (backslash and quote escaped, as MariaDB reads them by default). */
export function sqlString(s: string): string {
  return `'${s.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
}

/** A SQL identifier in backquotes. */
export function sqlIdent(s: string): string {
  return "`" + s.replace(/`/g, "``") + "`";
}
