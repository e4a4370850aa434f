import { expectOk, type Executor } from "../../hosts/executor.js";
import { mariadbArgv, type MariadbConnection } from "./connection.js";

/** The server's own schemas; "all" leaves them out (list `mysql` explicitly to back up accounts and grants). */
export const MARIADB_SYSTEM_SCHEMAS = ["information_schema", "performance_schema", "sys", "mysql"];

/** Runs SQL with the mariadb client on the host (SQL on stdin); returns batch output without column names. */
export async function mariadbQuery(exec: Executor, conn: MariadbConnection, sql: string, db?: string): Promise<string> {
  const argv = mariadbArgv(conn, "mariadb", ["--batch", "--skip-column-names", ...(db ? ["--", db] : [])]);
  const res = await exec.run(argv, { stdin: sql });
  return expectOk(res, argv, exec.target).stdout;
}

export async function listMariadbDatabases(exec: Executor, conn: MariadbConnection): Promise<string[]> {
  const out = await mariadbQuery(exec, conn, "SELECT schema_name FROM information_schema.schemata ORDER BY schema_name;\n");
  return out.split("\n").filter((l) => l !== "");
}
