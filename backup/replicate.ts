import { DcctlError, InputError } from "../util/errors.js";
import { withLock } from "../util/lock.js";
import { recordOp } from "./op-record.js";
import type { RepositoryName } from "./policies.js";
import { limitsOf, repository, resticFor, type BackupConfig } from "./repositories.js";
import { backupStatePaths } from "./run.js";
import { reconcileDeadRuns, type Reconciled } from "./run-ledger.js";
import { listJudged } from "./arrival-ledger.js";

/**
 * `dcctl backup replicate --to secondary`: `restic copy` of the snapshots the secondary's repository does not have yet.
 * The secondary's rest-server runs --append-only, so copying is all the primary can do there: add, never delete.
 * Bounded by the site's limits (backup/limits.ts): each listing by limits.listing, the copy by limits.stall (its
 * progress unchanged) and the whole by limits.replicate; a run that got its lock is recorded (op-record.ts).
 */

export interface ReplicateResult {
  from: RepositoryName;
  to: RepositoryName;
  /** Snapshot ids (in the source repository) copied by this run. */
  copied: string[];
  /** Snapshots already present at the destination. */
  alreadyThere: number;
  /** Leftovers of dead runs forgotten before copying. */
  reconciled: Reconciled[];
}

export interface ReplicateOptions {
  waitMs?: number;
  /** Aborting it stops restic (SIGINT, then SIGKILL); the run is recorded as stopped. */
  signal?: AbortSignal;
}

export async function replicate(config: BackupConfig, to: RepositoryName, opts: ReplicateOptions = {}): Promise<ReplicateResult> {
  const from: RepositoryName = to === "secondary" ? "primary" : "secondary";
  if (to !== "secondary") throw new InputError([`dcctl backup replicate: only --to secondary is supported (the secondary keeps the copies)`]);
  const limits = limitsOf(config);
  const dest = resticFor(config, to, { signal: opts.signal });
  const { locksDir } = backupStatePaths(config);
  // Shared on the source so a local prune does not remove what is being copied; one replicate at a time.
  return withLock(locksDir, `repo-${from}`, { mode: "shared", waitMs: opts.waitMs ?? 0, what: `repository ${from}` }, () =>
    withLock(locksDir, `replicate-${to}`, { mode: "exclusive", waitMs: opts.waitMs ?? 0, what: `replication to ${to}` }, () =>
      recordOp(
        config,
        "replicate",
        to,
        async () => {
          const started = Date.now();
          // What a dead run left unfinished goes first: once copied to the append-only secondary it could not be removed.
          const reconciled = await reconcileDeadRuns(config, limits.listingMs);
          if (reconciled.some((r) => r.error && r.repository === from)) {
            throw new DcctlError(`not replicating: the leftovers of a failed run in repository ${from} could not be checked (${reconciled.find((r) => r.error)?.error ?? ""})`);
          }
          // The source is this site's own repository: listed through its arrival ledger, as every listing of it is.
          const [have, mine] = await Promise.all([dest.snapshots(), listJudged(config, from, { ...(opts.signal ? { signal: opts.signal } : {}) }).then((l) => l.snapshots)]);
          // A copied snapshot remembers its source id in `original` (and keeps it through later copies).
          const there = new Set(have.flatMap((s) => [s.original, s.id]).filter((id): id is string => typeof id === "string"));
          const missing = mine.filter((s) => !there.has(s.id) && !(s.original && there.has(s.original))).map((s) => s.id);
          if (missing.length) {
            const bound = { stallMs: limits.stallMs, timeoutMs: Math.max(1000, limits.replicateMs - (Date.now() - started)), setting: `limits.stall / limits.replicate in ${config.file}` };
            await dest.copy(repository(config, from).repo, { snapshotIds: missing, bound });
          }
          return { from, to, copied: missing, alreadyThere: mine.length - missing.length, reconciled };
        },
        (r) => ({ from: r.from, copied: r.copied, alreadyThere: r.alreadyThere }),
        opts.signal,
      ),
    ),
  );
}
