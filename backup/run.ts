import { ExitCode, errorMessage } from "../util/errors.js";
import { connectHost, type Executor } from "../hosts/index.js";
import { jobTags, runTag, type BackupJob } from "./jobs.js";
import { LockedError, acquireLock, type Lock } from "../util/lock.js";
import { resticFor, type BackupConfig } from "./repositories.js";
import { jobExitStatus, writeRunReport, type ItemResult, type JobResult } from "./report.js";
import { ResticStalledError, type BackupProgress, type BackupSummary } from "../restic/index.js";
import { ProgressClock } from "../util/watchdog.js";
import { formatDuration } from "../util/duration.js";
import type { RepositoryName } from "./policies.js";
import { reconcileDeadRuns, RunLedger, type Reconciled } from "./run-ledger.js";
import { backupStatePaths } from "./state-paths.js";
import { ENGINES } from "../databases/registry.js";
import { FilesSource } from "./sources/files.js";
import type { DataSource } from "./sources/source.js";
import type { SourceSpec } from "./policies.js";

/**
 * Runs backup jobs: each under an exclusive lock on its host and a shared lock on its repository (backups into one
 * repository may run side by side, a prune may not run beside them), at most `concurrency` at once per site.
 * Every job ends as a JobResult; the run's report and the metrics file are written at the end.
 */

export interface RunOptions {
  config: BackupConfig;
  /** Jobs at once per site; default config.concurrency. */
  concurrency?: number;
  /** How long a job waits for a lock held by another run before it counts as locked (exit 3); default 0. */
  waitMs?: number;
  /** Called as each job starts and finishes (progress lines). */
  onStart?: (job: BackupJob) => void;
  /** With the run's id (its snapshots' run tag), for what the job is reported to. */
  onResult?: (result: JobResult, runId: string) => void;
  /** Overrides how a job reaches its host; tests and the bench use it. */
  executorFor?: (job: BackupJob) => Executor;
  /** Write the JSON-lines report and the metrics file (default true). */
  writeReport?: boolean;
  /** Overrides every job's stall limit (its policy's stallTimeout): no progress for this long in the whole job. */
  stallMs?: number;
  /** Aborting it stops the run: every restic and source is stopped, nothing of theirs is kept, the jobs fail. */
  signal?: AbortSignal;
  /** How far a job has come (bytes and files of the item it is on). */
  onProgress?: (job: BackupJob, item: string, p: BackupProgress) => void;
}

export interface RunOutcome {
  id: string;
  startedAt: string;
  finishedAt: string;
  exitCode: ExitCode;
  results: JobResult[];
  /** The JSON-lines report, when written. */
  reportPath?: string;
  metricsFile?: string;
  /** Leftovers of failed or interrupted runs (this one's or dead earlier ones') found and forgotten. */
  reconciled: Reconciled[];
  /** Repositories a job of this run stalled on: nothing after the jobs waits on them again. */
  stalled?: RepositoryName[];
}

export { backupStatePaths } from "./state-paths.js";

/**
 * The exit code of a run: 0 all ok; 3 when nothing failed but some job was locked by another run; 1 when every job
 * failed (or nothing ran); 4 when some failed and others did not.
 */
export function runExitCode(results: JobResult[]): ExitCode {
  const failed = results.filter((r) => r.status === "failed").length;
  const locked = results.filter((r) => r.status === "locked").length;
  if (results.length === 0) return ExitCode.failed;
  if (failed === results.length) return ExitCode.failed;
  if (failed > 0) return ExitCode.partial;
  if (locked > 0) return ExitCode.locked;
  return ExitCode.ok;
}

