import { DcctlError, ExitCode } from "../../../util/errors.js";
import type { Lang, Texts, Translate } from "../../../util/i18n.js";
import type { Executor } from "../../../hosts/index.js";
import type { Problem } from "../../../inventory/problems.js";
import type { SiteHost, Sites } from "../../../inventory/index.js";
import type { PlannedStep, Runbook, RunbookKind, StepType } from "../model.js";
import type { DbEngine } from "../../../databases/registry.js";
import type { ReplicationPair } from "../../../backup/replication/pairs.js";
import type { DivergedWrites, ReplicaSetupResult, ReplicaStatus } from "../../../databases/replication.js";
import type { NotifyConfig } from "../../../notify/index.js";
import type { EventFeed } from "../../../notify/event-feed.js";

/** What a step hands back; it is written into the step's `end` record, so a resumed run sees it too. */
export interface StepResult {
  /** One line each, for the journal and the report. */
  notes: string[];
  /** Structured results (restored snapshots, checks) that later steps and the report read. JSON only. */
  data: Record<string, unknown>;
}

/** A step's failure that carries results worth keeping in the journal (e.g. which checks passed and which did not). */
export class StepFailure extends DcctlError {
  constructor(
    message: string,
    readonly data: Record<string, unknown>,
    exitCode: ExitCode = ExitCode.failed,
  ) {
    super(message, exitCode);
  }
}

/** A database restored by a restore-db step, as recorded in its result's `data.restored`. */
export interface RestoredDatabase {
  /** The primary host whose backup was restored. */
  sourceHost: string;
  database: string;
  /** The database it was restored into (a scratch name in drills). */
  targetDatabase: string;
  targetHost: string;
  snapshotId: string;
  /** ISO time of the snapshot, for RPO (a point-in-time recovery: its newest transaction). */
  snapshotTime: string;
}

/** A recover's restore, as recorded in its result's `data.recoveredToPoint` beside `data.restored`. */
export interface RecoveredToPoint extends PointRecovered {
  database: string;
  targetHost: string;
  targetDatabase: string;
  /** The point, as the operator gave it. */
  before: string;
}

/** A database brought back from the point-in-time archive to just before a point (a recover's restore-db). */
export interface PointRecovered {
  /** The base backup it started from (the archive's id), and when that ended (ISO). */
  baseBackup: string;
  baseBackupEnd: string;
  /** The newest transaction recovered (ISO); absent when none came after the base backup. */
  lastTransactionAt?: string;
  /** The first transaction past the point, where recovery stopped: the oldest of the writes the copy lacks. */
  stoppedBefore?: { transaction: string; committedAt: string };
  /** The newest change the archive holds (ISO): the writes the copy lacks end there. */
  archiveLatest?: string;
}

/** How one standby was brought up, as recorded in the step's `data.recovered`. */
export interface RecoveredHost {
  host: string;
  primary: string;
  engine: string;
  path: "promoted" | "restored";
  reason: string;
  /** ISO time up to which the recovered data is complete (replica: last heard from the primary; restore: snapshot). */
  dataAsOf?: string;
  /** The replica's lag as measured just before promotion, seconds. */
  lagSeconds?: number;
}

export type { DbEngine };

/** Restores one database from a snapshot of a repository; backed by the engines' restore (databases/<engine>/restore.ts, through runbooks/engine/services.ts). */
export interface DatabaseRestorer {
  restore(req: {
    /** A repository name of the backup config, e.g. "secondary". */
    repository: string;
    sourceHost: string;
    engine: DbEngine;
    database: string;
    targetHost: SiteHost;
    targetDatabase: string;
    /** "latest" or a snapshot id. */
    snapshot: string;
    /** Drop and recreate targetDatabase if it exists (always true for drill scratch databases). */
    replace: boolean;
  }): Promise<{ snapshotId: string; snapshotTime: string; notes?: string[] }>;
  /**
   * A recover's restore: the source's server as it was just before `before`, from this site's point-in-time archive
   * (backup/pitr.ts), with `database` loaded into `targetDatabase` of the target host's own server. A point the
   * archive does not cover is refused before anything is touched.
   */
  recoverBefore?(req: { sourceHost: string; engine: DbEngine; database: string; targetHost: SiteHost; targetDatabase: string; before: RecoverPoint; log(line: string): void }): Promise<PointRecovered>;
  /** Drops a scratch database a drill created. */
  drop(req: { engine: DbEngine; targetHost: SiteHost; database: string }): Promise<void>;
  /** Settles the temporary databases that restores which died left on these hosts (named in their ledger); a line each. */
  settleLeft?(hosts: SiteHost[]): Promise<string[]>;
}

