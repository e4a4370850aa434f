import { loadSites, type SiteName } from "../inventory/index.js";
import { expandJobs } from "../backup/jobs.js";
import { loadPolicies, REPOSITORY_NAMES, type RepositoryName } from "../backup/policies.js";
import type { BackupConfig } from "../backup/repositories.js";
import { addReplicas, backupStatus, type JobStatusRow } from "../backup/status.js";
import { measurePairs, replicationPairs, type PairStatus } from "../backup/replication/index.js";
import { lastVerify, type VerifyRecord } from "../backup/verify-record.js";
import { listRuns, type RunSummary } from "../runbooks/engine/index.js";
import { loadDrillRuns, readiness, type ReadinessInput, type ServiceReadiness } from "../runbooks/engine/readiness.js";
import { errorMessage, InputError } from "../util/errors.js";

/**
 * What the console shows, and where each part comes from. Reading the repositories (restic) and probing the replicas
 * (SSH) take seconds, so they run in the background, at most every 30 s, and a page always gets the last result with
 * its time. The rest (DR runs from the journals, the last verify of each repository, and per service its readiness
 * from those and the last reading) is read from local files for each request.
 */

export interface BackupPart {
  /** When the last reading that ended started; absent until the first one ends. */
  at?: string;
  /** A reading under way since then. */
  refreshingSince?: string;
  /** Why the last reading failed (its predecessor's figures are still shown). */
  error?: string;
  jobs: JobStatusRow[];
  replicas: PairStatus[];
}

export interface RepositoryPart {
  name: RepositoryName;
  /** Its URL or path, with any credentials in it masked. */
  location: string;
  /** The last `dcctl backup verify` of it from this machine, with the size it measured. */
  verify?: VerifyRecord;
}

export interface Summary {
  jobs: { ok: number; overRpo: number; never: number; unknown: number; total: number };
  replicas: { ok: number; notOk: number };
  /** Absent until the first reading of the repositories ended (readiness judges their jobs). */
  services?: { ready: number; notReady: number; drillsOverdue: number };
}

/** GET /api/status: the page's data as JSON (English keys and states, whatever the page's language). */
export interface ConsoleStatus {
  generatedAt: string;
  site: SiteName;
  summary: Summary;
  backup: BackupPart;
  repositories: RepositoryPart[];
  /** `dcctl dr readiness` per service, from the last reading and the DR runs of this machine. */
  services?: ServiceReadiness[];
  servicesError?: string;
  runs: RunSummary[];
  /** DR runs on this machine, of which `runs` holds the newest. */
  runsTotal: number;
  /** Why the runs could not be listed. */
  runsError?: string;
}

/** How many DR runs the page and the JSON carry: a screen's worth, newest first. */
export const RUNS_SHOWN = 15;

/** The repository URL as it may be shown: rest:https://user:password@host/… keeps its host, not its password. */
export function maskedLocation(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//***@");
}

function firstLine(e: unknown): string {
  return (e instanceof InputError ? (e.problems[0] ?? e.message) : errorMessage(e)).split("\n")[0] ?? "";
}

/** One reading: the jobs' status and the replicas as the table shows them, and what readiness judges the services by. */
export interface Reading extends Pick<BackupPart, "jobs" | "replicas"> {
  readiness: Omit<ReadinessInput, "drills" | "now">;
}

/**
 * One reading of the jobs and replicas, from the site's inventory and policies as `dcctl backup status` reads them.
 * For readiness, a job whose repository this site has not configured is judged by its copies in this site's own
 * repository, as `dcctl dr readiness` judges it (collectReadinessInput).
 */
export async function readBackup(config: BackupConfig, now: Date = new Date()): Promise<Reading> {
  const sites = loadSites();
  const jobs = expandJobs(sites, loadPolicies());
  const foreign = jobs.filter((j) => !config.repositories[j.repository]);
  const pairs = replicationPairs(sites);
  // Read-only: the console keeps no record of what it measured.
  const measureReplicas = () => measurePairs(config, pairs, { record: false });
  const [report, copies, replicas] = await Promise.all([
    backupStatus(jobs, config, now, []),
    foreign.length ? backupStatus(foreign.map((j) => ({ ...j, repository: config.site })), config, now, []) : undefined,
    measureReplicas(),
  ]);
  addReplicas(report.rows, replicas);
  const judged = report.rows.map((r) => copies?.rows.find((c) => c.job === r.job) ?? r);
  return { jobs: report.rows, replicas, readiness: { sites, jobs, backup: judged, replicas } };
}

