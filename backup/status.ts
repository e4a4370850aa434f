import { ExitCode, errorMessage } from "../util/errors.js";
import type { BackupJob } from "./jobs.js";
import { resticFor, type BackupConfig } from "./repositories.js";
import { DEFAULT_STALL_MS } from "./policies.js";
import { readState, type ItemResult, type JobResult } from "./report.js";
import type { Snapshot } from "./restic/index.js";
import { backupStatePaths } from "./run.js";
import { reconcileDeadRuns, type Reconciled } from "./run-ledger.js";
import type { PairStatus } from "./replication/index.js";

/**
 * `dcctl backup status`: for each job, each of its items (every database dump, the globals, the files) and the age of
 * its newest good snapshot against the job's RPO. A job is ok only when every item is: a host whose files were saved
 * an hour ago but whose PostgreSQL dump has failed since yesterday is not ok. The items a job is expected to have are
 * those its last run from this machine recorded (plus its files); without that record, those its snapshots show.
 * Leftovers of runs that died are forgotten first (see run-ledger.ts), so no half-made snapshot is counted.
 *
 * Exit codes: 0 every job has a snapshot of every item within its RPO; 4 some item is over its RPO or has none;
 * 1 a repository could not be read (then its jobs show the error, and whether they are late is unknown).
 * Beside each job of a replicated database stands its replica's last measured lag: the first line of protection,
 * which never counts for the second (a replica copies a DROP TABLE in seconds).
 */

export type ItemState = "ok" | "over-rpo" | "none" | "unknown";

export interface ItemStatusRow {
  /** "files", "postgresql/portal", "postgresql/_globals", "mariadb/mail". */
  item: string;
  newest?: { id: string; time: string };
  ageMinutes?: number;
  state: ItemState;
  /** Why this item failed in the job's last run, if it did. */
  lastError?: string;
}

export interface JobStatusRow {
  job: string;
  host: string;
  site: string;
  repository: string;
  rpoMinutes: number;
  /** The job's oldest item's newest snapshot: what decides whether the job is within its RPO. */
  newest?: { id: string; time: string };
  ageMinutes?: number;
  /** The worst of its items: "ok" within RPO, "over-rpo", "none" never backed up, "unknown" repository unreadable. */
  state: ItemState;
  items: ItemStatusRow[];
  /** The status of the job's last run from this machine, if any. */
  lastRun?: string;
  /** The last run's error line, when it failed. */
  lastError?: string;
  error?: string;
  /** The replica of this job's host (it is a replication pair's primary), as `replication status` last measured it. */
  replica?: Pick<PairStatus, "pair" | "health" | "lagSeconds" | "rpoSeconds" | "ok" | "measuredAt">;
  /** A replicated database without a snapshot within RPO: the replica would copy a mistake within seconds. */
  warning?: string;
}

export interface StatusReport {
  rows: JobStatusRow[];
  exitCode: ExitCode;
  /** Leftovers of dead runs forgotten before looking. */
  reconciled: Reconciled[];
}

/** The item a snapshot belongs to, from the tags the sources give it. */
export function snapshotItem(tags: readonly string[]): string | undefined {
  const db = tags.find((t) => t.startsWith("db:"))?.slice(3);
  if (tags.includes("source:files")) return "files";
  if (tags.includes("source:postgresql")) return tags.includes("pg:globals") ? "postgresql/_globals" : db !== undefined ? `postgresql/${db}` : undefined;
  if (tags.includes("source:mariadb")) return db !== undefined ? `mariadb/${db}` : undefined;
  return undefined;
}

const RANK: Record<ItemState, number> = { ok: 0, "over-rpo": 1, none: 2, unknown: 3 };

/** `replicas`: the replication pairs of the jobs' hosts as just measured, shown beside their rows. */
export async function backupStatus(jobs: BackupJob[], config: BackupConfig, now: Date, replicas: PairStatus[]): Promise<StatusReport> {
  const reconciled = await reconcileDeadRuns(config);
  const byRepo = new Map<string, Promise<Snapshot[]>>();
  const snapshotsOf = (job: BackupJob): Promise<Snapshot[]> => {
    let p = byRepo.get(job.repository);
    if (!p) {
      // One listing per repository, not one per job.
      p = Promise.resolve().then(() => resticFor(config, job.repository, { stallMs: DEFAULT_STALL_MS }).snapshots({ tags: ["dcctl"] }));
      p.catch(() => undefined);
      byRepo.set(job.repository, p);
    }
    return p;
  };
  const state = readState(backupStatePaths(config).stateFile);
  const rows: JobStatusRow[] = [];
  for (const job of jobs) {
    try {
      rows.push(jobStatus(job, await snapshotsOf(job), state[job.id]?.last, now));
    } catch (e) {
      rows.push({ job: job.id, host: job.host, site: job.site, repository: job.repository, rpoMinutes: job.rpoMinutes, state: "unknown", items: [], error: errorMessage(e) });
    }
  }
  addReplicas(rows, replicas);
  const exitCode = rows.some((r) => r.state === "unknown") ? ExitCode.failed : rows.some((r) => r.state !== "ok") ? ExitCode.partial : ExitCode.ok;
  return { rows, exitCode, reconciled };
}