/**
 * A server recovered from this site's point-in-time archive by a restore-pitr step, as recorded in its result's
 * `data.pointInTime`: the point asked, the point reached, and where the scratch server runs until clean-up.
 */
export interface PointInTimeRecovered {
  /** The archived (primary) host, its engine, and the database checked in the copy. */
  sourceHost: string;
  engine: DbEngine;
  database: string;
  targetHost: string;
  /** The point asked for (ISO), and the commit time of the last transaction recovered: the point reached. */
  asked: string;
  reached?: string;
  /** Seconds from the point reached to the point asked: the recovery point the archive gave (the drill's RPO for it). */
  gapSeconds?: number;
  /** The first transaction past the point, not applied (its commit time): recovery stopped where it was asked. */
  firstNotApplied?: string;
  baseBackup: string;
  address: string;
  port: number;
  dataDir: string;
  /** The argv that stops the recovered server on its host. */
  stop: string[];
}

/** Point-in-time recoveries from this site's archive into scratch servers (backup/pitr.ts, through services.ts). */
export interface PointInTimeRestorer {
  recover(req: { sourceHost: string; engine: DbEngine; database: string; targetHost: SiteHost; at: Date; port?: number; log(line: string): void }): Promise<PointInTimeRecovered>;
  /** SQL on the recovered server, its rows one a line as the engine's client prints them. */
  query(r: PointInTimeRecovered, targetHost: SiteHost, database: string, sql: string): Promise<string>;
  /** Stops the recovered server and removes its data. */
  remove(r: PointInTimeRecovered, targetHost: SiteHost): Promise<void>;
}

/** Runs SQL on a database server of the inventory, with the connection settings of the backup config. */
export interface SqlClient {
  /** The client's output: rows one a line, fields separated as the engine's client prints them (| or tabs). */
  query(host: SiteHost, engine: DbEngine, database: string, sql: string): Promise<string>;
}

/** The newest snapshot of a backup source, read from a repository. */
export interface SnapshotCatalog {
  /**
   * The newest snapshot of a host this site trusts (backup/trust.ts), with the time it counts as made at, and notes of
   * the distrusted ones passed over; undefined when none is trusted. `repository`: a repository name of the backup
   * config. Throws when the repository cannot be reached.
   */
  newest(repository: string, sourceHost: string): Promise<{ id: string; time: string; notes?: string[] } | undefined>;
}

/** The standbys' replication: measured and promoted (backup/replication through the backup config's hosts). */
export interface ReplicaControl {
  status(pair: ReplicationPair): Promise<ReplicaStatus>;
  /** Makes the replica a writable primary; one that is not a replica is left alone (a note says so). */
  promote(pair: ReplicationPair): Promise<string[]>;
  /**
   * Makes the pair's standby its primary's replica, replacing what it holds; a former primary's diverged writes are
   * kept in `keepDir` first, and refused (DivergedWritesError) unless `discard`.
   */
  setup(pair: ReplicationPair, o: { keepDir: string; discard: boolean; log(line: string): void }): Promise<ReplicaSetupResult>;
}

export type { DivergedWrites };

/** Brings a site stack to a DR mode through the Pulumi Automation API. */
export interface InfraDriver {
  up(site: SiteHost["site"], mode: "standby" | "active" | "drill"): Promise<string[]>;
  /** Removes what `up(site, "drill")` created. */
  downDrill(site: SiteHost["site"]): Promise<string[]>;
}

/** The outside world a step reaches, injected so that the engine can be tested without it. */
export interface DrServices {
  /** Runs commands on an inventory host (SSH, or this machine in the lab). */
  executorFor(host: SiteHost): Executor;
  /** Runs commands on the DR runner itself (dns, notify). */
  local: Executor;
  restorer?: DatabaseRestorer;
  pointInTime?: PointInTimeRestorer;
  sql?: SqlClient;
  snapshots?: SnapshotCatalog;
  replicas?: ReplicaControl;
  infra?: InfraDriver;
  /** The site's mail and webhook channels (backup config `notify:`): notify steps and the end of every run use them. */
  notify?: NotifyConfig;
  /** The site's SOC feed (backup config `soc:`): the run's start and end, its promotions and set-ups (runbooks/engine/feed.ts). */
  feed?: EventFeed;
  now(): Date;
}

