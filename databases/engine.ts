import type { Executor } from "../hosts/executor.js";
import type { DumpSource } from "./dump.js";
import type { ReplicaSetupOptions, ReplicaSetupResult, ReplicaStatus, ReplicationAccount, ServerEnd } from "./replication.js";
import type { ArchiveHome, ArchiveStatus, ArchivedServer, RecoverOptions, RecoverResult } from "./pitr.js";
import type { DbRestoreResult, RestoreCommon } from "./restore.js";

/**
 * The part of the repositories file an engine reads: its settings (`databases.<engine>`), a host's differences from
 * them (`databases.hosts.<host>.<engine>`) and the state folder. The backup config is one.
 */
export interface EngineConfig<N extends string, S> {
  databases: Record<N, S> & { hosts: Record<string, Partial<Record<N, Partial<S>>>> };
  stateDir: string;
}

/** An engine's settings for one host: the engine's own, overridden by the host's. */
export function hostSettings<N extends string, S>(config: EngineConfig<N, S>, name: N, host: string): S {
  return { ...config.databases[name], ...config.databases.hosts[host]?.[name] };
}

/**
 * Everything dcctl does to one kind of database server, behind one interface and chosen from the host's services:
 * dump (as a backup source), restore, queries, drop, fence, and continuous replication to a standby (set up, lag,
 * promote, rewind or re-seed of a former primary, with what it held past the fork kept first). `N` is the name a
 * host's `services`, a policy's source `kind`, the snapshot tags and the repositories file know it by; `S` its
 * settings there. Connection settings always come from the config, the engine's defaults overridden by the host's.
 */
export interface DatabaseEngine<N extends string = string, S = unknown> {
  readonly name: N;
  /** How the engine is named in sentences ("PostgreSQL"). */
  readonly label: string;

  /** Its part of the repositories file: the JSON schema of `databases.<name>` (and a host's), and its defaults. */
  readonly settings: { schema: object; defaults: S };

  /** The snapshot tags that mark one database's dump. */
  tags(db: string): string[];
  /** The job item a snapshot carrying this engine's `source:` tag belongs to ("<name>/<db>"), from its tags. */
  snapshotItem(tags: readonly string[]): string | undefined;
  /** The backup source: each database a snapshot of its own. */
  source(config: EngineConfig<N, S>, host: string): DumpSource<N>;

  /** Restores one database's dump from a snapshot into the host's server, over `o.targetExec`. */
  restore(config: EngineConfig<N, S>, host: string, o: RestoreCommon): Promise<DbRestoreResult>;
  /** What `restore --jobs` does for this engine, when it restores in parallel (the option's help); else absent. */
  readonly parallelRestore?: string;
  /** Settles the temporary databases restores onto the host left when they died (databases/staging.ts); a line each. */
  settleRestores(config: EngineConfig<N, S>, host: string, exec: Executor): Promise<string[]>;

  /** Runs SQL on the host's server; `database` "" means the server's own (`serverDatabase`). */
  query(config: EngineConfig<N, S>, host: string, exec: Executor, database: string, sql: string): Promise<string>;
  /** The database server-wide statements (a fence) are run in: the engine's own, or "" for none. */
  readonly serverDatabase: string;
  /** Removes a database if it is there (a drill's scratch copy). */
  drop(config: EngineConfig<N, S>, host: string, exec: Executor, database: string): Promise<void>;
  /** SQL that makes the server refuse writes while its data stays readable (a failover's fence). */
  readonly readOnlySql: string;

  /** How it replicates to a standby, in a few words ("PostgreSQL streaming with a slot"). */
  readonly replicationMethod: string;
  /** Makes `standby` a replica of `primary`, seeded from it; keeps one that already is; winds back a former primary. */
  setupReplica(config: EngineConfig<N, S>, primary: ServerEnd, standby: ServerEnd, account: ReplicationAccount, o: ReplicaSetupOptions): Promise<ReplicaSetupResult>;
  /** How far `standby` is behind `primary`; a primary that does not answer within seconds is noted, not waited for. */
  replicaStatus(config: EngineConfig<N, S>, primary: ServerEnd, standby: ServerEnd): Promise<ReplicaStatus>;
  /** Makes a replica a writable primary; one that is not a replica needs nothing (a note says so). */
  promote(config: EngineConfig<N, S>, standby: ServerEnd): Promise<string[]>;

  /** Continuous archiving for point-in-time recovery, where the engine has it (databases/pitr.ts). */
  readonly pitr?: PointInTimeArchive<N, S>;
}

/**
 * An engine's continuous archive, kept at the site's management host: `servers` are every server the site archives
 * (set-up writes the archive's configuration for all of them at once).
 */
export interface PointInTimeArchive<N extends string, S> {
  /** The tool and how it archives, in a few words ("Barman: WAL streamed with pg_receivewal, pg_basebackup"). */
  readonly method: string;
  /** The port a restore's scratch server listens on unless told (`restore --port`): beside the engine's usual one. */
  readonly scratchPort: number;
  setup(config: EngineConfig<N, S>, home: ArchiveHome, servers: ArchivedServer[]): Promise<void>;
  /** A base backup now; its id. */
  baseBackup(config: EngineConfig<N, S>, home: ArchiveHome, server: ArchivedServer): Promise<string>;
  status(config: EngineConfig<N, S>, home: ArchiveHome, server: ArchivedServer): Promise<ArchiveStatus>;
  recover(config: EngineConfig<N, S>, home: ArchiveHome, server: ArchivedServer, o: RecoverOptions): Promise<RecoverResult>;
  /** SQL on a recovered scratch server (its address and port), with the login of the host it runs on. */
  queryRecovered(config: EngineConfig<N, S>, onto: string, exec: Executor, at: { address: string; port: number }, database: string, sql: string): Promise<string>;
  /** What the scheduler runs every minute: receivers kept running, archived WAL filed, retention applied. */
  maintain(config: EngineConfig<N, S>, home: ArchiveHome): Promise<void>;
  /** Stops archiving the servers (the archive stays); `dropSlot` also frees what each server keeps for it. */
  stop(config: EngineConfig<N, S>, home: ArchiveHome, servers: ArchivedServer[], dropSlot: boolean): Promise<void>;
}
