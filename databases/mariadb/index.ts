import { restoreMariadb } from "../restore.js";
import { mariadbReplicaStatus, promoteMariadb, setupMariadbReplica, type MariadbReplicationEnd } from "./replication.js";
import type { ServerEnd } from "../replication.js";
import { mariadbQuery, mariadbSource, mariadbTags, sqlIdent, type MariadbSourceOptions } from "./dump.js";
import type { BackupConfig } from "../../backup/repositories.js";
import type { DbEngineModule } from "../engine.js";

const connection = (config: BackupConfig, host: string): MariadbSourceOptions => ({ ...config.databases.mariadb, ...config.databases.hosts[host]?.mariadb });

const replicationEnd = (config: BackupConfig, end: ServerEnd): MariadbReplicationEnd => ({ ...end, conn: connection(config, end.host.name) });

export const mariadb: DbEngineModule = {
  name: "mariadb",
  tags: mariadbTags,
  source: (config, host) => mariadbSource(connection(config, host)),
  restore: (config, host, o) => restoreMariadb({ ...o, target: connection(config, host) }),
  query: (config, host, exec, database, sql) => mariadbQuery(exec, connection(config, host), sql, database || undefined),
  // A MariaDB restore fills the database under its real name (MariaDB cannot rename one): it names no temporary one.
  settleRestores: async () => [],
  async drop(config, host, exec, database) {
    await mariadbQuery(exec, connection(config, host), `DROP DATABASE IF EXISTS ${sqlIdent(database)};\n`);
  },
  readOnlySql: "SET GLOBAL read_only = ON;\n",
  setupReplica: (config, primary, standby, account, o) => setupMariadbReplica(replicationEnd(config, primary), replicationEnd(config, standby), account, o),
  replicaStatus: (config, primary, standby) => mariadbReplicaStatus(replicationEnd(config, primary), replicationEnd(config, standby)),
  promote: (config, standby) => promoteMariadb(replicationEnd(config, standby)),
};
