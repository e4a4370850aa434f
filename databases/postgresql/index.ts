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
import { pgArchiveCron, pgArchiveStatus, pgBaseBackup, recoverPg, setupPgArchive, stopPgArchive, type PgArchiveEnd } from "./pitr.js";
import type { ArchivedServer } from "../pitr.js";

type Config = EngineConfig<"postgresql", PgSettings>;

const connection = (config: Config, host: string): PgSettings => hostSettings(config, "postgresql", host);

const replicationEnd = (config: Config, end: ServerEnd): PgReplicationEnd => {
  const conn = connection(config, end.host.name);
  return { ...end, conn, server: { ...DEBIAN_PG_SERVER, ...config.databases.postgresql.server, ...config.databases.hosts[end.host.name]?.postgresql?.server } };
};

const archiveEnd = (config: Config, server: ArchivedServer): PgArchiveEnd => {
  const { conn, server: control } = replicationEnd(config, server);
  return { ...server, conn, server: control };
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
  pitr: {
    method: "Barman: WAL streamed as written (pg_receivewal, a slot per site), base backups with pg_basebackup",
    scratchPort: 5433,
    setup: (config, home, servers) => setupPgArchive(home, servers.map((s) => archiveEnd(config, s))),
    baseBackup: (config, home, server) => pgBaseBackup(home, archiveEnd(config, server)),
    status: (config, home, server) => pgArchiveStatus(home, archiveEnd(config, server)),
    recover: (config, home, server, o) => recoverPg(home, archiveEnd(config, server), archiveEnd(config, { host: o.onto, exec: o.ontoExec, recoveryWindowDays: server.recoveryWindowDays }), o),
    queryRecovered: (config, onto, exec, at, database, sql) => pgQuery(exec, { ...connection(config, onto), host: at.address, port: at.port }, database || "postgres", sql),
    maintain: (_config, home) => pgArchiveCron(home),
    stop: (config, home, servers, dropSlot) => stopPgArchive(home, servers.map((s) => archiveEnd(config, s)), dropSlot),
  },
};
