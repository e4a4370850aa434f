import { DcctlError } from "../util/errors.js";
import type { Sites } from "../inventory/index.js";
import type { BackupJob } from "./jobs.js";
import { withLock } from "../util/lock.js";
import { recordOp } from "./op-record.js";
import { limitsOf, repository, resticFor, type BackupConfig } from "./repositories.js";
import { backupStatePaths } from "./run.js";
import { listJudged } from "./arrival-ledger.js";
import { minAgeShortened, planRetention, retentionGroups } from "./retention.js";
import { runLookup } from "./run-evidence.js";
import { distrustedRow, isTrusted, type DistrustedSnapshot } from "./trust.js";

/**
 * `dcctl backup prune`: forget by each job's retention, then prune, in the one repository this site owns. The
 * secondary's repository is append-only from the primary (its rest-server refuses deletes), and this code does not
 * even try: at the primary only the primary's repository is pruned, at the secondary only the secondary's, which
 * also holds the primary's snapshots copied by `replicate` and prunes them by the same retention. The whole is bounded
 * by limits.prune, restic prune also by limits.stall (its progress unchanged); a run that got its lock is recorded.
 *
 * What to forget is decided here by arrival (retention.ts), over the snapshots this site trusts (trust.ts, judged by
 * its arrival ledger as it lists them now), and forgotten by id: never by `restic forget --keep-*`, which trusts the
 * times snapshots claim. Distrusted snapshots are kept for investigation; nothing younger than its policy's minAge
 * is removed. Without a usable ledger nothing is pruned.
 */

export interface PruneJobResult {
  job: string;
  /** Kept by a keep rule. */
  kept: number;
  removed: number;
  /** No rule keeps them, but they reached this site less than minAge ago. */
  young: number;
  /** Distrusted: kept for investigation, taking no place. */
  quarantined: number;
  /** A check still open (their run's record could not be read): kept, taking no place. */
  pending: number;
  /** The snapshots forgotten (or, in a dry run, that would be). */
  removedIds: string[];
}

export interface PruneResult {
  repository: string;
  jobs: PruneJobResult[];
  pruned: boolean;
  /** The snapshots of the repository this site does not trust. */
  distrusted: DistrustedSnapshot[];
  /** Policies whose minAge is shorter than the default (retention.ts minAgeShortened). */
  minAgeShortened: { policy: string; minAgeMs: number; text: string }[];
}

export async function pruneOwnRepository(jobs: BackupJob[], config: BackupConfig, opts: { dryRun?: boolean; waitMs?: number; signal?: AbortSignal; sites?: Sites } = {}): Promise<PruneResult> {
  const own = repository(config, config.site);
  if (own.owner !== config.site) throw new DcctlError(`repository ${own.name} is owned by the ${own.owner} site; prune it there`);
  const restic = resticFor(config, own.name, { signal: opts.signal });
  const limits = limitsOf(config);
  const { locksDir } = backupStatePaths(config);
  const work = async (): Promise<PruneResult> => {
    const started = Date.now();
    const setting = `limits.prune in ${config.file}`;
    const left = () => Math.max(1000, limits.pruneMs - (Date.now() - started));
    const listing = await listJudged(config, own.name, { runs: runLookup(config, opts.sites ? { sites: opts.sites } : {}), jobs, timeoutMs: left(), ...(opts.signal ? { signal: opts.signal } : {}) });
    if (!listing.byArrival) throw new DcctlError(`not pruning repository ${own.name}: ${listing.ledgerError ?? "its snapshots could not be judged by arrival"}; retention never goes by the times snapshots claim`);
    const now = new Date();
    const results: PruneJobResult[] = [];
    for (const job of jobs) {
      const mine = listing.snapshots.filter((s) => s.tags?.includes(`job:${job.id}`));
      if (!mine.length) continue;
      const r: PruneJobResult = { job: job.id, kept: 0, removed: 0, young: 0, quarantined: 0, pending: 0, removedIds: [] };
      // Grouped by host and paths (restic's default): each database and the files of a host keep their own history.
      for (const group of retentionGroups(mine)) {
        const plan = planRetention(group, job.retention, { now, minAgeMs: job.minAgeMs });
        r.kept += plan.keep.length;
        r.young += plan.young.length;
        r.quarantined += plan.quarantined.length;
        r.pending += plan.pending.length;
        r.removedIds.push(...plan.remove.map((s) => s.id));
      }
      r.removed = r.removedIds.length;
      results.push(r);
    }
    const remove = results.flatMap((r) => r.removedIds);
    if (!opts.dryRun && remove.length) {
      await restic.forgetIds(remove, { bound: { timeoutMs: left(), setting } });
      await restic.prune({ bound: { stallMs: limits.stallMs, timeoutMs: left(), setting: `limits.stall / ${setting}` } });
    }
    const distrusted = listing.snapshots.filter((s) => !isTrusted(s)).map((s) => distrustedRow(own.name, s));
    return { repository: own.name, jobs: results, pruned: !opts.dryRun && remove.length > 0, distrusted, minAgeShortened: minAgeShortened(jobs) };
  };
  // Exclusive: no backup of this machine writes into the repository while its unreferenced data is removed. A dry
  // run removes nothing: it is not the prune on record.
  return withLock(locksDir, `repo-${own.name}`, { mode: "exclusive", waitMs: opts.waitMs ?? 0, what: `repository ${own.name}` }, () =>
    opts.dryRun
      ? work()
      : recordOp(config, "prune", own.name, work, (r) => ({ pruned: r.pruned, removed: r.jobs.reduce((n, j) => n + j.removed, 0), distrusted: r.distrusted.length, ...(r.minAgeShortened.length ? { minAgeShortened: r.minAgeShortened.map((m) => m.text) } : {}) }), opts.signal),
  );
}
