import type { Executor } from "../exec/index.js";
import type { SiteHost } from "../../inventory/index.js";

/**
 * How a replica stands, as `replication status` judges it:
 * - streaming: connected to its primary and replaying what it sends;
 * - broken: meant to replicate but not receiving (connection lost, replication stopped by an error, slot gone);
 * - not-a-replica: a server that is not following a primary (never set up, or promoted by a failover);
 * - unreachable: the standby itself did not answer.
 */
export type ReplicaHealth = "streaming" | "broken" | "not-a-replica" | "unreachable";

/** One replica's lag and positions, measured at `measuredAt`. */
export interface ReplicaStatus {
  health: ReplicaHealth;
  /** Seconds the replica's data is behind the primary's: the live RPO. Absent when it cannot be known. */
  lagSeconds?: number;
  /** WAL / binlog bytes the primary has written that the replica has not applied; absent without the primary's answer. */
  lagBytes?: number;
  /** PostgreSQL LSNs, MariaDB GTID positions. */
  primaryPosition?: string;
  replicaPosition?: string;
  /** When the replica last heard from its primary (ISO), when the engine says. */
  lastReceivedAt?: string;
  /** Whether the primary answered the status query (a lost primary does not). */
  primaryAnswered: boolean;
  /** One line each: why it is broken, what the primary said, errors. */
  notes: string[];
  measuredAt: string;
}

/** A database server and how dcctl reaches its host. */
export interface ServerEnd {
  host: SiteHost;
  exec: Executor;
}

/** The account the replica logs in to its primary with; the password is read from a 0600 file on the DR runner. */
export interface ReplicationAccount {
  user: string;
  password: string;
}

export interface ReplicaSetupOptions {
  /** Replace what the standby holds (its databases, or a replication from another primary). */
  overwrite: boolean;
  log(line: string): void;
}

export interface ReplicaSetupResult {
  /**
   * seeded: the standby was rebuilt from a copy of its primary and now follows it; rewound: a former primary was wound
   * back onto it (pg_rewind); kept: it already followed it, nothing changed.
   */
  action: "seeded" | "rewound" | "kept";
  notes: string[];
}

/** Bounds every probe of a status query, so that a lost host costs seconds, not ssh2's own minutes. */
export const PROBE_TIMEOUT_MS = 5_000;
