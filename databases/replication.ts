import { DcctlError, ExitCode } from "../util/errors.js";
import type { Executor } from "../hosts/executor.js";
import type { SiteHost } from "../inventory/index.js";

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
  /**
   * A former primary's writes past the point where its new primary's history forked are kept in `keepDir` (on this
   * machine) before it is rewound or re-seeded; the setup refuses (exit 5) unless `discard` says to go on without them.
   */
  diverged: { keepDir: string; discard: boolean };
  log(line: string): void;
}

/**
 * Writes a former primary holds past the point where the new primary's history forked from it (PostgreSQL: the
 * timeline switch; MariaDB: the last GTID the new primary applied from it): rewinding or re-seeding discards them.
 */
export interface DivergedWrites {
  /** The former primary that holds them. */
  host: string;
  /** The database engine (a registered name). */
  engine: string;
  /** Where the histories forked (an LSN; GTID positions) and how far the former primary's goes. */
  forkedAt: string;
  endsAt: string;
  /** Transactions past the fork that changed user data (PostgreSQL) / GTID event groups (MariaDB). */
  writes: number;
  /** Commit times of the first and the last of them (ISO). */
  firstAt?: string;
  lastAt?: string;
  /** The folder (on the machine that ran the setup) holding the kept copy, its files and their total size. */
  kept: string;
  files: string[];
  bytes: number;
  notes: string[];
}

/** The one line that names what a rewind or re-seed would discard and where the copy is. */
export function describeDiverged(d: DivergedWrites): string {
  const when = d.firstAt && d.lastAt ? ` written ${d.firstAt} – ${d.lastAt}` : "";
  return `${d.host} holds ${d.writes} write${d.writes === 1 ? "" : "s"}${when} past where its new primary's history forked (${d.forkedAt}; it goes on to ${d.endsAt}); a copy is kept in ${d.kept}`;
}

/** Refusal to discard a former primary's diverged writes without --discard-diverged (exit 5). */
export class DivergedWritesError extends DcctlError {
  constructor(readonly diverged: DivergedWrites) {
    super(`${describeDiverged(diverged)}; rebuilding it as a replica discards them: run again with --discard-diverged to do so`, ExitCode.notConfirmed);
  }
}

export interface ReplicaSetupResult {
  /**
   * seeded: the standby was rebuilt from a copy of its primary and now follows it; rewound: a former primary was wound
   * back onto it (pg_rewind); kept: it already followed it, nothing changed.
   */
  action: "seeded" | "rewound" | "kept";
  notes: string[];
  /** What the former primary held past the fork and was discarded (told to), with the kept copy. */
  diverged?: DivergedWrites;
}

/** Bounds every probe of a status query, so that a lost host costs seconds, not ssh2's own minutes. */
export const PROBE_TIMEOUT_MS = 5_000;
