import { DcctlError } from "../util/errors.js";
import type { BackupJob } from "./jobs.js";
import { withLock } from "../util/lock.js";
import { recordOp } from "./op-record.js";
import { limitsOf, repository, resticFor, type BackupConfig } from "./repositories.js";
import type { ForgetGroup } from "../restic/index.js";
import { backupStatePaths } from "./run.js";

/**
 * `dcctl backup prune`: forget by each job's retention, then prune, in the one repository this site owns. The
 * secondary's repository is append-only from the primary (its rest-server refuses deletes), and this code does not
 * even try: at the primary only the primary's repository is pruned, at the secondary only the secondary's, which
 * also holds the primary's snapshots copied by `replicate` and prunes them by the same retention. The whole is bounded
 * by limits.prune, restic prune also by limits.stall (its progress unchanged); a run that got its lock is recorded.
 */

export interface PruneJobResult {
  job: string;
  kept: number;
  removed: number;
}

export interface PruneResult {
  repository: string;
  jobs: PruneJobResult[];
  pruned: boolean;
}

export async function pruneOwnRepository(jobs: BackupJob[], config: BackupConfig, opts: { dryRun?: boolean; waitMs?: number; signal?: AbortSignal } = {}): Promise<PruneResult> {
  const own = repository(config, config.site);
  if (own.owner !== config.site) throw new DcctlError(`repository ${own.name} is owned by the ${own.owner} site; prune it there`);
  const restic = resticFor(config, own.name, { signal: opts.signal });
  const limits = limitsOf(config);
  const { locksDir } = backupStatePaths(config);
  const work = async (): Promise<PruneResult> => {
    const started = Date.now();
    const setting = `limits.prune in ${config.file}`;
    const left = () => Math.max(1000, limits.pruneMs - (Date.now() - started));
    const present = new Set((await restic.snapshots({ tags: ["dcctl"] })).flatMap((s) => s.tags ?? []).filter((t) => t.startsWith("job:")));
    const results: PruneJobResult[] = [];
    for (const job of jobs) {
      if (!present.has(`job:${job.id}`)) continue;
      // Grouped by host and paths (restic's default): each database and the files of a host keep their own history.
      const groups: ForgetGroup[] = await restic.forget(job.retention, { tags: [`job:${job.id}`], dryRun: opts.dryRun, bound: { timeoutMs: left(), setting } });
      results.push({
        job: job.id,
        kept: groups.reduce((n, g) => n + (g.keep?.length ?? 0), 0),
        removed: groups.reduce((n, g) => n + (g.remove?.length ?? 0), 0),
      });
    }
    const removed = results.some((r) => r.removed > 0);
    if (!opts.dryRun && removed) await restic.prune({ bound: { stallMs: limits.stallMs, timeoutMs: left(), setting: `limits.stall / ${setting}` } });
    return { repository: own.name, jobs: results, pruned: !opts.dryRun && removed };
  };
  // Exclusive: no backup of this machine writes into the repository while its unreferenced data is removed. A dry
  // run removes nothing: it is not the prune on record.
  return withLock(locksDir, `repo-${own.name}`, { mode: "exclusive", waitMs: opts.waitMs ?? 0, what: `repository ${own.name}` }, () =>
    opts.dryRun ? work() : recordOp(config, "prune", own.name, work, (r) => ({ pruned: r.pruned, removed: r.jobs.reduce((n, j) => n + j.removed, 0) }), opts.signal),
  );
}
