import { loadSites, type SiteName } from "../inventory/index.js";
import { expandJobs } from "../backup/jobs.js";
import { loadPolicies, REPOSITORY_NAMES, type RepositoryName } from "../backup/policies.js";
import type { BackupConfig } from "../backup/repositories.js";
import { backupStatus, type JobStatusRow } from "../backup/status.js";
import { measurePairs, replicationPairs, type PairStatus } from "../backup/replication/index.js";
import { lookAtOtherSites, newestVerify, type PeerRecords } from "../backup/peer-records.js";
import { keptUnreachable, probeSites, type SiteReach } from "../backup/reachability.js";
import type { VerifyRecord } from "../backup/verify-record.js";
import { readArchiveStatuses, type JudgedArchive } from "../backup/pitr.js";
import { listRuns, type RunSummary } from "../runbooks/engine/index.js";
import { loadDrillRuns, readiness, type ReadinessInput, type ServiceReadiness } from "../runbooks/engine/readiness.js";
import { errorMessage, InputError } from "../util/errors.js";

/**
 * What the console shows, and where each part comes from. Reading the repositories (restic), probing the replicas
 * (SSH) and reading the other site's records take seconds, so they run in the background, at most every 30 s, and a
 * page always gets the last result with its time. Whether the other sites answer is probed in the background every few
 * seconds. The rest (DR runs from the journals, the last verify of each repository, and per service its readiness
 * from those, the last reading and the sites' state) is read from local files for each request.
 */

export interface BackupPart {
  /** When the last reading that ended started; absent until the first one ends. */
  at?: string;
  /** A reading under way since then. */
  refreshingSince?: string;
  /** Why the last reading failed (its predecessor's figures are still shown). */
  error?: string;
  /** The last reading began before another site was lost: its figures are not of now. */
  predatesOutage?: boolean;
  jobs: JobStatusRow[];
  replicas: PairStatus[];
}

export interface RepositoryPart {
  name: RepositoryName;
  /** Its URL or path, with any credentials in it masked. */
  location: string;
  /** Its last `dcctl backup verify`, from this machine or recorded at the other site, with the size it measured. */
  verify?: VerifyRecord;
  /** Its site does not answer, since then (ISO). */
  unreachableSince?: string;
}

export interface Summary {
  jobs: { ok: number; overRpo: number; never: number; unknown: number; total: number };
  /** Snapshots of these jobs that this site does not trust (backup/trust.ts), as the last reading judged them. */
  distrusted?: number;
  replicas: { ok: number; notOk: number };
  /** Absent until the first reading of the repositories ended (readiness judges their jobs). */
  services?: { ready: number; notReady: number; drillsOverdue: number };
}

/** GET /api/status: the page's data as JSON (English keys and states, whatever the page's language). */
export interface ConsoleStatus {
  generatedAt: string;
  site: SiteName;
  summary: Summary;
  /** The other sites as last probed: one that does not answer is named, with since when. */
  sites: SiteReach[];
  backup: BackupPart;
  repositories: RepositoryPart[];
  /** The point-in-time archives as `dcctl pitr maintain` (every minute) or `pitr status` last measured them here. */
  archives: JudgedArchive[];
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
  /** The other sites' records (last runs, verifies), read with this reading (or their last copy). */
  peers: PeerRecords[];
}

/**
 * One reading of the jobs and replicas, from the site's inventory and policies as `dcctl backup status` reads them:
 * the other sites probed first (a lost one is not read at all), each job judged by the copies this site holds, the
 * replicas measured beside, every part bounded to seconds.
 */
export async function readBackup(config: BackupConfig, now: Date = new Date(), probed?: SiteReach[]): Promise<Reading> {
  const sites = loadSites();
  const jobs = expandJobs(sites, loadPolicies());
  const pairs = replicationPairs(sites);
  // Read-only: the console keeps no record of what it measured.
  const replicas = measurePairs(config, pairs, { record: false });
  replicas.catch(() => undefined);
  const others = await lookAtOtherSites(config, sites, probed);
  // The repository this site keeps is recorded in its arrival ledger as it is read (backup/arrival-ledger.ts).
  const report = await backupStatus(jobs, config, now, replicas, { reach: others.reach, peerRuns: others.peers.then((all) => all.map((p) => p.jobs)), sites });
  const measured = await replicas;
  return { jobs: report.rows, replicas: measured, peers: await others.peers, readiness: { sites, jobs, backup: report.rows, replicas: measured, reach: others.reach, archives: readArchiveStatuses(config) } };
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
  /** How often the other sites are probed while they answer (default 3 s); one that does not is probed ever less often. */
  probeEveryMs?: number;
}

/** The longest wait between two probes of a site that does not answer. */
const PROBE_BACKOFF_MAX_MS = 60_000;

/**
 * Starts the first reading at once. Later readings start when someone asks and the last one began at least
 * `intervalMs` ago: a screen polling every 10 s keeps the figures at most about 40 s old, and nobody watching costs
 * no restic at all. Beside them, the other sites are probed in the background (a connect each, bounded): a site that
 * stops answering shows on the next page at once, and starts a new reading that judges by what this site holds; one
 * that does not answer is probed again after 3, 6, 12… s (at most a minute), and a reading when it answers again.
 */