/** A recover's point: the moment (its data goes back to just before it), and the text the operator gave (to the microsecond). */
export interface RecoverPoint {
  at: Date;
  text: string;
}

export interface StepContext {
  runId: string;
  runDir: string;
  runbook: Runbook;
  sites: Sites;
  services: DrServices;
  /** When the failure (failover) or the drill began: the reference for RPO. */
  failedAt: Date;
  /** A recover's point (`dcctl dr recover --before`); absent in other runs. */
  before?: RecoverPoint;
  /** A planned switchover: the fence must reach every primary, and replicas catch up before they are promoted. */
  planned: boolean;
  /** The operator said to rebuild former primaries even where they hold writes past the fork (--discard-diverged). */
  discardDiverged: boolean;
  /** Results of the steps that have ended well so far (this run and, after a resume, the runs before). */
  results: ReadonlyMap<string, StepResult>;
  /** Aborted when the step's timeout passes; long work should give up then. */
  signal: AbortSignal;
  /** A progress line for the operator (not the journal). */
  log(line: string): void;
  /** Writes report.md and report.json of the run as it stands; returns the files written. */
  writeReport(): Promise<string[]>;
}

/** One step type: plan() describes without touching anything; run() acts; cleanup() undoes what a drill created. */
export interface StepModule<P> {
  type: StepType;
  /** May a step of this type run again when a crash left its start without an end? (see runbooks/engine/README.md) */
  idempotent: boolean | ((kind: RunbookKind) => boolean);
  /** Reads and checks the step's `with:` mapping; problem paths are relative to it. */
  parse(raw: Record<string, unknown>, kind: RunbookKind): { value?: P; problems: Problem[] };
  plan(p: PlannedStep, params: P): string[];
  run(p: PlannedStep, params: P, ctx: StepContext): Promise<StepResult>;
  /** Drills only: undo what run() created. `result` is absent when run() did not end well. */
  cleanup?(p: PlannedStep, params: P, ctx: StepContext, result: StepResult | undefined): Promise<string[]>;
  /** Steps that change something an operator must agree to: how the confirmation prompt names the change. */
  confirm?: StepConfirm<P>;
}

/**
 * What one step will change, as the confirmation of a failover or failback says it (runbooks/engine/confirm.ts joins
 * the phrases of the run's steps). The texts are the step type's own, in every language, with {{placeholders}}.
 */
export interface StepConfirm<P> {
  texts: Record<Lang, Texts>;
  /** The phrase for one planned step; `t` reads this step type's texts. */
  change(p: PlannedStep, params: P, t: Translate): string;
}

/** A step module with its parameter type hidden, so that modules of different types share one registry. */
export interface AnyStepModule {
  type: StepType;
  idempotent(kind: RunbookKind): boolean;
  check(raw: Record<string, unknown>, kind: RunbookKind): Problem[];
  plan(p: PlannedStep): string[];
  run(p: PlannedStep, ctx: StepContext): Promise<StepResult>;
  hasCleanup: boolean;
  cleanup(p: PlannedStep, ctx: StepContext, result: StepResult | undefined): Promise<string[]>;
  /** The step type's confirmation texts, when its steps need the operator's agreement. */
  confirmTexts?: Record<Lang, Texts>;
  /** The phrase naming what this step will change, or undefined when it changes nothing to confirm. */
  confirm(p: PlannedStep, t: Translate): string | undefined;
}

export function defineStep<P>(m: StepModule<P>): AnyStepModule {
  const params = (p: PlannedStep): P => {
    const parsed = m.parse(p.step.with, p.kind);
    if (parsed.value === undefined) throw new Error(`step ${p.step.id}: parameters were not checked by the loader`);
    return parsed.value;
  };
  return {
    type: m.type,
    idempotent: (kind) => (typeof m.idempotent === "function" ? m.idempotent(kind) : m.idempotent),
    check: (raw, kind) => m.parse(raw, kind).problems,
    plan: (p) => m.plan(p, params(p)),
    run: (p, ctx) => m.run(p, params(p), ctx),
    hasCleanup: m.cleanup !== undefined,
    cleanup: async (p, ctx, result) => (m.cleanup ? m.cleanup(p, params(p), ctx, result) : []),
    ...(m.confirm ? { confirmTexts: m.confirm.texts } : {}),
    confirm: (p, t) => m.confirm?.change(p, params(p), t),
  };
}
