import { DB_ENGINES, enginesOf, type DbEngine, type DbEngineModule } from "./engine.js";
import { mariadb } from "./mariadb/index.js";
import { postgresql } from "./postgresql/index.js";

export { DB_ENGINES, enginesOf, type DbEngine, type DbEngineModule } from "./engine.js";

export const ENGINES: Record<DbEngine, DbEngineModule> = { postgresql, mariadb };

export function isDbEngine(name: string): name is DbEngine {
  return (DB_ENGINES as readonly string[]).includes(name);
}

/**
 * The engine a host's SQL goes to: the first database server it runs (PostgreSQL for a host that names none). A host
 * running both (a restore-test server) is told apart by `among`: the services a runbook step's targets name.
 */
export function engineOf(services: readonly string[], among?: readonly string[]): DbEngine {
  const runs = enginesOf(services);
  return runs.find((e) => among?.includes(e)) ?? runs[0] ?? "postgresql";
}
