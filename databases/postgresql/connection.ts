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