export async function runJobs(jobs: BackupJob[], opts: RunOptions): Promise<RunOutcome> {
  const startedAt = new Date();
  const id = `${startedAt.toISOString().replace(/[-:]/g, "").replace(/\..*$/, "")}-${process.pid}`;
  const reconciled = await reconcileDeadRuns(opts.config, opts.stallMs);
  const ledger = new RunLedger(opts.config, id, jobs, opts.stallMs);
  const limit = Math.max(1, opts.concurrency ?? opts.config.concurrency);
  const bySite = new Map<string, BackupJob[]>();
  for (const job of jobs) bySite.set(job.site, [...(bySite.get(job.site) ?? []), job]);
  const done = new Map<string, JobResult>();
  const stalled = new Set<RepositoryName>();
  await Promise.all(
    [...bySite.values()].map((siteJobs) =>
      pool(siteJobs, limit, async (job) => {
        opts.onStart?.(job);
        const result = await runJob(job, { ...opts, runId: id, ledger, stalled });
        ledger.finished(result);
        done.set(job.id, result);
        opts.onResult?.(result, id);
      }),
    ),
  );
  // Report in the order the jobs were given, whatever order they finished in.
  const results = jobs.map((j) => done.get(j.id)).filter((r): r is JobResult => r !== undefined);
  const finishedAt = new Date().toISOString();
  const exitCode = runExitCode(results);
  reconciled.push(...(await ledger.close(results.every((r) => r.status === "ok"), stalled)));
  const outcome: RunOutcome = { id, startedAt: startedAt.toISOString(), finishedAt, exitCode, results, reconciled, ...(stalled.size ? { stalled: [...stalled] } : {}) };
  if (opts.writeReport ?? true) {
    const paths = backupStatePaths(opts.config);
    outcome.reportPath = await writeRunReport(paths, { id, startedAt: outcome.startedAt, finishedAt, exitCode }, results);
    outcome.metricsFile = paths.metricsFile;
  }
  return outcome;
}

interface JobRunOptions extends RunOptions {
  runId: string;
  /** Where each accepted snapshot is recorded, so that anything else the run tagged can be found and forgotten. */
  ledger: RunLedger;
  /** Repositories a job of this run stalled on: the run's end does not wait on them again to reconcile. */
  stalled?: Set<RepositoryName>;
}

/** Runs one job and never throws: every failure, including a lock held elsewhere, is in the result. */
export async function runJob(job: BackupJob, opts: JobRunOptions): Promise<JobResult> {
  const started = Date.now();
  const result: JobResult = {
    job: job.id,
    host: job.host,
    site: job.site,
    policy: job.policy,
    repository: job.repository,
    status: "ok",
    startedAt: new Date(started).toISOString(),
    finishedAt: "",
    durationSeconds: 0,
    snapshots: [],
    bytesAdded: 0,
    filesNew: 0,
    filesChanged: 0,
  };
  const locks: Lock[] = [];
  try {
    const { locksDir } = backupStatePaths(opts.config);
    const waitMs = opts.waitMs ?? 0;
    locks.push(await acquireLock(locksDir, `host-${job.host}`, { mode: "exclusive", waitMs, what: `host ${job.host} (job ${job.id})` }));
    locks.push(await acquireLock(locksDir, `repo-${job.repository}`, { mode: "shared", waitMs, what: `repository ${job.repository}` }));
    if (opts.signal?.aborted) throw new Error("stopped before it began");
    result.items = [];
    const items = result.items;
    const errors = await backupSources(job, opts, items, (line) => {
      // A copy pushed by one item is what the job's first run paid for: that line wins over "copied there earlier".
      if (result.resticOnHost === undefined || line.includes("copied there now")) result.resticOnHost = line;
    }, (s) => {
      if (s.snapshot_id) {
        opts.ledger.accepted(s.snapshot_id);
        result.snapshots.push(s.snapshot_id);
      }
      result.bytesAdded += s.data_added;
      result.filesNew += s.files_new;
      result.filesChanged += s.files_changed;
    });
    if (errors.length) {
      result.status = "failed";
      result.error = errors.join("; ");
    }
  } catch (e) {
    result.status = e instanceof LockedError ? "locked" : "failed";
    result.error = oneLine(errorMessage(e));
  } finally {
    for (const lock of locks.reverse()) lock.release();
  }
  result.finishedAt = new Date().toISOString();
  result.durationSeconds = (Date.now() - started) / 1000;
  return result;
}

/**
 * Backs up every item of every source of the job. A failing item does not stop the others (a broken database dump
 * should not cost the host its /etc backup), but it fails the job; returns one line per failed item.
 */
