import { ExitCode, errorMessage } from "../util/errors.js";
import { DB_ENGINES } from "../databases/registry.js";
import type { Sites } from "../inventory/index.js";
import { snapshotItem, type BackupJob } from "./jobs.js";
import type { BackupConfig } from "./repositories.js";
import { REPOSITORY_NAMES, type RepositoryName } from "./policies.js";
import { newestRuns } from "./peer-records.js";
import type { SiteReach } from "./reachability.js";
import { readState, type ItemResult, type JobResult, type MetricsState } from "./report.js";
import { backupStatePaths } from "./run.js";
import { listJudged, type JudgedListing } from "./arrival-ledger.js";
import { runLookup } from "./run-evidence.js";
import { ageMinutes, distrustedRow, effectiveTime, isTrusted, type DistrustedSnapshot, type JudgedSnapshot } from "./trust.js";

export type { DistrustedSnapshot } from "./trust.js";
import { reconcileDeadRuns, type Reconciled } from "./run-ledger.js";
import type { PairStatus } from "./replication/index.js";

/**
 * `dcctl backup status`: for each job, each of its items (every database dump, the globals, the files) and the age of
 * its newest good snapshot against the job's RPO. A job is ok only when every item is: a host whose files were saved
 * an hour ago but whose database dump has failed since yesterday is not ok. The items a job is expected to have are
 * those its last run from this machine recorded (plus its files); without that record, those its snapshots show.
 * Leftovers of runs that died are forgotten first (see run-ledger.ts), so no half-made snapshot is counted.
 *
 * Each job is judged by the copies this site holds when it holds them (judgingRepository: at the secondary, every
 * job, by what `backup replicate` brought — what a failover restores from); the other repositories' copies stand
 * beside it. A repository at a site that does not answer (reachability.ts) is not read at all.
 *
 * Only snapshots this site trusts count (trust.ts: in the repository it keeps, judged against its arrival ledger;
 * in another, by their claims alone), and a snapshot's age runs from the time it counts as made at: its claim, never
 * later than its arrival — a snapshot dated in the future is not "0 min old", it is distrusted. Those not trusted are
 * listed beside each job's row and in `distrusted`.
 *
 * Exit codes: 0 every job has a snapshot of every item within its RPO; 4 some item is over its RPO or has none;
 * 7 another site is unreachable (every job this site can judge is judged; those only that site holds are unknown);
 * 9 a repository holds snapshots this site does not trust (before 7 and 4: it is an alarm); 1 a repository that
 * should answer could not be read (then its jobs show the error, and whether they are late is unknown).
 * Beside each job of a replicated database stands its replica's last measured lag: the first line of protection,
 * which never counts for the second (a replica copies a DROP TABLE in seconds).
 */

export type ItemState = "ok" | "over-rpo" | "none" | "unknown";

export interface ItemStatusRow {
  /** "files", or "<engine>/<database>" (an engine's globals too: "<engine>/_globals"). */
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
  /** The repository it is judged by, when not its own: this site's, which holds its copies (judgingRepository). */
  judgedBy?: RepositoryName;
  /** Its copies in the other repositories, as extra information (unknown when they could not be read). */
  copies?: CopyStatus[];
  /** Its copy at the site `backup replicate` copies to is over its RPO or missing: replication of backups is protection. */
  copyWarning?: string;
  /** Unknown because the repository it is judged by is at a site that does not answer. */
  unreachable?: boolean;
  /** Its snapshots in the repository it is judged by that this site does not trust: not counted. */
  distrusted?: DistrustedSnapshot[];
}

export interface CopyStatus {
  repository: RepositoryName;
  state: ItemState;
  newest?: { id: string; time: string };
  ageMinutes?: number;
  error?: string;
  /** How many of its snapshots there this site does not trust (judged by their claims). */
  distrusted?: number;
}

/** How each repository's listing was judged: by this site's arrival ledger, or by the snapshots' claims alone. */
export interface TrustBasis {
  repository: RepositoryName;
  byArrival: boolean;
  ledgerBegan?: string;
  ledgerError?: string;
  /** Snapshots whose run's record could not be read yet (the other site did not answer): counted, out of retention. */
  pending?: number;
}

export interface StatusReport {
  rows: JobStatusRow[];
  exitCode: ExitCode;
  /** Leftovers of dead runs forgotten before looking. */
  reconciled: Reconciled[];
  /** The other sites that did not answer: their repositories were not read. */
  unreachable: SiteReach[];
  /** Every snapshot of these jobs, in the repositories read, that this site does not trust. */
  distrusted: DistrustedSnapshot[];
  /** How each repository read was judged. */
  trust: TrustBasis[];
}

export { snapshotItem } from "./jobs.js";

const RANK: Record<ItemState, number> = { ok: 0, "over-rpo": 1, none: 2, unknown: 3 };

