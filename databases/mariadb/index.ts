import type { EngineConfig, DatabaseEngine } from "../engine.js";
import { hostSettings } from "../engine.js";
import type { ServerEnd } from "../replication.js";
import { MARIADB_DEFAULTS, MARIADB_SETTINGS_SCHEMA, type MariadbSettings } from "./config.js";
import { sqlIdent, type MariadbReplicationEnd } from "./connection.js";
import { mariadbSnapshotItem, mariadbSource, mariadbTags } from "./dump.js";
import { MARIADB_READ_ONLY_SQL } from "./fence.js";
import { mariadbQuery } from "./query.js";
import { mariadbReplicaStatus, promoteMariadb, setupMariadbReplica } from "./replication.js";
import { restoreMariadb } from "./restore.js";
import { maintainMariadbArchive, mariadbArchiveStatus, mariadbBaseBackup, recoverMariadb, setupMariadbArchive, stopMariadbArchive, type MariadbArchiveEnd } from "./pitr.js";
import type { ArchivedServer } from "../pitr.js";

type Config = EngineConfig<"mariadb", MariadbSettings>;

const connection = (config: Config, host: string): MariadbSettings => hostSettings(config, "mariadb", host);

const archiveEnd = (config: Config, server: ArchivedServer): MariadbArchiveEnd => ({ ...server, conn: connection(config, server.host.name) });

const replicationEnd = (config: Config, end: ServerEnd): MariadbReplicationEnd => ({ ...end, conn: connection(config, end.host.name) });

export const mariadb: DatabaseEngine<"mariadb", MariadbSettings> = {
  name: "mariadb",
  label: "MariaDB",
  settings: { schema: MARIADB_SETTINGS_SCHEMA, defaults: MARIADB_DEFAULTS },
  tags: mariadbTags,
  snapshotItem: mariadbSnapshotItem,
  source: (config, host) => mariadbSource(connection(config, host)),
  restore: (config, host, o) => restoreMariadb({ ...o, target: connection(config, host) }),
  // A MariaDB restore fills the database under its real name (MariaDB cannot rename one): it names no temporary one.
  settleRestores: async () => [],
  query: (config, host, exec, database, sql) => mariadbQuery(exec, connection(config, host), sql, database || undefined),
  serverDatabase: "",
  async drop(config, host, exec, database) {
    await mariadbQuery(exec, connection(config, host), `DROP DATABASE IF EXISTS ${sqlIdent(database)};\n`);
  },
  readOnlySql: MARIADB_READ_ONLY_SQL,
  replicationMethod: "MariaDB GTID",
  setupReplica: (config, primary, standby, account, o) => setupMariadbReplica(replicationEnd(config, primary), replicationEnd(config, standby), account, o),
  replicaStatus: (config, primary, standby) => mariadbReplicaStatus(replicationEnd(config, primary), replicationEnd(config, standby)),
  promote: (config, standby) => promoteMariadb(replicationEnd(config, standby)),
  pitr: {
    method: "the binary log copied as written (mariadb-binlog --read-from-remote-server), base backups with mariadb-backup",
    scratchPort: 3307,
    setup: (config, home, servers) => setupMariadbArchive(home, servers.map((s) => archiveEnd(config, s))),
    baseBackup: (config, home, server) => mariadbBaseBackup(home, archiveEnd(config, server)),
    status: (config, home, server) => mariadbArchiveStatus(home, archiveEnd(config, server)),
    recover: (config, home, server, o) => recoverMariadb(home, archiveEnd(config, server), archiveEnd(config, { host: o.onto, exec: o.ontoExec, recoveryWindowDays: server.recoveryWindowDays }), o),
    queryRecovered: (config, onto, exec, at, database, sql) => mariadbQuery(exec, { ...connection(config, onto), host: at.address, port: at.port }, sql, database || undefined),
    maintain: (_config, home) => maintainMariadbArchive(home),
    stop: (config, home, servers, dropSlot) => stopMariadbArchive(home, servers.map((s) => archiveEnd(config, s)), dropSlot),
  },
};
