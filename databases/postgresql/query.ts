import { expectOk, type Executor } from "../../hosts/executor.js";
import { pgArgv, pgDbname, pgEnv, type PgConnection } from "./connection.js";

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
