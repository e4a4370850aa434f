import { DB_ENGINES, enginesOf, type DbEngine, type DbEngineModule } from "./engine.js";
import { mariadb } from "./mariadb.js";
import { postgresql } from "./postgresql.js";

export { DB_ENGINES, enginesOf, type DbEngine, type DbEngineModule } from "./engine.js";

export const ENGINES: Record<DbEngine, DbEngineModule> = { postgresql, mariadb };

export function isDbEngine(name: string): name is DbEngine {
  return (DB_ENGINES as readonly string[]).includes(name);
}

/** The engine a host's SQL goes to: the first database server it runs (PostgreSQL for a host that names none). */
export function engineOf(services: readonly string[]): DbEngine {
  return enginesOf(services)[0] ?? "postgresql";
}
