import { restorePostgres, settlePgStaging } from "../restore.js";
import { stagingLedger } from "../staging.js";
import { DEBIAN_PG_SERVER, pgReplicaStatus, promotePg, setupPgReplica, type PgReplicationEnd } from "./replication.js";
import type { ServerEnd } from "../replication.js";
import { pgQuery, pgTags, postgresSource, type PostgresSourceOptions } from "./dump.js";
import type { BackupConfig } from "../../backup/repositories.js";
import type { DbEngineModule } from "../engine.js";

const connection = (config: BackupConfig, host: string): PostgresSourceOptions => ({ ...config.databases.postgresql, ...config.databases.hosts[host]?.postgresql });

const replicationEnd = (config: BackupConfig, end: ServerEnd): PgReplicationEnd => {
  const conn = connection(config, end.host.name);
  return { ...end, conn, server: { ...DEBIAN_PG_SERVER, ...config.databases.postgresql.server, ...config.databases.hosts[end.host.name]?.postgresql?.server } };
};

export const postgresql: DbEngineModule = {
  name: "postgresql",
  tags: pgTags,
  source: (config, host) => postgresSource(connection(config, host)),
  restore: (config, host, o) => restorePostgres({ ...o, target: connection(config, host), staging: { ledger: stagingLedger(config.stateDir), host } }),
  query: (config, host, exec, database, sql) => pgQuery(exec, connection(config, host), database || "postgres", sql),
  async drop(config, host, exec, database) {
    await pgQuery(exec, connection(config, host), "postgres", 'DROP DATABASE IF EXISTS :"name" WITH (FORCE);\n', { name: database });
  },
  settleRestores: (config, host, exec) => settlePgStaging(stagingLedger(config.stateDir), host, exec, connection(config, host)),
  readOnlySql: "ALTER SYSTEM SET default_transaction_read_only = on;\nSELECT pg_reload_conf();\n",
  setupReplica: (config, primary, standby, account, o) => setupPgReplica(replicationEnd(config, primary), replicationEnd(config, standby), account, o),
  replicaStatus: (config, primary, standby) => pgReplicaStatus(replicationEnd(config, primary), replicationEnd(config, standby)),
  promote: (config, standby) => promotePg(replicationEnd(config, standby)),
};