export interface Collector {
  /** The console's data now; starts a background reading when the last one is older than the interval. */
  status(): ConsoleStatus;
  /** Waits (at most `graceMs`) for a reading under way, and starts no more. */
  stop(graceMs?: number): Promise<void>;
}

export interface CollectorOptions {
  config: BackupConfig;
  /** The least time between the starts of two readings (default 30 s). */
  intervalMs?: number;
}

/**
 * Starts the first reading at once. Later readings start when someone asks and the last one began at least
 * `intervalMs` ago: a screen polling every 10 s keeps the figures at most about 40 s old, and nobody watching costs
 * no restic at all.
 */
export function startCollector(o: CollectorOptions): Collector {
  const intervalMs = o.intervalMs ?? 30_000;
  const now = () => new Date();
  let last: (Reading & { at: string }) | undefined;
  let lastError: string | undefined;
  let running: { since: Date; done: Promise<void> } | undefined;
  let lastStart = 0;
  let stopped = false;

  const refresh = (): void => {
    if (stopped || running || now().getTime() - lastStart < intervalMs) return;
    const since = now();
    lastStart = since.getTime();
    const done = readBackup(o.config, since)
      .then((r) => {
        last = { ...r, at: since.toISOString() };
        lastError = undefined;
      })
      .catch((e: unknown) => {
        lastError = firstLine(e);
      })
      .finally(() => {
        running = undefined;
      });
    running = { since, done };
  };
  refresh();

  return {
    status(): ConsoleStatus {
      refresh();
      const backup: BackupPart = { jobs: last?.jobs ?? [], replicas: last?.replicas ?? [] };
      if (last) backup.at = last.at;
      if (running) backup.refreshingSince = running.since.toISOString();
      if (lastError) backup.error = lastError;
      let runs: RunSummary[] = [];
      let runsError: string | undefined;
      try {
        runs = listRuns();
      } catch (e) {
        runsError = firstLine(e);
      }
      let services: ServiceReadiness[] | undefined;
      let servicesError: string | undefined;
      if (last) {
        try {
          services = readiness({ ...last.readiness, drills: loadDrillRuns(last.readiness.sites), now: now() });
        } catch (e) {
          servicesError = firstLine(e);
        }
      }
      const count = (state: JobStatusRow["state"]) => backup.jobs.filter((j) => j.state === state).length;
      const status: ConsoleStatus = {
        generatedAt: now().toISOString(),
        site: o.config.site,
        summary: {
          jobs: { ok: count("ok"), overRpo: count("over-rpo"), never: count("none"), unknown: count("unknown"), total: backup.jobs.length },
          replicas: { ok: backup.replicas.filter((r) => r.ok).length, notOk: backup.replicas.filter((r) => !r.ok).length },
          ...(services ? { services: { ready: services.filter((x) => x.ready).length, notReady: services.filter((x) => !x.ready).length, drillsOverdue: services.filter((x) => x.overdue).length } } : {}),
        },
        backup,
        repositories: REPOSITORY_NAMES.flatMap((name) => {
          const r = o.config.repositories[name];
          const verify = r ? lastVerify(o.config, name) : undefined;
          return r ? [{ name, location: maskedLocation(r.repo.url), ...(verify ? { verify } : {}) }] : [];
        }),
        ...(services ? { services } : {}),
        runs: runs.slice(0, RUNS_SHOWN),
        runsTotal: runs.length,
      };
      if (runsError) status.runsError = runsError;
      if (servicesError) status.servicesError = servicesError;
      return status;
    },
    async stop(graceMs = 10_000) {
      stopped = true;
      const pending = running?.done;
      if (!pending) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([pending, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    },
  };
}