export function startCollector(o: CollectorOptions): Collector {
  const intervalMs = o.intervalMs ?? 30_000;
  const probeEveryMs = o.probeEveryMs ?? 3_000;
  const now = () => new Date();
  let last: (Reading & { at: string }) | undefined;
  let lastError: string | undefined;
  let running: { since: Date; done: Promise<void>; gen: number } | undefined;
  let lastStart = 0;
  let stopped = false;
  // Until the first probe: what this site last concluded (a console started during an outage says so at once).
  let reach: SiteReach[] = keptUnreachable(o.config).map((k) => ({ site: k.site, reachable: false, unreachableSince: k.unreachableSince, probedAt: k.probedAt, parts: [] }));
  let probeTimer: NodeJS.Timeout | undefined;
  let probing: Promise<void> | undefined;
  let failedInARow = 0;

  // Readings are numbered: one started after a site changed state does not wait for one under way, and whichever
  // ends last, the newest started wins.
  const reads = new Set<Promise<void>>();
  let started = 0;
  let landed = 0;
  const refresh = (force = false, probed?: SiteReach[]): void => {
    if (stopped || (running && !force)) return;
    if (!force && now().getTime() - lastStart < intervalMs) return;
    const since = now();
    lastStart = since.getTime();
    const gen = ++started;
    const done = readBackup(o.config, since, probed)
      .then((r) => {
        if (gen < landed) return;
        landed = gen;
        last = { ...r, at: since.toISOString() };
        lastError = undefined;
      })
      .catch((e: unknown) => {
        if (gen >= landed) lastError = firstLine(e);
      })
      .finally(() => {
        if (running?.gen === gen) running = undefined;
      });
    running = { since, done, gen };
    reads.add(done);
    void done.finally(() => reads.delete(done));
  };

  const probe = (): void => {
    if (stopped) return;
    probing = probeSites(o.config, loadSites())
      .then((fresh) => {
        // Unknown before (the console just started) counts as answering: the first reading is under way anyway.
        const changed = fresh.some((f) => (reach.find((r) => r.site === f.site)?.reachable ?? true) !== f.reachable);
        reach = fresh;
        failedInARow = fresh.some((f) => !f.reachable) ? failedInARow + 1 : 0;
        if (changed) refresh(true, fresh);
      })
      .catch(() => undefined)
      .finally(() => {
        probing = undefined;
        if (stopped) return;
        const wait = failedInARow ? Math.min(probeEveryMs * 2 ** (failedInARow - 1), PROBE_BACKOFF_MAX_MS) : probeEveryMs;
        probeTimer = setTimeout(probe, wait);
        probeTimer.unref();
      });
  };
  refresh();
  probe();

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
      const lost = reach.filter((r) => !r.reachable);
      // Figures read before the loss say nothing of now: none of them may stand as good.
      const before = lost.some((l) => !last || Date.parse(last.at) < Date.parse(l.unreachableSince ?? l.probedAt));
      if (before) backup.predatesOutage = true;
      let services: ServiceReadiness[] | undefined;
      let servicesError: string | undefined;
      if (last) {
        try {
          services = readiness({ ...last.readiness, reach, drills: loadDrillRuns(last.readiness.sites), now: now() });
        } catch (e) {
          servicesError = firstLine(e);
        }
      }
      const count = (state: JobStatusRow["state"]) => backup.jobs.filter((j) => j.state === state).length;
      const peers = last?.peers ?? [];
      const status: ConsoleStatus = {
        generatedAt: now().toISOString(),
        site: o.config.site,
        summary: {
          jobs: { ok: count("ok"), overRpo: count("over-rpo"), never: count("none"), unknown: count("unknown"), total: backup.jobs.length },
          distrusted: backup.jobs.reduce((n, j) => n + (j.distrusted?.length ?? 0), 0),
          replicas: { ok: backup.replicas.filter((r) => r.ok).length, notOk: backup.replicas.filter((r) => !r.ok).length },
          ...(services ? { services: { ready: services.filter((x) => x.ready).length, notReady: services.filter((x) => !x.ready).length, drillsOverdue: services.filter((x) => x.overdue).length } } : {}),
        },
        sites: reach,
        backup,
        archives: readArchiveStatuses(o.config),
        repositories: REPOSITORY_NAMES.flatMap((name) => {
          const r = o.config.repositories[name];
          const verify = r ? newestVerify(o.config, name, peers) : undefined;
          const away = lost.find((l) => l.site === r?.owner);
          return r ? [{ name, location: maskedLocation(r.repo.url), ...(verify ? { verify } : {}), ...(away ? { unreachableSince: away.unreachableSince ?? away.probedAt } : {}) }] : [];
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
      clearTimeout(probeTimer);
      const pending = [...reads, probing].filter((p): p is Promise<void> => p !== undefined);
      if (!pending.length) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(pending), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    },
  };
}