/** Each replicated database's replica beside its row, and the warning when a streaming replica stands in for a backup. */
export function addReplicas(rows: JobStatusRow[], replicas: PairStatus[]): void {
  for (const row of rows) {
    const r = replicas.find((x) => x.primary === row.host);
    if (!r) continue;
    row.replica = { pair: r.pair, health: r.health, ...(r.lagSeconds !== undefined ? { lagSeconds: r.lagSeconds } : {}), rpoSeconds: r.rpoSeconds, ok: r.ok, measuredAt: r.measuredAt };
    if (row.state === "over-rpo" || row.state === "none") {
      row.warning = `${row.host} is replicated to ${r.pair} (${r.health}), but a replica is no backup: no snapshot within the job's RPO of ${row.rpoMinutes} min, and a mistake at ${row.host} reaches ${r.pair} in seconds`;
    }
  }
}

/** One job's row from its repository's snapshots and its last run from this machine. */
export function jobStatus(job: BackupJob, snapshots: Snapshot[], last: JobResult | undefined, now: Date): JobStatusRow {
  const row: JobStatusRow = { job: job.id, host: job.host, site: job.site, repository: job.repository, rpoMinutes: job.rpoMinutes, state: "none", items: [] };
  if (last) row.lastRun = `${last.status} at ${last.finishedAt}`;
  if (last?.error) row.lastError = last.error;
  const tag = `job:${job.id}`;
  const newestByItem = new Map<string, Snapshot>();
  for (const s of snapshots.filter((x) => x.tags?.includes(tag))) {
    const item = snapshotItem(s.tags ?? []);
    if (item === undefined) continue;
    const best = newestByItem.get(item);
    if (!best || Date.parse(s.time) > Date.parse(best.time)) newestByItem.set(item, s);
  }
  const lastErrors = new Map((last?.items ?? []).filter((i) => i.status === "failed").map((i) => [i.name, i.error ?? "failed"]));
  for (const item of expectedItems(job, last?.items, [...newestByItem.keys()])) {
    const newest = newestByItem.get(item);
    const r: ItemStatusRow = { item, state: "none" };
    const err = lastErrors.get(item);
    if (err) r.lastError = err;
    if (newest) {
      r.newest = { id: newest.short_id || newest.id.slice(0, 8), time: newest.time };
      r.ageMinutes = Math.max(0, (now.getTime() - Date.parse(newest.time)) / 60_000);
      r.state = r.ageMinutes <= job.rpoMinutes ? "ok" : "over-rpo";
    }
    row.items.push(r);
  }
  const worst = row.items.reduce<ItemStatusRow | undefined>((w, r) => (!w || RANK[r.state] > RANK[w.state] || (r.state === w.state && (r.ageMinutes ?? 0) > (w.ageMinutes ?? 0)) ? r : w), undefined);
  if (worst) {
    row.state = worst.state;
    if (worst.newest) row.newest = worst.newest;
    if (worst.ageMinutes !== undefined) row.ageMinutes = worst.ageMinutes;
  }
  return row;
}

/**
 * The items a job should have a snapshot of: those its last run recorded (a database dropped since is no longer
 * expected), or, with no record, those its snapshots show; its files always; without a record, a database source
 * with no snapshot stands as itself ("postgresql"), never backed up.
 */
function expectedItems(job: BackupJob, lastItems: ItemResult[] | undefined, inRepository: string[]): string[] {
  const items = new Set(lastItems ? lastItems.map((i) => i.name) : inRepository);
  // A source whose databases could not even be listed last time: judge the ones its snapshots show.
  for (const kind of ["postgresql", "mariadb"]) {
    const known = inRepository.filter((i) => i.startsWith(`${kind}/`));
    if (items.has(kind) && known.length) {
      items.delete(kind);
      for (const i of known) items.add(i);
    }
  }
  for (const spec of job.sources) {
    if (spec.kind === "files") items.add("files");
    // With a record, a server that was listed and has no database to dump expects nothing (a failed listing is
    // recorded as an item of its own); without one, nothing is known of it.
    else if (!lastItems && ![...items].some((i) => i === spec.kind || i.startsWith(`${spec.kind}/`))) items.add(spec.kind);
  }
  return [...items].sort();
}

export function formatAge(minutes: number | undefined): string {
  if (minutes === undefined) return "-";
  if (minutes < 120) return `${Math.round(minutes)}m`;
  if (minutes < 48 * 60) return `${(minutes / 60).toFixed(1)}h`;
  return `${(minutes / 1440).toFixed(1)}d`;
}