/** Where `backup replicate` copies every site's snapshots to: a job with copies there is judged there, at that site. */
const COPIES_GO_TO: RepositoryName = "secondary";

/** How long this site's own repository may take to list; it answers, or this site has a problem of its own. */
export const OWN_LISTING_MS = 20_000;
/** How long another site's repository may take to list, once its site answered the probe (reachability.ts). */
export const OTHER_LISTING_MS = 15_000;

/**
 * The repository a job is judged by at this site: this site's own when it holds the job's copies (the job writes
 * there, or `backup replicate` brings them here) — what a failover from here would restore — else the job's own.
 */
export function judgingRepository(job: Pick<BackupJob, "repository">, config: Pick<BackupConfig, "site" | "repositories">): RepositoryName {
  const own = REPOSITORY_NAMES.find((r) => r === config.site);
  if (own && config.repositories[own] && (job.repository === own || own === COPIES_GO_TO)) return own;
  return job.repository;
}

export interface StatusOptions {
  /** The other sites as just probed (reachability.ts): a repository at an unreachable site is not read. */
  reach?: SiteReach[];
  /** The other sites' records of the runs they ran (peer-records.ts): each job's newest last run is shown. */
  peerRuns?: MetricsState[] | Promise<MetricsState[]>;
  /** The inventory: newly arrived snapshots are checked against the other sites' records of their runs. */
  sites?: Sites;
}

/**
 * `replicas`: the replication pairs of the jobs' hosts as measured (or being measured: it is awaited only at the end,
 * so the listings and the probes run side by side).
 */
export async function backupStatus(jobs: BackupJob[], config: BackupConfig, now: Date, replicas: PairStatus[] | Promise<PairStatus[]>, o: StatusOptions = {}): Promise<StatusReport> {
  const lost = new Map((o.reach ?? []).filter((r) => !r.reachable).map((r) => [r.site as string, r]));
  const lostRepo = (name: RepositoryName) => lost.get(config.repositories[name]?.owner ?? name);
  // A repository of a lost site is left alone: its dead runs' leftovers are forgotten once it answers again.
  const readable = Object.fromEntries(Object.entries(config.repositories).filter(([name]) => !lostRepo(name as RepositoryName)));
  const reconciled = await reconcileDeadRuns({ ...config, repositories: readable }, OWN_LISTING_MS);
  const listings = new Map<RepositoryName, Promise<JudgedListing>>();
  const runs = runLookup(config, { ...(o.sites ? { sites: o.sites } : {}), ...(o.reach ? { reach: o.reach } : {}) });
  const listingOf = (name: RepositoryName): Promise<JudgedListing> => {
    let p = listings.get(name);
    if (!p) {
      const away = lostRepo(name);
      // One listing per repository, not one per job; another site's within seconds, this site's own a little longer.
      p = away
        ? Promise.reject(new Error(`repository ${name} is at the ${away.site} site, ${describeSince(away)}`))
        : Promise.resolve().then(() => listJudged(config, name, { stallMs: name === config.site ? OWN_LISTING_MS : OTHER_LISTING_MS, runs, jobs, now: () => new Date() }));
      p.catch(() => undefined);
      listings.set(name, p);
    }
    return p;
  };
  const snapshotsIn = (name: RepositoryName): Promise<JudgedSnapshot[]> => listingOf(name).then((l) => l.snapshots);
  // Every listing under way before the other sites' records are awaited: they are read side by side.
  // listingOf's own promises, whose rejection is handled: one derived by snapshotsIn and left alone would reject
  // unhandled (a lost site's repository) and end the process, `dcctl serve` included.
  for (const job of jobs) for (const r of [judgingRepository(job, config), ...REPOSITORY_NAMES.filter((x) => config.repositories[x])]) void listingOf(r);
  const state = newestRuns([readState(backupStatePaths(config).stateFile), ...(await Promise.resolve(o.peerRuns ?? []).catch(() => []))]);
  const rows = await Promise.all(
    jobs.map(async (job): Promise<JobStatusRow> => {
      const judgedBy = judgingRepository(job, config);
      let row: JobStatusRow;
      try {
        row = jobStatus(job, await snapshotsIn(judgedBy), state[job.id]?.last, now, judgedBy);
      } catch (e) {
        row = { job: job.id, host: job.host, site: job.site, repository: job.repository, rpoMinutes: job.rpoMinutes, state: "unknown", items: [], error: errorMessage(e) };
        if (lostRepo(judgedBy)) row.unreachable = true;
      }
      if (judgedBy !== job.repository) row.judgedBy = judgedBy;
      const others = REPOSITORY_NAMES.filter((r) => r !== judgedBy && config.repositories[r]);
      row.copies = await Promise.all(others.map((r) => copyIn(job, r, snapshotsIn(r), now)));
      const atTarget = row.copies.find((c) => c.repository === COPIES_GO_TO);
      if (atTarget && (atTarget.state === "over-rpo" || atTarget.state === "none")) {
        row.copyWarning = atTarget.state === "none" ? `no copy at the ${COPIES_GO_TO} (run backup replicate --to ${COPIES_GO_TO})` : `its copy at the ${COPIES_GO_TO} is ${formatAge(atTarget.ageMinutes)} old, over the RPO of ${formatAge(job.rpoMinutes)}`;
      }
      return row;
    }),
  );
  addReplicas(rows, await replicas);
  const unreachable = [...lost.values()];
  const distrusted = rows.flatMap((r) => r.distrusted ?? []);
  const exitCode = rows.some((r) => r.state === "unknown" && !r.unreachable)
    ? ExitCode.failed
    : distrusted.length
      ? ExitCode.distrusted
      : unreachable.length
        ? ExitCode.siteUnreachable
        : rows.some((r) => r.state !== "ok")
          ? ExitCode.partial
          : ExitCode.ok;
  const trust: TrustBasis[] = [];
  for (const [name, p] of listings) {
    const l = await p.catch(() => undefined);
    const pending = l?.snapshots.filter((s) => isTrusted(s) && s.pending?.length).length ?? 0;
    if (l) trust.push({ repository: name, byArrival: l.byArrival, ...(l.ledgerBegan ? { ledgerBegan: l.ledgerBegan } : {}), ...(l.ledgerError ? { ledgerError: l.ledgerError } : {}), ...(pending ? { pending } : {}) });
  }
  return { rows, exitCode, reconciled, unreachable, distrusted, trust };
}