async function backupSources(job: BackupJob, opts: JobRunOptions, done: ItemResult[], onHostRestic: (line: string) => void, add: (s: BackupSummary) => void): Promise<string[]> {
  const stallMs = opts.stallMs ?? job.stallMs;
  // One clock for the whole job: an item that starts after the previous one stalled has no time left, and a job whose
  // repository froze fails after one stall limit, not one per item.
  const progress = new ProgressClock();
  const restic = resticFor(opts.config, job.repository, { limitUploadKiB: job.limitUploadKiB, stallMs, signal: opts.signal, progress, onHostRestic });
  const exec = opts.executorFor?.(job) ?? connectHost({ name: job.host, ssh: job.ssh }, opts.config);
  const errors: string[] = [];
  let stalled = false;
  const skip = (name: string, why: string) => {
    errors.push(`${name}: ${why}`);
    done.push({ name, status: "failed", error: why });
  };
  const stallNote = () => `not started: the job had made no progress for ${formatDuration(stallMs)} (its stall limit)`;
  try {
    for (const spec of job.sources) {
      if (stalled) {
        skip(spec.kind, stallNote());
        continue;
      }
      const source = dataSourceFor(spec, opts.config, job.host);
      let items;
      try {
        items = await source.items(exec);
      } catch (e) {
        skip(spec.kind, oneLine(errorMessage(e)));
        continue;
      }
      for (const item of items) {
        if (opts.signal?.aborted) {
          skip(item.name, "not started, the run was stopped");
          continue;
        }
        if (stalled) {
          skip(item.name, stallNote());
          continue;
        }
        try {
          const onProgress = (p: BackupProgress) => opts.onProgress?.(job, item.name, p);
          const summary = await source.backup(exec, restic, item, { host: job.host, tags: [...jobTags(job), runTag(opts.runId)], onProgress });
          add(summary);
          done.push({ name: item.name, status: "ok", snapshot: summary.snapshot_id });
        } catch (e) {
          if (e instanceof ResticStalledError) {
            stalled = true;
            opts.stalled?.add(job.repository);
          }
          skip(item.name, oneLine(errorMessage(e)));
        }
        // An item that ended, well or not, is progress: the next one starts with the whole limit.
        if (!stalled) progress.touch();
      }
    }
  } finally {
    await exec.close();
  }
  return errors;
}

/** The DataSource for one of a policy's sources, with this machine's database connection settings. */
export function dataSourceFor(spec: SourceSpec, config: BackupConfig, host: string): DataSource {
  switch (spec.kind) {
    case "files":
      return new FilesSource({ paths: spec.paths, excludes: spec.excludes });
    default:
      return ENGINES[spec.kind].source(config, host);
  }
}

/** Runs `fn` over the items with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " | ").trim();
}

/** "1.2 GiB, 340 files" as a job goes: what the progress display shows beside a running job. */
export function describeProgress(p: BackupProgress): string {
  const size = p.bytesDone >= 1024 ** 3 ? `${(p.bytesDone / 1024 ** 3).toFixed(2)} GiB` : `${(p.bytesDone / 1024 ** 2).toFixed(1)} MiB`;
  const of = p.totalBytes ? ` of ${(p.totalBytes / 1024 ** 2).toFixed(1)} MiB` : "";
  return `${size}${of}${p.filesDone ? `, ${p.filesDone} files` : ""}`;
}

/** A one-line human summary of a job result. */
export function describeResult(r: JobResult): string {
  const mib = (r.bytesAdded / 1024 / 1024).toFixed(1);
  const base = `${r.status.padEnd(6)} ${r.job}  ${r.durationSeconds.toFixed(1)}s`;
  const restic = r.resticOnHost ? `; ${r.resticOnHost}` : "";
  if (r.status !== "ok") return `${base}  exit ${jobExitStatus(r.status)}: ${r.error ?? ""}${restic}`;
  return `${base}  ${r.snapshots.length} snapshot${r.snapshots.length === 1 ? "" : "s"}, +${mib} MiB, ${r.filesNew} new files${restic}`;
}
