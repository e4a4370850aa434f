import type { EngineConfig, DatabaseEngine } from "../engine.js";
import { hostSettings } from "../engine.js";
import type { ServerEnd } from "../replication.js";
import { stagingLedger } from "../staging.js";
import { PG_DEFAULTS, PG_SETTINGS_SCHEMA, type PgSettings } from "./config.js";
import { pgSnapshotItem, pgTags, postgresSource } from "./dump.js";
import { PG_READ_ONLY_SQL } from "./fence.js";
import { pgQuery } from "./query.js";
import { pgReplicaStatus, promotePg, setupPgReplica } from "./replication.js";
import { DEBIAN_PG_SERVER, type PgReplicationEnd } from "./server.js";
import { restorePostgres, settlePgStaging } from "./restore.js";

type Config = EngineConfig<"postgresql", PgSettings>;

const connection = (config: Config, host: string): PgSettings => hostSettings(config, "postgresql", host);

const replicationEnd = (config: Config, end: ServerEnd): PgReplicationEnd => {
  const conn = connection(config, end.host.name);
  return { ...end, conn, server: { ...DEBIAN_PG_SERVER, ...config.databases.postgresql.server, ...config.databases.hosts[end.host.name]?.postgresql?.server } };
};

export const postgresql: DatabaseEngine<"postgresql", PgSettings> = {
  name: "postgresql",
  label: "PostgreSQL",
  settings: { schema: PG_SETTINGS_SCHEMA, defaults: PG_DEFAULTS },
  tags: pgTags,
  snapshotItem: pgSnapshotItem,
  source: (config, host) => postgresSource(connection(config, host)),
  restore: (config, host, o) => restorePostgres({ ...o, target: connection(config, host), staging: { ledger: stagingLedger(config.stateDir), host } }),
  parallelRestore: "pg_restore --jobs on the target (default: its processors, 2 to 8; 1 streams the dump)",
  settleRestores: (config, host, exec) => settlePgStaging(stagingLedger(config.stateDir), host, exec, connection(config, host)),
  query: (config, host, exec, database, sql) => pgQuery(exec, connection(config, host), database || "postgres", sql),
  serverDatabase: "postgres",
  async drop(config, host, exec, database) {
    await pgQuery(exec, connection(config, host), "postgres", 'DROP DATABASE IF EXISTS :"name" WITH (FORCE);\n', { name: database });
  },
  readOnlySql: PG_READ_ONLY_SQL,
  replicationMethod: "PostgreSQL streaming with a slot",
  setupReplica: (config, primary, standby, account, o) => setupPgReplica(replicationEnd(config, primary), replicationEnd(config, standby), account, o),
  replicaStatus: (config, primary, standby) => pgReplicaStatus(replicationEnd(config, primary), replicationEnd(config, standby)),
  promote: (config, standby) => promotePg(replicationEnd(config, standby)),
};
