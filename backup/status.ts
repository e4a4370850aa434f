import { ExitCode, errorMessage } from "../util/errors.js";
import type { BackupJob } from "./jobs.js";
import { resticFor, type BackupConfig } from "./repositories.js";
import { readState } from "./report.js";
import type { Snapshot } from "./restic/index.js";
import { backupStatePaths } from "./run.js";

/**
 * `dcctl backup status`: for each job the newest snapshot in its repository and its age against the job's RPO.
 * Only good snapshots exist to be found: a failed source leaves none (the sources and restic wrapper forget it).
 *
 * Exit codes: 0 every job has a snapshot within its RPO; 4 some job is over its RPO or has no snapshot at all;
 * 1 a repository could not be read (then its jobs show the error, and whether they are late is unknown).
 */

export interface JobStatusRow {
  job: string;
  host: string;
  site: string;
  repository: string;
  rpoMinutes: number;
  /** The newest snapshot of the job (any of its sources), if there is one. */
  newest?: { id: string; time: string };
  ageMinutes?: number;
  /** "ok" within RPO, "over-rpo" older than RPO, "none" never backed up, "unknown" repository unreadable. */
  state: "ok" | "over-rpo" | "none" | "unknown";
  /** The status of the job's last run from this machine, if any. */
  lastRun?: string;
  error?: string;
}

export interface StatusReport {
  rows: JobStatusRow[];
  exitCode: ExitCode;
}

export async function backupStatus(jobs: BackupJob[], config: BackupConfig, now: Date = new Date()): Promise<StatusReport> {
  const byRepo = new Map<string, Promise<Snapshot[]>>();
  const snapshotsOf = (job: BackupJob): Promise<Snapshot[]> => {
    let p = byRepo.get(job.repository);
    if (!p) {
      // One listing per repository, not one per job.
      p = Promise.resolve().then(() => resticFor(config, job.repository).snapshots({ tags: ["dcctl"] }));
      p.catch(() => undefined);
      byRepo.set(job.repository, p);
    }
    return p;
  };
  const state = readState(backupStatePaths(config).stateFile);
  const rows: JobStatusRow[] = [];
  for (const job of jobs) {
    const row: JobStatusRow = { job: job.id, host: job.host, site: job.site, repository: job.repository, rpoMinutes: job.rpoMinutes, state: "none" };
    const last = state[job.id]?.last;
    if (last) row.lastRun = `${last.status} at ${last.finishedAt}`;
    try {
      const tag = `job:${job.id}`;
      const newest = (await snapshotsOf(job))
        .filter((s) => s.tags?.includes(tag))
        .reduce<Snapshot | undefined>((best, s) => (!best || Date.parse(s.time) > Date.parse(best.time) ? s : best), undefined);
      if (newest) {
        row.newest = { id: newest.short_id || newest.id.slice(0, 8), time: newest.time };
        row.ageMinutes = Math.max(0, (now.getTime() - Date.parse(newest.time)) / 60_000);
        row.state = row.ageMinutes <= job.rpoMinutes ? "ok" : "over-rpo";
      }
    } catch (e) {
      row.state = "unknown";
      row.error = errorMessage(e);
    }
    rows.push(row);
  }
  const exitCode = rows.some((r) => r.state === "unknown") ? ExitCode.failed : rows.some((r) => r.state !== "ok") ? ExitCode.partial : ExitCode.ok;
  return { rows, exitCode };
}

export function formatAge(minutes: number | undefined): string {
  if (minutes === undefined) return "-";
  if (minutes < 120) return `${Math.round(minutes)}m`;
  if (minutes < 48 * 60) return `${(minutes / 60).toFixed(1)}h`;
  return `${(minutes / 1440).toFixed(1)}d`;
}
