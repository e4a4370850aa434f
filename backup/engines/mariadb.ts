import { restoreMariadb } from "../restore-db.js";
import { mariadbQuery, mariadbSource, mariadbTags, sqlIdent, type MariadbSourceOptions } from "../sources/mariadb.js";
import type { BackupConfig } from "../repositories.js";
import type { DbEngineModule } from "./engine.js";

const connection = (config: BackupConfig, host: string): MariadbSourceOptions => ({ ...config.databases.mariadb, ...config.databases.hosts[host]?.mariadb });

export const mariadb: DbEngineModule = {
  name: "mariadb",
  tags: mariadbTags,
  source: (config, host) => mariadbSource(connection(config, host)),
  restore: (config, host, o) => restoreMariadb({ ...o, target: connection(config, host) }),
  query: (config, host, exec, database, sql) => mariadbQuery(exec, connection(config, host), sql, database || undefined),
  async drop(config, host, exec, database) {
    await mariadbQuery(exec, connection(config, host), `DROP DATABASE IF EXISTS ${sqlIdent(database)};\n`);
  },
  readOnlySql: "SET GLOBAL read_only = ON;\n",
};
