import type { Executor } from "../../hosts/index.js";
import type { BackupConfig } from "../repositories.js";
import type { DbRestoreResult, RestoreCommon } from "../restore-db.js";
import type { ReplicaSetupOptions, ReplicaSetupResult, ReplicaStatus, ReplicationAccount, ServerEnd } from "../replication/types.js";
import type { DataSource } from "../sources/source.js";

/** The database servers dcctl backs up, restores and (DR) fences: named as a host's `services` name them. */
export const DB_ENGINES = ["postgresql", "mariadb"] as const;
export type DbEngine = (typeof DB_ENGINES)[number];

/** The database engines among a host's services, in DB_ENGINES order. */
export function enginesOf(services: readonly string[]): DbEngine[] {
  return DB_ENGINES.filter((e) => services.includes(e));
}

/**
 * Everything dcctl does to one kind of database server, behind one interface and chosen once from the host's
 * service: dump (as a backup source), restore, queries, drop, fence, and continuous replication to a standby (set
 * up, lag, promote). Connection settings always come from the backup config, the engine's defaults overridden by the
 * host's own (`databases.hosts.<host>.<engine>`).
 */
export interface DbEngineModule {
  readonly name: DbEngine;
  /** The snapshot tags that mark one database's dump. */
  tags(db: string): string[];
  /** The backup source: each database a snapshot of its own. */
  source(config: BackupConfig, host: string): DataSource;
  /** Restores one database's dump from a snapshot into the host's server, over `o.targetExec`. */
  restore(config: BackupConfig, host: string, o: RestoreCommon): Promise<DbRestoreResult>;
  /** Runs SQL on the host's server; `database` "" means the server's own (postgres / none). */
  query(config: BackupConfig, host: string, exec: Executor, database: string, sql: string): Promise<string>;
  /** Removes a database if it is there (a drill's scratch copy). */
  drop(config: BackupConfig, host: string, exec: Executor, database: string): Promise<void>;
  /** Settles the temporary databases restores onto the host left when they died (backup/restore-staging.ts); a line each. */
  settleRestores(config: BackupConfig, host: string, exec: Executor): Promise<string[]>;
  /** SQL that makes the server refuse writes while its data stays readable (a failover's fence). */
  readonly readOnlySql: string;
  /** Makes `standby` a replica of `primary`, seeded from it; keeps one that already is. */
  setupReplica(config: BackupConfig, primary: ServerEnd, standby: ServerEnd, account: ReplicationAccount, o: ReplicaSetupOptions): Promise<ReplicaSetupResult>;
  /** How far `standby` is behind `primary`; a primary that does not answer within seconds is noted, not waited for. */
  replicaStatus(config: BackupConfig, primary: ServerEnd, standby: ServerEnd): Promise<ReplicaStatus>;
  /** Makes a replica a writable primary; one that is not a replica needs nothing (a note says so). */
  promote(config: BackupConfig, standby: ServerEnd): Promise<string[]>;
}
