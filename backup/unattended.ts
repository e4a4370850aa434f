import type { NotifyResult } from "../notify/index.js";
import { emitEvent, type EventInput } from "../notify/event-feed.js";
import type { Outcome } from "../notify/events.js";
import type { JobResult } from "./report.js";
import { DcctlError, ExitCode, errorMessage } from "../util/errors.js";
import type { BackupJob } from "./jobs.js";
import { notifyFailedBackupRun } from "./notices/backup-run.js";
import { notifyFailedOperation, type FailedOperation } from "./notices/operation.js";
import { outcomeOf } from "./op-record.js";
import type { BackupConfig } from "./repositories.js";
import { runJobs, type RunOptions, type RunOutcome } from "./run.js";

/**
 * Backup work as timers run it, with nobody reading its output: SIGTERM (systemd stopping the unit) or Ctrl-C stops
 * it, and a failure is told through the site's notification channels. The CLI and the bench both come through here,
 * so that they stop and notify alike.
 */

/** SIGTERM or SIGINT, while work runs: the signal aborts it; `stoppedBy` says which came. */
export function stopOnSignals(): { signal: AbortSignal; stoppedBy: () => NodeJS.Signals | undefined; release: () => void } {
  const stop = new AbortController();
  let by: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    by ??= sig;
    stop.abort();
  };
  process.on("SIGTERM", onSignal).on("SIGINT", onSignal);
  return { signal: stop.signal, stoppedBy: () => by, release: () => void process.off("SIGTERM", onSignal).off("SIGINT", onSignal) };
}

/** The exit code of work a signal stopped: 130 for SIGINT, 143 for SIGTERM. */
export function stoppedExitCode(by: NodeJS.Signals): ExitCode {
  return by === "SIGINT" ? ExitCode.interrupted : ExitCode.terminated;
}

export interface UnattendedRun {
  outcome: RunOutcome;
  /** How the failure notice went, when one was sent (a run with failed jobs, at a site with channels). */
  notified: NotifyResult[];
  /** The signal that stopped the run, if one did. */
  stoppedBy?: NodeJS.Signals;
}

/**
 * Runs the jobs (runJobs) under the process's stop signals, then sends one notice when jobs failed. However the
 * notice goes, the run's exit code stays the jobs' own; what to say about a stop is the caller's (see stoppedExitCode).
 */
export async function runJobsUnattended(jobs: BackupJob[], opts: Omit<RunOptions, "signal">): Promise<UnattendedRun> {
  const stop = stopOnSignals();
  let outcome: RunOutcome;
  try {
    // Each job is told to the SOC as it ends, not at the run's end: a night's run of many jobs takes hours.
    const onResult = (r: JobResult, runId: string) => {
      emitJobEvent(opts.config, r, runId, stop.stoppedBy() !== undefined);
      opts.onResult?.(r, runId);
    };
    outcome = await runJobs(jobs, { ...opts, signal: stop.signal, onResult });
  } finally {
    stop.release();
  }
  const notified = await notifyFailedBackupRun(opts.config, outcome);
  const stoppedBy = stop.stoppedBy();
  return { outcome, notified, ...(stoppedBy ? { stoppedBy } : {}) };
}

const JOB_OUTCOME: Record<JobResult["status"], Outcome> = { ok: "ok", failed: "failed", locked: "locked", killed: "stopped" };

/** DCCTL-1001: one job of a backup run ended. */
function emitJobEvent(config: BackupConfig, r: JobResult, run: string, stopped: boolean): void {
  const outcome: Outcome = stopped && r.status !== "ok" ? "stopped" : JOB_OUTCOME[r.status];
  emitEvent(config, "backup.job", {
    target: r.job,
    outcome,
    run,
    message: `backup job ${r.job} ${outcome === "ok" ? `ended ok: ${r.snapshots.length} snapshot${r.snapshots.length === 1 ? "" : "s"} kept` : `${outcome}${r.error ? `: ${r.error}` : ""}`}`,
    data: { host: r.host, repository: r.repository, snapshots: r.snapshots.join(",") || undefined, bytesAdded: r.bytesAdded, filesNew: r.filesNew, filesChanged: r.filesChanged, error: r.error },
  });
}

/** What a replicate, prune or verify is about, for its failure notice and its event. */
export type Operation = Pick<FailedOperation, "op" | "repository" | "from" | "recordPath"> & {
  /** A dry run changes nothing: the SOC is not told of it. */
  dryRun?: boolean;
  /** The second operator who approved it (four eyes: a prune with a shortened minAge). */
  approver?: string;
};

const OP_EVENT = { replicate: "backup.replicate", prune: "backup.prune", verify: "backup.verify" } as const;

/** DCCTL-1002/1003/1005: a replicate, prune or verify ended (or found its lock held: it did nothing). */
function emitOpEvent(config: BackupConfig, what: Operation, run: string, outcome: Outcome, data: EventInput["data"], error?: string): void {
  if (what.dryRun) return;
  const target = what.op === "replicate" ? `${what.from ?? "primary"} -> ${what.repository}` : what.repository;
  emitEvent(config, OP_EVENT[what.op], {
    target,
    outcome,
    run,
    ...(what.approver ? { approver: what.approver } : {}),
    message: `${what.op} of ${target} ${outcome === "ok" ? "ended ok" : `${outcome}${error ? `: ${error}` : ""}`}`,
    data: { ...(what.op === "replicate" ? { from: what.from } : {}), ...data, error },
  });
}

/**
 * Runs a replicate, prune or verify: a signal stops it (exit 130/143), and a failure, a stall or a stop is notified
 * through the site's channels before it is reported (`onNotified` hears how that went). A lock held by another run
 * (exit 3) or bad input (exit 2) did no work and is not notified.
 */
export async function noticed<T>(
  config: BackupConfig,
  what: Operation,
  work: (signal: AbortSignal) => Promise<T>,
  onNotified: (results: NotifyResult[]) => void = () => undefined,
  detail: (result: T) => EventInput["data"] = () => ({}),
): Promise<T> {
  const stop = stopOnSignals();
  const startedAt = new Date().toISOString();
  const run = `${what.op}-${startedAt.replace(/[-:]/g, "").replace(/\..*$/, "")}-${process.pid}`;
  try {
    const result = await work(stop.signal);
    emitOpEvent(config, what, run, "ok", detail(result));
    return result;
  } catch (e) {
    if (e instanceof DcctlError && e.exitCode === ExitCode.badInput) throw e;
    if (e instanceof DcctlError && e.exitCode === ExitCode.locked) {
      emitOpEvent(config, what, run, "locked", {}, errorMessage(e));
      throw e;
    }
    emitOpEvent(config, what, run, outcomeOf(e, stop.signal), {}, errorMessage(e));
    const notified = await notifyFailedOperation(config, { ...what, outcome: outcomeOf(e, stop.signal), error: errorMessage(e), startedAt, finishedAt: new Date().toISOString() });
    if (notified.length) onNotified(notified);
    const by = stop.stoppedBy();
    if (by) throw new DcctlError(`stopped by ${by}: ${errorMessage(e)}`, stoppedExitCode(by));
    throw e;
  } finally {
    stop.release();
  }
}