/** A job's copies in a repository other than the one it is judged by: shown beside it, judged against the same RPO. */
async function copyIn(job: BackupJob, repository: RepositoryName, listing: Promise<JudgedSnapshot[]>, now: Date): Promise<CopyStatus> {
  try {
    const r = jobStatus(job, await listing, undefined, now, repository);
    return { repository, state: r.state, ...(r.newest ? { newest: r.newest } : {}), ...(r.ageMinutes !== undefined ? { ageMinutes: r.ageMinutes } : {}), ...(r.distrusted?.length ? { distrusted: r.distrusted.length } : {}) };
  } catch (e) {
    return { repository, state: "unknown", error: errorMessage(e) };
  }
}

/** "unreachable since 2026-12-05T02:00:13.000Z". */
export function describeSince(r: Pick<SiteReach, "unreachableSince" | "probedAt">): string {
  return `unreachable since ${r.unreachableSince ?? r.probedAt}`;
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

/**
 * One job's row from its repository's snapshots (judged: trust.ts; a plain Snapshot is trusted) and its last run from
 * this machine. Only trusted snapshots count; the others are listed in `distrusted`.
 */
export function jobStatus(job: BackupJob, snapshots: JudgedSnapshot[], last: JobResult | undefined, now: Date, repository: RepositoryName = job.repository): JobStatusRow {
  const row: JobStatusRow = { job: job.id, host: job.host, site: job.site, repository: job.repository, rpoMinutes: job.rpoMinutes, state: "none", items: [] };
  if (last) row.lastRun = `${last.status} at ${last.finishedAt}`;
  if (last?.error) row.lastError = last.error;
  const tag = `job:${job.id}`;
  const newestByItem = new Map<string, JudgedSnapshot>();
  const distrusted: DistrustedSnapshot[] = [];
  for (const s of snapshots.filter((x) => x.tags?.includes(tag))) {
    if (!isTrusted(s)) {
      distrusted.push(distrustedRow(repository, s));
      continue;
    }
    const item = snapshotItem(s.tags ?? []);
    if (item === undefined) continue;
    const best = newestByItem.get(item);
    if (!best || effectiveTime(s) > effectiveTime(best)) newestByItem.set(item, s);
  }
  if (distrusted.length) row.distrusted = distrusted;
  const lastErrors = new Map((last?.items ?? []).filter((i) => i.status === "failed").map((i) => [i.name, i.error ?? "failed"]));
  for (const item of expectedItems(job, last?.items, [...newestByItem.keys()])) {
    const newest = newestByItem.get(item);
    const r: ItemStatusRow = { item, state: "none" };
    const err = lastErrors.get(item);
    if (err) r.lastError = err;
    if (newest) {
      r.newest = { id: newest.short_id || newest.id.slice(0, 8), time: newest.time };
      r.ageMinutes = ageMinutes(newest, now);
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
 * with no snapshot stands as itself (the engine's name), never backed up.
 */
function expectedItems(job: BackupJob, lastItems: ItemResult[] | undefined, inRepository: string[]): string[] {
  const items = new Set(lastItems ? lastItems.map((i) => i.name) : inRepository);
  // A source whose databases could not even be listed last time: judge the ones its snapshots show.
  for (const kind of DB_ENGINES) {
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
